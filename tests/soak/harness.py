"""Real servers for the reliability tests: start, kill, restart, and look at their database,
a SQLite file or a PostgreSQL database alike.

Every figure here is scaled by `scaled()`: small in `make test`, large in `make soak`
(which sets SOAK=1).
"""

import asyncio
import hashlib
import os
import signal
import sqlite3
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path
from types import TracebackType
from typing import Any

import asyncpg
import pytest

from tests.running import free_port, wait_until_up

# Where a server keeps its data: a SQLite file, or a PostgreSQL database's URL.
Location = Path | str

SOAK = os.environ.get("SOAK", "") == "1"
STOP_SECONDS = 30


def scaled(quick: int, soak: int) -> int:
    """`quick` in `make test`, `soak` in `make soak`."""
    return soak if SOAK else quick


def report(config: pytest.Config, line: str) -> None:
    """A figure for the terminal, whatever pytest captures: `make soak` prints them."""
    capture = config.pluginmanager.getplugin("capturemanager")
    with capture.global_and_fixture_disabled():
        print(f"\n{line}", file=sys.stderr)


class Server:
    """`experiment-items serve` in its own process group, so that killing it kills every
    worker too, as a power cut or the OOM killer would."""

    def __init__(
        self, db: Location, *args: str, port: int | None = None, log: Path | None = None
    ) -> None:
        self.db = db
        self.args = args
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        if log is None and isinstance(db, Path):
            log = db.with_suffix(".log")
        elif log is None:  # a database elsewhere: the log in a folder of its own
            log = Path(tempfile.mkdtemp(prefix="experiment-items-server-")) / "server.log"
        self.log = log
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> "Server":
        env = {k: v for k, v in os.environ.items() if not k.startswith("EXPERIMENT_ITEMS_")}
        command = [sys.executable, "-m", "app", "serve", "--db", str(self.db)]
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                [*command, "--port", str(self.port), *self.args],
                stdout=out,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,
            )
        wait_until_up(self.url, self.process, self.log)
        return self

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def kill(self) -> None:
        """SIGKILL to the whole group: no shutdown, no flush, no lifespan."""
        assert self.process is not None
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()

    def terminate(self) -> int:
        """SIGTERM, as a service manager stops it; the exit code."""
        self.send(signal.SIGTERM)
        return self.wait()

    def send(self, number: signal.Signals) -> None:
        assert self.process is not None
        self.process.send_signal(number)

    def wait(self) -> int:
        """The exit code, killing the group if it does not come within STOP_SECONDS."""
        assert self.process is not None
        try:
            return self.process.wait(timeout=STOP_SECONDS)
        except subprocess.TimeoutExpired:
            self.kill()
            raise

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            with suppress(subprocess.TimeoutExpired):
                self.terminate()
        # Workers orphaned by a killed supervisor would hold the port and the file.
        if self.process is not None:
            with suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)

    def logs(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def __enter__(self) -> "Server":
        return self.start()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


@contextmanager
def serving(db: Location, *args: str, log: Path | None = None) -> Iterator[Server]:
    with Server(db, *args, log=log) as server:
        yield server


def query(db: Location, sql: str, *params: object) -> list[tuple[Any, ...]]:
    """The rows of one statement on the database, as tuples: `?` parameters on SQLite, `$1`
    on PostgreSQL (where the synchronous driver is not installed: asyncpg in its own loop).
    A statement that writes is committed."""
    return queries(db, [(sql, params)])[0]


def queries(
    db: Location, statements: Sequence[tuple[str, Sequence[object]]]
) -> list[list[tuple[Any, ...]]]:
    """As `query`, for many statements on one connection."""
    if isinstance(db, Path):
        with sqlite3.connect(db) as conn:
            return [[tuple(row) for row in conn.execute(sql, args)] for sql, args in statements]
    return asyncio.run(_pg_queries(db, statements))


async def _pg_queries(
    url: str, statements: Sequence[tuple[str, Sequence[object]]]
) -> list[list[tuple[Any, ...]]]:
    conn = await asyncpg.connect(url)
    try:
        return [[tuple(row) for row in await conn.fetch(sql, *args)] for sql, args in statements]
    finally:
        await conn.close()


# The table of commits that Commits adds to a test database: not the app's data.
COMMITS_TABLE = "test_commits"


def fingerprint(db: Location, workspace: str | None = None) -> str:
    """A digest of every row of every table, or of one workspace's rows: equal digests,
    equal stored data. On either engine the same digest of the same kind of rows: each
    table's name, then each row's repr in a fixed order."""
    if isinstance(db, str):
        return asyncio.run(_pg_fingerprint(db, workspace))
    digest = hashlib.sha256()
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        tables = conn.execute(
            "SELECT name FROM sqlite_schema WHERE type = 'table' ORDER BY name"
        ).fetchall()
        for (table,) in tables:
            sql = f'SELECT * FROM "{table}"'
            params: tuple[str, ...] = ()
            if workspace is not None:
                columns = {row[1] for row in conn.execute(f'PRAGMA table_info("{table}")')}
                if "workspace" not in columns:
                    continue
                sql, params = sql + " WHERE workspace = ?", (workspace,)
            digest.update(table.encode())
            for row in conn.execute(sql + " ORDER BY 1, 2", params):
                digest.update(repr(row).encode())
    return digest.hexdigest()


async def _pg_fingerprint(url: str, workspace: str | None) -> str:
    digest = hashlib.sha256()
    conn = await asyncpg.connect(url)
    try:
        tables = await conn.fetch(
            "SELECT table_name::text FROM information_schema.tables"
            " WHERE table_schema = current_schema() AND table_type = 'BASE TABLE'"
            ' AND table_name <> $1 ORDER BY table_name COLLATE "C"',
            COMMITS_TABLE,
        )
        for (table,) in tables:
            sql, params = f'SELECT * FROM "{table}" AS t', []
            if workspace is not None:
                columns = await conn.fetch(
                    "SELECT 1 FROM information_schema.columns WHERE table_schema ="
                    " current_schema() AND table_name = $1 AND column_name = 'workspace'",
                    table,
                )
                if not columns:
                    continue
                sql, params = sql + " WHERE workspace = $1", [workspace]
            digest.update(table.encode())
            # The whole row as text, byte by byte: a total order of any column types (json
            # has no ordering operator), the same at every look.
            for row in await conn.fetch(sql + ' ORDER BY t::text COLLATE "C"', *params):
                digest.update(repr(tuple(row)).encode())
    finally:
        await conn.close()
    return digest.hexdigest()


class Commits:
    """Tells whether anything was committed to the database since the last look, in constant
    time however large it grows.

    SQLite: its data_version changes at every commit by any other connection, and at nothing
    else (https://www.sqlite.org/pragma.html#pragma_data_version).

    PostgreSQL has no data_version. pg_stat_database.xact_commit counts every transaction,
    autovacuum's and read-only ones too, and is reported late (the statistics collector); a
    fingerprint per look reads the whole database, thousands of times in a fuzz run. So this
    adds to the test database (after the server made its schema; the app is not changed) a
    row-level trigger on every table that appends a row to COMMITS_TABLE: the row is part of
    the writing transaction, so it is there once that commits and never if it rolls back, and
    it changes no row the app reads. Appends do not contend (a single counter row would
    serialise every writer and could deadlock with the app's own locks). The count of the
    table's rows grows exactly when a transaction that changed a row commits."""

    def __init__(self, db: Location) -> None:
        self.sqlite: sqlite3.Connection | None = None
        self.loop: asyncio.AbstractEventLoop | None = None
        self.pg: asyncpg.Connection | None = None
        if isinstance(db, Path):
            self.sqlite = sqlite3.connect(f"file:{db}?mode=ro", uri=True, isolation_level=None)
        else:
            self.loop = asyncio.new_event_loop()
            self.pg = self.loop.run_until_complete(_watch_commits(db))
        self.seen = self._version()

    def _version(self) -> int:
        if self.sqlite is not None:
            return int(self.sqlite.execute("PRAGMA data_version").fetchone()[0])
        assert self.loop is not None
        assert self.pg is not None
        count = self.pg.fetchval(f"SELECT count(*) FROM {COMMITS_TABLE}")
        return int(self.loop.run_until_complete(count))

    def since_last_look(self) -> bool:
        version, self.seen = self.seen, self._version()
        return version != self.seen

    def close(self) -> None:
        if self.sqlite is not None:
            self.sqlite.close()
        if self.loop is not None and self.pg is not None:
            self.loop.run_until_complete(self.pg.close())
            self.loop.close()


async def _watch_commits(url: str) -> asyncpg.Connection:
    """A connection to the database, with Commits' triggers installed on every table."""
    conn: asyncpg.Connection = await asyncpg.connect(url)
    async with conn.transaction():
        await conn.execute(
            f"CREATE TABLE IF NOT EXISTS {COMMITS_TABLE} (n bigserial PRIMARY KEY);"
            f"CREATE OR REPLACE FUNCTION {COMMITS_TABLE}_note() RETURNS trigger"
            " LANGUAGE plpgsql AS $$ BEGIN"
            f" INSERT INTO {COMMITS_TABLE} DEFAULT VALUES; RETURN NULL; END $$"
        )
        tables = await conn.fetch(
            "SELECT table_name::text FROM information_schema.tables"
            " WHERE table_schema = current_schema() AND table_type = 'BASE TABLE'"
            " AND table_name <> $1",
            COMMITS_TABLE,
        )
        for (table,) in tables:
            await conn.execute(
                f"CREATE OR REPLACE TRIGGER {COMMITS_TABLE} AFTER INSERT OR UPDATE OR DELETE"
                f' ON "{table}" FOR EACH ROW EXECUTE FUNCTION {COMMITS_TABLE}_note()'
            )
    return conn


def integrity_check(db: Path) -> str:
    with sqlite3.connect(db) as conn:
        return str(conn.execute("PRAGMA integrity_check").fetchone()[0])


def peak_rss_bytes(pid: int) -> int:
    """The most memory the process has ever held (VmHWM)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise LookupError(f"no VmHWM for process {pid}")
