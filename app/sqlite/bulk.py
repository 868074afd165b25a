"""Bulk recording: an evaluation run in one transaction, its experiment, traces, spans,
feedback scores and items."""

from typing import Any

import msgspec

from app import ids
from app.records import DEFAULT_PROJECT, BulkRecord, Conflict, ExperimentRecord, name_key
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
        default_project = bulk.project_name or DEFAULT_PROJECT
        project_names = [
            run.trace.project_name if run.trace and run.trace.project_name else default_project
            for run in bulk.runs
        ]
        projects = await w.named("projects", project_names)
        traces: list[dict[str, Any]] = []
        spans: list[dict[str, Any]] = []
        scores: list[dict[str, Any]] = []
        items: list[dict[str, Any]] = []
        for run, project_name in zip(bulk.runs, project_names, strict=True):
            project_id = projects[name_key(project_name)]
            trace: dict[str, Any]
            if run.trace is None:  # Opik's trace of a task's result: its output, no input
                trace = {"id": ids.uuid7(), "start_time": w.now, "end_time": w.now}
                trace |= dict.fromkeys(("name", "input", "metadata", "tags", "error_info"))
                trace |= dict.fromkeys(("thread_id", "ttft", "source", "environment"))
                trace.update(output=run.task_output, hidden=0)
            else:
                trace = msgspec.structs.asdict(run.trace)
                del trace["project_name"]
                trace["hidden"] = int(run.trace.hidden)
            trace.update(project_id=project_id, partial=0, **w.stamp)
            traces.append(trace)
            trace_id = trace["id"]
            for span in run.spans:
                spans.append(
                    {**msgspec.structs.asdict(span), "trace_id": trace_id,
                     "project_id": project_id, "partial": 0, **w.stamp}
                )  # fmt: skip
            for score in run.scores:
                scores.append(
                    {**msgspec.structs.asdict(score), "trace_id": trace_id, **w.stamp,
                     "author": score.author or user}
                )  # fmt: skip
            items.append(
                {"id": ids.uuid7(), "experiment_id": experiment_id, "trace_id": trace_id,
                 "dataset_item_id": run.dataset_item_id, "project_id": None, **w.stamp}
            )  # fmt: skip
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
    record = ExperimentRecord(
        id=key or ids.uuid7(),
        name=bulk.experiment_name,
        dataset_name=bulk.dataset_name,
        project_id=None,
        project_name=bulk.project_name,
    )
    project_id = None
    if bulk.project_name:
        project_id = (await w.named("projects", [bulk.project_name]))[name_key(bulk.project_name)]
    await insert_experiment(w, record, dataset_id, project_id)
    return record.id
