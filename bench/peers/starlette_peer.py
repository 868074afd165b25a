"""Peer B, the design card taken literally and naively: Starlette, one aiosqlite connection,
execute/fetchone, and a msgspec Struct for the answer."""

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Literal
from uuid import UUID

import aiosqlite
import msgspec
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from bench.peers.common import (
    BAD_ID_MESSAGE,
    DB_ENV,
    DEFAULT_WORKSPACE,
    GET_ITEM,
    format_instant,
    not_found_message,
)

JSON = "application/json"


class Item(msgspec.Struct):
    experiment_id: str
    dataset_item_id: str
    trace_id: str
    id: str
    project_id: str | msgspec.UnsetType
    created_at: str
    last_updated_at: str
    created_by: str
    last_updated_by: str
    trace_visibility_mode: Literal["default", "hidden"]


class Error(msgspec.Struct):
    code: int
    message: str


encoder = msgspec.json.Encoder()


def _uuid(raw: bytes) -> str:
    return str(UUID(bytes=raw))


async def get_item(request: Request) -> Response:
    workspace = request.headers.get("comet-workspace") or DEFAULT_WORKSPACE
    try:
        key = UUID(request.path_params["id"])
    except ValueError:
        return Response(encoder.encode(Error(404, BAD_ID_MESSAGE)), 404, media_type=JSON)
    db: aiosqlite.Connection = request.app.state.db
    async with db.execute(GET_ITEM, (key.bytes, workspace)) as cursor:
        row = await cursor.fetchone()
    if row is None:
        body = encoder.encode(Error(404, not_found_message(str(key))))
        return Response(body, 404, media_type=JSON)
    e, d, t, i, p, created, updated, created_by, updated_by, hidden = row
    item = Item(
        _uuid(e),
        _uuid(d),
        _uuid(t),
        _uuid(i),
        msgspec.UNSET if p is None else _uuid(p),
        format_instant(created),
        format_instant(updated),
        created_by,
        updated_by,
        "hidden" if hidden else "default",
    )
    return Response(encoder.encode(item), media_type=JSON)


def create_app() -> Starlette:
    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        app.state.db = await aiosqlite.connect(os.environ[DB_ENV])
        yield
        await app.state.db.close()

    return Starlette(
        routes=[Route("/v1/private/experiments/items/{id}", get_item)], lifespan=lifespan
    )
