"""Experiment items: read one by id, create or update a batch, delete by ids."""

from starlette.requests import Request
from starlette.responses import Response

from app import ids
from app.auth import identify
from app.body import decode
from app.errors import JSON, ApiError, Invalid, http_message
from app.payloads import IdList, ItemBatch, ItemWrite, encoder
from app.store import ItemRecord, Store

_ID_FIELDS = ("id", "experiment_id", "dataset_item_id", "trace_id")


def _v7(value: str, field: str) -> bytes:
    key = ids.parse(value)
    if key is None or not ids.is_v7(key):
        raise ApiError(
            400,
            f"Invalid UUID for {field}",
            f"Experiment Item {field} must be a version 7 UUID",
        )
    return key


def _record(item: ItemWrite) -> ItemRecord:
    project_id = None
    if item.project_id is not None:
        project_id = ids.parse(item.project_id)
        if project_id is None:
            raise ApiError(400, "Invalid UUID for project_id", "project_id must be a UUID")
    return ItemRecord(
        id=ids.uuid7() if item.id is None else _v7(item.id, "id"),
        experiment_id=_v7(item.experiment_id, "experiment_id"),
        dataset_item_id=_v7(item.dataset_item_id, "dataset_item_id"),
        trace_id=_v7(item.trace_id, "trace_id"),
        project_name=item.project_name.strip() or None if item.project_name else None,
        project_id=project_id,
    )


async def get_item(request: Request) -> Response:
    state = request.app.state
    identity = identify(request, state.api_keys)
    key = ids.parse(request.path_params["id"])
    if key is None:  # Jersey cannot convert the path parameter: a bare 404
        raise ApiError(404, http_message(404))
    store: Store = state.store
    item = await store.get_item(identity.workspace, key)
    if item is None:
        raise ApiError(404, f"Not found experiment item with id '{ids.to_str(key)}'")
    return Response(encoder.encode(item), media_type=JSON)


async def create_items(request: Request) -> Response:
    state = request.app.state
    identity = identify(request, state.api_keys)
    batch = await decode(request, ItemBatch)
    records = [_record(item) for item in batch.experiment_items]
    if len({r.id for r in records}) != len(records):
        raise Invalid(["experiment_items ids must be unique within the batch"])
    store: Store = state.store
    await store.upsert_items(identity.workspace, identity.user, records)
    return Response(status_code=204)


async def delete_items(request: Request) -> Response:
    state = request.app.state
    identity = identify(request, state.api_keys)
    body = await decode(request, IdList)
    keys = []
    for position, value in enumerate(body.ids):
        key = ids.parse(value)
        if key is None:
            raise Invalid([f"ids[{position}] must be a UUID"])
        keys.append(key)
    store: Store = state.store
    await store.delete_items(identity.workspace, keys)
    return Response(status_code=204)
