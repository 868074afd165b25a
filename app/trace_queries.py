"""The searches and pages of traces and spans as Opik's REST API takes them: their bodies and
query strings, the fields they may leave out and sort by (opik-reference/datasets-traces.md,
sections 3.6 and 3.7); no I/O."""

from typing import Annotated

from msgspec import Meta, Struct

from app.payloads import AnyId, SpanType, StreamLimit

# The names a search or page may leave out of each record: Opik's Trace.TraceField and
# Span.SpanField. Those of fields never stored here (comments, guardrails, experiment,
# span_feedback_scores) are accepted and change nothing.
TRACE_FIELDS = (
    "name", "start_time", "end_time", "input", "output", "metadata", "tags", "error_info",
    "usage", "created_at", "created_by", "last_updated_by", "feedback_scores",
    "span_feedback_scores", "comments", "guardrails_validations", "total_estimated_cost",
    "span_count", "llm_span_count", "has_tool_spans", "duration", "ttft", "thread_id",
    "visibility_mode", "providers", "experiment", "source",
)  # fmt: skip
SPAN_FIELDS = (
    "name", "type", "start_time", "end_time", "input", "output", "metadata", "model",
    "provider", "tags", "usage", "error_info", "created_at", "created_by", "last_updated_by",
    "feedback_scores", "comments", "total_estimated_cost", "total_estimated_cost_version",
    "duration", "ttft", "source",
)  # fmt: skip
# What a page sorts by: Opik's TraceSortingFactory and SpanSortingFactory, in their order,
# but for `experiment_id` (a trace's experiment is not kept on the trace here).
TRACE_SORTABLE_BY = [
    "id", "name", "input", "output", "start_time", "end_time", "duration", "ttft", "metadata",
    "thread_id", "span_count", "llm_span_count", "usage.*", "total_estimated_cost", "tags",
    "error_info", "created_by", "feedback_scores.*",
]  # fmt: skip
SPAN_SORTABLE_BY = [
    "id", "name", "type", "trace_id", "parent_span_id", "input", "output", "metadata",
    "start_time", "end_time", "duration", "ttft", "usage.*", "tags", "created_at",
    "last_updated_at", "model", "provider", "total_estimated_cost", "error_info", "created_by",
    "feedback_scores.*",
]  # fmt: skip
# `from_time`/`to_time`: text, so that one that is no instant is a 400 (Jackson's), not a 422;
# an empty one (`from_time=`) is no bound, as an absent one (trace_checks._instant_param).
InstantText = Annotated[
    str,
    Meta(
        extra_json_schema={"anyOf": [{"format": "date-time"}, {"pattern": r"^\s*$"}]},
        description="An ISO-8601 instant (no zone: UTC), bounding the record's id, a UUID v7;"
        " empty: no bound",
    ),
]


# The names as an enum in the schema only: trace_checks.excluded answers Opik's 400 for another.
TraceFieldName = Annotated[str, Meta(extra_json_schema={"enum": list(TRACE_FIELDS)})]
SpanFieldName = Annotated[str, Meta(extra_json_schema={"enum": list(SPAN_FIELDS)})]


class TraceFilter(Struct):
    """One condition of a trace search. Applied: `name` (=, !=, contains, not_contains,
    starts_with, ends_with) and `feedback_scores` (=, !=, >, >=, <, <= on the score named by
    `key`); any other is ignored."""

    field: str
    operator: str
    key: str | None = None
    value: str | None = None


class TraceSearch(Struct):
    """Which traces to stream: those of one project (by name or id), newest id first, only ids
    below `last_retrieved_id` when given, at most `limit` (default 500); made (by their UUID
    v7 id) from `from_time` to `to_time`, both included, when given; `exclude` names fields
    left out of each. `strip_attachments` changes nothing: no attachments are stored."""

    project_name: str | None = None
    project_id: AnyId | None = None
    filters: list[TraceFilter] | None = None
    last_retrieved_id: AnyId | None = None
    limit: StreamLimit | None = None
    truncate: bool | None = None  # None: false, as Opik reads a JSON body
    strip_attachments: bool | None = None  # no attachments are stored: changes nothing
    exclude: list[TraceFieldName] | None = None
    from_time: InstantText | None = None
    to_time: InstantText | None = None

    def __post_init__(self) -> None:
        if self.limit is not None:
            self.limit = int(self.limit)  # 500.0 (see WholeNumber)


class SpanSearch(Struct):
    """Which spans to stream: those of one project (by name or id), of one trace and one type
    when given, newest id first, only ids below `last_retrieved_id` when given, at most `limit`
    (default 500). Filters, times and `exclude` as TraceSearch's, on the span's name and
    scores."""

    trace_id: AnyId | None = None
    project_name: str | None = None
    project_id: AnyId | None = None
    type: SpanType | None = None
    filters: list[TraceFilter] | None = None
    limit: StreamLimit | None = None
    last_retrieved_id: AnyId | None = None
    truncate: bool | None = None  # None: false, as Opik reads a JSON body
    strip_attachments: bool | None = None  # no attachments are stored: changes nothing
    exclude: list[SpanFieldName] | None = None
    from_time: InstantText | None = None
    to_time: InstantText | None = None

    def __post_init__(self) -> None:
        if self.limit is not None:
            self.limit = int(self.limit)  # 500.0 (see WholeNumber)


PageNumber = Annotated[int, Meta(ge=1)]
# A query parameter of JSON text, a list of TraceFilter: OpenAPI's `content` says so.
_TRACE_FILTERS = {
    "type": "array",
    "items": {
        "type": "object",
        "properties": {
            "field": {"type": "string"},
            "operator": {"type": "string"},
            "key": {"type": ["string", "null"]},
            "value": {"type": ["string", "null"]},
        },
        "required": ["field", "operator"],
    },
}
FilterText = Annotated[
    str,
    Meta(
        description="JSON text: an array of TraceFilter objects",
        extra_json_schema={
            "contentMediaType": "application/json",
            "contentSchema": _TRACE_FILTERS,
        },
    ),
]


# JSON text query parameters: a sorting list, a list of field names.
def _sorting(sortable: list[str]) -> dict[str, object]:
    """A sorting list whose fields are those of `sortable`, `x.*` standing for `x.<key>`."""
    fixed = [f for f in sortable if "*" not in f]
    keyed = [{"type": "string", "pattern": f"^{f[:-2]}\\..+"} for f in sortable if "*" in f]
    return {
        "type": "array",
        "items": {
            "type": "object",
            "properties": {
                "field": {"anyOf": [{"enum": fixed}, *keyed]},
                "direction": {"enum": ["ASC", "DESC"]},
            },
            "required": ["field"],
        },
    }


def _json_text(description: str, schema: dict[str, object]) -> Meta:
    return Meta(
        description=description,
        extra_json_schema={"contentMediaType": "application/json", "contentSchema": schema},
    )


_ORDER = "JSON text: the first entry's field orders the page, then the newest id"
TraceSortingText = Annotated[str, _json_text(_ORDER, _sorting(TRACE_SORTABLE_BY))]
SpanSortingText = Annotated[str, _json_text(_ORDER, _sorting(SPAN_SORTABLE_BY))]
TraceFieldsText = Annotated[
    str,
    _json_text(
        "JSON text: the fields left out of each trace",
        {"type": "array", "items": {"enum": list(TRACE_FIELDS)}},
    ),
]
SpanFieldsText = Annotated[
    str,
    _json_text(
        "JSON text: the fields left out of each span",
        {"type": "array", "items": {"enum": list(SPAN_FIELDS)}},
    ),
]


class TracesQuery(Struct):
    """A page of one project's traces (by name or id), newest id first or in `sorting`'s
    order (then newest id first); `search`: those holding the text (ignoring case) in their
    id, name, input, output, metadata, error_info, tags or thread_id; `from_time`/`to_time`
    and `exclude` as the search's; `strip_attachments` changes nothing."""

    page: PageNumber = 1
    size: PageNumber = 10
    project_name: str | None = None
    project_id: AnyId | None = None
    filters: FilterText | None = None
    truncate: bool = False
    strip_attachments: bool = False
    sorting: TraceSortingText | None = None
    exclude: TraceFieldsText | None = None
    search: str | None = None
    from_time: InstantText | None = None
    to_time: InstantText | None = None


class SpansQuery(Struct):
    """A page of one project's spans (by name or id), of one trace and one type when given,
    newest id first; the other parameters as TracesQuery's, `search` in the span's id,
    trace_id, name, type, input, output, metadata, tags, model or provider."""

    page: PageNumber = 1
    size: PageNumber = 10
    project_name: str | None = None
    project_id: AnyId | None = None
    trace_id: AnyId | None = None
    type: SpanType | None = None
    filters: FilterText | None = None
    truncate: bool = False
    strip_attachments: bool = False
    sorting: SpanSortingText | None = None
    exclude: SpanFieldsText | None = None
    search: str | None = None
    from_time: InstantText | None = None
    to_time: InstantText | None = None
