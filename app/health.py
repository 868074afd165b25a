"""Health: whether this worker can read its database, and which release it runs."""

import asyncio
import logging

from starlette.requests import Request
from starlette.responses import Response

from app import __version__
from app.context import services
from app.errors import JSON
from app.payloads import Health, Version, encoder

log = logging.getLogger("experiment_items")

_HEALTHY = encoder.encode(Health("Healthy Server", True))
_VERSION = encoder.encode(Version(__version__))

# A ping answers within PING_TIMEOUT_SECONDS whatever the disk does; the store's check of the
# file gives up on a lock well inside that (db.CHECK_BUSY_TIMEOUT_MS).
PING_TIMEOUT_SECONDS = 2.0


async def ping(request: Request) -> Response:
    store = services(request).store
    try:
        # On a timeout the check's thread is left to finish, as threads cannot be stopped: a
        # lock wait ends after a second, a hung disk whenever the disk answers.
        await asyncio.wait_for(store.ping(), PING_TIMEOUT_SECONDS)
    except TimeoutError:
        return _unhealthy(f"no answer within {PING_TIMEOUT_SECONDS:g} s")
    except Exception as exc:
        return _unhealthy(str(exc))
    return Response(_HEALTHY, media_type=JSON)


def _unhealthy(reason: str) -> Response:
    # One line and no traceback: the reason is all an operator needs.
    log.error("health check cannot read the database: %s", reason)
    body = encoder.encode(Health(f"Database cannot be read: {reason}", False))
    return Response(body, 500, media_type=JSON)


async def version(request: Request) -> Response:
    return Response(_VERSION, media_type=JSON)
