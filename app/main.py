"""The application: lifespan, the routes of app/routes.py, middleware, error handlers."""

import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.middleware import Middleware

from app import config
from app.auth import ApiKey, load_keys
from app.context import Services
from app.errors import HANDLERS, storage_handler
from app.logs import AccessLog
from app.routes import PREFIXES, routes
from app.store import Store, open_store, storage_errors
from app.ui import routes as ui_routes

__all__ = ["PREFIXES", "app_from_env", "create_app"]


def create_app(
    settings: config.Settings | None = None,
    store: Store | None = None,
    api_keys: tuple[ApiKey, ...] | None = None,
) -> Starlette:
    """The ASGI app. With `store` it serves that open store (tests); otherwise the lifespan
    opens `settings.db` and closes it at shutdown."""
    settings = settings or config.from_env()
    if api_keys is None and settings.api_keys is not None:
        api_keys = load_keys(settings.api_keys)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        if store is not None:
            yield
            return
        # serve made the database before any worker started: a worker never makes one.
        opened = await open_store(settings.db, settings.readers, create=False)
        app.state.services = Services(opened, api_keys, settings.body_timeout_seconds)
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
            await opened.close()

    app = Starlette(
        # The web UI's pages come after every API route: the API's are matched first.
        routes=[*routes(), *ui_routes()],
        middleware=[Middleware(AccessLog, enabled=settings.access_log)],
        exception_handlers={
            **HANDLERS,
            **{error: storage_handler(describe) for error, describe in storage_errors(settings.db)},
        },
        lifespan=lifespan,
    )
    if store is not None:
        app.state.services = Services(store, api_keys, settings.body_timeout_seconds)
    return app


def app_from_env() -> Starlette:
    """The factory uvicorn's workers call: settings come from the environment."""
    return create_app(config.from_env())
