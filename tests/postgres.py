"""A throwaway PostgreSQL cluster for the tests: initdb'd in a temporary folder, started on a
free port (and a unix socket in that folder), stopped and removed at the end of the session.

It needs PostgreSQL's server binaries (Debian's `postgresql` package: .ci/run installs it);
without them `find_binaries` says so and the PostgreSQL tests skip with that one reason.
initdb refuses to run as root, so as root the cluster runs as the `postgres` user (runuser).
"""

import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path

from tests.running import free_port

SUPERUSER = "postgres"  # the cluster's superuser, trusted on 127.0.0.1 and the socket only
START_SECONDS = 60


class Unavailable(Exception):
    """No cluster can be started here: the reason, for pytest.skip."""


DEBIAN = Path("/usr/lib/postgresql")  # Debian's <version>/bin folders


def find_binaries(debian: Path = DEBIAN) -> Path:
    """The folder of initdb, pg_ctl and postgres: on PATH, else Debian's newest
    /usr/lib/postgresql/<version>/bin."""
    on_path = shutil.which("initdb")
    candidates = [Path(on_path).resolve().parent] if on_path else []
    versions = sorted(
        debian.glob("*/bin"),
        key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0,
        reverse=True,
    )
    for folder in [*candidates, *versions]:
        if all((folder / name).is_file() for name in ("initdb", "pg_ctl", "postgres", "psql")):
            return folder
    raise Unavailable(
        "PostgreSQL's server binaries (initdb, pg_ctl) are not installed: "
        "apt-get install postgresql to run the PostgreSQL tests"
    )


class Cluster:
    """One running cluster; `url(database)` is a libpq URL of one of its databases."""

    def __init__(self, root: Path, binaries: Path, port: int, as_user: Sequence[str]) -> None:
        self.root = root
        self.binaries = binaries
        self.port = port
        self._as_user = list(as_user)
        self.data = root / "data"
        self.log = root / "postgres.log"

    @classmethod
    def start(cls) -> "Cluster":
        binaries = find_binaries()
        root = Path(tempfile.mkdtemp(prefix="experiment-items-pg-"))
        as_user: list[str] = []
        if os.geteuid() == 0:
            try:
                account = pwd.getpwnam(SUPERUSER)
            except KeyError:
                shutil.rmtree(root)
                raise Unavailable(
                    "running as root, and there is no `postgres` user to run initdb as"
                ) from None
            if shutil.which("runuser") is None:
                shutil.rmtree(root)
                raise Unavailable("running as root, and runuser is missing")
            os.chown(root, account.pw_uid, account.pw_gid)
            as_user = ["runuser", "-u", SUPERUSER, "--"]
        cluster = cls(root, binaries, free_port(), as_user)
        try:
            cluster._init_and_start()
        except BaseException:
            cluster.stop()
            raise
        return cluster

    def _run(self, *command: str) -> None:
        done = subprocess.run(
            [*self._as_user, *command],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            timeout=START_SECONDS,
            check=False,
        )
        if done.returncode != 0:
            log = self.log.read_text() if self.log.exists() else ""
            raise RuntimeError(f"{command[0]} failed:\n{done.stdout.decode()}\n{log}")

    def _init_and_start(self) -> None:
        self._run(
            str(self.binaries / "initdb"),
            "--pgdata",
            str(self.data),
            "--username",
            SUPERUSER,
            "--auth",
            "trust",
            "--encoding",
            "UTF8",
        )
        self._start()

    def _start(self) -> None:
        # Small and quick: a test cluster holds little. fsync stays on: the tests' durable
        # 204 is PostgreSQL's own commit, as in production.
        options = (
            f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 "
            "-c max_connections=200 -c shared_buffers=32MB"
        )
        self._run(
            str(self.binaries / "pg_ctl"),
            "--pgdata",
            str(self.data),
            "--log",
            str(self.log),
            "--options",
            options,
            "--wait",
            "--timeout",
            str(START_SECONDS),
            "start",
        )

    def crash_and_restart(self) -> None:
        """Stops the server as a crash would (immediate: no checkpoint, every backend killed;
        the operating system's cache survives, as it would not a power cut), then starts it
        again, which replays the WAL."""
        self._run(str(self.binaries / "pg_ctl"), "--pgdata", str(self.data), "--mode",
                  "immediate", "--wait", "stop")  # fmt: skip
        self._start()

    def psql(self, sql: str, database: str = "postgres") -> str:
        """Runs `sql` through psql as the superuser; its output, unaligned and bare."""
        done = subprocess.run(
            [str(self.binaries / "psql"), "--no-psqlrc", "-XAtq", "-v", "ON_ERROR_STOP=1",
             "-d", self.url(database), "-c", sql],
            capture_output=True, text=True, timeout=START_SECONDS, check=False,
        )  # fmt: skip
        if done.returncode != 0:
            raise RuntimeError(f"psql failed: {done.stderr}")
        return done.stdout.strip()

    def add_password_role(self, name: str, password: str) -> None:
        """A role that must give its password over TCP (SCRAM), whatever the trust for the
        superuser: pg_hba.conf's first matching line decides, and this one goes first."""
        self.psql(f"CREATE ROLE \"{name}\" LOGIN SUPERUSER PASSWORD '{password}'")
        hba = self.data / "pg_hba.conf"
        line = f"host all {name} 127.0.0.1/32 scram-sha-256\n"
        hba.write_text(line + hba.read_text())
        self.psql("SELECT pg_reload_conf()")

    def create_database(self, name: str) -> str:
        """A new empty database; its URL."""
        self.psql(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def drop_database(self, name: str) -> None:
        self.psql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://{SUPERUSER}@127.0.0.1:{self.port}/{database}"

    def socket_url(self, database: str = "postgres") -> str:
        """The same database through the unix socket in the cluster's folder."""
        return f"postgresql://{SUPERUSER}@/{database}?host={self.root}&port={self.port}"

    def stop(self) -> None:
        if (self.data / "postmaster.pid").exists():
            subprocess.run(
                [
                    *self._as_user,
                    str(self.binaries / "pg_ctl"),
                    "--pgdata",
                    str(self.data),
                    "--mode",
                    "immediate",
                    "--wait",
                    "stop",
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                timeout=START_SECONDS,
                check=False,
            )
        shutil.rmtree(self.root, ignore_errors=True)
