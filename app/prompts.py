"""Prompt versions, as far as experiments link to them: what `opik.Prompt(...)` calls to find
or add a version, and a version by id."""

from starlette.requests import Request
from starlette.responses import Response

from app import ids
from app.body import decode, require_uuid
from app.context import acting, created, path_id
from app.dataset_checks import tags_text
from app.dataset_records import PromptVersionRecord
from app.errors import JSON, ApiError, Listed
from app.payloads import encoder
from app.prompt_payloads import PromptVersionCreate, PromptVersionQuery, PromptWrite
from app.records import json_text


async def create_prompt_version(request: Request) -> Response:
    identity, store = acting(request)
    wanted = await decode(request, PromptVersionCreate)
    if wanted.project_id is not None:
        require_uuid(wanted.project_id, "project_id")
    v = wanted.version
    record = PromptVersionRecord(
        name=wanted.name.strip(), template=v.template, metadata=json_text(v.metadata), type=v.type,
        change_description=v.change_description, tags=tags_text(v.tags),
        template_structure=wanted.template_structure,
    )  # fmt: skip
    version = await store.create_prompt_version(identity.workspace, identity.user, record, False)
    return Response(encoder.encode(version), media_type=JSON)


async def create_prompt(request: Request) -> Response:
    identity, store = acting(request)
    wanted = await decode(request, PromptWrite)
    key = None if wanted.id is None else ids.parse(wanted.id)
    if wanted.id is not None and (key is None or not ids.is_v7(key)):
        raise ApiError(400, "Invalid UUID for id", "Prompt id must be a version 7 UUID")
    record = PromptVersionRecord(
        name=wanted.name.strip(), template=wanted.template, metadata=json_text(wanted.metadata),
        type=wanted.type, change_description=wanted.change_description, tags=None,
        template_structure=wanted.template_structure, prompt_id=key,
        description=wanted.description, prompt_tags=tags_text(wanted.tags),
    )  # fmt: skip
    version = await store.create_prompt_version(identity.workspace, identity.user, record, True)
    return created(request, version.prompt_id)


async def retrieve_prompt_version(request: Request) -> Response:
    identity, store = acting(request)
    wanted = await decode(request, PromptVersionQuery)
    if wanted.environment is not None or wanted.version_number is not None:
        raise Listed(404, "Prompt version not found")  # no environments nor numbers here
    version = await store.find_prompt_version(identity.workspace, wanted.name, wanted.commit)
    if version is None:
        raise Listed(404, "Prompt version not found")
    return Response(encoder.encode(version), media_type=JSON)


async def get_prompt_version(request: Request) -> Response:
    identity, store = acting(request)
    key = path_id(request)
    version = await store.get_prompt_version(identity.workspace, key)
    if version is None:
        raise Listed(404, "Prompt version not found")
    return Response(encoder.encode(version), media_type=JSON)
