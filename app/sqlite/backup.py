"""Backup and restore: a consistent copy of the live database, and putting one back whole."""

import os
import sqlite3
import tempfile
import time
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass
from pathlib import Path

from app.sqlite.connection import SCHEMA_VERSION, SchemaError
from app.sqlite.files import open_readonly

# The files SQLite keeps beside a database in WAL mode. A -wal left beside a different file
# of the same name would be replayed into it on the next open (https://www.sqlite.org/wal.html).
SIDECARS = ("-wal", "-shm", "-journal")


class BackupError(Exception):
    """A backup or restore that could not complete; nothing was replaced."""


@dataclass(frozen=True, slots=True)
class Copied:
    """What a backup or restore wrote."""

    path: Path
    size_bytes: int
    schema_version: int
    seconds: float


def backup(database: Path, target: Path) -> Copied:
    """Copies `database` to `target` while the server may be writing to it.

    The whole copy is one step of SQLite's online backup, so it reads one snapshot: every
    transaction committed before it started, none after, while writers go on beside it in WAL
    mode (https://www.sqlite.org/backup.html). `target` appears only once complete and checked.
    """
    started = time.monotonic()
    with closing(open_readonly(database)) as source, _staged(target) as staged:
        version = _copy(source, staged)
    return Copied(target, target.stat().st_size, version, time.monotonic() - started)


def restore(backup_file: Path, database: Path) -> Copied:
    """Replaces `database` with a checked copy of `backup_file`, in one rename.

    The server must be stopped: a database that another connection holds open is refused.
    """
    started = time.monotonic()
    database.parent.mkdir(parents=True, exist_ok=True)
    with closing(open_readonly(backup_file)) as source, _staged(database) as staged:
        version = _copy(source, staged)
        _refuse_if_in_use(database)
    return Copied(database, database.stat().st_size, version, time.monotonic() - started)


def check(conn: sqlite3.Connection) -> int:
    """The schema version of a database that is whole and ours; else an error saying why."""
    problems = [row[0] for row in conn.execute("PRAGMA integrity_check(3)")]
    if problems != ["ok"]:
        raise BackupError(f"integrity check failed: {'; '.join(problems)}")
    version = int(conn.execute("PRAGMA user_version").fetchone()[0])
    if version > SCHEMA_VERSION:
        raise SchemaError(
            f"it has schema version {version}, newer than this release's {SCHEMA_VERSION}"
        )
    ours = "SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = 'experiment_items'"
    if conn.execute(ours).fetchone() is None:
        raise SchemaError("it is not an experiment-items database")
    return version


def _copy(source: sqlite3.Connection, staged: Path) -> int:
    with closing(sqlite3.connect(staged, isolation_level=None)) as copy:
        source.backup(copy)  # pages=-1: all pages in one step, from one snapshot
        # The copy keeps the source's WAL flag; a backup is one self-contained file.
        copy.execute("PRAGMA journal_mode = DELETE")
        return check(copy)


@contextmanager
def _staged(target: Path) -> Iterator[Path]:
    """A temporary file beside `target` that becomes `target` when the block succeeds.

    Same folder, so the rename is atomic; synced before and after, so after a crash `target`
    is the old file or the whole new one (https://lwn.net/Articles/457667/).
    """
    fd, name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".partial")
    os.close(fd)
    staged = Path(name)
    # mkstemp makes the file private; the result gets the mode of the file it replaces, or
    # the one SQLite would have created it with.
    os.chmod(staged, target.stat().st_mode if target.exists() else 0o666 & ~_umask())
    try:
        yield staged
        _fsync(staged)
        for suffix in SIDECARS:
            Path(f"{target}{suffix}").unlink(missing_ok=True)
        os.replace(staged, target)
        _fsync(target.parent)
    finally:
        for suffix in ("", *SIDECARS):
            Path(f"{staged}{suffix}").unlink(missing_ok=True)


def _refuse_if_in_use(database: Path) -> None:
    """Raises BackupError when a server (any connection) has `database` open.

    Leaving WAL mode needs every other connection closed: SQLite answers `database is locked`
    while one is open. The file is replaced next, so changing its journal mode costs nothing.
    """
    if not database.exists():
        return
    with closing(sqlite3.connect(database, timeout=0, isolation_level=None)) as conn:
        try:
            conn.execute("PRAGMA journal_mode = DELETE")
        except sqlite3.DatabaseError as exc:
            if "locked" in str(exc) or "busy" in str(exc):
                raise BackupError(
                    f"{database} is in use: stop the server before restoring"
                ) from None
            # Anything else (not a database, damaged): no server can hold it; it is replaced.


def _umask() -> int:
    mask = os.umask(0)  # the only way to read it is to set it
    os.umask(mask)
    return mask


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
