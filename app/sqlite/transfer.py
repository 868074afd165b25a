"""The storage of export, import and push: each kind of line as a table, read one page at a
time from a snapshot and written as the file gives it."""

import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import closing, contextmanager
from pathlib import Path
from typing import Any

from app import ids
from app.line_columns import (
    Incoming,
    Refused,
    claim_names,
    datasets_to_make,
    experiment_datasets,
    incoming,
    project_name,
    with_author,
)
from app.lines import KINDS, Kind
from app.records import Conflict, NotFound, name_key
from app.snapshots import (
    PUSH_ITEM_COLUMNS,
    PUSH_ITEM_JOINS,
    PUSH_ITEM_KEY,
    Reads,
    Snapshot,
    page_sql,
)
from app.sqlite.connection import Database
from app.sqlite.export_scope import COUNTS, SCOPE_ONE_EXPERIMENT
from app.sqlite.files import open_readonly
from app.sqlite.items import UPSERT_ITEM
from app.sqlite.line_tables import PAGE, PAGE_OF_EXPERIMENT, LineTable
from app.sqlite.tables import marks
from app.sqlite.write import Write

__all__ = ["Snapshot", "import_records", "incoming", "snapshot"]

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

FIND_IN_WORKSPACE = "SELECT id FROM {table} WHERE workspace = ? AND id IN ({marks})"


async def _named_rows(
    w: Write, table: LineTable, records: list[Incoming], refused: Refused
) -> list[tuple[Any, ...]]:
    """Projects or datasets, but none that takes a name another one holds."""
    owners = await w.owners(table.name, {name_key(r.values[1]) for r in records})
    claimed = claim_names(table.name, records, owners, refused)
    return [(*r.values, w.workspace, key) for r, key in claimed]


async def _experiment_rows(
    w: Write, table: LineTable, records: list[Incoming], refused: Refused
) -> list[tuple[Any, ...]]:
    """Experiments; the dataset of one is made from its `dataset_name` when the workspace
    has no dataset with its `dataset_id` (a file of experiments as GET shows them)."""
    wanted = experiment_datasets(records)
    sql = FIND_IN_WORKSPACE.format(table="datasets", marks=marks(len(wanted)))
    known = {key for (key,) in await w.conn.execute_fetchall(sql, (w.workspace, *wanted))}
    names = {name_key(name) for key, name in wanted.items() if key not in known}
    made, taken = datasets_to_make(records, known, await w.owners("datasets", names))
    datasets = [(*r.values, w.workspace, key) for r, key in made]
    await w.conn.executemany(_TABLES["dataset"].upsert, datasets)
    at = table.stored.index("dataset_id")
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
    names = [name for r in records if (name := project_name(r.record))]
    projects = await w.named("projects", names)
    rows, posted = [], []
    for r in records:
        values = dict(zip(table.stored, r.values, strict=True))
        if name := project_name(r.record):
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
    """Scores; one without an author is its last updater's."""
    return [(*with_author(table.columns, r), w.workspace) for r in records]


_TABLES: dict[Kind, LineTable] = {
    "project": LineTable("project", rows=_named_rows),
    "dataset": LineTable("dataset", rows=_named_rows),
    "experiment": LineTable("experiment", rows=_experiment_rows),
    "trace": LineTable("trace"),
    "span": LineTable("span"),
    "feedback_score": LineTable("feedback_score", rows=_score_rows),
    "span_feedback_score": LineTable("span_feedback_score", rows=_score_rows),
    "dataset_item": LineTable("dataset_item"),
    "experiment_item": LineTable("experiment_item", rows=_item_rows),
}
_READS = {
    scoped: Reads(
        pages={kind: table.pages[scoped] for kind, table in _TABLES.items()},
        counts=COUNTS[scoped],
        items=page_sql(
            template,
            "experiment_items",
            PUSH_ITEM_COLUMNS,
            PUSH_ITEM_KEY,
            PUSH_ITEM_JOINS,
            marks(len(PUSH_ITEM_KEY)),
        ),
    )
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


@contextmanager
def snapshot(path: Path, workspace: str, experiment: bytes | None = None) -> Iterator[Snapshot]:
    """A read-only snapshot of the database at `path`, of a workspace or of one of its
    experiments; NotFound when the workspace has neither that experiment nor items of it
    (items may name an experiment that was never created, as the API allows)."""
    with closing(open_readonly(path)) as conn:
        conn.execute("BEGIN")  # one read transaction: every page sees the same database
        scoped = experiment is not None
        snap = Snapshot(lambda sql, params: conn.execute(sql, params).fetchall(), _READS[scoped],
                        workspace, scoped)  # fmt: skip
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
