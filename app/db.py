"""SQLite mechanics: one writer, a few readers, pragmas, the schema and its version."""

import asyncio
import itertools
import sqlite3
import sys
from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiosqlite

SCHEMA_VERSION = 1
BUSY_TIMEOUT_MS = 10_000

Row = tuple[Any, ...]

# WAL lets readers run beside the writer and other processes; synchronous=FULL syncs the WAL at
# every commit, so a 204 means the batch survives power loss (https://www.sqlite.org/wal.html,
# https://www.sqlite.org/pragma.html#pragma_synchronous).
_PRAGMAS = (
    "PRAGMA journal_mode = WAL",
    "PRAGMA synchronous = FULL",
    f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}",
    "PRAGMA temp_store = MEMORY",
)
_READER_PRAGMAS = (f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}", "PRAGMA query_only = 1")


class SchemaError(RuntimeError):
    """The database file was written by a newer release, or is not ours."""


def schema_path() -> Path:
    """schema.sql: inside the package when installed or frozen, beside it in a source tree."""
    here = Path(__file__).resolve().parent
    frozen = getattr(sys, "_MEIPASS", None)
    candidates = [here / "schema.sql", here.parent / "schema.sql"]
    if frozen:
        candidates.insert(0, Path(frozen) / "schema.sql")
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    raise FileNotFoundError("schema.sql is missing from this installation")


async def _connect(path: Path, pragmas: Iterable[str]) -> aiosqlite.Connection:
    # isolation_level=None: the sqlite3 module starts no transactions of its own; writes
    # begin theirs explicitly with BEGIN IMMEDIATE.
    conn = await aiosqlite.connect(path, isolation_level=None, cached_statements=256)
    for pragma in pragmas:
        await conn.execute(pragma)
    return conn


async def _install_schema(conn: aiosqlite.Connection) -> None:
    rows = list(await conn.execute_fetchall("PRAGMA user_version"))
    found = int(rows[0][0])
    if found > SCHEMA_VERSION:
        raise SchemaError(
            f"the database has schema version {found}, newer than this release's "
            f"{SCHEMA_VERSION}: upgrade experiment-items to open it"
        )
    if found == SCHEMA_VERSION:
        return
    # Version 0 is a new file. Every statement is IF NOT EXISTS, so two workers starting
    # together on one new file both succeed; BEGIN IMMEDIATE makes each run whole.
    script = schema_path().read_text()
    try:
        await conn.executescript(f"BEGIN IMMEDIATE;\n{script}\nCOMMIT;")
    except BaseException:
        if conn.in_transaction:
            await conn.rollback()
        raise


class Database:
    """The connections of one worker process, opened once and kept for its lifetime."""

    def __init__(self, writer: aiosqlite.Connection, readers: Sequence[aiosqlite.Connection]):
        self._writer = writer
        self._readers = tuple(readers)
        self._next_reader = itertools.cycle(self._readers).__next__
        self._write_lock = asyncio.Lock()

    @classmethod
    async def open(cls, path: Path | str, readers: int = 2) -> "Database":
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        writer = await _connect(path, _PRAGMAS)
        try:
            await _install_schema(writer)
            opened = [await _connect(path, _READER_PRAGMAS) for _ in range(max(1, readers))]
        except BaseException:
            await writer.close()
            raise
        return cls(writer, opened)

    async def close(self) -> None:
        for conn in (*self._readers, self._writer):
            await conn.close()

    async def fetch_all(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        """Rows of one read-only statement: one hop to a reader's thread and back."""
        rows = await self._next_reader().execute_fetchall(sql, params)
        return rows  # type: ignore[return-value]  # tuples: no row_factory is set

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[aiosqlite.Connection]:
        """The writer inside BEGIN IMMEDIATE: committed on exit, rolled back on any error.

        IMMEDIATE takes the write lock before the first read, so a transaction that reads
        then writes never fails with SQLITE_BUSY when another process commits between
        (https://www.sqlite.org/lang_transaction.html).
        """
        async with self._write_lock:
            await self._writer.execute("BEGIN IMMEDIATE")
            try:
                yield self._writer
            except BaseException:
                # Shielded: a cancelled request must still leave the writer out of its
                # transaction. The writer's queue runs the ROLLBACK before anything later.
                await asyncio.shield(self._writer.rollback())
                raise
            await self._writer.commit()


def is_busy(error: BaseException) -> bool:
    return isinstance(error, sqlite3.OperationalError) and "locked" in str(error)
