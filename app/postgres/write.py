"""One write transaction and what every write in it needs: its workspace, user and moment;
projects and datasets found or made by name; ids refused when another workspace holds them."""

from collections.abc import Iterable, Sequence
from typing import Any

from app import clock, ids
from app.records import Conflict, first_spellings

# {table} and {column} are fixed names of this package, never input.
FIND_NAMED = "SELECT name_key, id FROM {table} WHERE workspace = $1 AND name_key = ANY($2::text[])"
# A name another transaction makes at the same moment is its own: nothing is made twice
# (projects_by_name, datasets_by_name), and the read after it sees the committed one.
MAKE_NAMED = """
INSERT INTO {table} (id, workspace, name, name_key, created_at, created_by, last_updated_at,
                     last_updated_by)
SELECT u.id, $1, u.name, u.name_key, $2, $3, $2, $3
FROM unnest($4::bytea[], $5::text[], $6::text[]) AS u(id, name, name_key)
ON CONFLICT (workspace, name_key) DO NOTHING
"""
# Ordered by id, as SQLite walks its primary key: the same id is named first on both engines.
FIND_FOREIGN = (
    "SELECT {column} FROM {table} WHERE workspace <> $1 AND {column} = ANY($2::bytea[])"
    " ORDER BY {column}"
)
NAMED_TABLES = ("projects", "datasets")
FOREIGN_TABLES = (
    "projects",
    "experiments",
    "experiment_items",
    "dataset_items",
    "traces",
    "spans",
)
# The feedback scores name their trace or span by this column, which `foreign` may ask about.
FOREIGN_COLUMNS = {"feedback_scores": "trace_id", "span_feedback_scores": "span_id"}


class Write:
    """One write transaction: its connection, workspace, user and moment."""

    def __init__(self, conn: Any, workspace: str, user: str) -> None:
        self.conn = conn
        self.workspace = workspace
        self.user = user
        self.now = clock.now_ns()

    async def named(self, table: str, names: Iterable[str]) -> dict[str, bytes]:
        """The ids of projects or datasets by name key, creating those that are missing,
        each spelled as it came first."""
        assert table in NAMED_TABLES, table
        wanted = first_spellings(names)
        if not wanted:
            return {}
        found = await self.owners(table, wanted)
        # In key order, as items.upsert_items writes ids: two writes making the same names
        # wait for each other on projects_by_name rather than deadlock.
        missing = sorted((key, name) for key, name in wanted.items() if key not in found)
        if missing:
            await self.conn.execute(
                MAKE_NAMED.format(table=table),
                self.workspace,
                self.now,
                self.user,
                [ids.uuid7() for _ in missing],
                [name for _, name in missing],
                [key for key, _ in missing],
            )
            found |= await self.owners(table, [key for key, _ in missing])
        return found

    async def owners(self, table: str, keys: Iterable[str]) -> dict[str, bytes]:
        """The ids of the projects or datasets that hold these name keys in the workspace."""
        rows = await self.conn.fetch(FIND_NAMED.format(table=table), self.workspace, list(keys))
        return {key: value for key, value in rows}

    async def refuse_foreign(self, table: str, keys: Sequence[bytes], what: str) -> None:
        """409 when any of `keys` is already an id of another workspace: ids are global."""
        for key in await self.foreign(table, keys):
            raise Conflict.foreign(what, key)

    async def foreign(self, table: str, keys: Sequence[bytes], column: str = "id") -> list[bytes]:
        """Those of `keys` that `column` of `table` holds in another workspace."""
        if column == "id":
            assert table in FOREIGN_TABLES, table
        else:
            assert FOREIGN_COLUMNS.get(table) == column, (table, column)
        if not keys:
            return []
        sql = FIND_FOREIGN.format(table=table, column=column)
        return [key for (key,) in await self.conn.fetch(sql, self.workspace, list(keys))]
