"""Experiments: create one, read one, delete some with their items."""

from starlette.requests import Request
from starlette.responses import Response

from app import checks, ids
from app.body import decode, decode_ids
from app.context import acting
from app.errors import JSON, ApiError, http_message
from app.payloads import ExperimentWrite, encoder


async def create_experiment(request: Request) -> Response:
    identity, store = acting(request)
    record = checks.experiment_record(await decode(request, ExperimentWrite))
    await store.create_experiment(identity.workspace, identity.user, record)
    location = f"{str(request.url).split('?', 1)[0].rstrip('/')}/{ids.to_str(record.id)}"
    return Response(status_code=201, headers={"Location": location})


async def get_experiment(request: Request) -> Response:
    identity, store = acting(request)
    key = ids.parse(request.path_params["id"])
    if key is None:
        raise ApiError(404, http_message(404))
    experiment = await store.get_experiment(identity.workspace, key)
    if experiment is None:
        raise ApiError(404, f"Not found experiment with id '{ids.to_str(key)}'")
    return Response(encoder.encode(experiment), media_type=JSON)


async def delete_experiments(request: Request) -> Response:
    identity, store = acting(request)
    keys = await decode_ids(request)
    await store.delete_experiments(identity.workspace, keys)
    return Response(status_code=204)
