"""Import: the records of a transfer file stored as the file gives them (ids, audit fields,
times to the nanosecond), one transaction per batch, as app/sqlite/transfer.py stores them.
The rules that read no database are app/line_columns.py's; the export side stays SQLite's."""

from collections.abc import Sequence
from typing import Any

import asyncpg

from app import ids
from app.line_columns import (
    COLUMNS,
    Incoming,
    LineColumns,
    Refused,
    claim_names,
    datasets_to_make,
    experiment_datasets,
    project_name,
    with_author,
)
from app.lines import KINDS
from app.postgres.connection import Database
from app.postgres.items import UPSERT_ITEMS
from app.postgres.upsert import column_types, upsert, write_rows
from app.postgres.write import Write
from app.records import Conflict, name_key

# {table} and {column} are fixed names of app/line_columns.py, never input.
FIND_FOREIGN = "SELECT {column} FROM {table} WHERE workspace <> $1 AND {column} = ANY($2::bytea[])"
FIND_DATASETS = "SELECT id FROM datasets WHERE workspace = $1 AND id = ANY($2::bytea[])"
Row = tuple[Any, ...]


async def _not_foreign(
    w: Write, table: LineColumns, records: list[Incoming], refused: Refused
) -> list[Incoming]:
    """The records that touch no id of another workspace; the others are refused."""
    for column, other, other_column in table.refs:
        at = table.stored.index(column)
        keys = list({r.values[at] for r in records if r.values[at] is not None})
        sql = FIND_FOREIGN.format(table=other, column=other_column)
        foreign = {key for (key,) in await w.conn.fetch(sql, w.workspace, keys)} if keys else set()
        for r in records:
            if r.values[at] in foreign:
                what = f"{column} {ids.to_str(r.values[at])}"
                refused.setdefault(r.line, f"{what} belongs to another workspace")
    return [r for r in records if r.line not in refused]


async def _write(w: Write, table: LineColumns, rows: list[Row]) -> None:
    """Every column as the file gives it, created_* included; never a row of another
    workspace: one that another transaction gave it since the check is a Conflict, and the
    importer then stores the batch line by line, each refused as the check above says."""
    if not rows:
        return
    columns = [*table.stored, "workspace", *table.extra]
    types = await column_types(w.conn, table.name, columns)
    sql = upsert(table.name, types, table.key, keep=())
    missed = await write_rows(w.conn, sql, columns, table.key, rows)
    if missed:
        raise Conflict(f"{table.name} {missed[0]!r} belongs to another workspace")


async def _named(w: Write, table: LineColumns, records: list[Incoming], refused: Refused) -> None:
    owners = await w.owners(table.name, {name_key(r.values[1]) for r in records})
    claimed = claim_names(table.name, records, owners, refused)
    await _write(w, table, [(*r.values, w.workspace, key) for r, key in claimed])


async def _experiments(
    w: Write, table: LineColumns, records: list[Incoming], refused: Refused
) -> None:
    wanted = experiment_datasets(records)
    known = {key for (key,) in await w.conn.fetch(FIND_DATASETS, w.workspace, list(wanted))}
    names = {name_key(name) for key, name in wanted.items() if key not in known}
    made, taken = datasets_to_make(records, known, await w.owners("datasets", names))
    await _write(w, COLUMNS["dataset"], [(*r.values, w.workspace, key) for r, key in made])
    at = table.stored.index("dataset_id")
    rows = []
    for r in records:
        if r.values[at] in taken:
            refused[r.line] = taken[r.values[at]]
        else:
            rows.append((*r.values, w.workspace))
    await _write(w, table, rows)


async def _items(w: Write, table: LineColumns, records: list[Incoming], refused: Refused) -> None:
    """Items: their project by `project_name` when it is given, as POST finds it (created
    when missing); those without audit fields are written as POST writes them."""
    names = [name for r in records if (name := project_name(r.record))]
    projects = await w.named("projects", names)
    rows: list[Row] = []
    posted: dict[bytes, dict[str, Any]] = {}
    for r in records:
        values = dict(zip(table.stored, r.values, strict=True))
        if name := project_name(r.record):
            values["project_id"] = projects[name_key(name)]
        if values["created_at"] is None:
            posted[values["id"]] = values  # a later line of an id replaces an earlier one
        else:
            rows.append((*values.values(), w.workspace))
    if posted:
        items = [posted[key] for key in sorted(posted)]
        written = await w.conn.fetch(
            UPSERT_ITEMS, w.workspace, w.now, w.user,
            *([i[c] for i in items] for c in ("id", "experiment_id", "dataset_item_id",
                                              "trace_id", "project_id")),
        )  # fmt: skip
        if len(written) != len(items):
            raise Conflict("an experiment item belongs to another workspace")
    await _write(w, table, rows)


async def _scores(w: Write, table: LineColumns, records: list[Incoming], refused: Refused) -> None:
    await _write(w, table, [(*with_author(table, r), w.workspace) for r in records])


async def _as_given(
    w: Write, table: LineColumns, records: list[Incoming], refused: Refused
) -> None:
    await _write(w, table, [(*r.values, w.workspace) for r in records])


_WRITERS = {
    "project": _named,
    "dataset": _named,
    "experiment": _experiments,
    "feedback_score": _scores,
    "span_feedback_score": _scores,
    "experiment_item": _items,
}


async def import_records(
    db: Database, workspace: str, user: str, records: Sequence[Incoming]
) -> Refused:
    """Stores the records in one transaction, each with its values as given, and says why
    it refused the others. Conflict when the batch breaks a rule no check foresaw (the
    caller can then store its records one at a time to find which)."""
    refused: Refused = {}
    try:
        async with db.transaction() as conn:
            w = Write(conn, workspace, user)
            for kind in KINDS:
                table = COLUMNS[kind]
                batch = [r for r in records if r.kind == kind]
                batch = await _not_foreign(w, table, batch, refused) if batch else []
                if batch:
                    await _WRITERS.get(kind, _as_given)(w, table, batch, refused)
    except asyncpg.IntegrityConstraintViolationError as exc:
        raise Conflict(str(exc)) from exc
    return refused
