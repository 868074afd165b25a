"""Datasets and their items: what `get_or_create_dataset`, `dataset.insert`/`get_items`/`delete`
and the evaluation loop call (opik-reference/datasets-traces.md §3.3-3.5)."""

import msgspec
from starlette.requests import Request
from starlette.responses import Response

from app import dataset_checks, ids
from app.body import LARGE_BODY_BYTES, decode, decode_query, require_uuid
from app.context import acting, created, path_id
from app.dataset_payloads import (
    ComparePage,
    CompareQuery,
    DatasetIdentifier,
    DatasetItemBatch,
    DatasetItemPage,
    DatasetItemsDelete,
    DatasetItemsQuery,
    DatasetItemStreamRequest,
    DatasetWrite,
)
from app.errors import JSON, ApiError, Invalid, Listed
from app.item_filters import parse_item_filters
from app.items import NDJSON_LINE_END
from app.payloads import encoder
from app.records import NotFound, json_text

NOT_FOUND = "Dataset not found"
# The answer of an Opik deployment with dataset versioning off (contract, "Datasets, ...").
VERSIONING_OFF = "Dataset versioning feature is not enabled"
MAX_COMPARED = 1000
_ids = msgspec.json.Decoder(list[str])


async def create_dataset(request: Request) -> Response:
    identity, store = acting(request)
    record = dataset_checks.dataset_record(await decode(request, DatasetWrite))
    await store.create_dataset(identity.workspace, identity.user, record)
    return created(request, ids.to_str(record.id))


async def retrieve_dataset(request: Request) -> Response:
    identity, store = acting(request)
    wanted = await decode(request, DatasetIdentifier)
    dataset = await store.find_dataset(identity.workspace, wanted.dataset_name)
    if dataset is None:
        raise Listed(404, NOT_FOUND)
    return Response(encoder.encode(dataset), media_type=JSON)


async def get_dataset(request: Request) -> Response:
    identity, store = acting(request)
    dataset = await store.get_dataset(identity.workspace, path_id(request))
    if dataset is None:
        raise Listed(404, NOT_FOUND)
    return Response(encoder.encode(dataset), media_type=JSON)


async def delete_dataset_by_name(request: Request) -> Response:
    identity, store = acting(request)
    wanted = await decode(request, DatasetIdentifier)
    dataset = await store.find_dataset(identity.workspace, wanted.dataset_name)
    if dataset is None:
        raise Listed(404, NOT_FOUND)
    key = ids.parse(dataset.id)
    assert key is not None
    await store.delete_dataset(identity.workspace, key)
    return Response(status_code=204)


async def delete_dataset(request: Request) -> Response:
    identity, store = acting(request)
    await store.delete_dataset(identity.workspace, path_id(request))
    return Response(status_code=204)


async def list_dataset_versions(request: Request) -> Response:
    acting(request)  # 401 and 403 come first, as for every route
    path_id(request)
    raise ApiError(403, VERSIONING_OFF)


async def upsert_dataset_items(request: Request) -> Response:
    identity, store = acting(request)
    batch = await decode(request, DatasetItemBatch, LARGE_BODY_BYTES)
    record = dataset_checks.dataset_items_record(batch)
    try:
        await store.upsert_dataset_items(identity.workspace, identity.user, record)
    except NotFound:
        raise Listed(404, NOT_FOUND) from None
    return Response(status_code=204)


async def stream_dataset_items(request: Request) -> Response:
    identity, store = acting(request)
    wanted = await decode(request, DatasetItemStreamRequest)
    before = wanted.last_retrieved_id
    key = None if before is None else require_uuid(before, "last_retrieved_id")
    filters = parse_item_filters(wanted.filters)
    items = await store.stream_dataset_items(
        identity.workspace, wanted.dataset_name, key, wanted.steam_limit, filters
    )
    body = b"".join(encoder.encode(item) + NDJSON_LINE_END for item in items)
    return Response(body, media_type="application/octet-stream")


async def get_dataset_items(request: Request) -> Response:
    identity, store = acting(request)
    dataset_id = path_id(request)
    query = decode_query(request, DatasetItemsQuery)
    filters = parse_item_filters(query.filters)
    items, total = await store.page_dataset_items(
        identity.workspace, dataset_id, query.page, query.size, query.truncate, filters
    )
    page = DatasetItemPage(items, query.page, len(items), total, columns=[], sortable_by=[])
    return Response(encoder.encode(page), media_type=JSON)


async def delete_dataset_items(request: Request) -> Response:
    identity, store = acting(request)
    wanted = await decode(request, DatasetItemsDelete)
    filters = json_text(wanted.filters)
    if wanted.item_ids is not None and (wanted.dataset_id is not None or filters is not None):
        raise Invalid(
            [
                "Cannot provide 'dataset_id' or 'filters' when using 'item_ids'. Use 'item_ids' "
                "alone to delete specific items."
            ]
        )
    if wanted.item_ids is None and wanted.dataset_id is None:
        raise Invalid(
            [
                "Either 'item_ids' (to delete specific items) or 'dataset_id' (to delete by "
                "filters) must be provided."
            ]
        )
    by_filters = parse_item_filters(filters) if wanted.dataset_id is not None else ()
    if wanted.batch_group_id is not None:  # ignored (versioning is off), but a UUID
        require_uuid(wanted.batch_group_id, "batch_group_id")
    keys = [require_uuid(v, f"item_ids[{n}]") for n, v in enumerate(wanted.item_ids or ())]
    dataset_id = (
        None if wanted.dataset_id is None else require_uuid(wanted.dataset_id, "dataset_id")
    )
    await store.delete_dataset_items(identity.workspace, keys, dataset_id, by_filters)
    return Response(status_code=204)


async def compare_dataset_items(request: Request) -> Response:
    identity, store = acting(request)
    dataset_id = path_id(request)
    query = decode_query(request, CompareQuery)
    try:
        raw = _ids.decode(query.experiment_ids)
        experiments = [k for k in map(ids.parse, raw) if k is not None]
        if len(experiments) != len(raw):
            raise ValueError
    except (msgspec.DecodeError, ValueError):
        raise ApiError(400, f"Invalid query param ids '{query.experiment_ids}'") from None
    if not experiments:
        raise ApiError(400, "experiment_ids cannot be empty")
    if len(experiments) > MAX_COMPARED:
        raise ApiError(400, f"experiment_ids can name at most {MAX_COMPARED} experiments")
    rows, total = await store.compare_dataset_items(
        identity.workspace, dataset_id, experiments, query.page, query.size, query.truncate
    )
    page = ComparePage(rows, query.page, len(rows), total, columns=[], sortable_by=[])
    return Response(encoder.encode(page), media_type=JSON)
