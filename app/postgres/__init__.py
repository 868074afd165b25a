"""The PostgreSQL engine (in progress, issue 13): one database that several servers share.

Everything that knows PostgreSQL is in this package: the pool and the migrations
(connection), the DDL (schema), and the Store's verbs by resource (items, experiments,
aggregates, stream). It covers `CoreStore` of app/store.py so far; `open_store` refuses to
serve it until it covers the whole `Store`.

The driver is asyncpg, not psycopg 3: a one-row SELECT is its fastest round trip among
Python's drivers (its binary protocol is parsed in Cython, where psycopg's async connection
goes through libpq and more Python per row); it prepares each statement once per connection
and keeps it (statement_cache_size), which is what the GET hot path wants; its pool is built
in, not a second package; manylinux wheels for CPython 3.11 to 3.13 carry it whole (no
system libpq to install or bundle), which also keeps the PyInstaller single binary
self-contained (its Cython modules are ordinary extension modules).
"""

import asyncpg

from app.config import POSTGRES_SCHEMES
from app.postgres.connection import SCHEMA_VERSION, Database
from app.postgres.store import PostgresStore

DatabaseError = asyncpg.PostgresError  # what a command catches to say a database failed


def is_url(location: object) -> bool:
    """Whether `location` names a PostgreSQL database (a libpq URL) rather than a file."""
    return isinstance(location, str) and location.startswith(POSTGRES_SCHEMES)


__all__ = ["SCHEMA_VERSION", "Database", "DatabaseError", "PostgresStore", "is_url"]
