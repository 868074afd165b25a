"""The storage of export, import and push: each kind of line as a table, read one page at a
time from a snapshot and written as the file gives it."""

import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import closing, contextmanager
from pathlib import Path
from typing import Any

import msgspec
from msgspec import UNSET

from app import ids
from app.lines import (
    KINDS,
    DatasetItemLine,
    DatasetLine,
    ExperimentLine,
    ItemLine,
    Kind,
    NamedLine,
    Record,
    ScoreLine,
    SpanLine,
    SpanScoreLine,
    TraceLine,
)
from app.payloads import ItemWrite
from app.records import Conflict, NotFound, name_key
from app.sqlite import tables
from app.sqlite.connection import Database
from app.sqlite.export_scope import SCOPE_ONE_EXPERIMENT
from app.sqlite.files import open_readonly
from app.sqlite.items import UPSERT_ITEM
from app.sqlite.line_tables import (
    AUDIT_SPEC,
    ITEM_AUDIT,
    PAGE,
    PAGE_OF_EXPERIMENT,
    Incoming,
    LineTable,
    Refused,
    page_sql,
)
from app.sqlite.lookup import Row
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


COUNT_ROWS = "SELECT count(*) FROM {table} WHERE workspace = ?"
COUNT_ROWS_OF_EXPERIMENT = "SELECT count(*) FROM temp.export_{table}"
FIND_IN_WORKSPACE = "SELECT id FROM {table} WHERE workspace = ? AND id IN ({marks})"

# What push sends of an item: the API's write shape, its project by name (the target's
# projects have ids of their own), the item's project else its trace's, as GET shows it.
PUSH_ITEM_COLUMNS = "t.experiment_id, t.dataset_item_id, t.trace_id, t.id, p.name"
PUSH_ITEM_JOINS = """
LEFT JOIN traces AS tr ON tr.id = t.trace_id AND tr.workspace = t.workspace
LEFT JOIN projects AS p ON p.id = coalesce(t.project_id, tr.project_id)
    AND p.workspace = t.workspace
"""


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


async def _named_rows(
    w: Write, table: LineTable, records: list[Incoming], refused: Refused
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
    w: Write, table: LineTable, records: list[Incoming], refused: Refused
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
        made_line = DatasetLine(
            id=e.dataset_id, name=name, created_at=e.created_at, created_by=e.created_by,
            last_updated_at=e.created_at, last_updated_by=e.created_by,
        )  # fmt: skip
        values = incoming("dataset", made_line, 0).values
        datasets.append((*values, w.workspace, name_key(name)))
    await w.conn.executemany(_TABLES["dataset"].upsert, datasets)
    rows = []
    for r in records:
        if r.values[at] in taken:
            refused[r.line] = taken[r.values[at]]
        else:
            rows.append((*r.values, w.workspace))
    return rows


async def _item_rows(
    w: Write, table: LineTable, records: list[Incoming], refused: Refused
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


async def _score_rows(
    w: Write, table: LineTable, records: list[Incoming], refused: Refused
) -> list[tuple[Any, ...]]:
    """Scores; one without an author (a file from before authors) is its last updater's, as
    the schema's migration to version 3 makes it."""
    author, updater = table.stored.index("author"), table.stored.index("last_updated_by")
    rows = []
    for r in records:
        values = list(r.values)
        if values[author] is None:
            values[author] = values[updater]
        rows.append((*values, w.workspace))
    return rows


def _project_name(record: Record) -> str | None:
    name = record.project_name if isinstance(record, ItemLine) else None
    return name.strip() if isinstance(name, str) and name.strip() else None


_TABLES: dict[Kind, LineTable] = {
    "project": LineTable(
        "projects",
        NamedLine,
        f"id:id name:name {AUDIT_SPEC}",
        refs=(("id", tables.PROJECTS, "id"),),
        extra=("name_key",),
        rows=_named_rows,
    ),
    "dataset": LineTable(
        "datasets",
        DatasetLine,
        "id:id name:name project_id:id type visibility tags:tags description "
        "created_at:instant created_by last_updated_at:instant last_updated_by",
        refs=(("id", tables.DATASETS, "id"), ("project_id", tables.PROJECTS, "id")),
        extra=("name_key",),
        rows=_named_rows,
    ),
    "experiment": LineTable(
        "experiments",
        ExperimentLine,
        "id:id7 d.name:joined dataset_id:id project_id:id p.name:joined name:name "
        "metadata:json tags:json type evaluation_method optimization_id:id "
        f"{AUDIT_SPEC} status experiment_scores:json prompt_version:json prompt_versions:json "
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
    "trace": LineTable(
        "traces",
        TraceLine,
        "id:id7 project_id:id name start_time:instant end_time:instant input:json output:json "
        "metadata:json tags:json error_info:json thread_id ttft source environment "
        f"hidden:hidden {AUDIT_SPEC}",
        refs=(("id", tables.TRACES, "id"), ("project_id", tables.PROJECTS, "id")),
    ),
    "span": LineTable(
        "spans",
        SpanLine,
        "id:id7 trace_id:id7 project_id:id parent_span_id:id7 name type start_time:instant "
        "end_time:instant input:json output:json metadata:json model provider tags:json "
        "usage:json error_info:json total_estimated_cost total_estimated_cost_version ttft "
        f"source environment {AUDIT_SPEC}",
        refs=(
            ("id", tables.SPANS, "id"),
            ("trace_id", tables.TRACES, "id"),
            ("project_id", tables.PROJECTS, "id"),
        ),
    ),
    "feedback_score": LineTable(
        "feedback_scores",
        ScoreLine,
        f"trace_id:id7 name:name author category_name value reason source {AUDIT_SPEC}",
        key=("trace_id", "name", "author"),
        refs=(("trace_id", tables.TRACES, "id"), ("trace_id", tables.FEEDBACK_SCORES, "trace_id")),
        rows=_score_rows,
    ),
    "span_feedback_score": LineTable(
        "span_feedback_scores",
        SpanScoreLine,
        f"span_id:id7 name:name author category_name value reason source {AUDIT_SPEC}",
        key=("span_id", "name", "author"),
        refs=(
            ("span_id", tables.SPANS, "id"),
            ("span_id", tables.SPAN_FEEDBACK_SCORES, "span_id"),
        ),
        rows=_score_rows,
    ),
    "dataset_item": LineTable(
        "dataset_items",
        DatasetItemLine,
        "id:id7 t.id:joined_id trace_id:id span_id:id source data:json description tags:tags "
        f"evaluators:json execution_policy:json dataset_id:id {AUDIT_SPEC}",
        refs=(
            ("id", tables.DATASET_ITEMS, "id"),
            ("dataset_id", tables.DATASETS, "id"),
            ("trace_id", tables.TRACES, "id"),
            ("span_id", tables.SPANS, "id"),
        ),
    ),
    "experiment_item": LineTable(
        "experiment_items",
        ItemLine,
        "experiment_id:id7 dataset_item_id:id7 trace_id:id7 id:id7 project_id:id "
        f"{AUDIT_SPEC} NULL:write_only",
        refs=(
            ("id", tables.EXPERIMENT_ITEMS, "id"),
            ("experiment_id", tables.EXPERIMENTS, "id"),
            ("project_id", tables.PROJECTS, "id"),
        ),
        rows=_item_rows,
    ),
}
_PUSH_ITEMS = {
    scoped: page_sql(template, "experiment_items", PUSH_ITEM_COLUMNS, ("id",), PUSH_ITEM_JOINS)
    for scoped, template in ((False, PAGE), (True, PAGE_OF_EXPERIMENT))
}


async def _not_foreign(
    w: Write, table: LineTable, records: list[Incoming], refused: Refused
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
