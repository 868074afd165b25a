"""A database the server cannot write, or of another schema version, is refused at start-up
with one line and reported by the health check (reliability probe D4, D5, D8, D13)."""

import asyncio
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from app.postgres.connection import SCHEMA_VERSION as PG_SCHEMA_VERSION
from app.postgres.schema import VERSION_TABLE
from app.sqlite.connection import SCHEMA_VERSION, Database
from tests.conftest import Rows
from tests.factories import batch, item
from tests.postgres import SUPERUSER, Cluster
from tests.running import free_port, running_server, wait_until_up

ITEMS = "/v1/private/experiments/items"
PING = "/is-alive/ping"
NOBODY = 65534


def as_server_user(argv: list[str]) -> list[str]:
    """`argv` run as a user whom permission bits bind: root writes any file whatever its
    mode, so as root the server runs as nobody (setpriv, util-linux)."""
    if os.geteuid() != 0:
        return argv
    if shutil.which("setpriv") is None:
        pytest.skip("running as root without setpriv: permission bits cannot be tested")
    ids = [f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups"]
    return ["setpriv", *ids, *argv]


@pytest.fixture
def folder() -> Iterator[Path]:
    """A folder of the server's user, outside pytest's own (which only root may enter)."""
    path = Path(tempfile.mkdtemp(prefix="hardening-"))
    path.chmod(0o755)
    if os.geteuid() == 0:
        os.chown(path, NOBODY, NOBODY)
    yield path
    path.chmod(0o755)
    shutil.rmtree(path)


def make_database(path: Path) -> None:
    async def open_and_close() -> None:
        db = await Database.open(path, readers=1)
        await db.close()

    asyncio.run(open_and_close())
    if os.geteuid() == 0:
        os.chown(path, NOBODY, NOBODY)


def command(db: Path, port: int) -> list[str]:
    serve = [sys.executable, "-m", "app", "serve", "--db", str(db), "--port", str(port)]
    return as_server_user(serve)


def start(db: Path) -> subprocess.CompletedProcess[str]:
    """`serve` on `db`, expected to refuse it: its exit code and output."""
    return subprocess.run(command(db, free_port()), capture_output=True, text=True, timeout=60)


def assert_refused_in_one_line(done: subprocess.CompletedProcess[str], reason: str) -> None:
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1, done.stderr
    assert done.stderr.startswith("experiment-items: error: cannot open database ")
    assert reason in done.stderr
    assert "Traceback" not in done.stderr


def test_a_read_only_database_file_is_refused_at_start(folder: Path) -> None:
    db = folder / "items.db"
    make_database(db)
    db.chmod(0o444)

    done = start(db)

    assert_refused_in_one_line(done, f"it cannot be written: {db} is read-only to this server")


def test_stale_read_only_sidecars_are_refused_naming_them(folder: Path) -> None:
    db = folder / "items.db"
    make_database(db)
    for name in ("items.db-wal", "items.db-shm"):  # as SQLite left them after a 0444 start
        (folder / name).touch(0o444)
        if os.geteuid() == 0:
            os.chown(folder / name, NOBODY, NOBODY)

    done = start(db)

    assert_refused_in_one_line(done, f"{folder / 'items.db-wal'} is read-only to this server")


def test_a_read_only_folder_is_refused_naming_the_folder(folder: Path) -> None:
    db = folder / "items.db"
    make_database(db)
    folder.chmod(0o555)

    done = start(db)

    assert_refused_in_one_line(
        done, f"the folder {folder} is read-only to this server (user id {os.geteuid() or NOBODY})"
    )
    assert "items.db-wal" in done.stderr


def test_a_folder_or_an_unreadable_file_is_refused_saying_which(folder: Path) -> None:
    unreadable = folder / "items.db"
    make_database(unreadable)
    unreadable.chmod(0o222)

    as_folder = start(folder)
    as_unreadable = start(unreadable)

    assert_refused_in_one_line(as_folder, f"{folder} is a folder, not a database file")
    assert_refused_in_one_line(as_unreadable, f"{unreadable} cannot be read by this server")


def test_a_file_sqlite_cannot_open_is_one_line_without_the_threads_tracebacks(
    folder: Path,
) -> None:
    # A link to a folder that does not exist passes every check before SQLite's own open.
    link = folder / "items.db"
    link.symlink_to(folder / "missing" / "items.db")

    # The thread's answer races the loop's closing: a few starts, to meet the race.
    for _ in range(8):
        done = start(link)

        assert_refused_in_one_line(done, "unable to open database file")
        assert "Event loop is closed" not in done.stderr


def test_health_reports_a_database_made_read_only_while_serving(folder: Path) -> None:
    db = folder / "items.db"
    make_database(db)
    log = folder / "server.log"
    url = f"http://127.0.0.1:{free_port()}"
    with log.open("wb") as out:
        process = subprocess.Popen(
            command(db, int(url.rsplit(":", 1)[1])),
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        try:
            wait_until_up(url, process, log)
            db.chmod(0o444)  # the next start would fail: say so now
            unhealthy = httpx.get(f"{url}{PING}", timeout=10)
            db.chmod(0o644)
            healthy = httpx.get(f"{url}{PING}", timeout=10)
        finally:
            process.terminate()
            process.wait(timeout=20)

    assert unhealthy.status_code == 500
    assert unhealthy.json() == {
        "message": "Database cannot be written: "
        f"{db} is read-only to this server (user id {os.geteuid() or NOBODY})",
        "healthy": False,
    }
    assert healthy.status_code == 200
    assert log.read_text().count("health check cannot write the database") == 1


# --- Through the app, in this process -----------------------------------------------------


@pytest.mark.sqlite_only("SQLite's max_page_count stands in for a full disk; PostgreSQL has none")
@pytest.mark.anyio
async def test_health_reports_a_full_disk_until_a_write_succeeds(
    client: httpx.AsyncClient, db: Database
) -> None:
    writer = db._writer
    pages = (await writer.execute_fetchall("PRAGMA page_count"))[0][0]  # type: ignore[index]
    await writer.execute(f"PRAGMA max_page_count = {pages}")
    assert (await client.post(ITEMS, json=batch(*[item() for _ in range(1000)]))).status_code == 507

    full = await client.get(PING)
    await writer.execute("PRAGMA max_page_count = 1073741823")
    written = await client.post(ITEMS, json=batch(item()))
    healthy = await client.get(PING)

    assert full.status_code == 500
    assert full.json() == {
        "message": "Database cannot be written: the last write, 0 s ago, failed: "
        "database or disk is full",
        "healthy": False,
    }
    assert written.status_code == 204
    assert healthy.status_code == 200


@pytest.mark.anyio
async def test_health_reports_a_schema_version_changed_under_the_server(
    client: httpx.AsyncClient, client_engine: str, client_rows: Rows, db_path: Path
) -> None:
    # A newer release migrated the database in place while this one serves it.
    if client_engine == "sqlite":
        await client_rows(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    else:
        await client_rows(f"UPDATE {VERSION_TABLE} SET version = {PG_SCHEMA_VERSION + 1}")

    answer = await client.get(PING)

    # SQLite names its file; PostgreSQL says "the database", as its URL may hold a password.
    database = db_path if client_engine == "sqlite" else "the database"
    version = SCHEMA_VERSION if client_engine == "sqlite" else PG_SCHEMA_VERSION
    assert answer.status_code == 500
    assert answer.json() == {
        "message": f"Database cannot be read: {database} has schema version {version + 1}, "
        f"but this worker serves version {version}: restart the server with the release "
        "that wrote it",
        "healthy": False,
    }


def test_a_failed_connect_leaves_no_sqlite_thread_to_answer_a_closed_loop(folder: Path) -> None:
    # The deterministic half of the test above: the worker thread is gone before the loop
    # that would receive its answer can close.
    link = folder / "items.db"
    link.symlink_to(folder / "missing" / "items.db")
    alive: list[str] = []

    async def open_it() -> None:
        with pytest.raises(sqlite3.OperationalError):
            await Database.open(link)
        alive.extend(t.name for t in threading.enumerate() if "_connection_worker" in t.name)

    asyncio.run(open_it())

    assert alive == []


# --- PostgreSQL, through a real server ----------------------------------------------------


@pytest.fixture
def role_db(pg_cluster: Cluster, tmp_path: Path) -> Iterator[tuple[str, str]]:
    """A new database owned by a new role that is no superuser (a superuser passes every
    privilege check): its name, and its URL as that role."""
    name = f"health_{tmp_path.name}".replace("-", "_")[:60]
    pg_cluster.psql(f'CREATE ROLE "{name}" LOGIN')
    pg_cluster.psql(f'CREATE DATABASE "{name}" OWNER "{name}"')
    yield name, pg_cluster.url(name).replace(f"{SUPERUSER}@", f"{name}@")
    pg_cluster.drop_database(name)
    pg_cluster.psql(f'DROP ROLE "{name}"')


def test_health_reports_a_write_refused_by_postgresql_until_a_write_succeeds(
    pg_cluster: Cluster, role_db: tuple[str, str], tmp_path: Path
) -> None:
    name, db = role_db
    with running_server(db, log=tmp_path / "server.log") as url:
        pg_cluster.psql(f'REVOKE INSERT ON experiment_items FROM "{name}"', name)
        refused = httpx.post(f"{url}{ITEMS}", json=batch(item()))
        unhealthy = httpx.get(f"{url}{PING}")
        pg_cluster.psql(f'GRANT INSERT ON experiment_items TO "{name}"', name)
        still = httpx.get(f"{url}{PING}")  # a ping does not write: nothing shows it can
        written = httpx.post(f"{url}{ITEMS}", json=batch(item()))
        healthy = httpx.get(f"{url}{PING}")
    log = (tmp_path / "server.log").read_text()

    assert refused.status_code == 503
    assert refused.json() == {
        "code": 503,
        "message": "The database refuses the server's role this write: nothing was stored. "
        "Grant the role the privileges on experiment-items' tables",
    }
    assert unhealthy.status_code == 500
    assert unhealthy.json() == {
        "message": "Database cannot be written: the last write, 0 s ago, failed: "
        "permission denied for table experiment_items",
        "healthy": False,
    }
    assert still.json() == unhealthy.json()
    assert written.status_code == 204
    assert healthy.status_code == 200
    assert "Traceback" not in log
    assert log.count("health check cannot write the database") == 2


def test_health_reports_a_write_to_a_read_only_postgresql_database(
    pg_url: str, pg_cluster: Cluster, tmp_path: Path
) -> None:
    name = pg_url.rsplit("/", 1)[1]
    with running_server(pg_url, log=tmp_path / "first.log") as url:  # makes the schema
        assert httpx.post(f"{url}{ITEMS}", json=batch(item())).status_code == 204
    # As a standby, or a database an operator set read-only: every new session is.
    pg_cluster.psql(f'ALTER DATABASE "{name}" SET default_transaction_read_only = on')
    with running_server(pg_url, log=tmp_path / "second.log") as url:
        healthy = httpx.get(f"{url}{PING}")
        refused = httpx.post(f"{url}{ITEMS}", json=batch(item()))
        unhealthy = httpx.get(f"{url}{PING}")

    assert healthy.status_code == 200  # reads go on
    assert refused.status_code == 503
    assert refused.json()["message"].startswith(
        "The database is read-only to the server: nothing was stored."
    )
    assert unhealthy.status_code == 500
    assert unhealthy.json() == {
        "message": "Database cannot be written: the last write, 0 s ago, failed: "
        "cannot execute INSERT in a read-only transaction",
        "healthy": False,
    }
