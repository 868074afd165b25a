"""The read-only web UI at `/`: server-rendered pages over the store's reads (issue 14).

Its routes come after every API route and carry no middleware of their own, so the API's
paths and its item read are untouched; they are left out of the OpenAPI document."""

from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from app.ui import comparing, pages, session
from app.ui.render import STATIC

Endpoint = Callable[[Request], Awaitable[Response]]


def routes() -> list[BaseRoute]:
    def get(path: str, endpoint: Endpoint, name: str) -> Route:
        return Route(path, endpoint, methods=["GET"], name=name, include_in_schema=False)

    def post(path: str, endpoint: Endpoint, name: str) -> Route:
        return Route(path, endpoint, methods=["POST"], name=name, include_in_schema=False)

    return [
        get("/", pages.home, "ui_home"),
        get("/ui/datasets/{id}", pages.dataset_experiments, "ui_dataset"),
        get("/ui/experiments/{id}", pages.experiment_items, "ui_experiment"),
        get("/ui/compare", comparing.compare, "ui_compare"),
        get("/ui/items/{id}", comparing.dataset_item, "ui_item"),
        post("/ui/login", session.login, "ui_login"),
        post("/ui/logout", session.logout, "ui_logout"),
        post("/ui/workspace", session.pick_workspace, "ui_workspace"),
        Mount("/ui/static", StaticFiles(directory=STATIC), name="ui_static"),
    ]
