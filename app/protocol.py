"""The HTTP protocol the server runs: uvicorn's httptools protocol with deadlines for a
request's head and body, which it lacks, and one write for each GET's head and body."""

import array
import asyncio
import contextlib
import fcntl
import logging
import termios
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Literal

from uvicorn.config import Config
from uvicorn.protocols.http.flow_control import service_unavailable
from uvicorn.protocols.http.httptools_impl import (
    STATUS_LINE,
    HttpToolsProtocol,
    RequestResponseCycle,
)
from uvicorn.server import ServerState

from app.config import current as current_settings
from app.errors import was_logged
from app.payloads import Error, encoder

Phase = Literal["head", "body"]

if TYPE_CHECKING:
    from uvicorn._types import ASGI3Application, ASGIReceiveCallable, ASGISendCallable, Scope


_BODILESS = frozenset(("GET", "HEAD"))


def _not_logged_yet(record: logging.LogRecord) -> bool:
    exc = record.exc_info[1] if record.exc_info else None
    return exc is None or not was_logged(exc)


# The logger of each request's cycle. uvicorn logs the traceback of an exception the app
# raises; Starlette raises again, after the 500 is answered, one that app/errors.py logged
# already under the request's id: that one is not logged twice (reliability probe D11). A
# child of uvicorn's logger, so its records go where uvicorn's go.
_CYCLE_LOG = logging.getLogger("uvicorn.error.cycle")
_CYCLE_LOG.addFilter(_not_logged_yet)


_OVER_CAPACITY = encoder.encode(
    Error(503, "The server is at its connection limit: try again in a moment")
)


async def over_capacity(
    scope: "Scope", receive: "ASGIReceiveCallable", send: "ASGISendCallable"
) -> None:
    """uvicorn's answer past `limit_concurrency` (probe D6), in the contract's error shape."""
    await send(
        {
            "type": "http.response.start",
            "status": 503,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", b"%d" % len(_OVER_CAPACITY)),
                (b"retry-after", b"1"),
                (b"connection", b"close"),
            ],
            "trailers": False,
        }
    )
    await send({"type": "http.response.body", "body": _OVER_CAPACITY, "more_body": False})


class HeadWithBody:
    """The transport of one response to a GET, as its cycle sees it: the head is held until
    the body's first bytes, and both go in one write, one system call instead of two.

    Only for requests without a body or a 100-continue to answer, whose first write is the
    head. A head with no body after it (a HEAD's) is written when the response completes or
    the connection closes."""

    __slots__ = ("_head", "_on_response", "_transport")

    def __init__(self, transport: asyncio.Transport, on_response: Callable[[], None]) -> None:
        self._transport = transport
        self._on_response = on_response
        self._head: bytes | None = None

    def write(self, data: bytes) -> None:
        if self._head is None:
            self._head = data
            return
        head, self._head = self._head, b""  # one head per response: later writes go straight
        self._transport.write(head + data if head else data)

    def flush(self) -> None:
        if self._head:
            self._transport.write(self._head)
        self._head = b""

    def response_complete(self) -> None:
        if self._head:  # flush(), inline: this runs once per GET
            self._transport.write(self._head)
            self._head = b""
        self._on_response()

    def close(self) -> None:
        self.flush()
        self._transport.close()

    def is_closing(self) -> bool:
        return self._transport.is_closing()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


class HttpProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with the two deadlines a slowloris client defeats, and
    HeadWithBody for GETs.

    - The head (request line and headers) must arrive within `head_timeout_seconds` of the
      connection opening or of the request's first byte: else 408 and the connection closes
      (a connection that sent nothing is closed without an answer, RFC 9112 section 9.5).
    - The body must arrive within `body_timeout_seconds` of the head, whether the app reads it
      or has answered already: else the connection closes after the app's answer (app/body.py
      answers 408 when it is the one waiting), or at once when the answer has gone.

    uvicorn's keep-alive timer still closes a connection idle between requests. Besides the
    one each new connection gets, a timer is armed only when a read leaves a request
    incomplete, and cancelled once it is complete: a request that arrives in one read, as
    every GET does, costs no timer at all.
    """

    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        # uvicorn compares its logger's own level to decide on trace lines: the same level.
        if _CYCLE_LOG.level != self.logger.level:
            _CYCLE_LOG.setLevel(self.logger.level)
        self.logger = _CYCLE_LOG
        settings = current_settings()
        self.head_timeout = settings.head_timeout_seconds
        self.body_timeout = settings.body_timeout_seconds
        # A reader that takes no byte of an answer for this long, its write buffer full, is
        # cut off: uvicorn would wait on it for ever (reliability probe D2).
        self.send_timeout = settings.send_timeout_seconds
        self.phase: Phase | None = None  # of the request partly received, if one is
        self.deadline: asyncio.TimerHandle | None = None
        self.send_deadline: asyncio.TimerHandle | None = None
        self.unsent_bytes = 0  # in the write buffer when the send deadline was armed

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        # A new connection has its head deadline from the start: one that never sends a byte
        # holds a socket too.
        self.deadline = self.loop.call_later(self.head_timeout, self._expired)

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel()
        self._writable()
        super().connection_lost(exc)

    def pause_writing(self) -> None:
        # The transport's buffer is over its high-water mark: the reader has send_timeout
        # seconds to take enough of it for writing to resume.
        super().pause_writing()
        if self.send_deadline is None:
            self._arm_send_deadline()

    def resume_writing(self) -> None:
        self._writable()
        super().resume_writing()

    def _writable(self) -> None:
        if self.send_deadline is not None:
            self.send_deadline.cancel()
            self.send_deadline = None

    def _arm_send_deadline(self) -> None:
        self.unsent_bytes = self._unsent_bytes()
        self.send_deadline = self.loop.call_later(self.send_timeout, self._stalled)

    def _unsent_bytes(self) -> int:
        """What the reader has not taken: the transport's buffer, and the kernel's send queue
        (Linux's SIOCOUTQ, man 7 tcp), which the transport refills only once a third or so
        of it is free: a reader can take megabytes before the transport's buffer shrinks."""
        unsent = self.transport.get_write_buffer_size()
        sock = self.transport.get_extra_info("socket")
        if sock is not None:
            queued = array.array("i", [0])
            # Not a TCP socket, or not Linux: the transport's buffer alone.
            with contextlib.suppress(OSError):
                fcntl.ioctl(sock.fileno(), termios.TIOCOUTQ, queued)
            unsent += queued[0]
        return unsent

    def _stalled(self) -> None:
        # Writing resumes only once the buffer is down to its low-water mark, which a slow
        # reader of an 8 MiB chunk reaches long after the deadline: one that took some of it
        # meanwhile (nothing is added while paused) gets another send_timeout.
        if self._unsent_bytes() < self.unsent_bytes:
            self._arm_send_deadline()
            return
        # abort(), not close(): close() waits to write the buffer the reader does not take.
        self.send_deadline = None
        cycle = self.cycle
        request = f' "{cycle.scope["method"]} {cycle.scope["path"]}"' if cycle else ""
        peer = ":".join(map(str, self.client)) if self.client else "unknown"
        self.logger.warning(
            "Aborted the connection of %s%s: it took no byte of the answer for %g s",
            peer,
            request,
            self.send_timeout,
        )
        self.transport.abort()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self.phase is not None and self.deadline is None and not self.transport.is_closing():
            seconds = self.head_timeout if self.phase == "head" else self.body_timeout
            self.deadline = self.loop.call_later(seconds, self._expired)

    def on_message_begin(self) -> None:
        self.phase = "head"
        super().on_message_begin()

    def on_headers_complete(self) -> None:
        if self.deadline is not None:  # _cancel(), inline: this and the next run per request
            self._cancel()
        self.phase = "body"
        super().on_headers_complete()
        cycle = self.cycle
        if cycle.scope["method"] in _BODILESS and not self.expect_100_continue:
            writer = HeadWithBody(self.transport, cycle.on_response)
            cycle.transport = writer  # type: ignore[assignment]
            # The cycle's own callback, not the protocol's: with requests pipelined,
            # self.cycle is already the next one when this one completes.
            cycle.on_response = writer.response_complete

    def on_message_complete(self) -> None:
        if self.deadline is not None:
            self._cancel()
        self.phase = None
        super().on_message_complete()

    def _start_asgi_task(self, cycle: RequestResponseCycle, app: "ASGI3Application") -> None:
        # uvicorn chooses its plain-text 503 when over the cap, here and for a pipelined
        # request alike: the contract's body instead.
        super()._start_asgi_task(cycle, over_capacity if app is service_unavailable else app)

    def _cancel(self) -> None:
        if self.deadline is not None:
            self.deadline.cancel()
            self.deadline = None

    def _expired(self) -> None:
        self.deadline = None
        if self.transport.is_closing():
            return
        if self.cycle is not None and not self.cycle.response_complete:
            # An answer is on its way (app/body.py's 408, when the app waits for this body):
            # it says `connection: close`, and the connection closes once it is written.
            self.cycle.keep_alive = False
            return
        if self.phase == "head":
            self.transport.write(self._timed_out_response())
        self.transport.close()

    def _timed_out_response(self) -> bytes:
        # The contract's error body, as RFC 9110 section 15.5.9 has it: 408, then close.
        message = f"Request head did not arrive within {self.head_timeout:g} s"
        body = encoder.encode(Error(408, message))
        lines = [STATUS_LINE[408]]
        for name, value in self.server_state.default_headers:
            lines.append(name + b": " + value + b"\r\n")
        lines += [
            b"content-type: application/json\r\n",
            b"content-length: %d\r\n" % len(body),
            b"connection: close\r\n\r\n",
            body,
        ]
        return b"".join(lines)
