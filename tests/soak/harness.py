"""Real servers for the reliability tests: start, kill, restart, and look at their file.

Every figure here is scaled by `scaled()`: small in `make test`, large in `make soak`
(which sets SOAK=1).
"""

import hashlib
import os
import signal
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from types import TracebackType

import pytest

from tests.running import free_port, wait_until_up

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

    def __init__(self, db: Path, *args: str, port: int | None = None) -> None:
        self.db = db
        self.args = args
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = db.with_suffix(".log")
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
def serving(db: Path, *args: str) -> Iterator[Server]:
    with Server(db, *args) as server:
        yield server


def fingerprint(db: Path, workspace: str | None = None) -> str:
    """A digest of every row of every table, or of one workspace's rows: equal digests,
    equal stored data."""
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


class Commits:
    """Tells whether anything was committed to the file since the last look, in constant time
    however large it grows: SQLite's data_version changes at every commit by any other
    connection, and at nothing else (https://www.sqlite.org/pragma.html#pragma_data_version)."""

    def __init__(self, db: Path) -> None:
        self.conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, isolation_level=None)
        self.seen = self._version()

    def _version(self) -> int:
        return int(self.conn.execute("PRAGMA data_version").fetchone()[0])

    def since_last_look(self) -> bool:
        version, self.seen = self.seen, self._version()
        return version != self.seen

    def close(self) -> None:
        self.conn.close()


def integrity_check(db: Path) -> str:
    with sqlite3.connect(db) as conn:
        return str(conn.execute("PRAGMA integrity_check").fetchone()[0])


def peak_rss_bytes(pid: int) -> int:
    """The most memory the process has ever held (VmHWM)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise LookupError(f"no VmHWM for process {pid}")
