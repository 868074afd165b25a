"""From payloads to records, in one pass: what msgspec's types cannot say about a request
(ids that must be version 7, names that must not be blank, instants the store can hold),
checked in the order of the body, and the values computed for it (keys, nanoseconds, JSON
text) kept for the store. 400 for ids, 422 for the rest, as the contract says."""

import secrets
from collections.abc import Sequence
from datetime import datetime
from typing import cast

import msgspec
from msgspec import UNSET

from app import clock, ids
from app.body import require_text, require_uuid, require_v7
from app.errors import ApiError, Invalid
from app.payloads import (
    DEFAULT_STREAM_LIMIT,
    BulkUpload,
    ExperimentWrite,
    ItemWrite,
    SpanWrite,
    StreamRequest,
    TraceWrite,
)
from app.records import (
    BulkRecord,
    ExperimentRecord,
    ItemRecord,
    RunRecord,
    ScoreRecord,
    SpanRecord,
    StreamQuery,
    TraceRecord,
    json_text,
)


def encoded(value: object) -> str | None:
    return None if value is None else msgspec.json.encode(value).decode()


def given_name(value: str | None) -> str | None:
    """A name given, stripped; None when it is missing or blank (blank names no project)."""
    return value.strip() or None if value else None


# --- Experiment items ----------------------------------------------------------------------


def item_records(items: list[ItemWrite]) -> list[ItemRecord]:
    """A batch's items, validated, as records. Its ids are checked and converted a column at a
    time (ids.parse_v7_column), several times faster than one by one; when a column fails,
    or ids are to be made, the items go one by one, which finds and names the bad id."""
    columns = _id_columns(items)
    if columns is None:
        records = [_item_record(item) for item in items]
    else:
        projects = [_project(item) for item in items]
        records = [
            ItemRecord(item_id, experiment_id, dataset_item_id, trace_id, name, project_id)
            for item_id, experiment_id, dataset_item_id, trace_id, (name, project_id) in zip(
                *columns, projects, strict=True
            )
        ]
    if len({r.id for r in records}) != len(records):
        raise Invalid(["experiment_items ids must be unique within the batch"])
    return records


def _item_record(item: ItemWrite) -> ItemRecord:
    project_name, project_id = _project(item)
    return ItemRecord(
        id=ids.uuid7() if item.id is None else require_v7(item.id, "id"),
        experiment_id=require_v7(item.experiment_id, "experiment_id"),
        dataset_item_id=require_v7(item.dataset_item_id, "dataset_item_id"),
        trace_id=require_v7(item.trace_id, "trace_id"),
        project_name=project_name,
        project_id=project_id,
    )


def _id_columns(items: list[ItemWrite]) -> list[list[bytes]] | None:
    """The keys of the items' ids, dataset item, trace and experiment ids, column by column;
    None when an id is missing or any is not a version 7 UUID."""
    given = [i.id for i in items]
    if None in given:
        return None
    columns = []
    for texts in (
        cast(list[str], given),
        [i.experiment_id for i in items],
        [i.dataset_item_id for i in items],
        [i.trace_id for i in items],
    ):
        keys = ids.parse_v7_column(texts)
        if keys is None:
            return None
        columns.append(keys)
    return columns


def _project(item: ItemWrite) -> tuple[str | None, bytes | None]:
    """The item's project name (None when blank), and its project id as a key."""
    project_id = None
    if item.project_id is not None:
        project_id = ids.parse(item.project_id)
        if project_id is None:
            raise ApiError(400, "Invalid UUID for project_id", "project_id must be a UUID")
    return given_name(item.project_name), project_id


def stream_query(query: StreamRequest) -> StreamQuery:
    require_text(query.experiment_name, "experiment_name")
    before = None
    if query.last_retrieved_id is not None:
        before = require_uuid(query.last_retrieved_id, "last_retrieved_id")
    return StreamQuery(
        experiment_name=query.experiment_name,
        limit=DEFAULT_STREAM_LIMIT if query.limit is None else query.limit,
        before=before,
        project_name=query.project_name,
        truncate=query.truncate is not False,
    )


# --- Experiments ---------------------------------------------------------------------------

# Opik names an unnamed experiment itself; so do we, in the same spirit.
_ADJECTIVES = ("brave", "calm", "eager", "gentle", "keen", "lively", "quiet", "swift", "wise")
_NOUNS = ("otter", "falcon", "maple", "harbor", "comet", "meadow", "river", "summit", "lynx")


def _generated_name() -> str:
    adjective, noun = secrets.choice(_ADJECTIVES), secrets.choice(_NOUNS)
    return f"{adjective}-{noun}-{secrets.randbelow(10_000)}"


def optional_uuid(value: str | None, path: str) -> bytes | None:
    return None if value is None else require_uuid(value, path)


def experiment_record(write: ExperimentWrite) -> ExperimentRecord:
    require_text(write.dataset_name, "dataset_name")
    project_id = optional_uuid(write.project_id, "project_id")
    optimization_id = optional_uuid(write.optimization_id, "optimization_id")
    dataset_version_id = optional_uuid(write.dataset_version_id, "dataset_version_id")
    for n, link in enumerate(write.prompt_versions or ()):
        require_uuid(link.id, f"prompt_versions[{n}].id")
    if write.prompt_version is not None:
        require_uuid(write.prompt_version.id, "prompt_version.id")
    key = ids.uuid7() if write.id is None else require_v7(write.id, "id", "Experiment")
    return ExperimentRecord(
        id=key,
        name=given_name(write.name) or _generated_name(),
        dataset_name=write.dataset_name.strip(),
        project_id=project_id,
        project_name=given_name(write.project_name),
        metadata=json_text(write.metadata),
        tags=encoded(write.tags),
        type=write.type,
        evaluation_method=write.evaluation_method,
        optimization_id=optimization_id,
        status=write.status,
        experiment_scores=encoded(write.experiment_scores),
        prompt_version=encoded(write.prompt_version),
        prompt_versions=encoded(write.prompt_versions),
        dataset_version_id=dataset_version_id,
    )


# --- Bulk recording ------------------------------------------------------------------------


def instant(value: datetime, path: str) -> int:
    ns = clock.to_ns(value)
    if not clock.MIN_NS <= ns <= clock.MAX_NS:
        raise Invalid([f"{path} must be between the years 1677 and 2262"])
    return ns


def _times(record: TraceWrite | SpanWrite, at: str) -> tuple[int, int | None]:
    start = instant(record.start_time, f"{at}.start_time")
    end = None if record.end_time is None else instant(record.end_time, f"{at}.end_time")
    return start, end


def v7_column(texts: Sequence[str | None]) -> Sequence[bytes | None] | None:
    """The keys of a batch's ids, a column at a time (ids.parse_v7_column); None when any is
    missing or not a version 7 UUID, for the caller to check them one by one and name it."""
    if None in texts:
        return None
    return ids.parse_v7_column(cast(list[str], texts))


def trace_record(trace: TraceWrite, at: str, key: bytes | None = None) -> TraceRecord:
    """The trace as a record; `key` is its id already checked (v7_column)."""
    if key is None:
        key = ids.uuid7() if trace.id is None else require_v7(trace.id, "id", "Trace", f"{at}.id")
    start, end = _times(trace, at)
    return TraceRecord(
        id=key,
        project_name=given_name(trace.project_name),
        start_time=start,
        name=trace.name,
        end_time=end,
        input=json_text(trace.input),
        output=json_text(trace.output),
        metadata=json_text(trace.metadata),
        tags=encoded(trace.tags),
        error_info=encoded(trace.error_info),
        thread_id=trace.thread_id,
        ttft=trace.ttft,
        source=trace.source,
        environment=trace.environment,
        hidden=trace.visibility_mode == "hidden",
    )


def span_record(
    span: SpanWrite, at: str, key: bytes | None = None, parent: bytes | None = None
) -> SpanRecord:
    """The span as a record; `key` and `parent` are its ids already checked (v7_column)."""
    start, end = _times(span, at)
    if key is None:
        key = ids.uuid7() if span.id is None else require_v7(span.id, "id", "Span", f"{at}.id")
    if parent is None and span.parent_span_id is not None:
        path = f"{at}.parent_span_id"
        parent = require_v7(span.parent_span_id, "parent_span_id", "Span", path)
    return SpanRecord(
        id=key,
        parent_span_id=parent,
        start_time=start,
        name=span.name,
        type=span.type,
        end_time=end,
        input=json_text(span.input),
        output=json_text(span.output),
        metadata=json_text(span.metadata),
        model=span.model,
        provider=span.provider,
        tags=encoded(span.tags),
        usage=encoded(span.usage),
        error_info=encoded(span.error_info),
        total_estimated_cost=span.total_estimated_cost,
        total_estimated_cost_version=span.total_estimated_cost_version,
        ttft=span.ttft,
        source=span.source,
        environment=span.environment,
    )


def bulk_record(upload: BulkUpload) -> BulkRecord:
    require_text(upload.experiment_name, "experiment_name")
    require_text(upload.dataset_name, "dataset_name")
    experiment_id = None
    if upload.experiment_id is not None:
        experiment_id = require_v7(upload.experiment_id, "experiment_id", "Experiment")
    runs = []
    for n, record in enumerate(upload.items):
        at = f"items[{n}]"
        dataset_item_id = require_v7(
            record.dataset_item_id, "dataset_item_id", path=f"{at}.dataset_item_id"
        )
        if record.trace is not UNSET and record.evaluate_task_result is not UNSET:
            raise Invalid([f"{at} must have either trace or evaluate_task_result, not both"])
        trace = (
            trace_record(record.trace, f"{at}.trace")
            if isinstance(record.trace, TraceWrite)
            else None
        )
        spans = tuple(span_record(s, f"{at}.spans[{m}]") for m, s in enumerate(record.spans or ()))
        scores = tuple(
            ScoreRecord(s.name, s.value, s.source, s.category_name, s.reason)
            for s in record.feedback_scores or ()
        )
        output = None if trace else json_text(record.evaluate_task_result)
        runs.append(RunRecord(dataset_item_id, trace, output, spans, scores))
    return BulkRecord(
        experiment_id=experiment_id,
        experiment_name=upload.experiment_name,
        dataset_name=upload.dataset_name,
        project_name=given_name(upload.project_name),
        runs=tuple(runs),
    )
