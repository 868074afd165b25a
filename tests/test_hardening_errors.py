"""Storage failures get clear answers, and a 500 says that its connection closes and is logged
once (reliability probe D5, D10, D11)."""

import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import cast

import httpx
import pytest

from app.config import Settings
from app.postgres import PostgresStore
from app.sqlite.connection import Database
from app.store import Store
from tests.conftest import Rows
from tests.factories import batch, item, new_id
from tests.running import server_process
from tests.test_api_bulk import BULK

ITEMS = "/v1/private/experiments/items"
STREAM = "/v1/private/experiments/items/stream"


async def count_items(rows: Rows) -> int:
    return int((await rows("SELECT count(*) FROM experiment_items"))[0][0])


# --- Expected storage errors, through the app ----------------------------------------------


@pytest.mark.sqlite_only("SQLite's max_page_count stands in for a full disk; PostgreSQL has none")
@pytest.mark.anyio
async def test_a_full_disk_is_a_507_saying_so_and_writes_work_again_once_there_is_room(
    client: httpx.AsyncClient, db: Database, client_rows: Rows
) -> None:
    # SQLite answers SQLITE_FULL when a write would grow the file past max_page_count: the
    # same error as a full disk, without filling one.
    writer = db._writer
    pages = (await writer.execute_fetchall("PRAGMA page_count"))[0][0]  # type: ignore[index]
    await writer.execute(f"PRAGMA max_page_count = {pages}")

    full = await client.post(ITEMS, json=batch(*[item() for _ in range(1000)]))

    assert full.status_code == 507
    assert full.json() == {
        "code": 507,
        "message": "The disk that holds the database is full: nothing was stored. "
        "Free some space and send it again",
    }
    assert await count_items(client_rows) == 0
    await writer.execute("PRAGMA max_page_count = 1073741823")
    again = await client.post(ITEMS, json=batch(*[item() for _ in range(1000)]))
    assert again.status_code == 204
    assert await count_items(client_rows) == 1000


async def make_read_only(engine: str, store: Store, db: Database) -> None:
    """Makes the client's database refuse writes as a read-only one does."""
    if engine == "sqlite":
        # query_only makes SQLite refuse writes with SQLITE_READONLY, as a 0444 file does.
        await db._writer.execute("PRAGMA query_only = 1")
        return
    # As a hot standby does: every transaction read-only, on the connections the pool opens
    # in place of the ones it has.
    pool = cast(PostgresStore, store).db.pool
    name = await pool.fetchval("SELECT current_database()")
    await pool.execute(f'ALTER DATABASE "{name}" SET default_transaction_read_only = on')
    await pool.expire_connections()


@pytest.mark.anyio
async def test_a_read_only_database_is_a_503_saying_so(
    client: httpx.AsyncClient,
    client_engine: str,
    client_store: tuple[Settings, Store],
    db: Database,
    client_rows: Rows,
) -> None:
    await make_read_only(client_engine, client_store[1], db)

    refused = await client.post(ITEMS, json=batch(item()))

    assert refused.status_code == 503
    assert refused.json()["code"] == 503
    assert refused.json()["message"].startswith("The database is read-only to the server")
    assert "Retry-After" not in refused.headers
    assert await count_items(client_rows) == 0


@pytest.mark.sqlite_only(
    "another SQLite connection's write lock past busy_timeout: PostgreSQL locks rows, "
    "and a write waits for them"
)
@pytest.mark.anyio
async def test_a_write_lock_held_past_the_busy_timeout_is_a_503_with_retry_after(
    client: httpx.AsyncClient, db: Database, db_path: Path, client_rows: Rows
) -> None:
    await db._writer.execute("PRAGMA busy_timeout = 50")
    other = sqlite3.connect(db_path, isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")  # another process's long import batch, say
        busy = await client.post(ITEMS, json=batch(item()))
        other.execute("COMMIT")
    finally:
        other.close()
    after = await client.post(ITEMS, json=batch(item()))

    assert busy.status_code == 503
    assert busy.headers["Retry-After"] == "1"
    assert busy.json() == {
        "code": 503,
        "message": "The database is busy with another process's write: nothing was stored. "
        "Try again",
    }
    assert after.status_code == 204
    assert await count_items(client_rows) == 1


# --- Unexpected errors, through a real server ----------------------------------------------


@pytest.fixture
def served(db_path: Path) -> Iterator[str]:
    with server_process(db_path) as (url, _):
        yield url


def drop(db_path: Path, table: str) -> None:
    with sqlite3.connect(db_path) as conn:
        conn.execute(f"DROP TABLE {table}")


def log_of(db_path: Path) -> str:
    return db_path.with_suffix(".log").read_text()


def assert_logged_once(log: str) -> None:
    # app/errors.py's record, with the request id; not uvicorn's copy of the same traceback.
    assert log.count(" failed: ") == 1
    assert "Exception in ASGI application" not in log


def test_a_500_says_connection_close_and_logs_one_traceback(db_path: Path, served: str) -> None:
    written = batch(item())
    assert httpx.post(f"{served}{ITEMS}", json=written).status_code == 204
    drop(db_path, "experiment_items")  # every read of an item now fails unexpectedly

    with httpx.Client(base_url=served) as client:
        failed = client.get(f"{ITEMS}/{written['experiment_items'][0]['id']}")
        after = client.get("/is-alive/ver")

    assert failed.status_code == 500
    assert failed.headers["connection"] == "close"
    assert failed.json()["message"].startswith("Unexpected server error (request id ")
    assert after.status_code == 200  # on a new connection, as the client was told
    assert_logged_once(log_of(db_path))


def test_a_stream_cut_by_an_error_logs_one_traceback(db_path: Path, served: str) -> None:
    record = {"dataset_item_id": new_id(), "trace": {"start_time": "2024-01-15T09:30:00Z"}}
    body = {"experiment_name": "cut", "dataset_name": "d", "items": [record]}
    assert httpx.put(f"{served}{BULK}", json=body).status_code == 204
    drop(db_path, "spans")  # the stream's head goes before its lines are read

    with pytest.raises(httpx.RemoteProtocolError):
        httpx.post(f"{served}{STREAM}", json={"experiment_name": "cut"})

    assert_logged_once(log_of(db_path))
