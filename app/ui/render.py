"""Pages as HTML: the Jinja2 environment (autoescaped, templates beside this module), the
filters that show stored values as text, and the headers every page carries."""

import json
import math
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import jinja2
import msgspec
from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.templating import Jinja2Templates

HERE = Path(__file__).parent
TEMPLATES = HERE / "templates"
STATIC = HERE / "static"
CLIP_CHARS = 600  # what a table cell shows of an input or output; the item page shows it all

# Nothing but this origin's stylesheet: no script at all, inline or not, so a stored payload
# that slipped past escaping still could not run. SVG charts are inline markup, not images.
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; "
        "frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    # Not no-referrer: with it, a browser sends `Origin: null` on the page's own form posts,
    # which the forms' check (app/ui/session.py) must refuse.
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


def _value(raw: Any) -> Any:
    if isinstance(raw, msgspec.UnsetType) or raw is None:
        return None
    if isinstance(raw, msgspec.Raw):
        return msgspec.json.decode(bytes(raw))
    return raw


def pretty(raw: Any, clip: int | None = None) -> str:
    """Stored JSON as indented text (a lone string as itself), cut to `clip` characters."""
    value = _value(raw)
    if value is None:
        return ""
    text = value if isinstance(value, str) else json.dumps(value, indent=2, ensure_ascii=False)
    if clip is not None and len(text) > clip:
        return text[:clip] + " …"
    return text


def number(value: Any) -> str:
    if value is None or isinstance(value, msgspec.UnsetType):
        return ""
    return f"{value:.4g}" if isinstance(value, float) and math.isfinite(value) else str(value)


def milliseconds(value: Any) -> str:
    if value is None or isinstance(value, msgspec.UnsetType):
        return ""
    return f"{value:.0f} ms" if value < 1000 else f"{value / 1000:.2f} s"


def dollars(value: Any) -> str:
    if value is None or isinstance(value, msgspec.UnsetType):
        return ""
    return f"${value:.4g}"


def when(instant: Any) -> str:
    """An instant as date and time to the second, UTC."""
    return "" if not isinstance(instant, str) else instant[:19].replace("T", " ")


def signed(delta: float) -> str:
    return f"{delta:+.3g}"


def query(request: Request, **changes: Any) -> str:
    """The request's query with some parameters replaced (None removes one): for sort and
    page links that keep the rest."""
    kept = [(k, v) for k, v in request.query_params.multi_items() if k not in changes]
    for key, value in changes.items():
        if isinstance(value, list | tuple):
            kept += [(key, str(v)) for v in value]
        elif value is not None:
            kept.append((key, str(value)))
    return "?" + urlencode(kept)


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=True,  # every template, whatever its name
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(
        pretty=pretty, number=number, ms=milliseconds, usd=dollars, when=when, signed=signed
    )
    env.globals.update(query=query, CLIP_CHARS=CLIP_CHARS)
    return env


templates = Jinja2Templates(env=_environment())


def page(
    request: Request, template: str, context: dict[str, Any], status_code: int = 200
) -> HTMLResponse:
    """The template rendered with the viewer's identity (from request.state), whether API
    keys are on, and the security headers."""
    viewer = getattr(request.state, "viewer", None)
    keys_on = request.app.state.services.api_keys is not None
    full = {"viewer": viewer, "keys_on": keys_on, **context}
    response = templates.TemplateResponse(request, template, full, status_code=status_code)
    response.headers.update(SECURITY_HEADERS)
    return response


class BadQuery(Exception):
    """A query parameter a page cannot take: answered with a 400 page that names it and says
    what it takes (app/ui/session.py's `signed_in` turns it into that page)."""


def error_page(request: Request, status_code: int, message: str) -> HTMLResponse:
    return page(request, "error.html", {"status": status_code, "message": message}, status_code)
