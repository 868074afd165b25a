"""The storage of export, import and push: each kind of line as a table, read one page at a
time from a snapshot and written as the file gives it."""

import sqlite3
from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextlib import closing, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import msgspec
from msgspec import UNSET, Raw, UnsetType

from app import clock, ids
from app.lines import (
    KINDS,
    ExperimentLine,
    ItemLine,
    Kind,
    NamedLine,
    Record,
    ScoreLine,
    SpanLine,
    TraceLine,
    parse_instant,
)
from app.payloads import ItemWrite
from app.records import Conflict, NotFound, json_text, name_key
from app.sqlite import tables
from app.sqlite.connection import Database, Row, open_readonly
from app.sqlite.experiments import id_or_unset
from app.sqlite.items import UPSERT_ITEM
from app.sqlite.tables import marks
from app.sqlite.write import Write

# # app/lines.py is the file; each kind of line is one table here (_TABLES), described once by
# its columns in the line's field order, with the codec that turns each field into its column
# and back. The paged SELECT and the UPSERT of every kind are made from that description.
#
# Export and push read one snapshot through a read-only sqlite3 connection (db.open_readonly:
# it never writes the file, and in WAL mode reads beside a running server), one page at a time
# in primary-key order, so that memory stays flat however large the workspace. For one
# experiment, the keys of what it refers to are first copied into TEMP tables, which then drive
# the same paged reads. Import writes through the Database as the API does, one transaction per
# batch, keeping every value as the file gives it: ids, audit fields, times to the nanosecond.
# Each line's fields are columns of its table by name (tables.py holds the tables' columns):
# a field that is not stored there is named with the SQL expression that reads it.

PAGE_ROWS = 1000


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
COUNT_ROWS = "SELECT count(*) FROM {table} WHERE workspace = ?"
COUNT_ROWS_OF_EXPERIMENT = "SELECT count(*) FROM temp.export_{table}"
FIND_IN_WORKSPACE = "SELECT id FROM {table} WHERE workspace = ? AND id IN ({marks})"

# The keys of one experiment and of what it refers to: its items, their traces, the traces'
# spans and scores, its dataset, and every project any of them names.
SCOPE_ONE_EXPERIMENT = (
    "CREATE TEMP TABLE export_experiments (id BLOB PRIMARY KEY) WITHOUT ROWID",
    """INSERT INTO temp.export_experiments
       SELECT id FROM experiments WHERE workspace = :workspace AND id = :experiment""",
    "CREATE TEMP TABLE export_experiment_items (id BLOB PRIMARY KEY) WITHOUT ROWID",
    """INSERT INTO temp.export_experiment_items SELECT id FROM experiment_items
       WHERE workspace = :workspace AND experiment_id = :experiment""",
    "CREATE TEMP TABLE export_traces (id BLOB PRIMARY KEY) WITHOUT ROWID",
    """INSERT OR IGNORE INTO temp.export_traces SELECT trace_id FROM experiment_items
       WHERE workspace = :workspace AND experiment_id = :experiment""",
    "CREATE TEMP TABLE export_spans (id BLOB PRIMARY KEY) WITHOUT ROWID",
    """INSERT INTO temp.export_spans SELECT s.id FROM temp.export_traces AS x
       JOIN spans AS s ON s.workspace = :workspace AND s.trace_id = x.id""",
    """CREATE TEMP TABLE export_feedback_scores (trace_id BLOB, name TEXT,
       PRIMARY KEY (trace_id, name)) WITHOUT ROWID""",
    """INSERT INTO temp.export_feedback_scores SELECT f.trace_id, f.name
       FROM temp.export_traces AS x JOIN feedback_scores AS f ON f.trace_id = x.id
       WHERE f.workspace = :workspace""",
    "CREATE TEMP TABLE export_datasets (id BLOB PRIMARY KEY) WITHOUT ROWID",
    """INSERT INTO temp.export_datasets SELECT dataset_id FROM experiments
       WHERE workspace = :workspace AND id = :experiment""",
    "CREATE TEMP TABLE export_projects (id BLOB PRIMARY KEY) WITHOUT ROWID",
    """INSERT OR IGNORE INTO temp.export_projects SELECT project_id FROM experiments
       WHERE workspace = :workspace AND id = :experiment AND project_id IS NOT NULL""",
    """INSERT OR IGNORE INTO temp.export_projects SELECT project_id FROM experiment_items
       WHERE workspace = :workspace AND experiment_id = :experiment AND project_id IS NOT NULL""",
    """INSERT OR IGNORE INTO temp.export_projects SELECT t.project_id FROM temp.export_traces
       AS x JOIN traces AS t ON t.id = x.id WHERE t.workspace = :workspace""",
    """INSERT OR IGNORE INTO temp.export_projects SELECT s.project_id FROM temp.export_spans
       AS x JOIN spans AS s ON s.id = x.id""",
)

# What push sends of an item: the API's write shape, its project by name (the target's
# projects have ids of their own), the item's project else its trace's, as GET shows it.
PUSH_ITEM_COLUMNS = "t.experiment_id, t.dataset_item_id, t.trace_id, t.id, p.name"
PUSH_ITEM_JOINS = """
LEFT JOIN traces AS tr ON tr.id = t.trace_id AND tr.workspace = t.workspace
LEFT JOIN projects AS p ON p.id = coalesce(t.project_id, tr.project_id)
    AND p.workspace = t.workspace
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


PLAIN = _Codec(_stored_plain, _shown_plain)
_CODECS = {
    "id": _Codec(_stored_id, id_or_unset),
    "id7": _Codec(_stored_v7, id_or_unset),
    "instant": _Codec(_stored_instant, _shown_instant),
    "json": _Codec(json_text, _shown_json),
    "name": _Codec(_stored_name, _shown_plain),
    "hidden": _Codec(lambda mode: int(mode == "hidden"), lambda on: "hidden" if on else "default"),
    "joined": _Codec(None, _shown_plain),  # read from another table: a name beside its id
    "write_only": _Codec(None, _shown_none),  # only read from the file, as POST reads it
}
ITEM_AUDIT = ("created_at", "last_updated_at", "created_by", "last_updated_by")
_DESCRIBED = {table.name: table for table in tables.TABLES}
_AUDIT = "created_at:instant last_updated_at:instant created_by last_updated_by"


@dataclass(frozen=True, slots=True)
class Incoming:
    """One line to import: its record, the values it stores in its table's column order,
    and its line number, which names it in the report."""

    kind: Kind
    record: Record
    values: tuple[Any, ...]
    line: int


Refused = dict[int, str]  # why, by line number
_Rows = Callable[[Write, "_Table", list[Incoming], Refused], Awaitable[list[tuple[Any, ...]]]]


class _Table:
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
        rows: _Rows | None = None,
    ) -> None:
        columns = [(c, _CODECS[codec] if codec else PLAIN) for c, _, codec in _split(spec)]
        assert len(columns) == len(line.__struct_fields__), name
        described = _DESCRIBED[name]
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
            False: _page(PAGE, name, selected, key, joins),
            True: _page(PAGE_OF_EXPERIMENT, name, selected, key, joins),
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


def _page(template: str, table: str, columns: str, key: Sequence[str], joins: str) -> str:
    return template.format(
        table=table,
        columns=columns,
        joins=joins,
        key=", ".join(f"t.{column}" for column in key),
        x_key=", ".join(f"x.{column}" for column in key),
        on=" AND ".join(f"t.{column} = x.{column}" for column in key),
        marks=marks(len(key)),
    )


def incoming(kind: Kind, record: Record, line: int) -> Incoming:
    """The row that a line stores; ValueError saying which field breaks which rule."""
    table = _TABLES[kind]
    if isinstance(record, ItemLine) and record.id in (UNSET, None):
        record = msgspec.structs.replace(record, id=ids.to_str(ids.uuid7()))  # as POST does
    fields, values = msgspec.structs.astuple(record), []
    for at, store in table.storing:
        try:
            values.append(store(fields[at]))
        except ValueError as exc:
            raise ValueError(f"bad value: {kind}.{table.fields[at]} {exc}") from None
    if isinstance(record, ItemLine) and len({v is None for v in values[-4:]}) > 1:
        raise ValueError(f"bad value: {kind} has some of {', '.join(ITEM_AUDIT)}: all or none")
    return Incoming(kind, record, tuple(values), line)


async def _rows_as_given(
    w: Write, table: _Table, records: list[Incoming], refused: Refused
) -> list[tuple[Any, ...]]:
    return [(*r.values, w.workspace) for r in records]


async def _named_rows(
    w: Write, table: _Table, records: list[Incoming], refused: Refused
) -> list[tuple[Any, ...]]:
    """Projects or datasets, but none that takes a name another one holds: names are unique
    in a workspace (case-insensitively)."""
    owners = await w.owners(table.name, {name_key(r.values[1]) for r in records})
    rows = []
    for r in records:
        key, name = r.values[0], r.values[1]
        owner = owners.setdefault(name_key(name), key)
        if owner != key:
            refused[r.line] = f"name {name!r} belongs to {ids.to_str(owner)} in {table.name}"
        else:
            rows.append((*r.values, w.workspace, name_key(name)))
    return rows


async def _experiment_rows(
    w: Write, table: _Table, records: list[Incoming], refused: Refused
) -> list[tuple[Any, ...]]:
    """Experiments; the dataset of one is made from its `dataset_name` when the workspace
    has no dataset with its `dataset_id` (a file of experiments as GET shows them)."""
    at = table.stored.index("dataset_id")
    wanted = {r.values[at]: r.record for r in records if isinstance(r.record, ExperimentLine)}
    sql = FIND_IN_WORKSPACE.format(table="datasets", marks=marks(len(wanted)))
    known = {key for (key,) in await w.conn.execute_fetchall(sql, (w.workspace, *wanted))}
    made = {key: record for key, record in wanted.items() if key not in known}
    owners = await w.owners("datasets", {name_key(e.dataset_name) for e in made.values()})
    datasets, taken = [], {}
    for key, e in made.items():
        name = e.dataset_name.strip()
        owner = owners.setdefault(name_key(name), key)
        if owner != key:
            taken[key] = f"its dataset {name!r} is {ids.to_str(owner)} in this workspace"
            continue
        created_at = parse_instant(e.created_at)
        audit = (created_at, created_at, e.created_by, e.created_by)
        datasets.append((key, name, *audit, w.workspace, name_key(name)))
    await w.conn.executemany(_TABLES["dataset"].upsert, datasets)
    rows = []
    for r in records:
        if r.values[at] in taken:
            refused[r.line] = taken[r.values[at]]
        else:
            rows.append((*r.values, w.workspace))
    return rows


async def _item_rows(
    w: Write, table: _Table, records: list[Incoming], refused: Refused
) -> list[tuple[Any, ...]]:
    """Items: their project by `project_name` when it is given, as POST finds it (created
    when missing); those without audit fields are written as POST writes them."""
    names = [name for r in records if (name := _project_name(r.record))]
    projects = await w.named("projects", names)
    rows, posted = [], []
    for r in records:
        values = dict(zip(table.stored, r.values, strict=True))
        if name := _project_name(r.record):
            values["project_id"] = projects[name_key(name)]
        if values["created_at"] is None:
            posted.append({**values, **w.stamp})
        else:
            rows.append((*values.values(), w.workspace))
    await w.conn.executemany(UPSERT_ITEM, posted)
    return rows


def _project_name(record: Record) -> str | None:
    name = record.project_name if isinstance(record, ItemLine) else None
    return name.strip() if isinstance(name, str) and name.strip() else None


def _named_table(name: str) -> _Table:
    """Projects or datasets: the same columns, and a name key derived from the name."""
    spec = f"id:id name:name {_AUDIT}"
    refs = (("id", _DESCRIBED[name], "id"),)
    return _Table(name, NamedLine, spec, refs=refs, extra=("name_key",), rows=_named_rows)


_TABLES: dict[Kind, _Table] = {
    "project": _named_table("projects"),
    "dataset": _named_table("datasets"),
    "experiment": _Table(
        "experiments",
        ExperimentLine,
        "id:id7 d.name:joined dataset_id:id project_id:id p.name:joined name:name "
        "metadata:json tags:json type evaluation_method optimization_id:id "
        f"{_AUDIT} status experiment_scores:json prompt_version:json prompt_versions:json "
        "dataset_version_id:id",
        joins="JOIN datasets AS d ON d.id = t.dataset_id AND d.workspace = t.workspace "
        "LEFT JOIN projects AS p ON p.id = t.project_id AND p.workspace = t.workspace",
        refs=(
            ("id", tables.EXPERIMENTS, "id"),
            ("dataset_id", tables.DATASETS, "id"),
            ("project_id", tables.PROJECTS, "id"),
        ),
        rows=_experiment_rows,
    ),
    "trace": _Table(
        "traces",
        TraceLine,
        "id:id7 project_id:id name start_time:instant end_time:instant input:json output:json "
        "metadata:json tags:json error_info:json thread_id ttft source environment "
        f"hidden:hidden {_AUDIT}",
        refs=(("id", tables.TRACES, "id"), ("project_id", tables.PROJECTS, "id")),
    ),
    "span": _Table(
        "spans",
        SpanLine,
        "id:id7 trace_id:id7 project_id:id parent_span_id:id7 name type start_time:instant "
        "end_time:instant input:json output:json metadata:json model provider tags:json "
        "usage:json error_info:json total_estimated_cost total_estimated_cost_version ttft "
        f"source environment {_AUDIT}",
        refs=(
            ("id", tables.SPANS, "id"),
            ("trace_id", tables.TRACES, "id"),
            ("project_id", tables.PROJECTS, "id"),
        ),
    ),
    "feedback_score": _Table(
        "feedback_scores",
        ScoreLine,
        f"trace_id:id7 name:name category_name value reason source {_AUDIT}",
        key=("trace_id", "name"),
        refs=(("trace_id", tables.TRACES, "id"), ("trace_id", tables.FEEDBACK_SCORES, "trace_id")),
    ),
    "experiment_item": _Table(
        "experiment_items",
        ItemLine,
        "experiment_id:id7 dataset_item_id:id7 trace_id:id7 id:id7 project_id:id "
        f"{_AUDIT} NULL:write_only",
        refs=(
            ("id", tables.EXPERIMENT_ITEMS, "id"),
            ("experiment_id", tables.EXPERIMENTS, "id"),
            ("project_id", tables.PROJECTS, "id"),
        ),
        rows=_item_rows,
    ),
}
_PUSH_ITEMS = {
    scoped: _page(template, "experiment_items", PUSH_ITEM_COLUMNS, ("id",), PUSH_ITEM_JOINS)
    for scoped, template in ((False, PAGE), (True, PAGE_OF_EXPERIMENT))
}


async def _not_foreign(
    w: Write, table: _Table, records: list[Incoming], refused: Refused
) -> list[Incoming]:
    """The records that touch no id of another workspace; the others are refused."""
    for column, other, other_column in table.refs:
        at = table.stored.index(column)
        keys = {r.values[at] for r in records if r.values[at] is not None}
        foreign = set(await w.foreign(other, keys, other_column))
        for r in records:
            if r.values[at] in foreign:
                what = f"{column} {ids.to_str(r.values[at])}"
                refused.setdefault(r.line, f"{what} belongs to another workspace")
    return [r for r in records if r.line not in refused]


class Snapshot:
    """One consistent read of a workspace, or of one experiment and what it refers to, a
    page at a time in primary-key order."""

    def __init__(self, conn: sqlite3.Connection, workspace: str, scoped: bool) -> None:
        self.conn = conn
        self.workspace = workspace
        self.scoped = scoped

    def count(self, kind: Kind) -> int:
        table = _TABLES[kind].name
        params: tuple[str, ...] = ()
        if self.scoped:
            sql = COUNT_ROWS_OF_EXPERIMENT.format(table=table)
        else:
            sql, params = COUNT_ROWS.format(table=table), (self.workspace,)
        return int(self.conn.execute(sql, params).fetchone()[0])

    def pages(self, kind: Kind) -> Iterator[list[Record]]:
        """Every record of one kind, as lines."""
        table = _TABLES[kind]
        for rows in self._rows(table.pages[self.scoped], table.key_at):
            yield [table.record(row) for row in rows]

    def items_to_push(self) -> Iterator[list[ItemWrite]]:
        """Every item, as POST /v1/private/experiments/items takes it."""
        for rows in self._rows(_PUSH_ITEMS[self.scoped], (3,)):
            yield [
                ItemWrite(ids.to_str(e), ids.to_str(d), ids.to_str(t), ids.to_str(i), project)
                for e, d, t, i, project in rows
            ]

    def _rows(self, sql: str, key_at: tuple[int, ...]) -> Iterator[list[Row]]:
        after: tuple[object, ...] = (b"",) * len(key_at)  # sorts before every key
        while rows := self.conn.execute(sql, (self.workspace, *after, PAGE_ROWS)).fetchall():
            yield rows
            after = tuple(rows[-1][at] for at in key_at)


@contextmanager
def snapshot(path: Path, workspace: str, experiment: bytes | None = None) -> Iterator[Snapshot]:
    """A read-only snapshot of the database at `path`, of a workspace or of one of its
    experiments; NotFound when the workspace has neither that experiment nor items of it
    (items may name an experiment that was never created, as the API allows)."""
    with closing(open_readonly(path)) as conn:
        conn.execute("BEGIN")  # one read transaction: every page sees the same database
        snap = Snapshot(conn, workspace, experiment is not None)
        if experiment is not None:
            for statement in SCOPE_ONE_EXPERIMENT:
                conn.execute(statement, {"workspace": workspace, "experiment": experiment})
            if not snap.count("experiment") + snap.count("experiment_item"):
                raise NotFound(f"no experiment {ids.to_str(experiment)} in workspace {workspace!r}")
        yield snap


async def import_records(
    db: Database, workspace: str, user: str, records: Sequence["Incoming"]
) -> "Refused":
    """Stores the records in one transaction, each with its values as given, and says why
    it refused the others. Conflict when the batch breaks a rule no check foresaw (the
    caller can then store its records one at a time to find which)."""
    refused: Refused = {}
    try:
        async with db.transaction() as conn:
            w = Write(conn, workspace, user)
            for kind in KINDS:
                table = _TABLES[kind]
                batch = [r for r in records if r.kind == kind]
                batch = await _not_foreign(w, table, batch, refused) if batch else []
                if batch:
                    rows = await table.rows(w, table, batch, refused)
                    await conn.executemany(table.upsert, rows)
    except sqlite3.IntegrityError as exc:
        raise Conflict(str(exc)) from exc
    return refused
