"""What every endpoint works with, typed: the worker's store and the app's settings for
requests, kept on the app once (`app.state.services`) instead of as loose state strings."""

from dataclasses import dataclass

from starlette.requests import Request
from starlette.types import Scope

from app.auth import ApiKey, Identity, identify
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
