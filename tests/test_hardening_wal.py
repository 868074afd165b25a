"""The WAL shrinks back once a long read that made it grow has ended (reliability probe D9)."""

import sqlite3
from pathlib import Path

import httpx
import pytest

from app.sqlite.connection import JOURNAL_SIZE_LIMIT_BYTES, Database
from tests.factories import batch, item

pytestmark = pytest.mark.anyio
# SQLite's write-ahead log and its journal_size_limit: PostgreSQL's WAL is the cluster's own.
ENGINES = ("sqlite",)

ITEMS = "/v1/private/experiments/items"
TEST_LIMIT_BYTES = 1024 * 1024  # the same mechanism as the 64 MiB, with fewer writes


async def write(client: httpx.AsyncClient, items: int) -> None:
    response = await client.post(ITEMS, json=batch(*[item() for _ in range(items)]))
    assert response.status_code == 204


async def test_the_wal_is_cut_back_to_its_limit_after_a_long_read_ends(
    client: httpx.AsyncClient, db: Database, db_path: Path
) -> None:
    writer = db._writer
    [(limit,)] = await writer.execute_fetchall("PRAGMA journal_size_limit")
    await writer.execute(f"PRAGMA journal_size_limit = {TEST_LIMIT_BYTES}")
    wal = db_path.with_name(db_path.name + "-wal")
    export = sqlite3.connect(db_path, isolation_level=None)  # an export's one snapshot
    try:
        export.execute("BEGIN")
        export.execute("SELECT count(*) FROM experiment_items").fetchone()
        for _ in range(20):  # no checkpoint can pass the snapshot: the WAL only grows
            await write(client, 1000)
        grown = wal.stat().st_size
    finally:
        export.close()
    # The next commit's checkpoint copies the whole WAL into the file; the one after starts
    # the WAL again from its beginning, which is when SQLite cuts it back.
    await write(client, 1)
    await write(client, 1)

    assert limit == JOURNAL_SIZE_LIMIT_BYTES
    assert grown > 3 * TEST_LIMIT_BYTES
    assert wal.stat().st_size <= TEST_LIMIT_BYTES
