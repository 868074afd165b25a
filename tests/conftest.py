"""Shared fixtures: a real database file per test, and an HTTP client on the app."""

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from app.config import Settings
from app.main import create_app
from app.sqlite import SqliteStore
from app.sqlite.connection import Database


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "items.db"


@pytest.fixture
async def db(db_path: Path) -> AsyncIterator[Database]:
    database = await Database.open(db_path)
    yield database
    await database.close()


@pytest.fixture
async def client(db: Database, db_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(Settings(db=db_path), store=SqliteStore(db))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
        yield c
