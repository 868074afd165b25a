"""Experiments: create one, read one, delete some with their items."""

import secrets

from starlette.requests import Request
from starlette.responses import Response

from app import ids
from app.auth import identify
from app.body import decode, decode_ids, require_text, require_uuid, require_v7
from app.errors import JSON, ApiError, http_message
from app.payloads import ExperimentWrite, encoder
from app.store import Store

# Opik names an unnamed experiment itself; so do we, in the same spirit.
_ADJECTIVES = ("brave", "calm", "eager", "gentle", "keen", "lively", "quiet", "swift", "wise")
_NOUNS = ("otter", "falcon", "maple", "harbor", "comet", "meadow", "river", "summit", "lynx")


def _generated_name() -> str:
    adjective, noun = secrets.choice(_ADJECTIVES), secrets.choice(_NOUNS)
    return f"{adjective}-{noun}-{secrets.randbelow(10_000)}"


def _check(write: ExperimentWrite) -> bytes:
    """The experiment's key, after what msgspec's types cannot check."""
    require_text(write.dataset_name, "dataset_name")
    for field in ("project_id", "optimization_id", "dataset_version_id"):
        value = getattr(write, field)
        if value is not None:
            require_uuid(value, field)
    for n, link in enumerate(write.prompt_versions or ()):
        require_uuid(link.id, f"prompt_versions[{n}].id")
    if write.prompt_version is not None:
        require_uuid(write.prompt_version.id, "prompt_version.id")
    return ids.uuid7() if write.id is None else require_v7(write.id, "id", "Experiment")


async def create_experiment(request: Request) -> Response:
    state = request.app.state
    identity = identify(request, state.api_keys)
    write = await decode(request, ExperimentWrite)
    key = _check(write)
    name = write.name.strip() if write.name and write.name.strip() else _generated_name()
    store: Store = state.store
    await store.create_experiment(identity.workspace, identity.user, key, name, write)
    location = f"{str(request.url).split('?', 1)[0].rstrip('/')}/{ids.to_str(key)}"
    return Response(status_code=201, headers={"Location": location})


async def get_experiment(request: Request) -> Response:
    state = request.app.state
    identity = identify(request, state.api_keys)
    key = ids.parse(request.path_params["id"])
    if key is None:
        raise ApiError(404, http_message(404))
    store: Store = state.store
    experiment = await store.get_experiment(identity.workspace, key)
    if experiment is None:
        raise ApiError(404, f"Not found experiment with id '{ids.to_str(key)}'")
    return Response(encoder.encode(experiment), media_type=JSON)


async def delete_experiments(request: Request) -> Response:
    state = request.app.state
    identity = identify(request, state.api_keys)
    keys = await decode_ids(request)
    store: Store = state.store
    await store.delete_experiments(identity.workspace, keys)
    return Response(status_code=204)
