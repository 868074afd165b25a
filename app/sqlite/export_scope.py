"""What an export of one experiment reads, as SQLite: the temp tables of app/snapshots.py's
scope, filled in the snapshot's read transaction, and the counts of every scope."""

from app.line_columns import COLUMNS
from app.lines import KINDS
from app.snapshots import SCOPE_FILLS, SCOPE_KEYS, is_id


def _create(table: str, key: tuple[str, ...]) -> str:
    columns = ", ".join(f"{c} {'BLOB' if is_id(c) else 'TEXT'}" for c in key)
    return (
        f"CREATE TEMP TABLE export_{table} ({columns}, PRIMARY KEY ({', '.join(key)})) "
        "WITHOUT ROWID"
    )


# Temp tables are found before the main database's by an unqualified name, as the fills
# name them (https://www.sqlite.org/lang_naming.html).
SCOPE_ONE_EXPERIMENT = (
    *(_create(table, key) for table, key in SCOPE_KEYS.items()),
    *(f"INSERT OR IGNORE INTO temp.export_{table} {select}" for table, select in SCOPE_FILLS),
)
COUNTS = {
    False: {
        kind: f"SELECT count(*) FROM {COLUMNS[kind].name} WHERE workspace = ?" for kind in KINDS
    },
    True: {kind: f"SELECT count(*) FROM temp.export_{COLUMNS[kind].name}" for kind in KINDS},
}
