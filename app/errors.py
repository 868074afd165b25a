"""The one error body, and the handlers that turn every failure into it."""

import logging
from collections.abc import Awaitable, Callable, Mapping

from msgspec import UNSET, UnsetType
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response

from app import ids
from app.logs import REQUEST_ID_HEADER
from app.logs import request_id as request_id_of
from app.payloads import Error, ValidationErrors, encoder
from app.records import Conflict

log = logging.getLogger("experiment_items")

JSON = "application/json"


class ApiError(Exception):
    """A client error with the contract's body: raised anywhere, answered by the handler."""

    def __init__(self, status: int, message: str, details: str | UnsetType = UNSET) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.details = details


class Listed(ApiError):
    """A client error that Opik answers in its ErrorMessage shape, {"errors": [message]}."""


class Invalid(Exception):
    """A body that breaks the payload's rules: 422 with one line per broken rule."""

    def __init__(self, errors: list[str]) -> None:
        super().__init__("; ".join(errors))
        self.errors = errors


def error_response(
    status: int,
    message: str,
    details: str | UnsetType = UNSET,
    headers: Mapping[str, str] | None = None,
) -> Response:
    body = encoder.encode(Error(status, message, details))
    return Response(body, status, headers=headers, media_type=JSON)


# Jersey's wording for bare statuses, which the Opik backend answers with.
_REASONS = {404: "Not Found", 405: "Method Not Allowed", 415: "Unsupported Media Type"}


def http_message(status: int) -> str:
    return f"HTTP {status} {_REASONS.get(status, 'Error')}"


async def on_api_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    if isinstance(exc, Listed):
        body = encoder.encode(ValidationErrors([exc.message]))
        return Response(body, exc.status, media_type=JSON)
    return error_response(exc.status, exc.message, exc.details)


async def on_invalid(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, Invalid)
    return Response(encoder.encode(ValidationErrors(exc.errors)), 422, media_type=JSON)


async def on_conflict(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, Conflict)
    if exc.listed:
        return Response(encoder.encode(ValidationErrors([str(exc)])), 409, media_type=JSON)
    return error_response(409, str(exc))


async def on_http_exception(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    return error_response(exc.status_code, http_message(exc.status_code), headers=exc.headers)


# Set on an exception whose traceback on_unexpected has logged. Starlette's error middleware
# raises it again after the 500 is answered, for the server to see; app/protocol.py then
# closes the connection without logging the same traceback a second time.
LOGGED = "_experiment_items_logged"


def was_logged(exc: BaseException) -> bool:
    return getattr(exc, LOGGED, False) is True


async def on_unexpected(request: Request, exc: Exception) -> Response:
    # The traceback goes to the log under the id of the request's access line, which the
    # client is given too; never to the client.
    request_id = request_id_of(request.scope) or ids.to_str(ids.uuid7())
    log.error(
        "request %s failed: %s %s", request_id, request.method, request.url.path, exc_info=exc
    )
    setattr(exc, LOGGED, True)  # every exception has a __dict__, BaseException's
    # The server closes the connection after this answer (the error is raised again past
    # it); `connection: close` says so, so a client does not send its next request there
    # (RFC 9112 section 9.6).
    return error_response(
        500,
        f"Unexpected server error (request id {request_id})",
        headers={REQUEST_ID_HEADER: request_id, "Connection": "close"},
    )


# A storage failure a client or an operator can act on, as the engine describes it: status,
# message, headers (app/store.py, storage_failure); None for any other, a 500.
Described = tuple[int, str, dict[str, str]] | None


def storage_handler(
    describe: Callable[[Exception], Described],
) -> Callable[[Request, Exception], Awaitable[Response]]:
    """The handler of the storage engine's errors: each it can describe, answered in one line
    of log and no traceback (a full disk should not fill with logs); the rest as on_unexpected.
    Nothing of the failed request was stored: each write is one transaction."""

    async def on_storage_error(request: Request, exc: Exception) -> Response:
        known = describe(exc)
        if known is None:
            return await on_unexpected(request, exc)
        status, message, headers = known
        request_id = request_id_of(request.scope) or ids.to_str(ids.uuid7())
        log.error(
            "request %s refused: %s %s: %s", request_id, request.method, request.url.path, exc
        )
        return error_response(status, message, headers={REQUEST_ID_HEADER: request_id, **headers})

    return on_storage_error


async def on_client_disconnect(request: Request, exc: Exception) -> Response:
    # The client left before its body arrived: nobody reads this answer, and it is no server
    # fault to log with a traceback (the access line records it as 499).
    return Response(status_code=499)


HANDLERS = {
    ApiError: on_api_error,
    Invalid: on_invalid,
    Conflict: on_conflict,
    HTTPException: on_http_exception,
    ClientDisconnect: on_client_disconnect,
    Exception: on_unexpected,
}
