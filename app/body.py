"""Request bodies: size limit, gzip, content type, and decoding into a payload Struct."""

import asyncio
import re
import zlib
from typing import TypeVar

import msgspec
from starlette.requests import Request

from app import ids
from app.context import services
from app.errors import ApiError, Invalid
from app.payloads import IdList

MAX_BODY_BYTES = 4 * 1024 * 1024  # before and after inflating (contract, "Errors and limits")
# Trace, span, score and dataset-item batches: the SDK sends up to ~50 MB (contract, "Datasets,
# traces, spans, feedback scores").
LARGE_BODY_BYTES = 64 * 1024 * 1024
_INFLATE_CHUNK_BYTES = 64 * 1024

T = TypeVar("T")


def _too_large(limit: int) -> ApiError:
    return ApiError(413, f"Request body is larger than {limit} bytes")


_AT = re.compile(r"^(?P<rule>.*?)(?: - at `\$\.?(?P<path>[^`]*)`)?$", re.DOTALL)
_MISSING = re.compile(r"^Object missing required field `(?P<field>[^`]*)`$")


def _check_content_type(request: Request) -> None:
    # Jersey answers 415 to a body it has no reader for; JSON with any parameters is fine.
    content_type = request.headers.get("content-type")
    if content_type is None:
        return
    media_type = content_type.split(";", 1)[0].strip().lower()
    if media_type != "application/json" and not media_type.endswith("+json"):
        raise ApiError(415, "HTTP 415 Unsupported Media Type")


async def _read_raw(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise _too_large(limit)
    chunks = []
    size = 0
    # Only the wait for the body counts, not what is done with it afterwards. The server's
    # protocol (app/protocol.py) closes the connection after this answer.
    seconds = services(request).body_timeout_seconds
    try:
        async with asyncio.timeout(seconds):
            async for chunk in request.stream():
                size += len(chunk)
                if size > limit:
                    raise _too_large(limit)
                chunks.append(chunk)
    except TimeoutError:
        raise ApiError(408, f"Request body did not arrive within {seconds:g} s") from None
    return b"".join(chunks)


def _inflate(data: bytes, limit: int) -> bytes:
    """gunzip with the size limit applied as it inflates, so a gzip bomb costs at most
    `limit` bytes of memory."""
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
    out = []
    size = 0
    try:
        while data:
            piece = inflater.decompress(data, _INFLATE_CHUNK_BYTES)
            size += len(piece)
            if size > limit:
                raise _too_large(limit)
            out.append(piece)
            data = inflater.unconsumed_tail
    except zlib.error as exc:
        raise ApiError(400, f"Unable to process JSON. Invalid gzip body: {exc}") from None
    if not inflater.eof:
        raise ApiError(400, "Unable to process JSON. Invalid gzip body: truncated")
    return b"".join(out)


async def read_body(request: Request, limit: int = MAX_BODY_BYTES) -> bytes:
    """The request's body, inflated if it came gzipped, at most `limit` bytes either way."""
    _check_content_type(request)
    data = await _read_raw(request, limit)
    encoding = request.headers.get("content-encoding", "").strip().lower()
    if encoding in ("gzip", "x-gzip"):
        return _inflate(data, limit)
    if encoding not in ("", "identity"):
        raise ApiError(415, f"Unsupported Content-Encoding '{encoding}'")
    return data


def require_v7(
    value: str, field: str, resource: str = "Experiment Item", path: str | None = None
) -> bytes:
    """The key of a client-given id, which Opik requires to be a UUID version 7: else 400,
    naming the field (or its JSON `path` inside a list)."""
    key = ids.parse(value)
    if key is None or not ids.is_v7(key):
        raise ApiError(
            400, f"Invalid UUID for {path or field}", f"{resource} {field} must be a version 7 UUID"
        )
    return key


def require_text(value: str, path: str) -> str:
    """A name that must say something: else 422, as Opik's @NotBlank."""
    if not value.strip():
        raise Invalid([f"{path} must not be blank"])
    return value


def require_uuid(value: str, path: str) -> bytes:
    """The key of an id that only has to be a UUID: else 422 naming its JSON path."""
    key = ids.parse(value)
    if key is None:
        raise Invalid([f"{path} must be a UUID"])
    return key


async def decode_ids(request: Request) -> list[bytes]:
    """The keys of a delete body, `{"ids": [...]}`: 422 naming the first that is no UUID."""
    body = await decode(request, IdList)
    return [require_uuid(value, f"ids[{n}]") for n, value in enumerate(body.ids)]


def violation(message: str) -> str:
    """msgspec's validation message as '<json path> <rule>', the shape of Opik's 422s."""
    match = _AT.match(message)
    assert match is not None  # the pattern matches any text
    rule, path = match["rule"], match["path"] or ""
    missing = _MISSING.match(rule)
    if missing:
        path = f"{path}.{missing['field']}" if path else missing["field"]
        rule = "must not be null"
    elif rule.endswith("got `null`"):
        rule = "must not be null"
    else:
        rule = rule[:1].lower() + rule[1:]
    return f"{path or 'body'} {rule}"


# The SDK serializes with Python's json.dumps(allow_nan=True), so a metric's NaN or Infinity can
# arrive as a bare token, which no JSON parser takes. Outside strings such a token becomes null
# (contract, "Datasets, traces, ..."): free-form JSON keeps the rest, and a score's value is
# then a 422 that names it. Strings are matched whole first, so text inside them stays as sent.
_NON_FINITE = re.compile(rb'("(?:[^"\\]|\\.)*")|-?(?:NaN|Infinity)(?![A-Za-z0-9_])')


def _null_for_non_finite(match: re.Match[bytes]) -> bytes:
    return match.group(1) or b"null"


def non_finite_as_null(data: bytes) -> bytes:
    if b"NaN" not in data and b"Infinity" not in data:
        return data
    return _NON_FINITE.sub(_null_for_non_finite, data)


async def decode(request: Request, kind: type[T], limit: int = MAX_BODY_BYTES) -> T:
    """The body as a `kind` Struct: 400 when it is not JSON, 422 when it breaks a rule, 413
    when it is over `limit` bytes, before or after inflating."""
    data = await read_body(request, limit)
    try:
        return msgspec.json.decode(data, type=kind)
    except (msgspec.ValidationError, *_MALFORMED):
        # A bare NaN or Infinity fails the parse, so the body is scanned for one only then:
        # a scan costs a millisecond per megabyte, which most bodies need not pay.
        data = non_finite_as_null(data)
    try:
        return msgspec.json.decode(data, type=kind)
    except msgspec.ValidationError as exc:
        # msgspec checks rules while it parses, so a body that is malformed further on can
        # fail a rule first; malformed JSON is a 400 wherever the fault is.
        _check_well_formed(data)
        raise Invalid([violation(str(exc))]) from None
    except _MALFORMED as exc:
        raise ApiError(400, f"Unable to process JSON. {_why(exc)}") from None


def decode_query(request: Request, kind: type[T]) -> T:
    """The query string as a `kind` Struct, each parameter by its field's name and converted
    to its type ("10" to 10): 422 naming the parameter that breaks a rule. A parameter given
    twice counts with its last value; parameters the Struct does not name are ignored."""
    try:
        return msgspec.convert(dict(request.query_params), kind, strict=False)
    except msgspec.ValidationError as exc:
        raise Invalid([violation(str(exc)).lstrip("$.")]) from None


# Invalid UTF-8 inside a string surfaces as UnicodeDecodeError, and nesting deeper than the
# interpreter's recursion limit as RecursionError (Jackson refuses such nesting with a 400 too).
_MALFORMED = (msgspec.DecodeError, UnicodeDecodeError, RecursionError)


def _why(exc: Exception) -> str:
    if isinstance(exc, UnicodeDecodeError):
        return "Invalid UTF-8"
    if isinstance(exc, RecursionError):
        return "JSON is nested too deeply"
    return str(exc)


def _check_well_formed(data: bytes) -> None:
    try:
        msgspec.json.decode(data)
    except _MALFORMED as exc:
        raise ApiError(400, f"Unable to process JSON. {_why(exc)}") from None
