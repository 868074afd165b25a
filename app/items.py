"""Experiment items: read one, write a batch, delete, stream, and record a run in bulk."""

from collections.abc import AsyncIterator

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.types import Receive, Scope, Send

from app import checks, ids
from app.auth import identify
from app.body import decode, decode_ids
from app.context import Services, acting
from app.errors import JSON, http_message
from app.payloads import BulkUpload, Error, FullItem, ItemBatch, StreamRequest, encoder

NDJSON_LINE_END = b"\r\n"  # what Opik's stream writes after each line


class ReadItem:
    """GET an item by id, the hot path: a bare ASGI endpoint. Starlette still routes it, and
    its error handlers still answer what it raises (401, 403); what it skips is a Request, a
    Response and a second exception wrapper per request, and raising for the common 404.
    Starlette takes an endpoint that is an object, not a function, as an ASGI app."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        services: Services = scope["app"].state.services
        identity = identify(scope, services.api_keys)
        text = scope["path_params"]["id"]
        key = ids.parse(text)
        if key is None:  # Jersey cannot convert the path parameter: a bare 404
            await _send_json(send, 404, _BARE_404)
            return
        item = await services.store.get_item(identity.workspace, key)
        if item is None:
            # A UUID's text, lowercased, is its canonical form, and needs no JSON escaping.
            await _send_json(send, 404, _MISSING % text.lower().encode())
            return
        await _send_json(send, 200, encoder.encode(item))


get_item = ReadItem()
_BARE_404 = encoder.encode(Error(404, http_message(404)))
# The miss's body, as encoder.encode(Error(404, message)) makes it, with the id's place kept.
_MISSING = encoder.encode(Error(404, "Not found experiment item with id '%s'"))
_JSON_TYPE = (b"content-type", JSON.encode())


async def _send_json(send: Send, status: int, body: bytes) -> None:
    # The headers Starlette's Response(body, media_type=JSON) sends, in its order.
    headers = [(b"content-length", b"%d" % len(body)), _JSON_TYPE]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def create_items(request: Request) -> Response:
    identity, store = acting(request)
    batch = await decode(request, ItemBatch)
    records = checks.item_records(batch.experiment_items)
    await store.upsert_items(identity.workspace, identity.user, records)
    return Response(status_code=204)


async def delete_items(request: Request) -> Response:
    identity, store = acting(request)
    keys = await decode_ids(request)
    await store.delete_items(identity.workspace, keys)
    return Response(status_code=204)


async def stream_items(request: Request) -> Response:
    identity, store = acting(request)
    query = checks.stream_query(await decode(request, StreamRequest))
    chunks = store.stream_items(identity.workspace, query)
    return StreamingResponse(_lines(chunks), media_type="application/octet-stream")


async def _lines(chunks: AsyncIterator[list[FullItem]]) -> AsyncIterator[bytes]:
    # One write per chunk of items rather than per line. Starlette cancels this generator
    # when the client disconnects, which stops the reading between chunks.
    async for chunk in chunks:
        yield b"".join(encoder.encode(item) + NDJSON_LINE_END for item in chunk)


async def record_bulk(request: Request) -> Response:
    identity, store = acting(request)
    record = checks.bulk_record(await decode(request, BulkUpload))
    await store.record_bulk(identity.workspace, identity.user, record)
    return Response(status_code=204)
