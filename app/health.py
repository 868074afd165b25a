"""Health: whether this worker can read and write its database, and which release it runs."""

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
# The oldest Opik release with everything the pinned SDK's flows need from a backend
# (contract, "Health"); the SDK compares it with 2.2.8 before uploading dataset items in
# parallel, which is safe here since every write is serialized.
OPIK_API_VERSION = "2.2.8"
_VERSION = encoder.encode(Version(OPIK_API_VERSION, __version__))

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
        # The storage's exception may say what cannot be done: "read" or "write".
        return _unhealthy(str(exc), getattr(exc, "action", "read"))
    return Response(_HEALTHY, media_type=JSON)


_PARTICIPLES = {"read": "read", "write": "written"}


def _unhealthy(reason: str, action: str = "read") -> Response:
    # One line and no traceback: the reason is all an operator needs.
    log.error("health check cannot %s the database: %s", action, reason)
    message = f"Database cannot be {_PARTICIPLES.get(action, action)}: {reason}"
    body = encoder.encode(Health(message, False))
    return Response(body, 500, media_type=JSON)


async def version(request: Request) -> Response:
    return Response(_VERSION, media_type=JSON)
