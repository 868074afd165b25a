"""Experiment items: read one, write a batch, delete, stream, and record a run in bulk."""

from collections.abc import AsyncIterator
from typing import cast

from msgspec import UNSET
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.types import Receive, Scope, Send

from app import clock, ids
from app.auth import identify
from app.body import decode, decode_ids, require_text, require_uuid, require_v7
from app.errors import JSON, ApiError, Invalid, http_message
from app.payloads import (
    DEFAULT_STREAM_LIMIT,
    BulkUpload,
    Error,
    FullItem,
    ItemBatch,
    ItemWrite,
    SpanWrite,
    StreamRequest,
    TraceWrite,
    encoder,
)
from app.store import ItemRecord, Store

NDJSON_LINE_END = b"\r\n"  # what Opik's stream writes after each line


def _record(item: ItemWrite) -> ItemRecord:
    project_name, project_id = _project(item)
    return ItemRecord(
        id=ids.uuid7() if item.id is None else require_v7(item.id, "id"),
        experiment_id=require_v7(item.experiment_id, "experiment_id"),
        dataset_item_id=require_v7(item.dataset_item_id, "dataset_item_id"),
        trace_id=require_v7(item.trace_id, "trace_id"),
        project_name=project_name,
        project_id=project_id,
    )


def _records(items: list[ItemWrite]) -> list[ItemRecord]:
    """A batch's items, validated, as records. Its ids are checked and converted a column at a
    time (ids.parse_v7_column), several times faster than one by one; when a column fails,
    or ids are to be made, the items go one by one, which finds and names the bad id."""
    columns = _id_columns(items)
    if columns is None:
        return [_record(item) for item in items]
    projects = [_project(item) for item in items]
    return [
        ItemRecord(item_id, experiment_id, dataset_item_id, trace_id, name, project_id)
        for item_id, experiment_id, dataset_item_id, trace_id, (name, project_id) in zip(
            *columns, projects, strict=True
        )
    ]


def _id_columns(items: list[ItemWrite]) -> list[list[bytes]] | None:
    """The keys of the items' ids, dataset item, trace and experiment ids, column by column;
    None when an id is missing or any is not a version 7 UUID."""
    given = [i.id for i in items]
    if None in given:
        return None
    columns = []
    for texts in (
        cast(list[str], given),
        [i.experiment_id for i in items],
        [i.dataset_item_id for i in items],
        [i.trace_id for i in items],
    ):
        keys = ids.parse_v7_column(texts)
        if keys is None:
            return None
        columns.append(keys)
    return columns


def _project(item: ItemWrite) -> tuple[str | None, bytes | None]:
    """The item's project name (None when blank), and its project id as a key."""
    project_id = None
    if item.project_id is not None:
        project_id = ids.parse(item.project_id)
        if project_id is None:
            raise ApiError(400, "Invalid UUID for project_id", "project_id must be a UUID")
    return item.project_name.strip() or None if item.project_name else None, project_id


class ReadItem:
    """GET an item by id, the hot path: a bare ASGI endpoint. Starlette still routes it, and
    its error handlers still answer what it raises (401, 403); what it skips is a Request, a
    Response and a second exception wrapper per request, and raising for the common 404.
    Starlette takes an endpoint that is an object, not a function, as an ASGI app."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        state = scope["app"].state
        identity = identify(scope, state.api_keys)
        text = scope["path_params"]["id"]
        key = ids.parse(text)
        if key is None:  # Jersey cannot convert the path parameter: a bare 404
            await _send_json(send, 404, _BARE_404)
            return
        store: Store = state.store
        item = await store.get_item(identity.workspace, key)
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
    state = request.app.state
    identity = identify(request, state.api_keys)
    batch = await decode(request, ItemBatch)
    records = _records(batch.experiment_items)
    if len({r.id for r in records}) != len(records):
        raise Invalid(["experiment_items ids must be unique within the batch"])
    store: Store = state.store
    await store.upsert_items(identity.workspace, identity.user, records)
    return Response(status_code=204)


async def delete_items(request: Request) -> Response:
    state = request.app.state
    identity = identify(request, state.api_keys)
    keys = await decode_ids(request)
    store: Store = state.store
    await store.delete_items(identity.workspace, keys)
    return Response(status_code=204)


async def stream_items(request: Request) -> Response:
    state = request.app.state
    identity = identify(request, state.api_keys)
    query = await decode(request, StreamRequest)
    require_text(query.experiment_name, "experiment_name")
    before = None
    if query.last_retrieved_id is not None:
        before = require_uuid(query.last_retrieved_id, "last_retrieved_id")
    store: Store = state.store
    chunks = store.stream_items(
        identity.workspace,
        query.experiment_name,
        DEFAULT_STREAM_LIMIT if query.limit is None else query.limit,
        before,
        query.project_name,
        query.truncate is not False,
    )
    return StreamingResponse(_lines(chunks), media_type="application/octet-stream")


async def _lines(chunks: AsyncIterator[list[FullItem]]) -> AsyncIterator[bytes]:
    # One write per chunk of items rather than per line. Starlette cancels this generator
    # when the client disconnects, which stops the reading between chunks.
    async for chunk in chunks:
        yield b"".join(encoder.encode(item) + NDJSON_LINE_END for item in chunk)


def _check_times(record: TraceWrite | SpanWrite, at: str) -> None:
    for field in ("start_time", "end_time"):
        value = getattr(record, field)
        if value is not None and not clock.storable(value):
            raise Invalid([f"{at}.{field} must be between the years 1677 and 2262"])


def _check_bulk(upload: BulkUpload) -> None:
    """What msgspec's types cannot say about a bulk upload: 400 for ids, 422 for the rest."""
    require_text(upload.experiment_name, "experiment_name")
    require_text(upload.dataset_name, "dataset_name")
    if upload.experiment_id is not None:
        require_v7(upload.experiment_id, "experiment_id", "Experiment")
    for n, record in enumerate(upload.items):
        at = f"items[{n}]"
        require_v7(record.dataset_item_id, "dataset_item_id", path=f"{at}.dataset_item_id")
        if record.trace is not UNSET and record.evaluate_task_result is not UNSET:
            raise Invalid([f"{at} must have either trace or evaluate_task_result, not both"])
        trace = record.trace
        if isinstance(trace, TraceWrite):
            if trace.id is not None:
                require_v7(trace.id, "id", "Trace", f"{at}.trace.id")
            _check_times(trace, f"{at}.trace")
        for m, span in enumerate(record.spans or ()):
            _check_times(span, f"{at}.spans[{m}]")
            if span.id is not None:
                require_v7(span.id, "id", "Span", f"{at}.spans[{m}].id")
            if span.parent_span_id is not None:
                path = f"{at}.spans[{m}].parent_span_id"
                require_v7(span.parent_span_id, "parent_span_id", "Span", path)


async def record_bulk(request: Request) -> Response:
    state = request.app.state
    identity = identify(request, state.api_keys)
    upload = await decode(request, BulkUpload)
    _check_bulk(upload)
    store: Store = state.store
    await store.record_bulk(identity.workspace, identity.user, upload)
    return Response(status_code=204)
