"""The database file as the operating system and a fresh connection see it: whether it is
still the file a worker opened, reads as ours, and can be written (the health check's
questions), and read-only connections for the operator's commands."""

import os
import sqlite3
from pathlib import Path

BUSY_TIMEOUT_MS = 10_000
# Database.check's own connection gives up on a lock after this, well inside a ping's time.
CHECK_BUSY_TIMEOUT_MS = 1_000

# Litestream makes two tables of its own in a database it replicates, _litestream_seq and
# _litestream_lock (its db.go, DB.init), as soon as the file exists: a new file it reached
# before the server's schema is still a new file, not another application's.
_TABLES = (
    "SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND name NOT GLOB '_litestream_*'"
)
_SCHEMA_VERSION = "PRAGMA user_version"
_OUR_TABLE = "SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND name = 'experiment_items'"


def _sidecars(path: Path) -> tuple[Path, Path]:
    return path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")


def unwritable(path: Path) -> str | None:
    """Why this process could not write the database at `path`, or None. Blocking.

    SQLite grants BEGIN IMMEDIATE on a file it cannot write and fails only at the first page
    written, and it gives new -wal and -shm files the database's mode: a 0444 file, or stale
    0444 sidecars after it is made 0644 again, would serve reads and fail every write. In WAL
    mode SQLite writes the -wal and -shm files beside the database, creating them when
    missing (https://www.sqlite.org/wal.html#the_wal_file): the folder must let it."""
    directory = path.parent
    if os.statvfs(directory).f_flag & os.ST_RDONLY:
        return f"{directory} is on a read-only file system"
    files = (path, *_sidecars(path))
    for file in files:
        if file.exists() and not os.access(file, os.W_OK):
            return f"{file} is read-only to this server (user id {os.geteuid()})"
    missing = next((file for file in files if not file.exists()), None)
    if missing is not None and not os.access(directory, os.W_OK | os.X_OK):
        return (
            f"the folder {directory} is read-only to this server (user id {os.geteuid()}), "
            f"and SQLite must create {missing.name} in it"
        )
    return None


def open_readonly(path: Path) -> sqlite3.Connection:
    """A read-only connection for the operator's commands: it never creates, migrates or
    writes the file, and in WAL mode it reads beside a running server without blocking it."""
    if not path.is_file():
        raise FileNotFoundError(f"no database at {path}")
    conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, isolation_level=None)
    conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    return conn


class Unhealthy(Exception):
    """Why the database a worker serves cannot be read (Database.check)."""

    action = "read"  # what cannot be done: for the health check's message


class Unwritable(Unhealthy):
    """Why the database a worker serves cannot be written (Database.check)."""

    action = "write"


def _check_identity(path: Path, identity: tuple[int, int] | None) -> None:
    try:
        now = _identity(path)
    except FileNotFoundError:
        raise Unhealthy(
            f"the database file {path} was removed since this worker opened it; "
            "put it back or restart the server"
        ) from None
    if identity is not None and now != identity:
        raise Unhealthy(
            f"the database file {path} was replaced by another since this worker opened it; "
            "restart the server to serve the new one"
        )


def check_file(path: Path, identity: tuple[int, int] | None) -> int:
    """Raises unless `path` is still the file this worker opened, a fresh connection reads it
    as our database and this process could write it; returns its schema version. Blocking:
    run it in a thread.

    The worker's own connections cannot tell: they keep reading the inode they opened, and its
    pages from their cache, after the file at `path` is unlinked or replaced."""
    _check_identity(path, identity)
    # mode=ro never creates, migrates or writes the file (https://www.sqlite.org/uri.html).
    # Opening and closing a second connection to the file in this process is safe: SQLite
    # shares one set of POSIX locks per inode among them
    # (https://www.sqlite.org/howtocorrupt.html, section 2.2).
    conn = sqlite3.connect(
        f"{path.resolve().as_uri()}?mode=ro",
        uri=True,
        timeout=CHECK_BUSY_TIMEOUT_MS / 1000,
        isolation_level=None,
    )
    try:
        tables = conn.execute(_OUR_TABLE).fetchone()[0]
        version = conn.execute(_SCHEMA_VERSION).fetchone()[0]
    finally:
        conn.close()
    if tables != 1 or version < 1:
        raise Unhealthy(f"{path} is not an experiment items database")
    # Again after the read: a file swapped in while it was being read must not pass either.
    _check_identity(path, identity)
    reason = unwritable(path)
    if reason is not None:
        raise Unwritable(reason)
    return int(version)


def _identity(path: Path) -> tuple[int, int]:
    """(st_dev, st_ino): which file `path` names now."""
    st = os.stat(path)
    return st.st_dev, st.st_ino
