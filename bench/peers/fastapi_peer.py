"""Peer A, what most people would write: FastAPI, a pydantic response model, and aiosqlite
with execute/fetchone on one connection."""

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Literal
from uuid import UUID

import aiosqlite
from fastapi import Depends, FastAPI, Header, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel

from bench.peers.common import (
    BAD_ID_MESSAGE,
    DB_ENV,
    DEFAULT_WORKSPACE,
    GET_ITEM,
    format_instant,
    not_found_message,
)


class ExperimentItemPublic(BaseModel):
    experiment_id: UUID
    dataset_item_id: UUID
    trace_id: UUID
    id: UUID
    project_id: UUID | None = None
    created_at: str
    last_updated_at: str
    created_by: str
    last_updated_by: str
    trace_visibility_mode: Literal["default", "hidden"]


async def get_db(request: Request) -> aiosqlite.Connection:
    db: aiosqlite.Connection = request.app.state.db
    return db


def create_app() -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.db = await aiosqlite.connect(os.environ[DB_ENV])
        yield
        await app.state.db.close()

    app = FastAPI(lifespan=lifespan)

    @app.exception_handler(RequestValidationError)
    async def bad_id(request: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse({"code": 404, "message": BAD_ID_MESSAGE}, status_code=404)

    @app.get(
        "/v1/private/experiments/items/{id}",
        response_model=ExperimentItemPublic,
        response_model_exclude_none=True,
    )
    async def get_experiment_item(
        id: UUID,
        db: Annotated[aiosqlite.Connection, Depends(get_db)],
        comet_workspace: Annotated[str | None, Header()] = None,
    ) -> ExperimentItemPublic | Response:
        workspace = comet_workspace or DEFAULT_WORKSPACE
        async with db.execute(GET_ITEM, (id.bytes, workspace)) as cursor:
            row = await cursor.fetchone()
        if row is None:
            body = {"code": 404, "message": not_found_message(str(id))}
            return JSONResponse(body, status_code=404)
        e, d, t, i, p, created, updated, created_by, updated_by, hidden = row
        return ExperimentItemPublic(
            experiment_id=UUID(bytes=e),
            dataset_item_id=UUID(bytes=d),
            trace_id=UUID(bytes=t),
            id=UUID(bytes=i),
            project_id=None if p is None else UUID(bytes=p),
            created_at=format_instant(created),
            last_updated_at=format_instant(updated),
            created_by=created_by,
            last_updated_by=updated_by,
            trace_visibility_mode="hidden" if hidden else "default",
        )

    return app
