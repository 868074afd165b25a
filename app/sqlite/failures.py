"""SQLite's failures that a client or an operator can act on, said in the contract's error
shape, by SQLite's primary result code (https://www.sqlite.org/rescode.html)."""

import sqlite3

ERROR = sqlite3.Error  # what the engine raises when the database fails

_FAILURES: dict[int, tuple[int, str, dict[str, str]]] = {
    sqlite3.SQLITE_FULL: (
        507,
        "The disk that holds the database is full: nothing was stored. "
        "Free some space and send it again",
        {},
    ),
    sqlite3.SQLITE_READONLY: (
        503,
        "The database is read-only to the server: nothing was stored. Check the permissions "
        "of the database file, its -wal and -shm files and its folder",
        {},
    ),
    # The busy timeout ran out: another process held the write lock all that time.
    sqlite3.SQLITE_BUSY: (
        503,
        "The database is busy with another process's write: nothing was stored. Try again",
        {"Retry-After": "1"},
    ),
}
_PRIMARY_CODE = 0xFF  # extended result codes keep the primary one in their low byte


def describe(exc: Exception) -> tuple[int, str, dict[str, str]] | None:
    """Status, message and headers of a failure this engine knows; None for any other."""
    if not isinstance(exc, sqlite3.Error):
        return None
    return _FAILURES.get(getattr(exc, "sqlite_errorcode", 0) & _PRIMARY_CODE)
