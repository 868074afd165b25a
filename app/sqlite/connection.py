"""SQLite mechanics: one writer, a few readers, pragmas, the schema and its version."""

import asyncio
import itertools
import os
import sqlite3
import sys
import time
from collections.abc import AsyncIterator, Iterable, Iterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiosqlite

from app.records import SchemaError as SchemaError  # where every engine finds it
from app.sqlite.files import (
    _OUR_TABLE,
    _SCHEMA_VERSION,
    _TABLES,
    BUSY_TIMEOUT_MS,
    Unhealthy,
    Unwritable,
    _identity,
    check_file,
    unwritable,
)
from app.sqlite.lookup import Lookup, Row, _take
from app.sqlite.migrations import FIRST_VERSION, MIGRATIONS

# New files get schema.sql, older ones the migrations they lack (app/sqlite/migrations.py).
SCHEMA_VERSION = FIRST_VERSION + len(MIGRATIONS)

# The WAL file is cut back to this size whenever it is reset after a checkpoint. Without it
# a WAL that grew while a long read (an export, a backup) held its snapshot keeps that size
# on disk until the server stops (https://www.sqlite.org/pragma.html#pragma_journal_size_limit).
JOURNAL_SIZE_LIMIT_BYTES = 64 * 1024 * 1024


# WAL lets readers run beside the writer and other processes; synchronous=FULL syncs the WAL at
# every commit, so a 204 means the batch survives power loss (https://www.sqlite.org/wal.html,
# https://www.sqlite.org/pragma.html#pragma_synchronous).
_WAL = "PRAGMA journal_mode = WAL"
_PRAGMAS = (
    f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}",
    _WAL,
    "PRAGMA synchronous = FULL",
    f"PRAGMA journal_size_limit = {JOURNAL_SIZE_LIMIT_BYTES}",
    "PRAGMA temp_store = MEMORY",
)
_READER_PRAGMAS = (f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}", "PRAGMA query_only = 1")


class ReadOnlyDatabase(SchemaError):
    """This process cannot write the database: a SchemaError, so that the CLI stops with one
    line and exit code 2, as for any database it cannot serve."""


def schema_path() -> Path:
    """schema.sql: inside the package when installed or frozen, beside it in a source tree."""
    package = Path(__file__).resolve().parents[1]  # app/
    frozen = getattr(sys, "_MEIPASS", None)
    candidates = [package / "schema.sql", package.parent / "schema.sql"]
    if frozen:
        candidates.insert(0, Path(frozen) / "schema.sql")
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    raise FileNotFoundError("schema.sql is missing from this installation")


async def _connect(path: Path, pragmas: Iterable[str]) -> aiosqlite.Connection:
    # isolation_level=None: the sqlite3 module starts no transactions of its own; writes
    # begin theirs explicitly with BEGIN IMMEDIATE.
    conn = aiosqlite.connect(path, isolation_level=None, cached_statements=256)
    try:
        await conn
    except BaseException:
        # A failed connect leaves aiosqlite's thread to stop by itself, and to hand its result
        # to this loop: after asyncio.run has closed it, that is two "Event loop is closed"
        # tracebacks under the CLI's one line. Waited for here, while the loop runs.
        thread = getattr(conn, "_thread", None)  # aiosqlite 0.22's worker thread
        if thread is not None and thread.is_alive():
            await asyncio.to_thread(thread.join, 1.0)
        raise
    try:
        for pragma in pragmas:
            await (_switch_to_wal(conn) if pragma == _WAL else conn.execute(pragma))
    except BaseException:
        await conn.close()
        raise
    return conn


async def _switch_to_wal(conn: aiosqlite.Connection) -> None:
    """Switching a new file to WAL takes an exclusive lock. Connections that race for it
    while each holds a shared lock would deadlock, so SQLite answers one of them SQLITE_BUSY
    at once instead of waiting (https://www.sqlite.org/c3ref/busy_handler.html): try again
    until the busy timeout, as waiting would have."""
    deadline = time.monotonic() + BUSY_TIMEOUT_MS / 1000
    while True:
        try:
            await conn.execute(_WAL)
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.01)


def _statements(script: str) -> Iterator[str]:
    """The statements of a script one by one: the sqlite3 module runs a whole script only by
    committing first, and a migration must run inside the transaction that checked the version.
    complete_statement knows quotes, comments and trigger bodies, so a ';' inside those does not
    end a statement (https://docs.python.org/3/library/sqlite3.html#sqlite3.complete_statement).
    """
    start = 0
    for end, char in enumerate(script):
        if char == ";" and sqlite3.complete_statement(script[start : end + 1]):
            yield script[start : end + 1]
            start = end + 1
    if script[start:].strip():  # a last statement without its ';', or a closing comment
        yield script[start:]


async def _run_script(conn: aiosqlite.Connection, script: str) -> None:
    for statement in _statements(script):
        await conn.execute(statement)


@asynccontextmanager
async def _immediate(conn: aiosqlite.Connection) -> AsyncIterator[None]:
    """One BEGIN IMMEDIATE transaction: committed on exit, rolled back on any error.

    IMMEDIATE takes the write lock before the first read, so a transaction that reads then
    writes never fails with SQLITE_BUSY when another process commits between
    (https://www.sqlite.org/lang_transaction.html). Whatever interrupts it, a cancelled BEGIN
    or COMMIT included, the connection leaves its transaction: the shielded ROLLBACK is queued
    behind every statement already sent to the connection's one thread, and the sqlite3
    module skips it when no transaction is open.
    """
    try:
        await conn.execute("BEGIN IMMEDIATE")
        yield
        await conn.commit()
    except BaseException:
        await asyncio.shield(conn.rollback())
        raise


async def _scalar(conn: aiosqlite.Connection, sql: str) -> Any:
    rows = list(await conn.execute_fetchall(sql))
    return rows[0][0]


async def _step_up(conn: aiosqlite.Connection, version: int, migrations: Sequence[str]) -> None:
    """Moves the database one step up from `version`, inside the caller's transaction."""
    if version > 0:
        await _run_script(conn, migrations[version - FIRST_VERSION])
        await conn.execute(f"PRAGMA user_version = {version + 1}")
        return
    tables = await _scalar(conn, _TABLES)
    if tables == 0:
        # A new file: schema.sql is the latest schema and records its own version.
        await _run_script(conn, schema_path().read_text())
    elif await _scalar(conn, _OUR_TABLE):
        # Our tables without a version: a `.dump` and reload loses user_version. They can
        # only be the first versioned schema's, and the migrations take them on from there.
        await conn.execute(f"PRAGMA user_version = {FIRST_VERSION}")
    else:
        raise SchemaError(
            "the database holds tables but none of experiment-items': "
            "it is not an experiment-items database"
        )


async def upgrade(conn: aiosqlite.Connection, migrations: Sequence[str] = MIGRATIONS) -> int:
    """Brings the database to the last version of `migrations`; returns that version.

    Each step is one BEGIN IMMEDIATE transaction that reads the version first, so several
    workers starting together on one file apply each step once, and a failed step leaves
    the file at the version before it.
    """
    latest = FIRST_VERSION + len(migrations)
    while True:
        async with _immediate(conn):
            version = int(await _scalar(conn, _SCHEMA_VERSION))
            if version > latest:
                raise SchemaError.newer(version, latest)
            if version == latest:
                return version
            await _step_up(conn, version, migrations)
            # A step that records no newer version would repeat for ever.
            if int(await _scalar(conn, _SCHEMA_VERSION)) <= version:
                raise SchemaError(f"the step up from schema version {version} recorded none")


# A write that failed for want of space or permission keeps the health check failing this
# long, or until a write succeeds: every write is failing, very likely, but nothing shows
# when space is freed again unless a write is tried (a ping does not write).
WRITE_FAILURE_SECONDS = 30.0
# SQLite's primary result codes that say no write can succeed (https://www.sqlite.org/rescode.html).
_WRITE_FAILURES = frozenset((sqlite3.SQLITE_FULL, sqlite3.SQLITE_READONLY, sqlite3.SQLITE_IOERR))


class Database:
    """The connections of one worker process, opened once and kept for its lifetime."""

    def __init__(
        self,
        writer: aiosqlite.Connection,
        readers: Sequence[aiosqlite.Connection],
        path: Path | None = None,
        schema_version: int = SCHEMA_VERSION,
    ):
        self.path = path  # the file these connections opened, for health checks
        self.schema_version = schema_version  # the version they were opened at
        # (st_dev, st_ino) of that file when it was opened: a health check that finds another
        # file at `path` knows the connections read one that was replaced or unlinked.
        self.file_identity = _identity(path) if path is not None else None
        self._writer = writer
        self._readers = tuple(readers)
        self._next_reader = itertools.cycle(self._readers).__next__
        self._write_lock = asyncio.Lock()
        # Point reads: the readers no lookup is using, and the keys waiting for one.
        self._idle = list(self._readers)
        self._dispatching = False
        self._answering: set[asyncio.Task[None]] = set()
        self._waiting: dict[tuple[Lookup, Any], dict[Any, list[asyncio.Future[Row | None]]]] = {}
        # (time.monotonic(), why) of the last write, when it failed for space or permission.
        self._write_failure: tuple[float, str] | None = None

    @classmethod
    async def open(
        cls,
        path: Path | str,
        readers: int = 2,
        migrations: Sequence[str] = MIGRATIONS,
        create: bool = True,
    ) -> "Database":
        """Opens `path`, creating it (unless `create` is false) or upgrading it in place to
        the latest schema."""
        path = Path(path)
        if not create and not path.exists():
            # A worker started after the server: its database was made before any worker,
            # so one missing now was moved or removed, and a new file beside the old WAL
            # would split the data between workers.
            raise SchemaError(
                f"no database at {path}: it was moved or removed after the server started; "
                "put it back, or restart the server to start a new one"
            )
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.is_dir():
            raise SchemaError(f"{path} is a folder, not a database file")
        if path.exists() and not os.access(path, os.R_OK):
            raise SchemaError(f"{path} cannot be read by this server (user id {os.geteuid()})")
        # Said plainly before SQLite says "unable to open database file" or "attempt to write
        # a readonly database", or, worse, serves reads and fails every write.
        reason = unwritable(path)
        if reason is not None:
            raise ReadOnlyDatabase(f"it cannot be written: {reason}")
        writer = await _connect(path, _PRAGMAS)
        try:
            version = await upgrade(writer, migrations)
            opened = [await _connect(path, _READER_PRAGMAS) for _ in range(max(1, readers))]
        except BaseException:
            await writer.close()
            raise
        return cls(writer, opened, path, version)

    async def check(self) -> None:
        """Raises unless this database can still be read and written: the file at its path is
        the one it opened, reads as ours at its schema version and is writable (check_file, in
        a thread), its own readers answer, and no write failed for space or permission in the
        last WRITE_FAILURE_SECONDS."""
        if self.path is not None:  # None: no file behind it, nothing to compare
            version = await asyncio.to_thread(check_file, self.path, self.file_identity)
            if version != self.schema_version:
                # Another release migrated the file under this worker, which may misread it.
                raise Unhealthy(
                    f"{self.path} has schema version {version}, but this worker serves "
                    f"version {self.schema_version}: restart the server with the release "
                    "that wrote it"
                )
        await self.fetch_all("SELECT count(*) FROM sqlite_schema")
        failure = self._write_failure
        if failure is not None and time.monotonic() - failure[0] < WRITE_FAILURE_SECONDS:
            seconds = time.monotonic() - failure[0]
            raise Unwritable(f"the last write, {seconds:.0f} s ago, failed: {failure[1]}")

    async def close(self) -> None:
        for conn in (*self._readers, self._writer):
            await conn.close()

    async def fetch_all(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        """Rows of one read-only statement: one hop to a reader's thread and back."""
        rows = await self._next_reader().execute_fetchall(sql, params)
        return rows  # type: ignore[return-value]  # tuples: no row_factory is set

    async def lookup(self, query: "Lookup", scope: Any, key: Any) -> Row | None:
        """The row of `query` for `key` within `scope`, or None: one statement on a reader.

        Lookups wait for the end of the event loop's turn, when the requests that arrived
        together have all asked; then an idle reader answers them all (up to MAX_KEYS a
        statement) with one statement, and lookups that come while every reader is busy wait
        for the next to come free. Each trip to a reader's thread costs more than the lookup
        itself; under load one trip serves many requests.
        """
        found: asyncio.Future[Row | None] = asyncio.get_running_loop().create_future()
        self._waiting.setdefault((query, scope), {}).setdefault(key, []).append(found)
        if self._idle and not self._dispatching:
            self._dispatching = True
            found.get_loop().call_soon(self._dispatch)
        return await found

    def _dispatch(self) -> None:
        self._dispatching = False
        loop = asyncio.get_running_loop()
        while self._idle and self._waiting:
            task = loop.create_task(self._answer_waiting(self._idle.pop()))
            # The loop keeps only a weak reference to a task: this one is kept till it ends.
            self._answering.add(task)
            task.add_done_callback(self._answering.discard)

    async def _answer_waiting(self, reader: aiosqlite.Connection) -> None:
        """Answers the waiting lookups on `reader`, a statement per query and scope, until none
        wait; then the reader is idle again."""
        try:
            while self._waiting:
                (query, scope), keys = _take(self._waiting)
                try:
                    rows = await reader.execute_fetchall(query.sql[len(keys)], (*keys, scope))
                except BaseException as exc:
                    for futures in keys.values():
                        for future in futures:
                            if not future.done():
                                future.set_exception(exc)
                    if not isinstance(exc, Exception):
                        raise
                    continue
                by_key = {row[query.key_column]: row for row in rows}
                for key, futures in keys.items():
                    row = by_key.get(key)
                    for future in futures:
                        if not future.done():  # its request may have been cancelled
                            future.set_result(row)  # type: ignore[arg-type]
        finally:
            self._idle.append(reader)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[aiosqlite.Connection]:
        """The writer inside one BEGIN IMMEDIATE transaction, one writer task at a time."""
        async with self._write_lock:
            try:
                async with _immediate(self._writer):
                    yield self._writer
            except sqlite3.Error as exc:
                if getattr(exc, "sqlite_errorcode", 0) & 0xFF in _WRITE_FAILURES:
                    self._write_failure = (time.monotonic(), str(exc))
                raise
            self._write_failure = None
