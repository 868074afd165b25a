"""SQLite mechanics: pragmas, schema version, transactions."""

import asyncio
import sqlite3
from pathlib import Path

import pytest

from app.sqlite.connection import SCHEMA_VERSION, Database, SchemaError
from app.sqlite.lookup import Lookup

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


# Point lookups: concurrent ones share statements, and each still gets its own answer.
PROJECTS_BY_ID = Lookup(
    "SELECT id, name FROM projects WHERE id IN ({keys}) AND +workspace = ?", key_column=0
)


async def _projects(db: Database, rows: list[tuple[bytes, str, str]]) -> None:
    async with db.transaction() as conn:
        await conn.executemany(
            "INSERT INTO projects VALUES (?, ?, ?, ?, 0, 'u', 0, 'u')",
            [(key, workspace, name, name) for key, workspace, name in rows],
        )


async def test_concurrent_lookups_each_get_their_own_row_in_their_own_workspace(
    db: Database,
) -> None:
    keys = [n.to_bytes(16) for n in range(300)]
    # Even keys live in workspace a, odd ones in b: a lookup in the other one must miss.
    await _projects(db, [(k, "ab"[n % 2], f"p{n}") for n, k in enumerate(keys)])
    asks = [(workspace, key) for key in keys for workspace in "ab"] * 2  # repeats too
    asks += [("a", (10_000 + n).to_bytes(16)) for n in range(50)]  # absent keys

    answers = await asyncio.gather(*(db.lookup(PROJECTS_BY_ID, w, k) for w, k in asks))

    for (workspace, key), answer in zip(asks, answers, strict=True):
        n = int.from_bytes(key)
        expected = (key, f"p{n}") if n < 300 and "ab"[n % 2] == workspace else None
        assert answer == expected


# Keeps a reader busy for a while: a lookup whose statement counts to a few million first.
SLOW = Lookup(
    "WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n WHERE x < 3000000) "
    "SELECT id, name FROM projects WHERE id IN ({keys}) AND +workspace = ? "
    "AND (SELECT count(*) FROM n) > 0",
    key_column=0,
)


async def test_lookups_beyond_one_statement_are_answered_in_several(db: Database) -> None:
    keys = [n.to_bytes(16) for n in range(Lookup.MAX_KEYS * 3 + 5)]
    await _projects(db, [(k, "w", f"p{n}") for n, k in enumerate(keys)])
    # Both readers busy, so every lookup below waits and they are answered in groups.
    busy = [asyncio.ensure_future(db.lookup(SLOW, "w", keys[n])) for n in range(2)]
    await asyncio.sleep(0)

    answers = await asyncio.gather(*(db.lookup(PROJECTS_BY_ID, "w", k) for k in keys))

    assert answers == [(k, f"p{n}") for n, k in enumerate(keys)]
    assert await asyncio.gather(*busy) == [(keys[0], "p0"), (keys[1], "p1")]


async def test_a_failing_statement_fails_every_lookup_in_it_and_the_readers_recover(
    db: Database,
) -> None:
    await _projects(db, [(b"k" * 16, "w", "p")])
    broken = Lookup("SELECT id FROM no_such_table WHERE id IN ({keys}) AND ? = ?", 0)

    outcomes = await asyncio.gather(
        *(db.lookup(broken, "w", n.to_bytes(16)) for n in range(40)), return_exceptions=True
    )

    assert all(isinstance(o, sqlite3.OperationalError) for o in outcomes)
    assert await db.lookup(PROJECTS_BY_ID, "w", b"k" * 16) == (b"k" * 16, "p")


async def test_a_cancelled_lookup_does_not_disturb_the_others(db: Database) -> None:
    keys = [n.to_bytes(16) for n in range(100)]
    await _projects(db, [(k, "w", f"p{n}") for n, k in enumerate(keys)])
    tasks = [asyncio.ensure_future(db.lookup(PROJECTS_BY_ID, "w", k)) for k in keys]
    await asyncio.sleep(0)  # every lookup is running or waiting
    for task in tasks[::3]:
        task.cancel()

    outcomes = await asyncio.gather(*tasks, return_exceptions=True)

    for n, outcome in enumerate(outcomes):
        if n % 3:
            assert outcome == (keys[n], f"p{n}")
        else:
            assert isinstance(outcome, asyncio.CancelledError)
    assert await db.lookup(PROJECTS_BY_ID, "w", keys[0]) == (keys[0], "p0")
