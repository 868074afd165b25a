"""The migrations story on both engines (`engine` = sqlite | postgresql): a new database at
this release's version, a re-open that keeps the data, a newer database refused in one
sentence, and several processes opening a new database at once."""

import asyncio
import sqlite3
import subprocess
import sys
from contextlib import closing
from pathlib import Path

import asyncpg
import pytest

from app.records import ItemRecord, SchemaError
from app.sqlite import SCHEMA_VERSION
from tests.conftest import open_core_store

pytestmark = pytest.mark.anyio

ROOT = Path(__file__).resolve().parents[1]
KEY = b"\x01\x90" + b"\x05" * 14


async def schema_version(location: Path | str) -> int:
    """The version the database records, read without a store."""
    if isinstance(location, Path):
        with closing(sqlite3.connect(location)) as lite:
            return int(lite.execute("PRAGMA user_version").fetchone()[0])
    conn = await asyncpg.connect(location)
    try:
        versions = [row[0] for row in await conn.fetch("SELECT version FROM schema_version")]
    finally:
        await conn.close()
    assert len(versions) == 1, versions
    return int(versions[0])


async def set_schema_version(location: Path | str, version: int) -> None:
    if isinstance(location, Path):
        with closing(sqlite3.connect(location)) as lite:
            lite.execute(f"PRAGMA user_version = {version}")
        return
    conn = await asyncpg.connect(location)
    try:
        await conn.execute("UPDATE schema_version SET version = $1", version)
    finally:
        await conn.close()


async def test_a_new_database_is_made_at_this_releases_version(location: Path | str) -> None:
    store = await open_core_store(location)
    await store.close()

    assert await schema_version(location) == SCHEMA_VERSION


async def test_reopening_keeps_the_data_and_the_version(location: Path | str) -> None:
    store = await open_core_store(location)
    await store.upsert_items("w", "ann", [ItemRecord(KEY, KEY, KEY, KEY, None, None)])
    await store.close()

    again = await open_core_store(location)
    try:
        assert await again.get_item("w", KEY) is not None
    finally:
        await again.close()
    assert await schema_version(location) == SCHEMA_VERSION


async def test_a_database_of_a_newer_release_is_refused_in_one_sentence(
    location: Path | str,
) -> None:
    store = await open_core_store(location)
    await store.close()
    await set_schema_version(location, SCHEMA_VERSION + 1)

    with pytest.raises(SchemaError) as refused:
        await open_core_store(location)

    assert str(refused.value) == (
        f"the database has schema version {SCHEMA_VERSION + 1}, newer than this release's "
        f"{SCHEMA_VERSION}: upgrade experiment-items to open it"
    )


OPEN_WRITE_CLOSE = """
import asyncio, sys
from pathlib import Path
from app.records import ItemRecord

async def main() -> None:
    if sys.argv[1].startswith("postgresql://"):
        from app.postgres import PostgresStore
        store = await PostgresStore.open(sys.argv[1])
    else:
        from app.sqlite import SqliteStore
        store = await SqliteStore.open(Path(sys.argv[1]))
    key = bytes.fromhex(sys.argv[2])
    await store.upsert_items("w", "ann", [ItemRecord(key, key, key, key, None, None)])
    await store.close()

asyncio.run(main())
"""


async def test_processes_opening_a_new_database_at_once_all_start_and_write(
    location: Path | str,
) -> None:
    keys = [b"\x01\x90" + bytes([n]) * 14 for n in range(1, 5)]
    processes = [
        await asyncio.create_subprocess_exec(
            sys.executable, "-c", OPEN_WRITE_CLOSE, str(location), key.hex(),
            cwd=ROOT, stderr=subprocess.PIPE,
        )
        for key in keys
    ]  # fmt: skip
    errors = [(await p.communicate())[1] for p in processes]

    assert [p.returncode for p in processes] == [0] * len(keys), errors
    assert await schema_version(location) == SCHEMA_VERSION
    store = await open_core_store(location)
    try:
        assert all([await store.get_item("w", key) for key in keys])
    finally:
        await store.close()
