"""PostgreSQL's failures that a client or an operator can act on, said in the contract's
error shape, by asyncpg's exception classes (each one SQLSTATE or its class,
https://www.postgresql.org/docs/15/errcodes-appendix.html), as app/sqlite/failures.py says
SQLite's."""

import asyncpg

# What the engine raises when the database fails: the server's errors, the driver's own
# (a connection closed under it), and the socket's (a server that cannot be reached).
ERRORS: tuple[type[Exception], ...] = (
    asyncpg.PostgresError,
    asyncpg.InterfaceError,
    asyncpg.InternalClientError,
    OSError,
)

_UNREACHABLE = (
    503,
    # A connection lost during COMMIT leaves its outcome unknown: no "nothing was stored" here.
    "The database cannot be reached. Try again: a write sent again replaces itself",
    {"Retry-After": "1"},
)
_FAILURES: tuple[tuple[tuple[type[Exception], ...], tuple[int, str, dict[str, str]]], ...] = (
    # PostgreSQL's text cannot hold U+0000 (https://www.postgresql.org/docs/15/datatype-
    # character.html), which SQLite stores: the client's to change, so a 400, and the
    # statement's transaction is rolled back. In a JSON body's values it is stored escaped
    # and is fine; 22P05 is that escape read as jsonb.
    (
        (asyncpg.CharacterNotInRepertoireError,),
        (
            400,
            "A text value holds a NUL character (U+0000), which PostgreSQL cannot store: "
            "nothing was stored. Send the text without it",
            {},
        ),
    ),
    (
        (asyncpg.UntranslatableCharacterError,),
        (
            400,
            "A JSON value holds \\u0000, which PostgreSQL cannot read as JSON text: nothing "
            "was stored. Send the value without it",
            {},
        ),
    ),
    (
        (asyncpg.DiskFullError,),
        (
            507,
            "The disk that holds the database is full: nothing was stored. "
            "Free some space and send it again",
            {},
        ),
    ),
    (
        (asyncpg.ReadOnlySQLTransactionError,),
        (
            503,
            "The database is read-only to the server: nothing was stored. Is the server "
            "pointed at a standby? Point it at the primary",
            {},
        ),
    ),
    # 53200, most often the shared lock table full (id_locks.py bounds what a write takes of
    # it, but other sessions of the database share it): a moment later it may fit.
    (
        (asyncpg.OutOfMemoryError,),
        (
            503,
            "The database is out of shared memory (its lock table, most often): nothing was "
            "stored. Try again; if it lasts, raise PostgreSQL's max_locks_per_transaction",
            {"Retry-After": "1"},
        ),
    ),
    # The server's role may not write a table: as SQLite's file that its user cannot write
    # (app/sqlite/failures.py), the operator's to fix, and the same status.
    (
        (asyncpg.InsufficientPrivilegeError,),
        (
            503,
            "The database refuses the server's role this write: nothing was stored. Grant "
            "the role the privileges on experiment-items' tables",
            {},
        ),
    ),
    # Two transactions in each other's way; the one refused can simply be sent again.
    (
        (asyncpg.SerializationError, asyncpg.DeadlockDetectedError),
        (
            503,
            "The database is busy with another write: nothing was stored. Try again",
            {"Retry-After": "1"},
        ),
    ),
    (
        (
            asyncpg.PostgresConnectionError,
            asyncpg.InterfaceError,
            # What a pooled connection that the server closed says at its next statement
            # (asyncpg 0.32: "cannot switch to state 11; another operation is in progress").
            asyncpg.InternalClientError,
            asyncpg.CannotConnectNowError,
            asyncpg.AdminShutdownError,
            asyncpg.CrashShutdownError,
            asyncpg.TooManyConnectionsError,
            asyncpg.InvalidCatalogNameError,  # the database was dropped
            ConnectionError,
            TimeoutError,
        ),
        _UNREACHABLE,
    ),
    # The rest of class 53 (out of memory, a configuration limit such as
    # max_locks_per_transaction): the database server's to be given more.
    (
        (asyncpg.InsufficientResourcesError,),
        (
            503,
            "The database server is out of resources: nothing was stored. Try again; "
            "if it persists, its log says which",
            {"Retry-After": "1"},
        ),
    ),
)

# A write that failed so keeps the health check failing (Database.check): no write can
# succeed until an operator acts, and a ping does not write to find out. SQLSTATE class 53
# (a full disk, out of resources), 25006 (a read-only database: a standby after a failover,
# default_transaction_read_only) and 42501 (a refused privilege).
WRITE_FAILURES: tuple[type[Exception], ...] = (
    asyncpg.InsufficientResourcesError,
    asyncpg.ReadOnlySQLTransactionError,
    asyncpg.InsufficientPrivilegeError,
)


class Unwritable(Exception):
    """Why the database a worker serves cannot be written (Database.check)."""

    action = "write"  # what cannot be done: for the health check's message


def describe(exc: Exception) -> tuple[int, str, dict[str, str]] | None:
    """Status, message and headers of a failure this engine knows; None for any other."""
    for classes, described in _FAILURES:
        if isinstance(exc, classes):
            return described
    return None
