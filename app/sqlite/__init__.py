"""The SQLite engine: one database file, WAL, one writer and a few readers per worker.

Everything that knows SQLite is in this package (schema.sql aside): the connections and
migrations (connection), the table descriptions (tables), the Store's verbs by resource
(items, experiments, bulk, stream), export and import (transfer), backup and restore,
stats, and push's checkpoint file. Nothing outside it imports sqlite3 or aiosqlite.
"""

import sqlite3

from app.sqlite.connection import SCHEMA_VERSION, Database, SchemaError
from app.sqlite.store import SqliteStore

DatabaseError = sqlite3.Error  # what a command catches to say a database failed, in one line

__all__ = ["SCHEMA_VERSION", "Database", "DatabaseError", "SchemaError", "SqliteStore"]
