"""Each kind of transfer line as a table: its columns in the line's field order, by name
(tables.py holds every table's columns), the codec that turns each field into its column and
back, and the paged SELECT and the as-given UPSERT made from them."""

from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import msgspec
from msgspec import UNSET, Raw, UnsetType

from app import clock, ids
from app.experiment_answers import id_or_unset
from app.lines import Kind, Record, parse_instant
from app.records import json_text
from app.sqlite import tables
from app.sqlite.lookup import Row
from app.sqlite.tables import marks
from app.sqlite.write import Write

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


class _Codec(NamedTuple):
    """How a line's field becomes its column (`store`, raising ValueError with the rule it
    breaks; None for a field that is not stored) and how the column becomes the field."""

    store: Callable[[Any], object] | None
    show: Callable[[Any], Any]


def _stored_id(value: str | UnsetType | None) -> bytes | None:
    if value is UNSET or value is None:
        return None
    key = ids.parse(value)
    if key is None:
        raise ValueError("must be a UUID")
    return key


def _stored_v7(value: str | UnsetType | None) -> bytes | None:
    key = _stored_id(value)
    if key is not None and not ids.is_v7(key):
        raise ValueError("must be a UUID version 7")
    return key


def _stored_instant(value: str | UnsetType | None) -> int | None:
    return None if value is UNSET or value is None else parse_instant(value)


def _shown_instant(ns: int | None) -> str | UnsetType:
    return UNSET if ns is None else clock.format_instant(ns)


def _shown_json(text: str | None) -> Raw | UnsetType:
    # A line of the file ends at a line break. In stored JSON a line break can only be white
    # space between tokens (inside a string it is escaped), so a space in its place keeps
    # the value and the line whole.
    return UNSET if text is None else Raw(text.replace("\r", " ").replace("\n", " ").encode())


def _stored_plain(value: object) -> object:
    return None if value is UNSET else value


def _shown_plain(value: object) -> object:
    return UNSET if value is None else value


def _stored_name(value: str) -> str:
    if not value.strip():
        raise ValueError("must not be blank")
    return value.strip()


def _shown_none(value: object) -> object:
    return UNSET


_tags = msgspec.json.Decoder(list[str])


def _stored_tags(value: list[str] | UnsetType) -> str | None:
    # As dataset_checks.tags_text writes them, but in the order given, repeats kept: as given.
    return None if value is UNSET else msgspec.json.encode(value).decode()


def _shown_tags(text: str | None) -> list[str] | UnsetType:
    return UNSET if text is None else _tags.decode(text)


PLAIN = _Codec(_stored_plain, _shown_plain)
_CODECS = {
    "id": _Codec(_stored_id, id_or_unset),
    "id7": _Codec(_stored_v7, id_or_unset),
    "instant": _Codec(_stored_instant, _shown_instant),
    "json": _Codec(json_text, _shown_json),
    "name": _Codec(_stored_name, _shown_plain),
    "tags": _Codec(_stored_tags, _shown_tags),  # a JSON array of strings, as datasets keep it
    "hidden": _Codec(lambda mode: int(mode == "hidden"), lambda on: "hidden" if on else "default"),
    "joined": _Codec(None, _shown_plain),  # read from another table: a name beside its id
    "joined_id": _Codec(None, id_or_unset),  # an id read again: DatasetItem's dataset_item_id
    "write_only": _Codec(None, _shown_none),  # only read from the file, as POST reads it
}
ITEM_AUDIT = ("created_at", "last_updated_at", "created_by", "last_updated_by")
DESCRIBED = {table.name: table for table in tables.TABLES}
AUDIT_SPEC = "created_at:instant last_updated_at:instant created_by last_updated_by"


@dataclass(frozen=True, slots=True)
class Incoming:
    """One line to import: its record, the values it stores in its table's column order,
    and its line number, which names it in the report."""

    kind: Kind
    record: Record
    values: tuple[Any, ...]
    line: int


Refused = dict[int, str]  # why, by line number
Rows = Callable[[Write, "LineTable", list[Incoming], Refused], Awaitable[list[tuple[Any, ...]]]]


class LineTable:
    """One kind of line: its table; its columns in the line's field order, each written
    `column:codec` (PLAIN when none is named; one that is not stored is an SQL expression);
    and the SQL made from them."""

    def __init__(
        self,
        name: str,
        line: type[Record],
        spec: str,
        *,
        key: tuple[str, ...] = ("id",),
        joins: str = "",
        refs: tuple[tuple[str, tables.Table, str], ...] = (),
        extra: tuple[str, ...] = (),
        rows: Rows | None = None,
    ) -> None:
        columns = [(c, _CODECS[codec] if codec else PLAIN) for c, _, codec in _split(spec)]
        assert len(columns) == len(line.__struct_fields__), name
        described = DESCRIBED[name]
        for field, (column, codec) in zip(line.__struct_fields__, columns, strict=True):
            # A stored field is its column, by name; the line's visibility_mode is `hidden`.
            assert not codec.store or column in (field, "hidden"), f"{name}.{field}: {column}"
        self.name = name
        self.line = line
        self.fields = line.__struct_fields__
        self.codecs = tuple(codec for _, codec in columns)
        self.stored = tuple(column for column, codec in columns if codec.store)
        # (field index, codec.store) of the stored fields: import's inner loop
        self.storing = tuple((at, c.store) for at, (_, c) in enumerate(columns) if c.store)
        self.refs = refs  # (column, table, column there): never ids of another workspace
        self.rows = rows or _rows_as_given
        names = [column for column, _ in columns]
        self.key_at = tuple(names.index(column) for column in key)
        selected = ", ".join(f"t.{c}" if codec.store else c for c, codec in columns)
        self.pages = {
            False: page_sql(PAGE, name, selected, key, joins),
            True: page_sql(PAGE_OF_EXPERIMENT, name, selected, key, joins),
        }
        # Every column as the file gives it, created_* included; never a row of another
        # workspace.
        written = (*self.stored, "workspace", *extra)
        self.upsert = described.upsert(written, keep=(), positional=True)

    def record(self, row: Row) -> Record:
        fields = zip(self.fields, self.codecs, row, strict=True)
        return self.line(**{field: codec.show(value) for field, codec, value in fields})


def _split(spec: str) -> Iterator[tuple[str, str, str]]:
    return (column.partition(":") for column in spec.split())


def page_sql(template: str, table: str, columns: str, key: Sequence[str], joins: str) -> str:
    return template.format(
        table=table,
        columns=columns,
        joins=joins,
        key=", ".join(f"t.{column}" for column in key),
        x_key=", ".join(f"x.{column}" for column in key),
        on=" AND ".join(f"t.{column} = x.{column}" for column in key),
        marks=marks(len(key)),
    )


async def _rows_as_given(
    w: Write, table: LineTable, records: list[Incoming], refused: Refused
) -> list[tuple[Any, ...]]:
    return [(*r.values, w.workspace) for r in records]
