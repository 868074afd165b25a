"""SQLite mechanics: pragmas, schema version, transactions."""

import sqlite3
from pathlib import Path

import pytest

from app.db import SCHEMA_VERSION, Database, SchemaError

pytestmark = pytest.mark.anyio

INSERT_PROJECT = "INSERT INTO projects VALUES (?, 'w', 'p', 'p', 0, 'u', 0, 'u')"


async def test_a_new_file_gets_the_schema_wal_and_durable_commits(db_path: Path) -> None:
    db = await Database.open(db_path)
    try:
        assert await db.fetch_all("PRAGMA journal_mode") == [("wal",)]
        async with db.transaction() as conn:
            assert list(await conn.execute_fetchall("PRAGMA synchronous")) == [(2,)]  # FULL
    finally:
        await db.close()

    with sqlite3.connect(db_path) as conn:
        assert conn.execute("PRAGMA user_version").fetchone() == (SCHEMA_VERSION,)


async def test_opening_twice_keeps_the_data(db_path: Path) -> None:
    first = await Database.open(db_path)
    async with first.transaction() as conn:
        await conn.execute(INSERT_PROJECT, (b"1" * 16,))
    await first.close()

    second = await Database.open(db_path)
    try:
        assert await second.fetch_all("SELECT count(*) FROM projects") == [(1,)]
    finally:
        await second.close()


async def test_a_newer_schema_version_is_refused(db_path: Path) -> None:
    with sqlite3.connect(db_path) as conn:
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")

    with pytest.raises(SchemaError, match="newer than this release"):
        await Database.open(db_path)


async def test_a_failed_transaction_leaves_nothing_and_the_writer_usable(db_path: Path) -> None:
    db = await Database.open(db_path)
    try:
        row = (b"1" * 16,)
        with pytest.raises(sqlite3.IntegrityError):  # noqa: PT012  (the whole transaction fails)
            async with db.transaction() as conn:
                await conn.execute(INSERT_PROJECT, row)
                await conn.execute(INSERT_PROJECT, row)
        async with db.transaction() as conn:
            assert list(await conn.execute_fetchall("SELECT count(*) FROM projects")) == [(0,)]
    finally:
        await db.close()


async def test_readers_cannot_write(db_path: Path) -> None:
    db = await Database.open(db_path)
    try:
        with pytest.raises(sqlite3.OperationalError, match="readonly"):
            await db.fetch_all("DELETE FROM projects")
    finally:
        await db.close()


async def test_a_transaction_cancelled_while_it_begins_leaves_the_writer_usable(
    db_path: Path,
) -> None:
    import anyio

    db = await Database.open(db_path)
    try:
        with anyio.CancelScope() as scope:
            scope.cancel()  # delivered at the first await: the BEGIN
            async with db.transaction() as conn:
                await conn.execute(INSERT_PROJECT, (b"1" * 16,))
        async with db.transaction() as conn:
            await conn.execute(INSERT_PROJECT, (b"2" * 16,))
        assert await db.fetch_all("SELECT count(*) FROM projects") == [(1,)]
    finally:
        await db.close()
