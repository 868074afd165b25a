"""Health: whether this worker can read its database, and which release it runs."""

import asyncio
import logging
import os
import sqlite3
from pathlib import Path

from starlette.requests import Request
from starlette.responses import Response

from app import __version__
from app.errors import JSON
from app.payloads import Health, Version, encoder
from app.store import Store

log = logging.getLogger("experiment_items")

_HEALTHY = encoder.encode(Health("Healthy Server", True))
_VERSION = encoder.encode(Version(__version__))

# A ping answers within PING_TIMEOUT_SECONDS whatever the disk does; its own connection gives
# up on a lock after BUSY_TIMEOUT_MS, well inside that.
PING_TIMEOUT_SECONDS = 2.0
BUSY_TIMEOUT_MS = 1_000

_OUR_TABLE = "SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND name = 'experiment_items'"
_SCHEMA_VERSION = "PRAGMA user_version"


class Unhealthy(Exception):
    """Why the database this worker serves cannot be read."""


def _check_identity(path: Path, identity: tuple[int, int] | None) -> None:
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise Unhealthy(
            f"the database file {path} was removed since this worker opened it; "
            "put it back or restart the server"
        ) from None
    if identity is not None and (st.st_dev, st.st_ino) != identity:
        raise Unhealthy(
            f"the database file {path} was replaced by another since this worker opened it; "
            "restart the server to serve the new one"
        )


def check_file(path: Path, identity: tuple[int, int] | None) -> None:
    """Raises unless `path` is still the file this worker opened and a fresh connection reads
    it as our database. Blocking: run it in a thread.

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
        timeout=BUSY_TIMEOUT_MS / 1000,
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


async def _check(store: Store) -> None:
    db = store.db
    if db.path is not None:  # None: a database with no file behind it, nothing to compare
        await asyncio.to_thread(check_file, db.path, db.file_identity)
    await store.ping()  # and the worker's own connections still answer


async def ping(request: Request) -> Response:
    store: Store = request.app.state.store
    try:
        # On a timeout the check's thread is left to finish, as threads cannot be stopped: a
        # lock wait ends after BUSY_TIMEOUT_MS, a hung disk whenever the disk answers.
        await asyncio.wait_for(_check(store), PING_TIMEOUT_SECONDS)
    except TimeoutError:
        return _unhealthy(f"no answer within {PING_TIMEOUT_SECONDS:g} s")
    except Exception as exc:
        return _unhealthy(str(exc))
    return Response(_HEALTHY, media_type=JSON)


def _unhealthy(reason: str) -> Response:
    # One line and no traceback: the reason is all an operator needs.
    log.error("health check cannot read the database: %s", reason)
    body = encoder.encode(Health(f"Database cannot be read: {reason}", False))
    return Response(body, 500, media_type=JSON)


async def version(request: Request) -> Response:
    return Response(_VERSION, media_type=JSON)
