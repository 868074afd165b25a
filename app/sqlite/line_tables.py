"""Each kind of transfer line as a SQLite table: the columns of app/line_columns.py, and the
paged SELECT and the as-given UPSERT made from them."""

from collections.abc import Awaitable, Callable
from typing import Any

from app.line_columns import AUDIT_SPEC, COLUMNS, ITEM_AUDIT, Incoming, LineColumns, Refused
from app.lines import Kind
from app.snapshots import JOINS, page_sql, selected
from app.sqlite import tables
from app.sqlite.lookup import Row
from app.sqlite.tables import marks
from app.sqlite.write import Write

__all__ = ["AUDIT_SPEC", "ITEM_AUDIT", "PAGE", "PAGE_OF_EXPERIMENT", "Incoming", "LineTable",
           "Refused"]  # fmt: skip

# The unary + keeps the planner on the primary key: an index that starts with the workspace
# would have it sort the whole workspace for every page (see STREAM_ITEMS).
PAGE = """
SELECT {columns} FROM {table} AS t {joins}
WHERE +t.workspace = ? AND ({key}) > ({marks}) ORDER BY {key} LIMIT ?
"""
# Driven by the TEMP table of the experiment's keys in their order: each page is one range of
# it and one primary-key lookup per row, where `t.id IN temp...` would read the whole TEMP
# table again for every page.
PAGE_OF_EXPERIMENT = """
SELECT {columns} FROM temp.export_{table} AS x JOIN {table} AS t ON {on} {joins}
WHERE +t.workspace = ? AND ({x_key}) > ({marks}) ORDER BY {x_key} LIMIT ?
"""
DESCRIBED = {table.name: table for table in tables.TABLES}
Rows = Callable[[Write, "LineTable", list[Incoming], Refused], Awaitable[list[tuple[Any, ...]]]]


class LineTable:
    """One kind of line (app/line_columns.py) as its SQLite table: the columns it reads and
    writes, and the SQL made from them."""

    def __init__(self, kind: Kind, *, rows: Rows | None = None) -> None:
        columns: LineColumns = COLUMNS[kind]
        described = DESCRIBED[columns.name]
        self.name = columns.name
        self.columns = columns
        self.fields = columns.fields
        self.stored = columns.stored
        self.storing = columns.storing
        self.key_at = columns.key_at
        # (column, table, column there): never ids of another workspace
        self.refs = tuple((c, DESCRIBED[other], o) for c, other, o in columns.refs)
        self.rows = rows or _rows_as_given
        joins = JOINS.get(kind, "")
        self.pages = {
            scoped: page_sql(template, self.name, selected(columns), columns.key, joins,
                             marks(len(columns.key)))
            for scoped, template in ((False, PAGE), (True, PAGE_OF_EXPERIMENT))
        }  # fmt: skip
        # Every column as the file gives it, created_* included; never a row of another
        # workspace.
        written = (*self.stored, "workspace", *columns.extra)
        self.upsert = described.upsert(written, keep=(), positional=True)

    def record(self, row: Row) -> Any:
        return self.columns.record(row)


async def _rows_as_given(
    w: Write, table: LineTable, records: list[Incoming], refused: Refused
) -> list[tuple[Any, ...]]:
    return [(*r.values, w.workspace) for r in records]
