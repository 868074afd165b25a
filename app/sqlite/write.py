"""One write transaction and what every write in it needs: its workspace, user and moment;
projects and datasets found or made by name; ids refused when another workspace holds them."""

from collections.abc import Iterable, Sequence

import aiosqlite

from app import clock, ids
from app.records import Conflict, batched, first_spellings
from app.sqlite.tables import AUDIT, NAMED_COLUMNS, NAMED_TABLES, Table, marks

# {table} and {column} are fixed names of tables.py, never input.
FIND_NAMED = "SELECT name_key, id FROM {table} WHERE workspace = ? AND name_key IN ({marks})"
FIND_FOREIGN = "SELECT {column} FROM {table} WHERE workspace <> ? AND {column} IN ({marks})"
_KEYS_PER_QUERY = 10_000  # under SQLite's 32,766 parameters of one statement
_INSERT_NAMED = {name: table.insert(NAMED_COLUMNS) for name, table in NAMED_TABLES.items()}


class Write:
    """One write transaction: its connection, workspace, user and moment."""

    def __init__(self, conn: aiosqlite.Connection, workspace: str, user: str) -> None:
        self.conn = conn
        self.workspace = workspace
        self.user = user
        self.now = clock.now_ns()
        # Every row this transaction writes carries these, by name.
        self.stamp: dict[str, object] = dict(
            zip(AUDIT, (self.now, user, self.now, user), strict=True)
        )
        self.stamp["workspace"] = workspace

    async def named(self, table: str, names: Iterable[str]) -> dict[str, bytes]:
        """The ids of projects or datasets by name key, creating those that are missing,
        each spelled as it came first."""
        wanted = first_spellings(names)
        if not wanted:
            return {}
        found = await self.owners(table, wanted)
        missing = [(key, name) for key, name in wanted.items() if key not in found]
        for key, _ in missing:
            found[key] = ids.uuid7()
        await self.conn.executemany(
            _INSERT_NAMED[table],
            [
                {"id": found[key], "name": name, "name_key": key, **self.stamp}
                for key, name in missing
            ],
        )
        return found

    async def owners(self, table: str, keys: Iterable[str]) -> dict[str, bytes]:
        """The ids of the projects or datasets that hold these name keys in the workspace."""
        owners: dict[str, bytes] = {}
        for chunk in batched(keys, _KEYS_PER_QUERY):
            sql = FIND_NAMED.format(table=table, marks=marks(len(chunk)))
            rows = await self.conn.execute_fetchall(sql, (self.workspace, *chunk))
            owners.update((key, value) for key, value in rows)
        return owners

    async def refuse_foreign(self, table: Table, keys: Sequence[bytes], what: str) -> None:
        """409 when any of `keys` is already an id of another workspace: ids are global."""
        for key in await self.foreign(table, keys):
            raise Conflict.foreign(what, key)

    async def foreign(self, table: Table, keys: Iterable[bytes], column: str = "id") -> list[bytes]:
        """Those of `keys` that `column` of `table` holds in another workspace."""
        table.check((column,))
        found: list[bytes] = []
        for chunk in batched(keys, _KEYS_PER_QUERY):
            sql = FIND_FOREIGN.format(table=table.name, column=column, marks=marks(len(chunk)))
            rows = await self.conn.execute_fetchall(sql, (self.workspace, *chunk))
            found += [key for (key,) in rows]
        return found
