"""Shared fixtures: a real database file per test, and an HTTP client on the app; and for the
tests that run on both engines, `engine` (sqlite | postgresql), a fresh database of it and
the store on it (the PostgreSQL ones skip, with tests/postgres.py's reason, without
PostgreSQL's binaries)."""

import itertools
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any, cast

import asyncpg
import httpx
import pytest

from app.config import Settings
from app.main import create_app
from app.postgres import PostgresStore
from app.sqlite import SqliteStore
from app.sqlite.connection import Database
from app.store import CoreStore, Store
from tests.postgres import Cluster, Unavailable


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


# The engines the `client` fixture runs a module's tests on: the module's ENGINES (SQLite's
# alone where a module tests SQLite's own mechanics), else both.
DEFAULT_ENGINES: tuple[str, ...] = ("sqlite", "postgresql")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "sqlite_only(why): runs on SQLite alone (it reads the file itself, say)"
    )


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    # conftest's `client` asks for client_engine; a module's own `client` (test_engines.py's)
    # may not, and then takes no such parameter.
    if "client_engine" in metafunc.fixturenames:
        engines = getattr(metafunc.module, "ENGINES", DEFAULT_ENGINES)
        if metafunc.definition.get_closest_marker("sqlite_only"):
            engines = ("sqlite",)
        metafunc.parametrize("client_engine", engines)


@pytest.fixture
async def client_store(
    client_engine: str, request: pytest.FixtureRequest, db: Database, db_path: Path
) -> AsyncIterator[tuple[Settings, Store]]:
    """A new database of `client_engine` and the store on it, with the settings that name it:
    what `client` serves, and what a test builds its own app on (with its API keys, say).
    (`db`, SQLite's, is opened either way: an async fixture cannot be asked for by name from
    another.)"""
    if client_engine == "postgresql":
        url = str(request.getfixturevalue("pg_url"))
        # cast: the engine meets the whole Store only once its port is done (app/store.py).
        store = cast(Store, await PostgresStore.open(url))
        yield Settings(db=url), store
        await store.close()
    else:
        yield Settings(db=db_path), SqliteStore(db)


@pytest.fixture
async def client(client_store: tuple[Settings, Store]) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client on the app over a new database of `client_engine`."""
    settings, store = client_store
    app = create_app(settings, store=store)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
        yield c


Rows = Callable[[str], Awaitable[list[tuple[Any, ...]]]]


@pytest.fixture
def client_rows(client_engine: str, request: pytest.FixtureRequest, db_path: Path) -> Rows:
    """Runs a query (no parameters, SQL both engines read) on the `client` fixture's database
    and gives its rows as tuples: what a test checks of the stored data on either engine."""
    url = str(request.getfixturevalue("pg_url")) if client_engine == "postgresql" else None

    async def rows(sql: str) -> list[tuple[Any, ...]]:
        if url is None:
            with sqlite3.connect(db_path) as conn:
                return [tuple(row) for row in conn.execute(sql)]
        conn = await asyncpg.connect(url)
        try:
            return [tuple(row) for row in await conn.fetch(sql)]
        finally:
            await conn.close()

    return rows


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[Cluster]:
    try:
        cluster = Cluster.start()
    except Unavailable as exc:
        pytest.skip(str(exc))
    yield cluster
    cluster.stop()


_DATABASES = itertools.count(1)


@pytest.fixture
def pg_url(pg_cluster: Cluster) -> Iterator[str]:
    """The URL of a new empty database of the test cluster, dropped after the test."""
    name = f"test_{next(_DATABASES)}"
    yield pg_cluster.create_database(name)
    pg_cluster.drop_database(name)


@pytest.fixture(params=["sqlite", "postgresql"])
def engine(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def location(engine: str, request: pytest.FixtureRequest, tmp_path: Path) -> Path | str:
    """A new database of the engine: a file's path, or a PostgreSQL URL."""
    if engine == "postgresql":
        return str(request.getfixturevalue("pg_url"))
    return tmp_path / "items.db"


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def server_engine(request: pytest.FixtureRequest) -> str:
    """The engine of a module's real servers: the module runs once on each."""
    return str(request.param)


NewDatabase = Callable[[str], Path | str]


@pytest.fixture(scope="module")
def server_db(
    server_engine: str, request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[NewDatabase]:
    """Makes a new database of `server_engine` for the module's real servers, named `name`: a
    file's path, or a PostgreSQL URL (the databases are dropped after the module)."""
    folder = tmp_path_factory.mktemp(request.module.__name__.rsplit(".", 1)[-1])
    made: list[str] = []
    cluster = (
        cast(Cluster, request.getfixturevalue("pg_cluster"))
        if server_engine == "postgresql"
        else None
    )

    def new(name: str) -> Path | str:
        if cluster is None:
            return folder / f"{name}.db"
        made.append(f"test_{next(_DATABASES)}_{name}")
        return cluster.create_database(made[-1])

    yield new
    for database in made:
        assert cluster is not None
        cluster.drop_database(database)


async def open_core_store(location: Path | str) -> CoreStore:
    """The store of either engine at `location` (PostgreSQL's before open_store serves it)."""
    if isinstance(location, Path):
        return await SqliteStore.open(location)
    return await PostgresStore.open(location)


@pytest.fixture
async def core_store(location: Path | str) -> AsyncIterator[CoreStore]:
    store = await open_core_store(location)
    yield store
    await store.close()
