"""The table descriptions of app/sqlite/tables.py against the schema they describe, and the
select lists against the Structs they fill."""

import sqlite3
from pathlib import Path

import msgspec
import pytest

from app.payloads import Item
from app.sqlite.connection import schema_path
from app.sqlite.tables import CACHES, TABLES, Table, select


@pytest.fixture
def schema(tmp_path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(tmp_path / "schema.db")
    conn.executescript(schema_path().read_text())
    return conn


def test_every_table_of_the_schema_is_described_with_its_columns_in_order(
    schema: sqlite3.Connection,
) -> None:
    names = [
        row[0] for row in schema.execute("SELECT name FROM sqlite_schema WHERE type = 'table'")
    ]

    assert sorted(names) == sorted(table.name for table in (*TABLES, *CACHES))
    for table in (*TABLES, *CACHES):
        info = schema.execute(f"PRAGMA table_info({table.name})").fetchall()
        assert table.columns == tuple(row[1] for row in info), table.name
        key = tuple(row[1] for row in sorted(info, key=lambda row: row[5]) if row[5])
        assert table.key == key, table.name


def test_a_statement_naming_a_column_the_table_lacks_fails_when_it_is_made() -> None:
    table = Table("t", "id workspace name")

    with pytest.raises(AssertionError, match="t has no column nmae"):
        table.upsert(("id", "workspace", "nmae"))


def test_every_generated_statement_prepares_against_the_schema(
    schema: sqlite3.Connection,
) -> None:
    for table in TABLES:
        named = dict.fromkeys(table.columns)
        schema.execute(f"EXPLAIN {table.insert()}", named)
        schema.execute(f"EXPLAIN {table.upsert()}", named)
        positional = (None,) * len(table.columns)
        schema.execute(f"EXPLAIN {table.upsert(keep=(), positional=True)}", positional)


def test_a_select_list_out_of_its_structs_field_order_is_refused() -> None:
    fields = {field: f"i.{field}" for field in Item.__struct_fields__}
    swapped = dict(reversed(list(fields.items())))

    assert select(Item, **fields).startswith("i.experiment_id, i.dataset_item_id")
    with pytest.raises(AssertionError, match="Item"):
        select(Item, **swapped)
    with pytest.raises(AssertionError):
        select(msgspec.defstruct("Two", ["a", "b"]), a="x")
