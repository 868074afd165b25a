"""Bulk recording: an evaluation run in one transaction, its experiment, traces, spans,
feedback scores and items."""

from app.bulk_rows import bulk_rows, new_experiment, project_names
from app.records import BulkRecord, Conflict, name_key
from app.sqlite.connection import Database
from app.sqlite.experiments import FIND_EXPERIMENT, insert_experiment
from app.sqlite.tables import EXPERIMENT_ITEMS, FEEDBACK_SCORES, SPANS, TRACES
from app.sqlite.write import Write

UPSERT_TRACE = TRACES.upsert()
UPSERT_SPAN = SPANS.upsert()
UPSERT_SCORE = FEEDBACK_SCORES.upsert()
INSERT_BULK_ITEM = EXPERIMENT_ITEMS.insert()


async def record_bulk(db: Database, workspace: str, user: str, bulk: BulkRecord) -> None:
    async with db.transaction() as conn:
        w = Write(conn, workspace, user)
        dataset_id = (await w.named("datasets", [bulk.dataset_name]))[name_key(bulk.dataset_name)]
        experiment_id = await _experiment(w, bulk, dataset_id)
        projects = await w.named("projects", project_names(bulk))
        rows = bulk_rows(bulk, experiment_id, projects, w.stamp, w.now, user)
        traces, spans, scores, items = rows.traces, rows.spans, rows.scores, rows.items
        await w.refuse_foreign(TRACES, [t["id"] for t in traces], "Trace")
        await w.refuse_foreign(SPANS, [s["id"] for s in spans], "Span")
        await conn.executemany(UPSERT_TRACE, traces)
        await conn.executemany(UPSERT_SPAN, spans)
        await conn.executemany(UPSERT_SCORE, scores)
        await conn.executemany(INSERT_BULK_ITEM, items)


async def _experiment(w: Write, bulk: BulkRecord, dataset_id: bytes) -> bytes:
    """The experiment with `experiment_id` when it exists, else a new one by name."""
    key = bulk.experiment_id
    if key is not None:
        for workspace, stored_dataset in await w.conn.execute_fetchall(FIND_EXPERIMENT, (key,)):
            if workspace != w.workspace:
                raise Conflict.foreign("Experiment", key)
            if stored_dataset != dataset_id:
                raise Conflict.dataset_mismatch()
            return key
    record = new_experiment(bulk)
    project_id = None
    if bulk.project_name:
        project_id = (await w.named("projects", [bulk.project_name]))[name_key(bulk.project_name)]
    await insert_experiment(w, record, dataset_id, project_id)
    return record.id
