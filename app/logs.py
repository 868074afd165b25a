"""Request ids and the access log: one line per request, written by a pure ASGI middleware."""

import logging
import os
import sys
import time

from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app import ids

REQUEST_ID_HEADER = "X-Request-Id"
CLIENT_CLOSED = 499
_HEADER_NAME = REQUEST_ID_HEADER.lower().encode()

log = logging.getLogger("experiment_items.access")


def request_id(scope: Scope) -> str | None:
    """The id the middleware gave this request: `request.state.request_id` in an endpoint or
    an error handler, and the response's X-Request-Id header."""
    state = scope.get("state")
    return None if state is None else state.get("request_id")


def _printable(text: str) -> str:
    # The path comes percent-decoded from the client: %0a must not start a forged log line.
    if text.isprintable() and '"' not in text:
        return text
    return text.encode("unicode_escape").decode("ascii").replace('"', '\\"')


def _ensure_handler() -> None:
    # uvicorn configures only its own loggers; without a handler an INFO line goes nowhere.
    # An operator's logging config that gives this logger a handler is left alone.
    if log.handlers:
        return
    handler = logging.StreamHandler(sys.stderr)
    formatter = logging.Formatter(
        "%(asctime)s.%(msecs)03dZ %(message)s", datefmt="%Y-%m-%dT%H:%M:%S"
    )
    formatter.converter = time.gmtime
    handler.setFormatter(formatter)
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    log.propagate = False


class AccessLog:
    """Gives every HTTP request an id, sent back as X-Request-Id, and logs one line when
    its response is sent: client, method, path, status, duration, request id and process.

    Pure ASGI (no BaseHTTPMiddleware): it sits on every request's path, so it adds one id,
    one header and, when `enabled`, one log call, and nothing else.
    """

    def __init__(self, app: ASGIApp, enabled: bool = True) -> None:
        self.app = app
        self.enabled = enabled
        self.pid = os.getpid()
        if enabled:
            _ensure_handler()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter_ns()
        rid = ids.to_str(ids.uuid7())
        scope.setdefault("state", {})["request_id"] = rid
        header = (_HEADER_NAME, rid.encode())
        status = 0

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", ()), header]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except ClientDisconnect:
            # Gone before its body arrived: nginx's 499 "client closed request".
            status = status or CLIENT_CLOSED
            raise
        except Exception:
            # Raised before any answer: the server's error middleware answers 500.
            status = status or 500
            raise
        finally:
            if self.enabled:
                self._log(scope, status, started, rid)

    def _log(self, scope: Scope, status: int, started: int, rid: str) -> None:
        client = scope.get("client")
        log.info(
            '%s "%s %s" %s %.1f ms request_id=%s pid=%d',
            f"{client[0]}:{client[1]}" if client else "-",
            scope["method"],
            _printable(scope["path"]),
            status or "-",
            (time.perf_counter_ns() - started) / 1e6,
            rid,
            self.pid,
        )
