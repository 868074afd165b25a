"""Experiments: create, read, find, stream, update, finish and delete them (with their
items)."""

from collections.abc import AsyncIterator

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from app import checks, experiment_checks, ids
from app.body import decode, decode_ids, decode_query, require_uuid
from app.context import acting, created, path_id
from app.errors import JSON, ApiError, Invalid, error_response
from app.experiment_payloads import (
    SORTABLE_BY,
    Experiment,
    ExperimentBatchUpdate,
    ExperimentPage,
    ExperimentStreamRequest,
    ExperimentUpdate,
    FindQuery,
    ScoreNames,
    ScoreNamesQuery,
)
from app.items import NDJSON_LINE_END
from app.payloads import ExperimentWrite, encoder
from app.records import ExperimentChange, TooManyTags
from app.store import Store

_LINES_PER_WRITE = 100

# CONTRACT.md, "Experiments resource".
EXECUTE_MESSAGE = (
    "Running experiments on the server needs an LLM provider; record them with the SDK's "
    "evaluate() instead"
)


async def create_experiment(request: Request) -> Response:
    identity, store = acting(request)
    record = checks.experiment_record(await decode(request, ExperimentWrite))
    await store.create_experiment(identity.workspace, identity.user, record)
    return created(request, ids.to_str(record.id))


async def get_experiment(request: Request) -> Response:
    identity, store = acting(request)
    key = path_id(request)
    experiment = await store.get_experiment(identity.workspace, key)
    if experiment is None:
        raise ApiError(404, f"Not found experiment with id '{ids.to_str(key)}'")
    return Response(encoder.encode(experiment), media_type=JSON)


async def find_experiments(request: Request) -> Response:
    identity, store = acting(request)
    query = decode_query(request, FindQuery)
    found, total = await store.find_experiments(
        identity.workspace, experiment_checks.find_query(query), count=True
    )
    page = ExperimentPage(query.page, len(found), total, found, SORTABLE_BY)
    return Response(encoder.encode(page), media_type=JSON)


async def stream_experiments(request: Request) -> Response:
    identity, store = acting(request)
    query = experiment_checks.experiment_stream_query(
        await decode(request, ExperimentStreamRequest)
    )
    found, _ = await store.find_experiments(identity.workspace, query)
    return StreamingResponse(_lines(found), media_type="application/octet-stream")


async def _lines(found: list[Experiment]) -> AsyncIterator[bytes]:
    for start in range(0, len(found), _LINES_PER_WRITE):
        chunk = found[start : start + _LINES_PER_WRITE]
        yield b"".join(encoder.encode(e) + NDJSON_LINE_END for e in chunk)


async def _update(
    store: Store, request: Request, keys: list[bytes], change: ExperimentChange
) -> int:
    identity, _ = acting(request)
    try:
        return await store.update_experiments(identity.workspace, identity.user, keys, change)
    except TooManyTags as exc:
        raise Invalid([str(exc)]) from None


async def update_experiment(request: Request) -> Response:
    _, store = acting(request)
    key = path_id(request)
    change = experiment_checks.experiment_change(await decode(request, ExperimentUpdate))
    if not await _update(store, request, [key], change):
        raise ApiError(404, f"Experiment not found: '{ids.to_str(key)}'")
    return Response(status_code=204)


async def update_experiments(request: Request) -> Response:
    _, store = acting(request)
    batch = await decode(request, ExperimentBatchUpdate)
    keys = [require_uuid(value, f"ids[{n}]") for n, value in enumerate(batch.ids)]
    change = experiment_checks.experiment_change(batch.update, merge_tags=batch.merge_tags is True)
    await _update(store, request, list(dict.fromkeys(keys)), change)
    return Response(status_code=204)


async def finish_experiments(request: Request) -> Response:
    identity, store = acting(request)
    keys = await decode_ids(request)
    await store.finish_experiments(identity.workspace, identity.user, keys)
    return Response(status_code=204)


async def execute_experiment(request: Request) -> Response:
    acting(request)
    return error_response(501, EXECUTE_MESSAGE)


async def find_score_names(request: Request) -> Response:
    identity, store = acting(request)
    query = decode_query(request, ScoreNamesQuery)
    keys = experiment_checks.experiment_ids(query.experiment_ids, blank_is_none=False)
    project = None if query.project_id is None else require_uuid(query.project_id, "project_id")
    names = await store.score_names(identity.workspace, keys, project)
    return Response(encoder.encode(ScoreNames(names)), media_type=JSON)


async def delete_experiments(request: Request) -> Response:
    identity, store = acting(request)
    keys = await decode_ids(request)
    await store.delete_experiments(identity.workspace, keys)
    return Response(status_code=204)
