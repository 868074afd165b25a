"""The application: lifespan, every route under both prefixes, error handlers."""

import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.routing import BaseRoute, Route

from app import config, experiments, health, items, openapi
from app.auth import ApiKey, load_keys
from app.db import Database
from app.errors import HANDLERS
from app.logs import AccessLog
from app.store import Store

# Opik's backend serves /v1/private/...; the SDK calls the same paths under /api/
# (its local default base URL is http://localhost:5173/api/). CONTRACT.md, "Addresses".
PREFIXES = ("", "/api")

# The item read comes first: the router tries routes in order.
ENDPOINTS = (
    ("/v1/private/experiments/items/{id}", items.get_item, ["GET"]),
    ("/v1/private/experiments/items", items.create_items, ["POST"]),
    ("/v1/private/experiments/items/delete", items.delete_items, ["POST"]),
    ("/v1/private/experiments/items/stream", items.stream_items, ["POST"]),
    ("/v1/private/experiments/items/bulk", items.record_bulk, ["PUT"]),
    ("/v1/private/experiments", experiments.create_experiment, ["POST"]),
    ("/v1/private/experiments/{id}", experiments.get_experiment, ["GET"]),
    ("/v1/private/experiments/delete", experiments.delete_experiments, ["POST"]),
    ("/is-alive/ping", health.ping, ["GET"]),
    ("/is-alive/ver", health.version, ["GET"]),
    ("/openapi.json", openapi.get_openapi, ["GET"]),
)


def routes() -> list[BaseRoute]:
    # Flat routes rather than two Mounts: one regex match per route tried, no nesting.
    return [
        Route(prefix + path, endpoint, methods=methods)
        for prefix in PREFIXES
        for path, endpoint, methods in ENDPOINTS
    ]


def create_app(
    settings: config.Settings | None = None,
    database: Database | None = None,
    api_keys: tuple[ApiKey, ...] | None = None,
) -> Starlette:
    """The ASGI app. With `database` it serves that open database (tests); otherwise the
    lifespan opens `settings.db` and closes it at shutdown."""
    settings = settings or config.from_env()
    if api_keys is None and settings.api_keys is not None:
        api_keys = load_keys(settings.api_keys)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        if database is not None:
            yield
            return
        db = await Database.open(settings.db, settings.readers)
        app.state.store = Store(db)
        # Everything made so far (modules, routes, connections) lives as long as the worker:
        # out of the collector's sight, a full collection no longer walks it all, which
        # otherwise stalls every request in flight for milliseconds now and then. Garbage is
        # collected first, or it would be kept for good.
        gc.collect()
        gc.freeze()
        # A young collection traverses every object of every request in flight; at the default
        # 700 allocations it ran every few requests. Only cyclic garbage waits longer for it.
        gc.set_threshold(10_000, 20, 20)
        try:
            yield
        finally:
            await db.close()

    app = Starlette(
        routes=routes(),
        middleware=[Middleware(AccessLog, enabled=settings.access_log)],
        exception_handlers=HANDLERS,
        lifespan=lifespan,
    )
    app.state.api_keys = api_keys
    app.state.body_timeout_seconds = settings.body_timeout_seconds  # app/body.py
    if database is not None:
        app.state.store = Store(database)
    return app


def app_from_env() -> Starlette:
    """The factory uvicorn's workers call: settings come from the environment."""
    return create_app(config.from_env())
