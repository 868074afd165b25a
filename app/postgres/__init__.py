"""The PostgreSQL engine (issue 13): one database that several servers share.

Everything that knows PostgreSQL is in this package: the pool and the migrations
(connection), the DDL (schema), and the Store's verbs by resource (items, experiments,
aggregates, find, bulk, transfer, stream, traces, trace_reads, datasets, item_filters, compare,
prompts, browse). It covers the whole `Store` of app/store.py; and what the commands read
and write beyond it: export's and push's snapshot, stats, and migrate's target (load).

The driver is asyncpg, not psycopg 3: its binary protocol is parsed in Cython, where
psycopg's async connection goes through libpq and more Python per row, which makes a
one-row SELECT round trip its cheapest (asyncpg's published benchmarks; not measured here
against psycopg, whose wheels this project does not install); it prepares each statement
once per connection and keeps it (statement_cache_size), what the GET hot path wants; its
pool is built in, not a second package; its manylinux wheels for CPython 3.11 to 3.13 carry
it whole, with no system libpq to install or bundle, so the PyInstaller single binary stays
self-contained (packaging/experiment-items.spec names its three Cython modules, which import
one another where the analysis cannot see). Importing it takes about a quarter of a second:
app/store.py imports this package only when a PostgreSQL URL is named.
"""

import asyncpg

from app.postgres.connection import SCHEMA_VERSION, Database
from app.postgres.store import PostgresStore

DatabaseError = asyncpg.PostgresError  # what a command catches to say a database failed

__all__ = ["SCHEMA_VERSION", "Database", "DatabaseError", "PostgresStore"]
