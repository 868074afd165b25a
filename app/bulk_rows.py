"""An evaluation run (PUT /v1/private/experiments/items/bulk) as the rows every engine writes
for it: each run's trace (or the one Opik makes from a task's result), spans, scores and item,
by column name."""

from dataclasses import dataclass, field
from typing import Any

import msgspec

from app import ids
from app.records import DEFAULT_PROJECT, BulkRecord, ExperimentRecord, name_key

Row = dict[str, Any]
_TRACE_NONE = ("name", "input", "metadata", "tags", "error_info", "thread_id", "ttft", "source",
               "environment")  # fmt: skip


@dataclass
class BulkRows:
    """The rows of one bulk upload, in the runs' order."""

    traces: list[Row] = field(default_factory=list)
    spans: list[Row] = field(default_factory=list)
    scores: list[Row] = field(default_factory=list)
    items: list[Row] = field(default_factory=list)


def project_names(bulk: BulkRecord) -> list[str]:
    """Each run's project: its trace's, else the upload's, else Opik's default."""
    default = bulk.project_name or DEFAULT_PROJECT
    return [
        run.trace.project_name if run.trace and run.trace.project_name else default
        for run in bulk.runs
    ]


def new_experiment(bulk: BulkRecord) -> ExperimentRecord:
    """The experiment an upload makes when no experiment has its `experiment_id`."""
    return ExperimentRecord(
        id=bulk.experiment_id or ids.uuid7(),
        name=bulk.experiment_name,
        dataset_name=bulk.dataset_name,
        project_id=None,
        project_name=bulk.project_name,
    )


def bulk_rows(
    bulk: BulkRecord,
    experiment_id: bytes,
    projects: dict[str, bytes],
    stamp: dict[str, Any],
    now: int,
    user: str,
) -> BulkRows:
    """The rows of every run; `projects`: the ids of project_names' projects by name key;
    `stamp`: the workspace and audit columns every row carries."""
    rows = BulkRows()
    for run, project_name in zip(bulk.runs, project_names(bulk), strict=True):
        project_id = projects[name_key(project_name)]
        trace: Row
        if run.trace is None:  # Opik's trace of a task's result: its output, no input
            trace = {"id": ids.uuid7(), "start_time": now, "end_time": now}
            trace |= dict.fromkeys(_TRACE_NONE)
            trace.update(output=run.task_output, hidden=0)
        else:
            trace = msgspec.structs.asdict(run.trace)
            del trace["project_name"]
            trace["hidden"] = int(run.trace.hidden)
        trace.update(project_id=project_id, partial=0, **stamp)
        rows.traces.append(trace)
        trace_id = trace["id"]
        for span in run.spans:
            rows.spans.append(
                {**msgspec.structs.asdict(span), "trace_id": trace_id,
                 "project_id": project_id, "partial": 0, **stamp}
            )  # fmt: skip
        for score in run.scores:
            rows.scores.append(
                {**msgspec.structs.asdict(score), "trace_id": trace_id, **stamp,
                 "author": score.author or user}
            )  # fmt: skip
        rows.items.append(
            {"id": ids.uuid7(), "experiment_id": experiment_id, "trace_id": trace_id,
             "dataset_item_id": run.dataset_item_id, "project_id": None, **stamp}
        )  # fmt: skip
    return rows
