"""A batch of rows as one statement: INSERT from one array per column, an existing key of the
same workspace replaced, one of another workspace left alone and so missing from RETURNING,
which is how the writer learns of it (READ COMMITTED: never from a read before the write)."""

from collections.abc import Mapping, Sequence
from typing import Any

# Each column's type by table, as the catalog gives it, for the arrays' casts.
COLUMN_TYPES = """
SELECT attname, format_type(atttypid, NULL) FROM pg_attribute
WHERE attrelid = $1::regclass AND attnum > 0 AND NOT attisdropped
"""
_TYPES: dict[str, dict[str, str]] = {}


def upsert(
    table: str,
    columns: Mapping[str, str],
    key: Sequence[str],
    *,
    keep: Sequence[str] = ("created_at", "created_by"),
    update: bool = True,
) -> str:
    """The statement that writes rows of `columns` (name: type) from $1, $2... one array per
    column: a row of an existing key of the same workspace replaces it but for `keep`; with
    `update` false it is left as it is. It returns the keys it wrote. {table} and the columns
    are fixed names, never input."""
    names = ", ".join(columns)
    arrays = ", ".join(f"${n}::{kind}[]" for n, kind in enumerate(columns.values(), start=1))
    kept = {*key, "workspace", *keep}
    sets = ", ".join(f"{c} = excluded.{c}" for c in columns if c not in kept)
    conflict = (
        f"DO UPDATE SET {sets} WHERE x.workspace = excluded.workspace" if update else "DO NOTHING"
    )
    return (
        f"INSERT INTO {table} AS x ({names}) SELECT * FROM unnest({arrays})\n"
        f"ON CONFLICT ({', '.join(key)}) {conflict}\nRETURNING {', '.join(key)}"
    )


async def column_types(conn: Any, table: str, columns: Sequence[str]) -> dict[str, str]:
    """`columns` of `table` with their types, read from the catalog once per process."""
    if table not in _TYPES:
        _TYPES[table] = {name: kind for name, kind in await conn.fetch(COLUMN_TYPES, table)}
    return {column: _TYPES[table][column] for column in columns}


async def write_rows(
    conn: Any, sql: str, columns: Sequence[str], key: Sequence[str], rows: Sequence[Sequence[Any]]
) -> list[tuple[Any, ...]]:
    """Writes `rows` (values in `columns` order) with `sql` (of upsert), a later row of a key
    replacing an earlier one, as SQLite's statement per row leaves them, in key order (two
    writes of the same keys then wait for each other rather than deadlock); the keys that it
    did not write, another workspace's."""
    key_at = [columns.index(c) for c in key]
    last = {tuple(row[at] for at in key_at): row for row in rows}
    if not last:
        return []
    ordered = [last[k] for k in sorted(last)]
    written = await conn.fetch(sql, *([row[at] for row in ordered] for at in range(len(columns))))
    stored = {tuple(row) for row in written}
    return [k for k in sorted(last) if k not in stored]
