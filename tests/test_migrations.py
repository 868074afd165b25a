"""Schema migrations: an older file is upgraded in place, one version per transaction.

A file of version 1 is made from tests/data/schema_v1.sql, the schema as version 1 released
it. The mechanics are tested with one more step of the tests' own on top of this release's
migrations: it adds a column and fills it.
"""

import asyncio
import sqlite3
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest

from app.sqlite.connection import SCHEMA_VERSION, Database, SchemaError, schema_path
from app.sqlite.migrations import FIRST_VERSION, MIGRATIONS

pytestmark = pytest.mark.anyio

ADD_NOTE = """
-- a comment; with a semicolon, as migrations have
ALTER TABLE experiment_items ADD COLUMN note TEXT NOT NULL DEFAULT '';
UPDATE experiment_items SET note = 'from v1; kept';
"""
WITH_NOTE = (*MIGRATIONS, ADD_NOTE)
NOTED = SCHEMA_VERSION + 1
SCHEMA_V1 = Path(__file__).parent / "data" / "schema_v1.sql"

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
    """A file as version 1 wrote it, with one item, at `user_version`."""
    with closing(sqlite3.connect(path, isolation_level=None)) as conn:
        conn.executescript(SCHEMA_V1.read_text())
        conn.execute(INSERT_ITEM, ITEM)
        conn.execute(f"PRAGMA user_version = {user_version}")


def user_version(path: Path) -> int:
    return int(query(path, "PRAGMA user_version")[0][0])


def notes(path: Path) -> list[Any]:
    return query(path, "SELECT note FROM experiment_items")


async def test_this_release_is_version_5() -> None:
    assert (FIRST_VERSION, SCHEMA_VERSION) == (1, 5)
    assert f"PRAGMA user_version = {SCHEMA_VERSION};" in schema_path().read_text()


def shape(path: Path) -> dict[str, Any]:
    """Every table's columns (name, type, not null, default, key), every index's columns and
    every trigger's statement."""
    with closing(sqlite3.connect(path)) as conn:
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_schema WHERE type='table'")]
        found: dict[str, Any] = {}
        for table in sorted(tables):
            columns = conn.execute(f"PRAGMA table_info({table})").fetchall()
            found[table] = sorted(tuple(c[1:]) for c in columns)
            for index in conn.execute(f"PRAGMA index_list({table})").fetchall():
                info = conn.execute(f"PRAGMA index_info({index[1]})").fetchall()
                found[f"{table}.{index[1]}"] = (index[2], [i[2] for i in info])
        for name, sql in conn.execute("SELECT name, sql FROM sqlite_schema WHERE type='trigger'"):
            found[f"trigger {name}"] = sql
        return found


async def test_a_migrated_version_1_file_has_the_shape_of_a_new_one(tmp_path: Path) -> None:
    old, new = tmp_path / "old.db", tmp_path / "new.db"
    version_1_file(old)
    for path in (old, new):
        await (await Database.open(path)).close()

    assert user_version(old) == user_version(new) == SCHEMA_VERSION
    assert shape(old) == shape(new)
    # ALTER TABLE puts new columns last; schema.sql lists them in that order too, so that
    # tables.py's column order holds on both.
    for table in ("datasets", "traces", "spans"):
        names = f"SELECT name FROM pragma_table_info('{table}')"
        assert query(old, names) == query(new, names)


async def test_opening_an_older_file_migrates_it_in_place(db_path: Path) -> None:
    version_1_file(db_path)

    db = await Database.open(db_path, migrations=WITH_NOTE)
    await db.close()

    assert user_version(db_path) == NOTED
    assert notes(db_path) == [("from v1; kept",)]


async def test_a_new_file_gets_schema_sql_then_the_later_migrations(db_path: Path) -> None:
    db = await Database.open(db_path, migrations=WITH_NOTE)
    await db.close()

    assert user_version(db_path) == NOTED
    assert notes(db_path) == []


async def test_a_version_0_file_with_our_tables_is_taken_as_version_1(db_path: Path) -> None:
    # What `sqlite3 old.db .dump | sqlite3 new.db` leaves: the tables, no user_version.
    version_1_file(db_path, user_version=0)

    db = await Database.open(db_path, migrations=WITH_NOTE)
    await db.close()

    assert user_version(db_path) == NOTED
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


async def test_a_new_file_that_litestream_reached_first_gets_the_schema(db_path: Path) -> None:
    # What `litestream replicate` does to a database file as soon as it exists (its DB.init).
    query(db_path, "CREATE TABLE _litestream_seq (id INTEGER PRIMARY KEY, seq INTEGER)")
    query(db_path, "CREATE TABLE _litestream_lock (id INTEGER)")

    db = await Database.open(db_path)
    await db.close()

    assert user_version(db_path) == SCHEMA_VERSION
    assert query(db_path, "SELECT count(*) FROM experiment_items") == [(0,)]


async def test_litestream_tables_do_not_make_another_application_ours(db_path: Path) -> None:
    query(db_path, "CREATE TABLE _litestream_seq (id INTEGER PRIMARY KEY, seq INTEGER)")
    query(db_path, "CREATE TABLE invoices (id INTEGER PRIMARY KEY)")

    with pytest.raises(SchemaError, match="not an experiment-items database"):
        await Database.open(db_path)


async def test_a_failing_migration_leaves_the_file_at_its_version(db_path: Path) -> None:
    version_1_file(db_path)
    broken = (*MIGRATIONS, "ALTER TABLE experiment_items ADD COLUMN note TEXT; SELECT * FROM x;")

    with pytest.raises(sqlite3.OperationalError, match="no such table: x"):
        await Database.open(db_path, migrations=broken)

    # Each step is its own transaction: the released ones stay, the broken one left nothing.
    assert user_version(db_path) == SCHEMA_VERSION
    columns = query(db_path, "SELECT name FROM pragma_table_info('experiment_items')")
    assert ("note",) not in columns


async def test_a_file_newer_than_the_migrations_is_refused(db_path: Path) -> None:
    version_1_file(db_path, user_version=NOTED + 1)

    newer = f"schema version {NOTED + 1}, newer than this release's {NOTED}"
    with pytest.raises(SchemaError, match=newer):
        await Database.open(db_path, migrations=WITH_NOTE)


async def test_workers_opening_one_file_together_migrate_it_once(db_path: Path) -> None:
    # ADD COLUMN fails when run twice: each step must run in exactly one of the openers.
    version_1_file(db_path)

    opened = await asyncio.gather(*(Database.open(db_path, migrations=WITH_NOTE) for _ in range(4)))
    for db in opened:
        await db.close()

    assert user_version(db_path) == NOTED
    assert notes(db_path) == [("from v1; kept",)]


async def test_a_stored_score_becomes_its_last_updaters_in_version_3(db_path: Path) -> None:
    version_1_file(db_path)
    query(
        db_path,
        "INSERT INTO feedback_scores VALUES (x'00', 'acc', 'w', NULL, 0.5, 'r', 'sdk', 1, 'ann',"
        " 2, 'bob')",
    )

    await (await Database.open(db_path)).close()

    assert query(db_path, "SELECT name, author, value, created_by FROM feedback_scores") == [
        ("acc", "bob", 0.5, "ann")
    ]
