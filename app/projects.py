"""Projects, read by id or found by name, and the auth checks the SDK makes."""

from starlette.requests import Request
from starlette.responses import Response

from app.body import decode, require_text
from app.context import acting, path_id
from app.errors import JSON
from app.payloads import ValidationErrors, encoder
from app.trace_payloads import Project, ProjectRetrieve, WorkspaceName

# Opik answers a missing project in its ErrorMessage shape (reference, section 3.2).
_NOT_FOUND = encoder.encode(ValidationErrors(["Project not found"]))


def _found(project: Project | None) -> Response:
    if project is None:
        return Response(_NOT_FOUND, 404, media_type=JSON)
    return Response(encoder.encode(project), media_type=JSON)


async def get_project(request: Request) -> Response:
    identity, store = acting(request)
    key = path_id(request)
    return _found(await store.get_project(identity.workspace, key))


async def retrieve_project(request: Request) -> Response:
    identity, store = acting(request)
    body = await decode(request, ProjectRetrieve)
    name = require_text(body.name, "name")
    return _found(await store.find_project(identity.workspace, name))


async def check_access(request: Request) -> Response:
    """204 for a valid identity; 401 and 403 are raised by acting() as everywhere."""
    acting(request)
    return Response(status_code=204)


async def get_workspace_name(request: Request) -> Response:
    identity, _ = acting(request)
    return Response(encoder.encode(WorkspaceName(identity.workspace)), media_type=JSON)
