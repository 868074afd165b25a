"""From payloads to records, in one pass: what msgspec's types cannot say about a request
(ids that must be version 7, names that must not be blank, instants the store can hold),
checked in the order of the body, and the values computed for it (keys, nanoseconds, JSON
text) kept for the store. 400 for ids, 422 for the rest, as the contract says."""

import secrets
from collections.abc import Sequence
from datetime import datetime
from typing import Any, cast

import msgspec
from msgspec import UNSET

from app import clock, ids
from app.body import require_text, require_uuid, require_v7
from app.errors import ApiError, Invalid
from app.experiment_payloads import (
    SORTABLE_BY,
    ExperimentStreamRequest,
    ExperimentUpdate,
    FindQuery,
)
from app.filters import parse_filters
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
    ExperimentChange,
    ExperimentQuery,
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


# --- The experiments resource --------------------------------------------------------------


def experiment_stream_query(request: ExperimentStreamRequest) -> ExperimentQuery:
    require_text(request.name, "name")
    before = None
    if request.last_retrieved_id is not None:
        before = require_uuid(request.last_retrieved_id, "last_retrieved_id")
    return ExperimentQuery(
        limit=DEFAULT_STREAM_LIMIT if request.limit is None else request.limit,
        name=request.name,
        before=before,
        project_name=given_name(request.project_name),
    )


def _json_list(raw: str | None, message: str) -> list[Any] | None:
    """A query parameter's JSON array; None when it is absent or blank; 400 otherwise."""
    if raw is None or not raw.strip():
        return None
    try:
        value = msgspec.json.decode(raw)
    except msgspec.DecodeError:
        raise ApiError(400, f"{message} '{raw}'") from None
    if not isinstance(value, list):
        raise ApiError(400, f"{message} '{raw}'")
    return value


_TYPES = ("regular", "trial", "mini-batch", "mutation")
# pass_rate (test suites, never stored) sorts as the default order does.
SORTABLE_FIELDS = frozenset(f for f in SORTABLE_BY if "*" not in f and f != "pass_rate")


def _sort(raw: str | None) -> tuple[str | None, bool]:
    """The first sorting entry's field and whether it is descending; an unknown field is
    ignored, as in Opik."""
    entries = _json_list(raw, "Invalid sorting query parameter")
    message = f"Invalid sorting query parameter '{raw}'"
    for entry in entries or ():
        if not isinstance(entry, dict) or not isinstance(entry.get("field"), str):
            raise ApiError(400, message)
        direction = entry.get("direction", "ASC")
        if direction not in ("ASC", "DESC"):
            raise ApiError(400, message)
    if not entries:
        return None, False
    field, direction = entries[0]["field"], entries[0].get("direction", "ASC")
    head, dot, name = field.partition(".")
    if (
        (dot and head in ("feedback_scores", "experiment_scores") and name)
        or field in SORTABLE_FIELDS
        or field in ("duration.p50", "duration.p90", "duration.p99")
    ):
        return field, direction == "DESC"
    return None, False


def experiment_ids(raw: str | None, blank_is_none: bool = True) -> tuple[bytes, ...] | None:
    """The keys of an `experiment_ids` query parameter (a JSON array of UUIDs): 400 otherwise;
    None when it is absent (or blank, where Opik skips a blank one)."""
    if raw is not None and not raw.strip() and not blank_is_none:
        raise ApiError(400, f"Invalid query param ids '{raw}'")
    keys = _json_list(raw, "Invalid query param ids")
    if keys is None:
        return None
    parsed = [ids.parse(k) if isinstance(k, str) else None for k in keys]
    if None in parsed:
        raise ApiError(400, f"Invalid query param ids '{raw}'")
    return tuple(cast(list[bytes], parsed))


def find_query(query: FindQuery) -> ExperimentQuery:
    types = _json_list(query.types, "Invalid query param types")
    if types is not None and not all(t in _TYPES for t in types):
        raise ApiError(400, f"Invalid query param types '{query.types}'")
    sort, descending = _sort(query.sorting)
    return ExperimentQuery(
        limit=query.size,
        offset=(query.page - 1) * query.size,
        name=query.name or None,
        project_id=optional_uuid(query.project_id, "project_id"),
        dataset_id=optional_uuid(query.datasetId, "datasetId"),
        optimization_id=optional_uuid(query.optimization_id, "optimization_id"),
        prompt_id=optional_uuid(query.prompt_id, "prompt_id"),
        types=None if types is None else tuple(types),
        ids=experiment_ids(query.experiment_ids),
        filters=parse_filters(query.filters),
        dataset_deleted=query.dataset_deleted,
        project_deleted=query.project_deleted,
        sort=sort,
        descending=descending,
    )


def experiment_change(update: ExperimentUpdate, merge_tags: bool = False) -> ExperimentChange:
    if update.name is not None:
        require_text(update.name, "name")
    for field in ("tags", "tags_to_add", "tags_to_remove"):
        for n, tag in enumerate(getattr(update, field) or ()):
            require_text(tag, f"{field}[{n}]")
    for n, score in enumerate(update.experiment_scores or ()):
        require_text(score.name, f"experiment_scores[{n}].name")
    scores = update.experiment_scores
    return ExperimentChange(
        name=None if update.name is None else update.name.strip(),
        metadata=json_text(update.metadata),
        tags=None if update.tags is None else tuple(update.tags),
        tags_to_add=None if update.tags_to_add is None else tuple(update.tags_to_add),
        tags_to_remove=None if update.tags_to_remove is None else tuple(update.tags_to_remove),
        merge_tags=merge_tags,
        type=update.type,
        status=update.status,
        experiment_scores=encoded(scores) if scores else None,
        scores_given=scores is not None,
    )
