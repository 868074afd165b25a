"""The health check, through a real server on a real file: healthy while the worker's file is
the one at its path and reads as our database, unhealthy as soon as it is not."""

import hashlib
import os
import shutil
import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import httpx
import pytest

from app import health
from app.config import Settings
from app.postgres.schema import VERSION_TABLE
from app.sqlite import connection as db_module
from app.store import Store
from tests.factories import batch, item
from tests.running import server_process

ITEMS = "/v1/private/experiments/items"
PINGS = ("/is-alive/ping", "/api/is-alive/ping")
HEALTHY = b'{"message":"Healthy Server","healthy":true}'
ROUNDS = 5  # a worker has several readers, used in turn: every ping must say the same


@pytest.fixture
def url(db_path: Path) -> Iterator[str]:
    """A server on `db_path` holding a few hundred items, in its WAL and its main file."""
    with server_process(db_path, "--no-access-log") as (url, _):
        for _ in range(3):
            items = batch(*[item() for _ in range(100)])
            assert httpx.post(f"{url}{ITEMS}", json=items, timeout=30).status_code == 204
        yield url


def pings(url: str) -> list[httpx.Response]:
    return [httpx.get(f"{url}{path}", timeout=10) for _ in range(ROUNDS) for path in PINGS]


def assert_unhealthy(answers: list[httpx.Response], reason: str) -> None:
    assert {a.status_code for a in answers} == {500}
    assert {a.headers["content-type"] for a in answers} == {"application/json"}
    assert {a.json()["healthy"] for a in answers} == {False}
    for answer in answers:
        assert answer.json()["message"].startswith("Database cannot be read: ")
        assert reason in answer.json()["message"]


def assert_logged_without_traceback(db_path: Path, unhealthy: int) -> None:
    log = db_path.with_suffix(".log").read_text()
    assert "Traceback" not in log
    assert log.count("health check cannot read the database") == unhealthy


def fingerprint(db_path: Path) -> dict[str, str]:
    """Digests of the files that hold the data: the main file and its WAL (the -shm index
    is shared memory that every reader writes to, not stored data)."""
    files = (db_path, db_path.with_name(db_path.name + "-wal"))
    return {f.name: hashlib.sha256(f.read_bytes()).hexdigest() for f in files if f.exists()}


def test_a_readable_database_answers_200_with_the_contract_body(url: str) -> None:
    answers = pings(url)

    assert {a.status_code for a in answers} == {200}
    assert {a.headers["content-type"] for a in answers} == {"application/json"}
    assert {a.content for a in answers} == {HEALTHY}


def test_an_unlinked_database_file_is_reported_unhealthy(db_path: Path, url: str) -> None:
    # The worker's open connections still read the unlinked inode: only the path tells.
    db_path.unlink()
    answers = pings(url)
    alive = httpx.get(f"{url}/is-alive/ver")

    assert_unhealthy(answers, "removed")
    assert not db_path.exists()  # the ping opens read-only: it never creates an empty file there
    assert alive.status_code == 200  # the process stays up to say so
    assert_logged_without_traceback(db_path, unhealthy=len(answers))


def test_a_database_file_replaced_by_another_valid_one_is_reported_unhealthy(
    db_path: Path, url: str, tmp_path: Path
) -> None:
    copy = tmp_path / "copy.db"
    with sqlite3.connect(db_path) as source, sqlite3.connect(copy) as target:
        source.backup(target)  # a consistent copy of a live WAL database
    source.close()
    target.close()
    os.replace(copy, db_path)
    answers = pings(url)

    assert_unhealthy(answers, "replaced")
    assert_logged_without_traceback(db_path, unhealthy=len(answers))


def test_a_database_file_replaced_by_garbage_is_reported_unhealthy(
    db_path: Path, url: str, tmp_path: Path
) -> None:
    garbage = tmp_path / "garbage.db"
    garbage.write_bytes(os.urandom(db_path.stat().st_size))
    os.replace(garbage, db_path)
    answers = pings(url)

    assert_unhealthy(answers, "replaced")


def test_a_database_file_overwritten_in_place_with_garbage_is_reported_unhealthy(
    db_path: Path, url: str
) -> None:
    with db_path.open("r+b") as file:  # same inode: only reading the file itself tells
        file.write(os.urandom(db_path.stat().st_size))
    answers = pings(url)

    assert_unhealthy(answers, "")
    assert_logged_without_traceback(db_path, unhealthy=len(answers))


def test_another_applications_database_in_place_is_reported_unhealthy(
    db_path: Path, url: str, tmp_path: Path
) -> None:
    other = tmp_path / "other.db"
    with sqlite3.connect(other) as conn:
        conn.execute("CREATE TABLE notes (body TEXT)")
    conn.close()
    # Everything into the main file first, so that no page of ours in the WAL hides theirs.
    with sqlite3.connect(db_path) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    with db_path.open("r+b") as file:  # same inode, and a valid SQLite file: but not ours
        file.truncate(0)
        file.write(other.read_bytes())
    answers = pings(url)

    assert_unhealthy(answers, "is not an experiment items database")


def test_pings_never_change_the_stored_data(db_path: Path, url: str) -> None:
    before = fingerprint(db_path)
    identity = (db_path.stat().st_dev, db_path.stat().st_ino)
    listing = sorted(p.name for p in db_path.parent.iterdir())

    for _ in range(10):
        assert {a.status_code for a in pings(url)} == {200}

    assert fingerprint(db_path) == before
    assert (db_path.stat().st_dev, db_path.stat().st_ino) == identity
    assert sorted(p.name for p in db_path.parent.iterdir()) == listing


def test_a_ping_that_finds_the_file_again_says_healthy(
    db_path: Path, url: str, tmp_path: Path
) -> None:
    # Moving the file away and back restores its identity: nothing was lost, nothing to restart.
    aside = tmp_path / "aside.db"
    shutil.move(db_path, aside)
    away = pings(url)
    shutil.move(aside, db_path)
    back = pings(url)

    assert_unhealthy(away, "removed")
    assert {a.content for a in back} == {HEALTHY}


@pytest.mark.anyio
async def test_a_ping_that_hangs_answers_unhealthy_within_its_timeout(
    client: httpx.AsyncClient,
    client_engine: str,
    client_store: tuple[Settings, Store],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A disk that never answers cannot be made on demand: SQLite's file check in its thread
    # stands in for one; on PostgreSQL, a lock that another connection holds on the table
    # that the ping reads.
    release = threading.Event()

    def hang(path: Path, identity: tuple[int, int] | None) -> None:
        release.wait(timeout=30)

    if client_engine == "sqlite":
        monkeypatch.setattr(db_module, "check_file", hang)
    else:
        locker = await asyncpg.connect(str(client_store[0].db))
        await locker.execute(f"BEGIN; LOCK TABLE {VERSION_TABLE} IN ACCESS EXCLUSIVE MODE")
    monkeypatch.setattr(health, "PING_TIMEOUT_SECONDS", 0.2)
    try:
        started = time.monotonic()
        answer = await client.get("/is-alive/ping")
        took = time.monotonic() - started
    finally:
        release.set()
        if client_engine == "postgresql":
            await locker.close()  # its transaction rolled back, its lock let go

    assert (answer.status_code, answer.json()["healthy"]) == (500, False)
    assert answer.json()["message"] == "Database cannot be read: no answer within 0.2 s"
    assert took < 5
