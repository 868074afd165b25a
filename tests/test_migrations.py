"""Schema migrations: an older file is upgraded in place, one version per transaction.

This release has no migration yet, so these tests bring their own list: version 1 (schema.sql)
to 2 adds a column and fills it.
"""

import asyncio
import sqlite3
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest

from app.sqlite.connection import FIRST_VERSION, SCHEMA_VERSION, Database, SchemaError, schema_path

pytestmark = pytest.mark.anyio

ADD_NOTE = """
-- a comment; with a semicolon, as migrations have
ALTER TABLE experiment_items ADD COLUMN note TEXT NOT NULL DEFAULT '';
UPDATE experiment_items SET note = 'from v1; kept';
"""
TO_VERSION_2 = (ADD_NOTE,)

ITEM = (b"i" * 16, "w", b"e" * 16, b"d" * 16, b"t" * 16, 1, "ann", 1, "ann")
INSERT_ITEM = """
INSERT INTO experiment_items (id, workspace, experiment_id, dataset_item_id, trace_id,
                              created_at, created_by, last_updated_at, last_updated_by)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
"""


def query(path: Path, sql: str) -> list[Any]:
    with closing(sqlite3.connect(path, isolation_level=None)) as conn:
        return conn.execute(sql).fetchall()


def version_1_file(path: Path, user_version: int = FIRST_VERSION) -> None:
    """A file as this release writes it, with one item, at `user_version`."""
    with closing(sqlite3.connect(path, isolation_level=None)) as conn:
        conn.executescript(schema_path().read_text())
        conn.execute(INSERT_ITEM, ITEM)
        conn.execute(f"PRAGMA user_version = {user_version}")


def user_version(path: Path) -> int:
    return int(query(path, "PRAGMA user_version")[0][0])


def notes(path: Path) -> list[Any]:
    return query(path, "SELECT note FROM experiment_items")


async def test_this_release_is_the_first_version() -> None:
    assert (FIRST_VERSION, SCHEMA_VERSION) == (1, 1)


async def test_opening_an_older_file_migrates_it_in_place(db_path: Path) -> None:
    version_1_file(db_path)

    db = await Database.open(db_path, migrations=TO_VERSION_2)
    await db.close()

    assert user_version(db_path) == 2
    assert notes(db_path) == [("from v1; kept",)]


async def test_a_new_file_gets_schema_sql_then_the_later_migrations(db_path: Path) -> None:
    db = await Database.open(db_path, migrations=TO_VERSION_2)
    await db.close()

    assert user_version(db_path) == 2
    assert notes(db_path) == []


async def test_a_version_0_file_with_our_tables_is_taken_as_version_1(db_path: Path) -> None:
    # What `sqlite3 old.db .dump | sqlite3 new.db` leaves: the tables, no user_version.
    version_1_file(db_path, user_version=0)

    db = await Database.open(db_path, migrations=TO_VERSION_2)
    await db.close()

    assert user_version(db_path) == 2
    assert notes(db_path) == [("from v1; kept",)]


async def test_a_version_0_file_with_our_tables_opens_in_this_release(db_path: Path) -> None:
    version_1_file(db_path, user_version=0)

    db = await Database.open(db_path)
    try:
        assert await db.fetch_all("SELECT count(*) FROM experiment_items") == [(1,)]
    finally:
        await db.close()
    assert user_version(db_path) == SCHEMA_VERSION


async def test_a_file_of_another_application_is_refused_untouched(db_path: Path) -> None:
    query(db_path, "CREATE TABLE invoices (id INTEGER PRIMARY KEY)")

    with pytest.raises(SchemaError, match="not an experiment-items database"):
        await Database.open(db_path)

    assert query(db_path, "SELECT name FROM sqlite_schema") == [("invoices",)]


async def test_a_failing_migration_leaves_the_file_at_its_version(db_path: Path) -> None:
    version_1_file(db_path)
    broken = ("ALTER TABLE experiment_items ADD COLUMN note TEXT; SELECT * FROM missing;",)

    with pytest.raises(sqlite3.OperationalError, match="no such table: missing"):
        await Database.open(db_path, migrations=broken)

    assert user_version(db_path) == 1
    columns = query(db_path, "SELECT name FROM pragma_table_info('experiment_items')")
    assert ("note",) not in columns


async def test_a_file_newer_than_the_migrations_is_refused(db_path: Path) -> None:
    version_1_file(db_path, user_version=3)

    with pytest.raises(SchemaError, match="schema version 3, newer than this release's 2"):
        await Database.open(db_path, migrations=TO_VERSION_2)


async def test_workers_opening_one_file_together_migrate_it_once(db_path: Path) -> None:
    # ADD COLUMN fails when run twice: each step must run in exactly one of the openers.
    version_1_file(db_path)

    opened = await asyncio.gather(
        *(Database.open(db_path, migrations=TO_VERSION_2) for _ in range(4))
    )
    for db in opened:
        await db.close()

    assert user_version(db_path) == 2
    assert notes(db_path) == [("from v1; kept",)]
