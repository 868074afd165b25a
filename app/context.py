"""What every endpoint works with, typed: the worker's store and the app's settings for
requests, kept on the app once (`app.state.services`) instead of as loose state strings."""

from dataclasses import dataclass

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Scope

from app import ids
from app.auth import ApiKey, Identity, identify
from app.errors import ApiError, http_message
from app.store import Store


@dataclass(frozen=True, slots=True)
class Services:
    store: Store
    api_keys: tuple[ApiKey, ...] | None
    body_timeout_seconds: float


def services(request: Request | Scope) -> Services:
    app = request.app if isinstance(request, Request) else request["app"]
    found: Services = app.state.services
    return found


def acting(request: Request | Scope) -> tuple[Identity, Store]:
    """Who the request acts as (401 and 403 raised here) and the store it acts on."""
    s = services(request)
    return identify(request, s.api_keys), s.store


def path_id(request: Request) -> bytes:
    """The key of the path's `{id}`: Jersey's bare 404 when it is not a UUID (contract)."""
    key = ids.parse(request.path_params["id"])
    if key is None:
        raise ApiError(404, http_message(404))
    return key


def created(request: Request, key: str) -> Response:
    """201 with the new resource's URL: the request's, without its query, and the id."""
    location = f"{str(request.url).split('?', 1)[0].rstrip('/')}/{key}"
    return Response(status_code=201, headers={"Location": location})
