"""Stats: what a database holds, read from one snapshot, for an operator or a script."""

import sqlite3
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

import msgspec

from app import ids
from app.sqlite.files import open_readonly

# Read-only introspection over whatever tables the schema has: every table that has a
# workspace column is counted per workspace, so new tables show up without a change here.
TABLES = "SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
HAS_WORKSPACE = "SELECT count(*) FROM pragma_table_info(?) WHERE name = 'workspace'"
COUNT_ROWS = 'SELECT count(*) FROM "{}"'
COUNT_BY_WORKSPACE = 'SELECT workspace, count(*) FROM "{}" GROUP BY workspace'
# Served by the index experiment_items_by_experiment (workspace, experiment_id, id) alone.
TOP_EXPERIMENTS = """
SELECT workspace, experiment_id, count(*) AS items FROM experiment_items
GROUP BY workspace, experiment_id ORDER BY items DESC, workspace, experiment_id LIMIT ?
"""


@dataclass(frozen=True, slots=True)
class ExperimentCount:
    workspace: str
    experiment_id: str
    items: int


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
    return [
        ExperimentCount(workspace, ids.to_str(experiment_id), items)
        for workspace, experiment_id, items in conn.execute(TOP_EXPERIMENTS, (top,))
    ]


def to_json(stats: Stats) -> bytes:
    return msgspec.json.encode(stats)


def to_text(stats: Stats) -> str:
    size = stats.file_bytes + stats.wal_bytes
    lines = [
        f"database  {stats.database}",
        f"schema    version {stats.schema_version}",
        f"size      {_mib(size)} (file {_mib(stats.file_bytes)}, WAL {_mib(stats.wal_bytes)}; "
        f"{stats.pages:,} pages of {stats.page_size:,} bytes, {stats.free_pages:,} free)",
        "",
        "rows per workspace",
        *_grid(_workspace_rows(stats)),
    ]
    if stats.top_experiments:
        lines += ["", f"largest experiments (top {len(stats.top_experiments)} by items)"]
        rows = [["workspace", "experiment_id", "items"]]
        rows += [[e.workspace, e.experiment_id, f"{e.items:,}"] for e in stats.top_experiments]
        lines += _grid(rows, names=2)
    return "\n".join(lines) + "\n"


def _workspace_rows(stats: Stats) -> list[list[str]]:
    names = list(stats.tables)
    rows = [["workspace", *names]]
    for workspace, counts in stats.workspaces.items():
        rows.append([workspace, *(f"{counts.get(name, 0):,}" for name in names)])
    rows.append(["(all)", *(f"{stats.tables[name]:,}" for name in names)])
    return rows


def _grid(rows: list[list[str]], names: int = 1) -> list[str]:
    """Columns padded to their widest cell: the first `names` to the left, counts right."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return [
        "  ".join(
            cell.ljust(width) if i < names else cell.rjust(width)
            for i, (cell, width) in enumerate(zip(row, widths, strict=True))
        ).rstrip()
        for row in rows
    ]


def _mib(size_bytes: int) -> str:
    return f"{size_bytes / 2**20:.1f} MiB"
