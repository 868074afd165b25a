"""Stats of a SQLite file: what it holds, read from one snapshot, with its size in pages."""

import sqlite3
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

from app.sqlite.files import open_readonly
from app.stats import TOP_EXPERIMENTS, ExperimentCount, mib, top_experiments

# Read-only introspection over whatever tables the schema has: every table that has a
# workspace column is counted per workspace, so new tables show up without a change here.
TABLES = "SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
HAS_WORKSPACE = "SELECT count(*) FROM pragma_table_info(?) WHERE name = 'workspace'"
COUNT_ROWS = 'SELECT count(*) FROM "{}"'
COUNT_BY_WORKSPACE = 'SELECT workspace, count(*) FROM "{}" GROUP BY workspace'
TOP = TOP_EXPERIMENTS.format(limit="?")


@dataclass(frozen=True, slots=True)
class Stats:
    """A database's size, schema version and rows: per table, per workspace and table, and
    the experiments with the most items."""

    database: str
    schema_version: int
    file_bytes: int
    wal_bytes: int
    page_size: int
    pages: int
    free_pages: int
    tables: dict[str, int]
    workspaces: dict[str, dict[str, int]]
    top_experiments: list[ExperimentCount]

    def heading(self) -> list[str]:
        size = self.file_bytes + self.wal_bytes
        return [
            f"database  {self.database}",
            f"schema    version {self.schema_version}",
            f"size      {mib(size)} (file {mib(self.file_bytes)}, WAL {mib(self.wal_bytes)}; "
            f"{self.pages:,} pages of {self.page_size:,} bytes, {self.free_pages:,} free)",
        ]


def collect(path: Path, top: int = 10) -> Stats:
    with closing(open_readonly(path)) as conn:
        # One read transaction: every count comes from the same snapshot while writers go on.
        conn.execute("BEGIN")
        tables, workspaces = _rows(conn)
        pragma = {
            name: int(conn.execute(f"PRAGMA {name}").fetchone()[0])
            for name in ("user_version", "page_size", "page_count", "freelist_count")
        }
        experiments = _top_experiments(conn, top) if "experiment_items" in tables else []
        conn.execute("COMMIT")
    wal = Path(f"{path}-wal")
    return Stats(
        database=str(path.resolve()),
        schema_version=pragma["user_version"],
        file_bytes=path.stat().st_size,
        wal_bytes=wal.stat().st_size if wal.exists() else 0,
        page_size=pragma["page_size"],
        pages=pragma["page_count"],
        free_pages=pragma["freelist_count"],
        tables=tables,
        workspaces=workspaces,
        top_experiments=experiments,
    )


def _rows(conn: sqlite3.Connection) -> tuple[dict[str, int], dict[str, dict[str, int]]]:
    """Rows per table, and per workspace and table for the tables that have a workspace."""
    tables: dict[str, int] = {}
    workspaces: dict[str, dict[str, int]] = {}
    for (table,) in sorted(conn.execute(TABLES).fetchall()):
        quoted = table.replace('"', '""')
        if not conn.execute(HAS_WORKSPACE, (table,)).fetchone()[0]:
            tables[table] = int(conn.execute(COUNT_ROWS.format(quoted)).fetchone()[0])
            continue
        tables[table] = 0
        for workspace, count in conn.execute(COUNT_BY_WORKSPACE.format(quoted)):
            workspaces.setdefault(workspace, {})[table] = count
            tables[table] += count
    return tables, dict(sorted(workspaces.items()))


def _top_experiments(conn: sqlite3.Connection, top: int) -> list[ExperimentCount]:
    return top_experiments(conn.execute(TOP, (top,)).fetchall())
