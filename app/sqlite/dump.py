"""A whole SQLite file read as its tables' rows, in one read transaction: `migrate`'s source
(app/migrate.py), every table but the caches the engines rebuild themselves."""

import sqlite3
from collections.abc import Iterator
from contextlib import closing, contextmanager
from pathlib import Path
from typing import Any

from app.migrate import CACHES, Table
from app.sqlite.files import open_readonly

TABLES = (
    "SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite_%' "
    "AND name NOT GLOB '_litestream_*' ORDER BY name"
)
COLUMNS = "SELECT name FROM pragma_table_info(?) ORDER BY cid"


class Dump:
    """The tables of one read transaction; `rows(table)` reads a table's rows one at a time."""

    def __init__(self, conn: sqlite3.Connection, schema_version: int, tables: list[Table]):
        self.conn = conn
        self.schema_version = schema_version
        self.tables = tables

    def rows(self, table: Table) -> Iterator[tuple[Any, ...]]:
        # {} are names read from the file's own catalog, quoted.
        columns = ", ".join(f'"{c}"' for c in table.columns)
        yield from self.conn.execute(f'SELECT {columns} FROM "{table.name}"')


@contextmanager
def dump(path: Path) -> Iterator[Dump]:
    """The file at `path` as it is at the start: a read transaction that writers beside it
    (a running server) do not change."""
    with closing(open_readonly(path)) as conn:
        conn.execute("BEGIN")
        version = int(conn.execute("PRAGMA user_version").fetchone()[0])
        tables = []
        for (name,) in conn.execute(TABLES).fetchall():
            if name in CACHES:
                continue
            columns = tuple(c for (c,) in conn.execute(COLUMNS, (name,)))
            count = int(conn.execute(f'SELECT count(*) FROM "{name}"').fetchone()[0])
            tables.append(Table(name, columns, count))
        yield Dump(conn, version, tables)
