"""The push checkpoint: what a push has copied to one target, in a small SQLite file, so that
an interrupted push goes on where it stopped and the next one copies only what changed."""

import hashlib
import sqlite3
from collections.abc import Iterator, Mapping
from contextlib import closing, contextmanager
from pathlib import Path

from app.records import batched

# The target is recorded once: a checkpoint kept for another target would skip records that
# target never received. Each record pushed is kept as its id and the digest of what was
# sent, so a record changed since is sent again.
SCHEMA = (
    "PRAGMA journal_mode = WAL",
    # A batch lost in a crash is sent again by the next push; the target upserts by id.
    "PRAGMA synchronous = NORMAL",
    "CREATE TABLE IF NOT EXISTS target (one INTEGER PRIMARY KEY CHECK (one = 1), name TEXT)",
    "CREATE TABLE IF NOT EXISTS pushed (id BLOB PRIMARY KEY, digest BLOB NOT NULL) WITHOUT ROWID",
)
FIND_TARGET = "SELECT name FROM target"
SET_TARGET = "INSERT INTO target (one, name) VALUES (1, ?)"
FIND_PUSHED = "SELECT id, digest FROM pushed WHERE id IN ({marks})"
RECORD_PUSHED = """
INSERT INTO pushed (id, digest) VALUES (?, ?)
ON CONFLICT (id) DO UPDATE SET digest = excluded.digest
"""
_IDS_PER_QUERY = 10_000


class CheckpointError(ValueError):
    """The checkpoint file belongs to a push to another target."""


def digest(body: bytes) -> bytes:
    return hashlib.blake2b(body, digest_size=16).digest()


class Checkpoint:
    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def unsent(self, bodies: Mapping[bytes, bytes]) -> dict[bytes, bytes]:
        """The digests of those bodies (by record id) that the target has not received as
        they are now."""
        digests = {key: digest(body) for key, body in bodies.items()}
        sent: dict[bytes, bytes] = {}
        for chunk in batched(digests, _IDS_PER_QUERY):
            sql = FIND_PUSHED.format(marks=", ".join("?" * len(chunk)))
            sent.update(self.conn.execute(sql, chunk).fetchall())
        return {key: value for key, value in digests.items() if sent.get(key) != value}

    def record(self, digests: Mapping[bytes, bytes]) -> None:
        """Records what the target has acknowledged, in one transaction."""
        with self.conn:
            self.conn.executemany(RECORD_PUSHED, digests.items())


@contextmanager
def opened(path: Path, target: str) -> Iterator[Checkpoint]:
    """The checkpoint at `path`, made when missing, for pushes to `target`."""
    with closing(sqlite3.connect(path)) as conn:
        for statement in SCHEMA:
            conn.execute(statement)
        found = conn.execute(FIND_TARGET).fetchone()
        if found is None:
            with conn:
                conn.execute(SET_TARGET, (target,))
        elif found[0] != target:
            raise CheckpointError(
                f"{path} is the checkpoint of a push to {found[0]}: pass another --checkpoint"
            )
        yield Checkpoint(conn)
