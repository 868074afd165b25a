"""Backup and restore through the command line, on real files and a real server."""

import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from app.sqlite.connection import SCHEMA_VERSION
from tests.command import run
from tests.factories import batch, item
from tests.running import running_server

ITEMS = "/api/v1/private/experiments/items"
WRITERS = 4
BATCH_ITEMS = 50
PRELOAD_BATCHES = 20  # of 1000: enough pages that the copy takes a while


def query(path: Path, sql: str) -> list[Any]:
    with closing(sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)) as conn:
        return conn.execute(sql).fetchall()


def item_ids(path: Path) -> set[str]:
    return {bytes(row[0]).hex() for row in query(path, "SELECT id FROM experiment_items")}


def hex_id(uuid: str) -> str:
    return uuid.replace("-", "")


@dataclass
class Writes:
    """Every batch the writers sent, and when each was acknowledged (monotonic seconds)."""

    sent: list[list[str]] = field(default_factory=list)
    acked_at: dict[int, float] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def acked_before(self, moment: float) -> set[str]:
        with self.lock:
            done = [i for i, at in self.acked_at.items() if at < moment]
            return {hex_id(uuid) for i in done for uuid in self.sent[i]}


@contextmanager
def writing(url: str) -> Iterator[Writes]:
    """Writers posting batches to the server until the block ends."""
    writes, stop = Writes(), threading.Event()

    def write() -> None:
        with httpx.Client(base_url=url, timeout=30) as client:
            while not stop.is_set():
                items = [item() for _ in range(BATCH_ITEMS)]
                with writes.lock:
                    writes.sent.append([i["id"] for i in items])
                    number = len(writes.sent) - 1
                assert client.post(ITEMS, json=batch(*items)).status_code == 204
                with writes.lock:
                    writes.acked_at[number] = time.monotonic()

    threads = [threading.Thread(target=write) for _ in range(WRITERS)]
    for thread in threads:
        thread.start()
    try:
        yield writes
    finally:
        stop.set()
        for thread in threads:
            thread.join()


def test_a_backup_taken_during_writes_restores_everything_acknowledged_before_it(
    tmp_path: Path,
) -> None:
    db, copy, restored = tmp_path / "items.db", tmp_path / "backup.db", tmp_path / "back.db"

    with running_server(db, "--workers", "2", "--no-access-log") as url:
        for _ in range(PRELOAD_BATCHES):
            preload = batch(*(item() for _ in range(1000)))
            assert httpx.post(f"{url}{ITEMS}", json=preload, timeout=30).status_code == 204
        with writing(url) as writes:
            while len(writes.acked_at) < 20:  # the writers are well under way
                time.sleep(0.01)
            started = time.monotonic()
            result = run("backup", "--db", str(db), str(copy))
            finished = time.monotonic()
            while not any(at > finished for at in writes.acked_at.values()):
                time.sleep(0.01)  # and still writing after the backup: it blocked nobody

    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"backed up {db} to {copy} (")
    assert any(started < at < finished for at in writes.acked_at.values())  # truly during
    assert run("restore", "--db", str(restored), str(copy)).returncode == 0
    assert query(restored, "PRAGMA integrity_check") == [("ok",)]
    assert query(restored, "PRAGMA user_version") == [(SCHEMA_VERSION,)]
    found = item_ids(restored)
    assert writes.acked_before(started) <= found
    assert len(found) >= PRELOAD_BATCHES * 1000
    # A batch is one transaction: the snapshot holds all of it or none of it.
    for sent in writes.sent:
        assert len({hex_id(uuid) in found for uuid in sent}) == 1
    with running_server(restored) as url:
        some_id = next(iter(writes.acked_before(started)))
        uuid = f"{some_id[:8]}-{some_id[8:12]}-{some_id[12:16]}-{some_id[16:20]}-{some_id[20:]}"
        assert httpx.get(f"{url}{ITEMS}/{uuid}").status_code == 200


def test_a_backup_is_one_self_contained_file(tmp_path: Path) -> None:
    db, copy = tmp_path / "items.db", tmp_path / "out" / "backup.db"
    run("demo", "--db", str(db))

    result = run("backup", "--db", str(db), str(copy))

    assert result.returncode == 0, result.stderr
    assert query(copy, "PRAGMA journal_mode") == [("delete",)]
    assert len(item_ids(copy)) == 60
    assert sorted(p.name for p in copy.parent.iterdir()) == ["backup.db"]


def test_a_backup_does_not_replace_a_file_unless_forced(tmp_path: Path) -> None:
    db, copy = tmp_path / "items.db", tmp_path / "backup.db"
    run("demo", "--db", str(db))
    copy.write_text("yesterday's")

    refused = run("backup", "--db", str(db), str(copy))
    forced = run("backup", "--db", str(db), str(copy), "--force")

    assert refused.returncode == 2
    assert refused.stderr == f"experiment-items: error: {copy} exists: pass --force to replace it\n"
    assert forced.returncode == 0
    assert len(item_ids(copy)) == 60


def test_restore_replaces_the_database_and_its_stale_wal(tmp_path: Path) -> None:
    db, copy = tmp_path / "items.db", tmp_path / "backup.db"
    run("demo", "--db", str(db))
    run("backup", "--db", str(db), str(copy))
    with running_server(db) as url:  # written after the backup: the restore undoes it
        assert httpx.post(f"{url}{ITEMS}", json=batch(item())).status_code == 204
    _leave_a_wal_of_another_database(Path(f"{db}-wal"), tmp_path / "other.db")

    result = run("restore", "--db", str(db), str(copy))

    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"restored {copy} to {db} (")
    assert query(db, "PRAGMA integrity_check") == [("ok",)]
    assert len(item_ids(db)) == 60
    assert query(db, "SELECT name FROM sqlite_schema WHERE name = 'other'") == []


def test_restore_refuses_a_database_a_running_server_holds(tmp_path: Path) -> None:
    db, copy = tmp_path / "items.db", tmp_path / "backup.db"
    run("demo", "--db", str(db))
    run("backup", "--db", str(db), str(copy))

    with running_server(db) as url:
        assert httpx.post(f"{url}{ITEMS}", json=batch(item())).status_code == 204
        result = run("restore", "--db", str(db), str(copy))
        items_after = len(item_ids(db))

    assert result.returncode == 1
    assert result.stderr == (
        f"experiment-items: error: cannot restore {copy}: "
        f"{db} is in use: stop the server before restoring\n"
    )
    assert items_after == 61
    assert sorted(p.name for p in tmp_path.iterdir() if ".partial" in p.name) == []


def test_restore_refuses_a_damaged_backup_and_leaves_the_database(tmp_path: Path) -> None:
    db, copy = tmp_path / "items.db", tmp_path / "backup.db"
    run("demo", "--db", str(db))
    run("backup", "--db", str(db), str(copy))
    before = db.read_bytes()
    damaged = bytearray(copy.read_bytes())
    page_size = int.from_bytes(damaged[16:18])
    damaged[2 * page_size : 4 * page_size] = b"\xa5" * (2 * page_size)  # pages 3 and 4
    copy.write_bytes(bytes(damaged))

    result = run("restore", "--db", str(db), str(copy))

    assert result.returncode == 1
    assert result.stderr.startswith(f"experiment-items: error: cannot restore {copy}: ")
    assert result.stderr.count("\n") == 1
    assert db.read_bytes() == before


def test_restore_refuses_a_backup_of_a_newer_release(tmp_path: Path) -> None:
    db, copy = tmp_path / "items.db", tmp_path / "backup.db"
    run("demo", "--db", str(db))
    run("backup", "--db", str(db), str(copy))
    with closing(sqlite3.connect(copy)) as conn:
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")

    result = run("restore", "--db", str(db), str(copy))

    assert result.returncode == 2
    assert result.stderr == (
        f"experiment-items: error: cannot restore {copy}: it has schema version "
        f"{SCHEMA_VERSION + 1}, newer than this release's {SCHEMA_VERSION}\n"
    )


def test_restore_into_a_new_place_creates_it(tmp_path: Path) -> None:
    db, copy = tmp_path / "items.db", tmp_path / "backup.db"
    run("demo", "--db", str(db))
    run("backup", "--db", str(db), str(copy))
    target = tmp_path / "new" / "items.db"

    result = run("restore", str(copy), EXPERIMENT_ITEMS_DB=str(target))

    assert result.returncode == 0, result.stderr
    assert len(item_ids(target)) == 60


def _leave_a_wal_of_another_database(wal: Path, other: Path) -> None:
    """Puts at `wal` a WAL that holds uncheckpointed writes of another database: what a
    crash or a careless copy leaves, and what SQLite would replay into the next file there."""
    with closing(sqlite3.connect(other, isolation_level=None)) as conn:
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA wal_autocheckpoint = 0")
        conn.execute("CREATE TABLE other (x)")
        conn.execute("INSERT INTO other VALUES (1)")
        wal.write_bytes(Path(f"{other}-wal").read_bytes())
