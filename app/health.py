"""Health: whether this worker can read its database, and which release it runs."""

import logging

from starlette.requests import Request
from starlette.responses import Response

from app import __version__
from app.errors import JSON
from app.payloads import Health, Version, encoder
from app.store import Store

log = logging.getLogger("experiment_items")

_HEALTHY = encoder.encode(Health("Healthy Server", True))
_VERSION = encoder.encode(Version(__version__))


async def ping(request: Request) -> Response:
    store: Store = request.app.state.store
    try:
        await store.ping()
    except Exception as exc:
        log.error("health check cannot read the database: %s", exc)
        body = encoder.encode(Health(f"Database cannot be read: {exc}", False))
        return Response(body, 500, media_type=JSON)
    return Response(_HEALTHY, media_type=JSON)


async def version(request: Request) -> Response:
    return Response(_VERSION, media_type=JSON)
