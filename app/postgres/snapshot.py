"""Export's and push's snapshot of PostgreSQL: one REPEATABLE READ, READ ONLY transaction
read a page at a time with the SQL of app/snapshots.py, for the synchronous commands."""

import asyncio
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import asyncpg

from app import ids
from app.line_columns import COLUMNS
from app.lines import KINDS
from app.postgres.connection import SCHEMA_VERSION
from app.postgres.schema import VERSION_TABLE
from app.records import NotFound, SchemaError
from app.snapshots import (
    JOINS,
    PUSH_ITEM_COLUMNS,
    PUSH_ITEM_JOINS,
    PUSH_ITEM_KEY,
    SCOPE_FILLS,
    SCOPE_KEYS,
    Reads,
    Snapshot,
    is_id,
    numbered,
    page_sql,
    selected,
)

# As SQLite's (app/sqlite/line_tables.py), without its unary + (PostgreSQL's planner takes
# the primary key for the ORDER BY ... LIMIT without that hint).
PAGE = """
SELECT {columns} FROM {table} AS t {joins}
WHERE t.workspace = $1 AND ({key}) > ({marks}) ORDER BY {key} LIMIT ${limit}
"""
PAGE_OF_EXPERIMENT = """
SELECT {columns} FROM pg_temp.export_{table} AS x JOIN {table} AS t ON {on} {joins}
WHERE t.workspace = $1 AND ({x_key}) > ({marks}) ORDER BY {x_key} LIMIT ${limit}
"""


def _page(template: str, table: str, columns: str, key: Sequence[str], joins: str) -> str:
    marks = ", ".join(f"${n}" for n in range(2, len(key) + 2))
    sql = page_sql(template.replace("${limit}", f"${len(key) + 2}"), table, columns, key, joins,
                   marks)  # fmt: skip
    return sql


def _reads(scoped: bool) -> Reads:
    template = PAGE_OF_EXPERIMENT if scoped else PAGE
    pages = {
        kind: _page(template, c.name, selected(c), c.key, JOINS.get(kind, ""))
        for kind, c in COLUMNS.items()
    }
    counts = {
        kind: f"SELECT count(*) FROM pg_temp.export_{COLUMNS[kind].name}"
        if scoped
        else f"SELECT count(*) FROM {COLUMNS[kind].name} WHERE workspace = $1"
        for kind in KINDS
    }
    items = _page(template, "experiment_items", PUSH_ITEM_COLUMNS, PUSH_ITEM_KEY, PUSH_ITEM_JOINS)
    return Reads(pages, counts, items)


_READS = {scoped: _reads(scoped) for scoped in (False, True)}


TEXT_KEY = 'text COLLATE "C"'


def _create(table: str, key: tuple[str, ...]) -> str:
    # Text keys in the "C" collation, as the tables' own (app/postgres/schema.py): pages
    # come in SQLite's byte order.
    columns = ", ".join(f"{c} {'bytea' if is_id(c) else TEXT_KEY}" for c in key)
    return f"CREATE TEMP TABLE export_{table} ({columns}, PRIMARY KEY ({', '.join(key)}))"


# A READ ONLY transaction may write temporary tables but not create them: they are made
# before it starts (https://www.postgresql.org/docs/15/sql-set-transaction.html).
CREATE_SCOPE = tuple(_create(table, key) for table, key in SCOPE_KEYS.items())
FILL_SCOPE = tuple(
    (f"INSERT INTO pg_temp.export_{table} {sql} ON CONFLICT DO NOTHING", names)
    for table, (sql, names) in ((t, numbered(select)) for t, select in SCOPE_FILLS)
)


async def check_version(conn: Any) -> None:
    """SchemaError unless the database is an experiment-items database of this release's
    schema version: a snapshot reads it as it is, never making or upgrading it."""
    if await conn.fetchval("SELECT to_regclass($1)", VERSION_TABLE) is None:
        raise SchemaError("no experiment-items tables in this database")
    version = int(await conn.fetchval(f"SELECT version FROM {VERSION_TABLE}"))
    if version > SCHEMA_VERSION:
        raise SchemaError.newer(version, SCHEMA_VERSION)
    if version < SCHEMA_VERSION:
        raise SchemaError(
            f"the database has schema version {version}, older than this release's "
            f"{SCHEMA_VERSION}: start `experiment-items serve` on it once to upgrade it"
        )


@contextmanager
def snapshot(url: str, workspace: str, experiment: bytes | None = None) -> Iterator[Snapshot]:
    """A read-only snapshot of the database at `url`, of a workspace or of one of its
    experiments, as app/sqlite/transfer.py's; its own connection and event loop, which the
    synchronous export and push drive a statement at a time."""
    loop = asyncio.new_event_loop()
    run = loop.run_until_complete
    try:
        conn = run(asyncpg.connect(url))
        try:
            run(check_version(conn))
            scoped = experiment is not None
            for statement in CREATE_SCOPE if scoped else ():
                run(conn.execute(statement))
            reading = conn.transaction(isolation="repeatable_read", readonly=True)
            run(reading.start())
            snap = Snapshot(lambda sql, params: run(conn.fetch(sql, *params)), _READS[scoped],
                            workspace, scoped)  # fmt: skip
            if experiment is not None:
                values = {"workspace": workspace, "experiment": experiment}
                for sql, names in FILL_SCOPE:
                    run(conn.execute(sql, *(values[name] for name in names)))
                if not snap.count("experiment") + snap.count("experiment_item"):
                    raise NotFound(
                        f"no experiment {ids.to_str(experiment)} in workspace {workspace!r}"
                    )
            yield snap
            run(reading.rollback())  # it wrote only its temporary tables
        finally:
            run(conn.close())
    finally:
        loop.close()
