"""Bulk recording: an evaluation run in one transaction, its experiment, traces, spans,
feedback scores and items (as app/sqlite/bulk.py). Each id another workspace holds is a 409
from what the statement that writes it reports, never from a read before the write alone:
two workspaces recording the same trace id at once then end in one 204 and one 409."""

from collections.abc import Sequence
from typing import Any

import msgspec

from app.bulk_rows import bulk_rows, new_experiment, project_names
from app.postgres.connection import Database
from app.postgres.experiments import COLUMNS, INSERT_EXPERIMENT, project_of
from app.postgres.upsert import upsert, write_rows
from app.postgres.write import Write
from app.records import BulkRecord, Conflict, name_key

AUDIT = {"created_at": "bigint", "created_by": "text", "last_updated_at": "bigint",
         "last_updated_by": "text"}  # fmt: skip
TRACE_COLUMNS = {
    "id": "bytea", "workspace": "text", "project_id": "bytea", "hidden": "integer",
    "name": "text", "start_time": "bigint", "end_time": "bigint", "input": "text",
    "output": "text", "metadata": "text", "tags": "text", "error_info": "text",
    "thread_id": "text", "ttft": "float8", "source": "text", "environment": "text",
    **AUDIT, "partial": "integer",
}  # fmt: skip
SPAN_COLUMNS = {
    "id": "bytea", "workspace": "text", "trace_id": "bytea", "project_id": "bytea",
    "parent_span_id": "bytea", "name": "text", "type": "text", "start_time": "bigint",
    "end_time": "bigint", "input": "text", "output": "text", "metadata": "text",
    "model": "text", "provider": "text", "tags": "text", "usage": "text", "error_info": "text",
    "total_estimated_cost": "float8", "total_estimated_cost_version": "text", "ttft": "float8",
    "source": "text", "environment": "text", **AUDIT, "partial": "integer",
}  # fmt: skip
SCORE_COLUMNS = {
    "trace_id": "bytea", "name": "text", "author": "text", "workspace": "text",
    "category_name": "text", "value": "float8", "reason": "text", "source": "text", **AUDIT,
}  # fmt: skip
ITEM_COLUMNS = {
    "id": "bytea", "workspace": "text", "experiment_id": "bytea", "dataset_item_id": "bytea",
    "trace_id": "bytea", "project_id": "bytea", **AUDIT,
}  # fmt: skip


UPSERT_TRACES = upsert("traces", TRACE_COLUMNS, ("id",))
UPSERT_SPANS = upsert("spans", SPAN_COLUMNS, ("id",))
UPSERT_SCORES = upsert("feedback_scores", SCORE_COLUMNS, ("trace_id", "name", "author"))
INSERT_ITEMS = upsert("experiment_items", ITEM_COLUMNS, ("id",), update=False)
FIND_EXPERIMENT = "SELECT workspace, dataset_id FROM experiments WHERE id = $1"


async def _write(
    w: Write, sql: str, columns: dict[str, str], key: Sequence[str], rows: list[dict[str, Any]]
) -> list[tuple[Any, ...]]:
    """upsert.write_rows of rows by column name."""
    names = list(columns)
    return await write_rows(w.conn, sql, names, key, [[row[c] for c in names] for row in rows])


async def record_bulk(db: Database, workspace: str, user: str, bulk: BulkRecord) -> None:
    async with db.transaction() as conn:
        w = Write(conn, workspace, user)
        stamp = {"workspace": workspace, "created_at": w.now, "created_by": user,
                 "last_updated_at": w.now, "last_updated_by": user}  # fmt: skip
        dataset_id = (await w.named("datasets", [bulk.dataset_name]))[name_key(bulk.dataset_name)]
        experiment_id = await _experiment(w, bulk, dataset_id)
        projects = await w.named("projects", project_names(bulk))
        rows = bulk_rows(bulk, experiment_id, projects, stamp, w.now, user)
        traces, spans, scores, items = rows.traces, rows.spans, rows.scores, rows.items
        # Rolled back by a raise: the run is stored whole or not at all.
        for (key,) in await _write(w, UPSERT_TRACES, TRACE_COLUMNS, ("id",), traces):
            raise Conflict.foreign("Trace", key)
        for (key,) in await _write(w, UPSERT_SPANS, SPAN_COLUMNS, ("id",), spans):
            raise Conflict.foreign("Span", key)
        await _write(w, UPSERT_SCORES, SCORE_COLUMNS, ("trace_id", "name", "author"), scores)
        await _write(w, INSERT_ITEMS, ITEM_COLUMNS, ("id",), items)


async def _experiment(w: Write, bulk: BulkRecord, dataset_id: bytes) -> bytes:
    """The experiment with `experiment_id` when it exists, else a new one by name."""
    key = bulk.experiment_id
    if key is not None:
        found = await _stored(w, key, dataset_id)
        if found is not None:
            return found
    record = new_experiment(bulk)
    values = msgspec.structs.asdict(record)
    del values["dataset_name"], values["project_name"]
    values.update(
        workspace=w.workspace,
        dataset_id=dataset_id,
        project_id=await project_of(w, None, bulk.project_name),
        created_at=w.now,
        created_by=w.user,
        last_updated_at=w.now,
        last_updated_by=w.user,
    )
    if await w.conn.fetchval(INSERT_EXPERIMENT, *(values[c] for c in COLUMNS)) is None:
        # Made by another transaction since the read: its answer is the stored one's.
        found = await _stored(w, record.id, dataset_id)
        if found is None:  # and deleted again since
            raise Conflict.experiment_exists(record.id)
        return found
    return record.id


async def _stored(w: Write, key: bytes, dataset_id: bytes) -> bytes | None:
    """`key` when the workspace holds that experiment of that dataset; None when no one does;
    Conflict otherwise."""
    for workspace, stored_dataset in await w.conn.fetch(FIND_EXPERIMENT, key):
        if workspace != w.workspace:
            raise Conflict.foreign("Experiment", key)
        if stored_dataset != dataset_id:
            raise Conflict.dataset_mismatch()
        return key
    return None
