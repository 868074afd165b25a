"""Who a page acts as: with API keys on, the key a small form took and a cookie keeps; with
keys off, the workspace picked. Nothing else of a request names a workspace, so a page never
shows another's."""

from collections.abc import Awaitable, Callable
from functools import wraps
from urllib.parse import parse_qs, urlsplit

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from app.auth import DEFAULT_USER, DEFAULT_WORKSPACE, Identity, key_identity
from app.context import services
from app.store import Store
from app.ui.render import BadQuery, error_page, page

KEY_COOKIE = "ei_key"
WORKSPACE_COOKIE = "ei_workspace"
MAX_FORM_BYTES = 8192
MAX_FORM_FIELDS = 10
MAX_WORKSPACES = 200
COOKIE_SECONDS = 30 * 24 * 3600

Page = Callable[[Request, Identity, Store], Awaitable[Response]]


def viewer(request: Request) -> Identity | None:
    """The identity the request's cookie proves; None with keys on and no known key."""
    keys = services(request).api_keys
    if keys is None:
        return Identity(request.cookies.get(WORKSPACE_COOKIE) or DEFAULT_WORKSPACE, DEFAULT_USER)
    presented = request.cookies.get(KEY_COOKIE)
    return key_identity(keys, presented) if presented else None


def signed_in(endpoint: Page) -> Callable[[Request], Awaitable[Response]]:
    """A page that needs an identity: without one, the 401 page with the key form; a query
    parameter it cannot take is the 400 page."""

    @wraps(endpoint)
    async def guarded(request: Request) -> Response:
        identity = viewer(request)
        if identity is None:
            return page(request, "login.html", {"failed": False}, status_code=401)
        request.state.viewer = identity
        try:
            return await endpoint(request, identity, services(request).store)
        except BadQuery as exc:
            return error_page(request, 400, str(exc))

    return guarded


def _set_cookie(request: Request, response: Response, name: str, value: str) -> None:
    response.set_cookie(
        name,
        value,
        max_age=COOKIE_SECONDS,
        path="/",
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )


async def _form(request: Request) -> dict[str, str] | Response:
    """The fields of an urlencoded form posted from this origin; a page for anything else."""
    origin = request.headers.get("origin")
    if origin is not None and urlsplit(origin).netloc != request.url.netloc:
        return error_page(request, 403, "The form was sent from another site.")
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM_BYTES:
            return error_page(request, 413, "The form is too large.")
    try:
        fields = parse_qs(body.decode("utf-8", "replace"), max_num_fields=MAX_FORM_FIELDS)
    except ValueError:  # more fields than that
        return error_page(request, 400, "The form has too many fields.")
    return {name: values[0] for name, values in fields.items()}


async def login(request: Request) -> Response:
    """POST /login: the key of the form, kept in an HttpOnly, SameSite=Strict cookie when it
    is known; the 401 page otherwise."""
    keys = services(request).api_keys
    form = await _form(request)
    if isinstance(form, Response):
        return form
    if keys is None:
        return RedirectResponse("/", status_code=303)
    key = form.get("key", "").strip()
    if key_identity(keys, key) is None:
        return page(request, "login.html", {"failed": True}, status_code=401)
    response = RedirectResponse("/", status_code=303)
    _set_cookie(request, response, KEY_COOKIE, key)
    return response


async def logout(request: Request) -> Response:
    """POST /logout: the key's cookie forgotten."""
    form = await _form(request)
    if isinstance(form, Response):
        return form
    response = RedirectResponse("/", status_code=303)
    response.delete_cookie(KEY_COOKIE, path="/", httponly=True, samesite="strict")
    return response


async def pick_workspace(request: Request) -> Response:
    """POST /workspace: with keys off, the workspace the pages show from now on."""
    form = await _form(request)
    if isinstance(form, Response):
        return form
    if services(request).api_keys is not None:
        return error_page(request, 403, "With API keys on, the key decides the workspace.")
    response = RedirectResponse("/", status_code=303)
    name = form.get("workspace", "").strip()[:200] or DEFAULT_WORKSPACE
    _set_cookie(request, response, WORKSPACE_COOKIE, name)
    return response


async def workspaces(request: Request, identity: Identity, store: Store) -> list[str]:
    """The workspaces to pick from: with keys on, only the key's."""
    if services(request).api_keys is not None:
        return [identity.workspace]
    found = await store.list_workspaces(MAX_WORKSPACES)
    return sorted({*found, identity.workspace, DEFAULT_WORKSPACE})
