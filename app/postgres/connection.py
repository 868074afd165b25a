"""PostgreSQL mechanics: one connection pool per worker, the schema and its version, and the
migrations, serialised across processes by an advisory lock."""

import asyncio
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

import asyncpg

from app.postgres.failures import WRITE_FAILURES, Unwritable
from app.postgres.schema import VERSION_TABLE, schema
from app.records import SchemaError

# The PostgreSQL engine began at SQLite's schema version 5 (app/sqlite/migrations.py), before
# any release served it: both engines keep one numbering, and a release that changes schema.sql
# adds a step to each.
FIRST_VERSION = 5
MIGRATIONS: tuple[str, ...] = ()
SCHEMA_VERSION = FIRST_VERSION + len(MIGRATIONS)

# pg_advisory_xact_lock's key for schema changes ("expitems" in ASCII): every process that
# opens the database takes it before reading the version, so several servers and their
# workers starting together apply each step once (their statements would otherwise race on
# the catalogs), https://www.postgresql.org/docs/15/explicit-locking.html#ADVISORY-LOCKS.
MIGRATION_LOCK = 0x65787069_74656D73

# As SQLite's (app/sqlite/connection.py): a write that failed for a reason in WRITE_FAILURES
# keeps the health check failing this long, or until a write succeeds.
WRITE_FAILURE_SECONDS = 30.0

_TABLES = "SELECT count(*) FROM pg_tables WHERE schemaname = current_schema()"


async def upgrade(conn: Any, migrations: Sequence[str] = MIGRATIONS) -> int:
    """Brings the database to the last version of `migrations` in one transaction (DDL is
    transactional in PostgreSQL: a failed step leaves the version before); returns it."""
    latest = FIRST_VERSION + len(migrations)
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1)", MIGRATION_LOCK)
        if await conn.fetchval("SELECT to_regclass($1)", VERSION_TABLE) is None:
            if await conn.fetchval(_TABLES):
                raise SchemaError(
                    "the database holds tables but none of experiment-items': "
                    "it is not an experiment-items database"
                )
            await conn.execute(schema(latest))  # no arguments: several statements at once
            return latest
        version = int(await conn.fetchval(f"SELECT version FROM {VERSION_TABLE}"))
        if version > latest:
            raise SchemaError.newer(version, latest)
        for step in range(version, latest):
            await conn.execute(migrations[step - FIRST_VERSION])
            await conn.execute(f"UPDATE {VERSION_TABLE} SET version = $1", step + 1)
        return latest


async def has_schema(url: str) -> bool:
    """Whether the database at `url` has experiment-items' tables (of any version)."""
    conn = await asyncpg.connect(url)
    try:
        return await conn.fetchval("SELECT to_regclass($1)", VERSION_TABLE) is not None
    finally:
        await conn.close()


class Database:
    """The pool of one worker process, opened once and kept for its lifetime."""

    def __init__(self, pool: Any, schema_version: int = SCHEMA_VERSION) -> None:
        self.pool = pool
        self.schema_version = schema_version  # the version it was opened at
        # Point reads waiting for the end of the loop's turn, by statement and scope.
        self._waiting: dict[tuple[str, Any], dict[bytes, list[asyncio.Future[Any]]]] = {}
        self._answering: set[asyncio.Task[None]] = set()
        # (time.monotonic(), why) of the last write, when it failed as WRITE_FAILURES say.
        self._write_failure: tuple[float, str] | None = None

    @classmethod
    async def open(
        cls, url: str, connections: int = 3, migrations: Sequence[str] = MIGRATIONS
    ) -> "Database":
        """The database at the libpq URL `url` (its password, when not in it, from
        PGPASSWORD or ~/.pgpass, as libpq), upgraded to the latest schema."""
        # asyncpg prepares every statement and keeps it per connection: the hot paths' SQL
        # is parsed and planned once per connection (statement_cache_size, default 100).
        pool = await asyncpg.create_pool(url, min_size=1, max_size=max(2, connections))
        try:
            async with pool.acquire() as conn:
                version = await upgrade(conn, migrations)
        except BaseException:
            await pool.close()
            raise
        return cls(pool, version)

    async def check(self) -> None:
        """Raises unless the database answers, at the version this worker serves, and no
        write failed for space, resources or permission in the last WRITE_FAILURE_SECONDS."""
        version = await self.pool.fetchval(f"SELECT version FROM {VERSION_TABLE}")
        if version != self.schema_version:
            raise SchemaError(
                f"the database has schema version {version}, but this worker serves version "
                f"{self.schema_version}: restart the server with the release that wrote it"
            )
        failure = self._write_failure
        if failure is not None and time.monotonic() - failure[0] < WRITE_FAILURE_SECONDS:
            seconds = time.monotonic() - failure[0]
            raise Unwritable(f"the last write, {seconds:.0f} s ago, failed: {failure[1]}")

    async def close(self) -> None:
        await self.pool.close()

    async def fetch_all(self, sql: str, *params: Any) -> list[Any]:
        """Rows of one read-only statement, each a asyncpg Record (a tuple by position)."""
        return list(await self.pool.fetch(sql, *params))

    async def fetch_row(self, sql: str, *params: Any) -> Any:
        return await self.pool.fetchrow(sql, *params)

    async def lookup(self, sql: str, scope: Any, key: bytes) -> Any:
        """The row of `sql` for `key` within `scope`, or None. `sql` takes every key asked
        for in this turn of the event loop as $1 (a bytea[]) and the scope as $2, and gives
        each row's key first: the requests that arrived together cost one round trip and
        one pooled connection, not one each (as app/sqlite/lookup.py batches SQLite's)."""
        found: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        if not self._waiting:
            found.get_loop().call_soon(self._dispatch)
        self._waiting.setdefault((sql, scope), {}).setdefault(key, []).append(found)
        return await found

    def _dispatch(self) -> None:
        waiting, self._waiting = self._waiting, {}
        for (sql, scope), keys in waiting.items():
            task = asyncio.get_running_loop().create_task(self._answer(sql, scope, keys))
            self._answering.add(task)  # the loop keeps only a weak reference to a task
            task.add_done_callback(self._answering.discard)

    async def _answer(
        self, sql: str, scope: Any, keys: dict[bytes, list[asyncio.Future[Any]]]
    ) -> None:
        try:
            rows = await self.pool.fetch(sql, list(keys), scope)
        except BaseException as exc:
            for futures in keys.values():
                for future in futures:
                    if not future.done():
                        future.set_exception(exc)
            if not isinstance(exc, Exception):
                raise
            return
        by_key = {row[0]: row for row in rows}
        for key, futures in keys.items():
            for future in futures:
                if not future.done():  # its request may have been cancelled
                    future.set_result(by_key.get(key))

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Any]:
        """A connection inside one READ COMMITTED transaction: committed on exit, rolled back
        on any error. PostgreSQL's commit waits for the WAL to be flushed (its default
        synchronous_commit = on), so a write acknowledged after it is durable. A failure
        that no write can get past is kept for the health check (check)."""
        try:
            async with self.pool.acquire() as conn, conn.transaction():
                yield conn
        except WRITE_FAILURES as exc:
            self._write_failure = (time.monotonic(), str(exc))
            raise
        self._write_failure = None
