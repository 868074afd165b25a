"""The PostgreSQL engine's database: schema.sql's tables, indexes and triggers as DDL, the
schema version, migrations under an advisory lock (several processes at once), and the
refusals, in the SQLite engine's words."""

import asyncio
import sqlite3
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import closing
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from app import ids
from app.postgres import SCHEMA_VERSION, PostgresStore
from app.postgres.connection import MIGRATIONS
from app.records import ItemRecord, SchemaError
from app.sqlite import SCHEMA_VERSION as SQLITE_SCHEMA_VERSION
from app.sqlite import SqliteStore
from app.sqlite.connection import schema_path
from tests.postgres import DEBIAN, Cluster, Unavailable, find_binaries

pytestmark = pytest.mark.anyio

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
async def conn(pg_url: str) -> AsyncIterator[Any]:
    connection = await asyncpg.connect(pg_url)
    yield connection
    await connection.close()


async def _versions(conn: Any) -> list[int]:
    return [row[0] for row in await conn.fetch("SELECT version FROM schema_version")]


def _sqlite_schema(tmp_path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(tmp_path / "schema.db")
    conn.executescript(schema_path().read_text())
    return conn


async def test_a_new_database_gets_every_table_column_index_and_trigger_of_schema_sql(
    pg_url: str, conn: Any, tmp_path: Path
) -> None:
    store = await PostgresStore.open(pg_url)
    await store.close()
    with closing(_sqlite_schema(tmp_path)) as lite:
        tables = [r[0] for r in lite.execute("SELECT name FROM sqlite_schema WHERE type='table'")]
        columns = {t: [r[1] for r in lite.execute(f"PRAGMA table_info({t})")] for t in tables}
        indexes = {
            r[0] for r in lite.execute("SELECT name FROM sqlite_schema WHERE type = 'index'")
            if not r[0].startswith("sqlite_autoindex")
        }  # fmt: skip
        triggers = {
            r[0] for r in lite.execute("SELECT name FROM sqlite_schema WHERE type='trigger'")
        }

    pg_columns: dict[str, list[str]] = {}
    for table, column in await conn.fetch(
        "SELECT table_name, column_name FROM information_schema.columns"
        " WHERE table_schema = 'public' ORDER BY table_name, ordinal_position"
    ):
        pg_columns.setdefault(table, []).append(column)
    pg_indexes = {r[0] for r in await conn.fetch("SELECT indexname FROM pg_indexes")}
    pg_triggers = {r[0] for r in await conn.fetch("SELECT tgname FROM pg_trigger")}

    assert pg_columns.pop("schema_version") == ["one", "version"]
    assert pg_columns == columns
    assert indexes <= pg_indexes
    assert {t for t in pg_triggers if not t.startswith("RI_")} == triggers
    assert await _versions(conn) == [SCHEMA_VERSION]
    assert SCHEMA_VERSION == SQLITE_SCHEMA_VERSION  # one numbering for both engines


async def test_text_orders_bytewise_whatever_the_clusters_locale(conn: Any, pg_url: str) -> None:
    store = await PostgresStore.open(pg_url)
    await store.close()
    collations = {
        r[0]
        for r in await conn.fetch(
            "SELECT collation_name FROM information_schema.columns"
            " WHERE table_schema = 'public' AND data_type = 'text'"
        )
    }

    assert collations == {"C"}


async def test_reopening_keeps_the_data_and_the_version(pg_url: str, conn: Any) -> None:
    key = b"\x01\x90" + b"\x01" * 14
    store = await PostgresStore.open(pg_url)
    await store.upsert_items("w", "ann", [ItemRecord(key, key, key, key, None, None)])
    await store.close()

    again = await PostgresStore.open(pg_url)
    try:
        assert await again.get_item("w", key) is not None
    finally:
        await again.close()
    assert await _versions(conn) == [SCHEMA_VERSION]


async def test_a_newer_database_is_refused_in_the_sqlite_engines_words(
    pg_url: str, conn: Any, tmp_path: Path
) -> None:
    store = await PostgresStore.open(pg_url)
    await store.close()
    await conn.execute("UPDATE schema_version SET version = $1", SCHEMA_VERSION + 1)
    path = tmp_path / "items.db"
    with closing(sqlite3.connect(path)) as lite:
        lite.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
        lite.execute("CREATE TABLE experiment_items (id BLOB)")
        lite.commit()

    with pytest.raises(SchemaError) as on_postgres:
        await PostgresStore.open(pg_url)
    with pytest.raises(SchemaError) as on_sqlite:
        await SqliteStore.open(path)

    assert str(on_postgres.value) == str(on_sqlite.value)
    assert str(on_postgres.value) == (
        f"the database has schema version {SCHEMA_VERSION + 1}, newer than this release's "
        f"{SCHEMA_VERSION}: upgrade experiment-items to open it"
    )


async def test_a_database_of_other_tables_is_refused(pg_url: str, conn: Any) -> None:
    await conn.execute("CREATE TABLE invoices (id integer)")

    with pytest.raises(SchemaError, match="it is not an experiment-items database"):
        await PostgresStore.open(pg_url)
    assert await conn.fetchval("SELECT to_regclass('experiment_items')") is None


ADD_NOTE = """
ALTER TABLE experiment_items ADD COLUMN note text NOT NULL DEFAULT '';
UPDATE experiment_items SET note = 'from v4; kept';
"""


async def test_a_step_runs_once_and_records_its_version_and_a_failed_one_none(
    pg_url: str, conn: Any
) -> None:
    key = b"\x01\x90" + b"\x02" * 14
    store = await PostgresStore.open(pg_url)
    await store.upsert_items("w", "ann", [ItemRecord(key, key, key, key, None, None)])
    await store.close()

    with pytest.raises(asyncpg.PostgresError):
        await PostgresStore.open(pg_url, migrations=(*MIGRATIONS, "SELECT 1/0"))
    assert await _versions(conn) == [SCHEMA_VERSION]
    for _ in range(2):
        noted = await PostgresStore.open(pg_url, migrations=(*MIGRATIONS, ADD_NOTE))
        await noted.close()

    assert await _versions(conn) == [SCHEMA_VERSION + 1]
    assert await conn.fetchval("SELECT note FROM experiment_items") == "from v4; kept"
    with pytest.raises(SchemaError, match="newer than this release's"):
        await PostgresStore.open(pg_url)


async def test_a_worker_whose_database_another_release_migrated_fails_its_ping(
    pg_url: str, conn: Any
) -> None:
    store = await PostgresStore.open(pg_url)
    try:
        await store.ping()
        await conn.execute("UPDATE schema_version SET version = version + 1")
        with pytest.raises(SchemaError, match="restart the server with the release"):
            await store.ping()
    finally:
        await store.close()


OPEN_AND_CLOSE = """
import asyncio, sys
from app.postgres import PostgresStore

async def main() -> None:
    store = await PostgresStore.open(sys.argv[1])
    await store.close()

asyncio.run(main())
"""


async def test_processes_opening_a_new_database_at_once_make_its_schema_once(
    pg_url: str, conn: Any
) -> None:
    processes = [
        await asyncio.create_subprocess_exec(
            sys.executable, "-c", OPEN_AND_CLOSE, pg_url, cwd=ROOT, stderr=subprocess.PIPE
        )
        for _ in range(4)
    ]
    results = [await p.communicate() for p in processes]

    assert [p.returncode for p in processes] == [0] * 4, [err for _, err in results]
    assert await _versions(conn) == [SCHEMA_VERSION]
    assert (
        await conn.fetchval("SELECT count(*) FROM pg_trigger WHERE tgname LIKE 'summary_%'") == 13
    )


# A summary as SQLite's engine keeps one: with the range of its items' trace ids.
SUMMARY = """
INSERT INTO experiment_summaries VALUES ($1, 'w', '\\x00', 0, 0, 0, 0, 0, 0, '{}', '{}',
    (SELECT trace_id FROM experiment_items WHERE experiment_id = $1 ORDER BY 1 LIMIT 1),
    (SELECT trace_id FROM experiment_items WHERE experiment_id = $1 ORDER BY 1 DESC LIMIT 1))
"""
TRACE = """
INSERT INTO traces (id, workspace, project_id, start_time, created_at, created_by,
                    last_updated_at, last_updated_by) VALUES ($1, 'w', $1, 1, 1, 'a', 1, 'a')
"""
SPAN = """
INSERT INTO spans (id, workspace, trace_id, project_id, start_time, created_at, created_by,
                   last_updated_at, last_updated_by) VALUES ($2, 'w', $1, $1, 1, 1, 'a', 1, 'a')
"""
SCORE = """
INSERT INTO feedback_scores (trace_id, name, author, workspace, value, source, created_at,
    created_by, last_updated_at, last_updated_by)
VALUES ($1, 'q', 'a', 'w', 1, 'sdk', 1, 'a', 1, 'a')
"""
# What changes a summary is made from, each as one statement after the summary is kept.
CHANGES = {
    "trace added": (TRACE, "t"),
    "trace changed": ("UPDATE traces SET name = 'x' WHERE id = $1", "t"),
    "span added": (SPAN, "ts"),
    "span changed": ("UPDATE spans SET name = 'x' WHERE trace_id = $1", "t"),
    "score added": (SCORE, "t"),
    "score changed": ("UPDATE feedback_scores SET value = 2 WHERE trace_id = $1", "t"),
    "score removed": ("DELETE FROM feedback_scores WHERE trace_id = $1", "t"),
    "span removed": ("DELETE FROM spans WHERE trace_id = $1", "t"),
    "trace removed": ("DELETE FROM traces WHERE id = $1", "t"),
    "item changed": ("UPDATE experiment_items SET created_by = 'x' WHERE id = $1", "i"),
    "item removed": ("DELETE FROM experiment_items WHERE id = $1", "i"),
}


async def test_the_triggers_drop_a_summary_when_what_it_is_made_of_changes(
    pg_url: str, conn: Any
) -> None:
    experiment, trace, span, item = (b"\x01\x90" + bytes([n]) * 14 for n in (7, 8, 9, 10))
    store = await PostgresStore.open(pg_url)
    await conn.execute(SUMMARY, experiment)
    await store.upsert_items("w", "ann", [ItemRecord(item, experiment, item, trace, None, None)])
    await store.close()
    dropped = [] if await conn.fetchval("SELECT count(*) FROM experiment_summaries") else ["item"]
    params = {"t": (trace,), "ts": (trace, span), "i": (item,)}
    for name, (sql, which) in CHANGES.items():
        await conn.execute(SUMMARY, experiment)
        await conn.execute(sql, *params[which])
        if not await conn.fetchval("SELECT count(*) FROM experiment_summaries"):
            dropped.append(name)
    await conn.execute(SUMMARY, experiment)
    await conn.execute(
        "INSERT INTO experiments (id, workspace, name, dataset_id, type, evaluation_method,"
        " created_at, created_by, last_updated_at, last_updated_by)"
        " VALUES ($1, 'w', 'e', $1, 'regular', 'dataset', 1, 'a', 1, 'a')",
        experiment,
    )
    await conn.execute("DELETE FROM experiments WHERE id = $1", experiment)

    assert dropped == ["item", *CHANGES]
    assert await conn.fetchval("SELECT count(*) FROM experiment_summaries") == 0


def test_without_postgresqls_binaries_the_reason_to_skip_says_what_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))

    with pytest.raises(Unavailable, match="apt-get install postgresql"):
        find_binaries(debian=tmp_path / "none")
    if DEBIAN.is_dir():  # and this machine's are found without PATH
        assert find_binaries().parent.parent == DEBIAN


class _Counting:
    """A pool that notes each statement it fetches (asyncpg's Pool takes no new attributes)."""

    def __init__(self, pool: Any, statements: list[str]) -> None:
        self._pool = pool
        self._statements = statements

    async def fetch(self, sql: str, *args: Any) -> Any:
        self._statements.append(sql)
        return await self._pool.fetch(sql, *args)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._pool, name)


async def test_point_reads_asked_together_take_one_statement_per_workspace(pg_url: str) -> None:
    store = await PostgresStore.open(pg_url)
    try:
        keys = [b"\x01\x90" + n.to_bytes(14, "big") for n in range(1, 101)]
        for workspace, half in (("a", keys[:50]), ("b", keys[50:])):
            records = [ItemRecord(k, k, k, k, None, None) for k in half]
            await store.upsert_items(workspace, "ann", records)
        statements: list[str] = []
        store.db.pool = _Counting(store.db.pool, statements)
        asked = [(w, k) for w in "ab" for k in keys] + [("a", keys[0])] * 3
        found = await asyncio.gather(*(store.get_item(w, k) for w, k in asked))

        assert len(statements) == 2
        shown = [None if f is None else f.id for f in found]
        expected = [
            ids.to_str(k) if (w == "a") == (n < 50) else None
            for w in "ab"
            for n, k in enumerate(keys)
        ] + [ids.to_str(keys[0])] * 3
        assert shown == expected
    finally:
        await store.close()


async def test_every_acknowledged_write_survives_a_crash_of_the_server(
    pg_cluster: Cluster, pg_url: str
) -> None:
    store = await PostgresStore.open(pg_url, connections=4)
    written: list[bytes] = []

    async def write(n: int) -> None:
        records = [ItemRecord(ids.uuid7(), k, k, k, None, None) for k in [ids.uuid7()] * 50]
        await store.upsert_items("w", "ann", records)
        written.extend(r.id for r in records)  # acknowledged: the commit has returned

    await asyncio.gather(*(write(n) for n in range(20)))
    pg_cluster.crash_and_restart()
    store.db.pool.terminate()  # its connections died with the server

    again = await PostgresStore.open(pg_url)
    try:
        found = await asyncio.gather(*(again.get_item("w", key) for key in written))
    finally:
        await again.close()
    assert len(written) == 1000
    assert all(found)


async def test_the_password_comes_from_the_url_or_pgpassword(
    pg_cluster: Cluster, pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    pg_cluster.add_password_role("carol", "s3cret")
    database = pg_url.rsplit("/", 1)[1]
    at = f"127.0.0.1:{pg_cluster.port}/{database}"
    monkeypatch.delenv("PGPASSWORD", raising=False)
    monkeypatch.setenv("PGPASSFILE", "/nonexistent")

    with pytest.raises(asyncpg.InvalidPasswordError):
        await PostgresStore.open(f"postgresql://carol@{at}")
    in_url = await PostgresStore.open(f"postgresql://carol:s3cret@{at}")
    await in_url.close()
    monkeypatch.setenv("PGPASSWORD", "s3cret")
    from_env = await PostgresStore.open(f"postgres://carol@{at}")
    await from_env.ping()
    await from_env.close()
