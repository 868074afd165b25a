"""Stats of a PostgreSQL database: what it holds, counted in one REPEATABLE READ, READ ONLY
transaction, with each table's size as pg_total_relation_size says it."""

from dataclasses import dataclass

import asyncpg

from app import config
from app.postgres.schema import VERSION_TABLE
from app.postgres.snapshot import check_version
from app.stats import TOP_EXPERIMENTS, ExperimentCount, mib, top_experiments

# The schema's tables but the version's, as SQLite's stats list its tables (its version is
# a pragma there): every one with a workspace column is counted per workspace.
TABLES = """
SELECT c.relname, pg_total_relation_size(c.oid),
       EXISTS (SELECT FROM pg_attribute AS a WHERE a.attrelid = c.oid
               AND a.attname = 'workspace' AND NOT a.attisdropped)
FROM pg_class AS c WHERE c.relkind = 'r' AND c.relnamespace = current_schema()::regnamespace
    AND c.relname <> $1
ORDER BY c.relname COLLATE "C"
"""
# {} is a table's name from the catalog, quoted.
COUNT_ROWS = "SELECT count(*) FROM {}"
COUNT_BY_WORKSPACE = "SELECT workspace, count(*) FROM {} GROUP BY workspace"
TOP = TOP_EXPERIMENTS.format(limit="$1")


@dataclass(frozen=True, slots=True)
class Stats:
    """A database's schema version, size (its tables with their indexes and TOAST) and rows:
    per table, per workspace and table, and the experiments with the most items."""

    database: str
    schema_version: int
    size_bytes: int
    table_bytes: dict[str, int]
    tables: dict[str, int]
    workspaces: dict[str, dict[str, int]]
    top_experiments: list[ExperimentCount]

    def heading(self) -> list[str]:
        return [
            f"database  {self.database}",
            f"schema    version {self.schema_version}",
            f"size      {mib(self.size_bytes)} (pg_total_relation_size of its "
            f"{len(self.tables)} tables: rows, indexes and TOAST)",
        ]


async def collect(url: str, top: int = 10) -> Stats:
    conn = await asyncpg.connect(url)
    try:
        await check_version(conn)
        async with conn.transaction(isolation="repeatable_read", readonly=True):
            version = int(await conn.fetchval(f"SELECT version FROM {VERSION_TABLE}"))
            tables: dict[str, int] = {}
            sizes: dict[str, int] = {}
            workspaces: dict[str, dict[str, int]] = {}
            for table, size, has_workspace in await conn.fetch(TABLES, VERSION_TABLE):
                quoted = '"' + table.replace('"', '""') + '"'
                sizes[table] = int(size)
                if not has_workspace:
                    tables[table] = int(await conn.fetchval(COUNT_ROWS.format(quoted)))
                    continue
                tables[table] = 0
                for workspace, count in await conn.fetch(COUNT_BY_WORKSPACE.format(quoted)):
                    workspaces.setdefault(workspace, {})[table] = int(count)
                    tables[table] += int(count)
            experiments = top_experiments(await conn.fetch(TOP, top))
    finally:
        await conn.close()
    return Stats(
        database=config.shown_location(url),
        schema_version=version,
        size_bytes=sum(sizes.values()),
        table_bytes=sizes,
        tables=tables,
        workspaces=dict(sorted(workspaces.items())),
        top_experiments=experiments,
    )
