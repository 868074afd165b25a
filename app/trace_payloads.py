"""The Structs of traces, spans, feedback scores, projects and auth, as Opik's REST API reads
and writes them (opik-reference/datasets-traces.md, sections 3.2 and 3.6 to 3.8); no I/O."""

from typing import Annotated, Literal

from msgspec import UNSET, Meta, Struct, UnsetType

from app.payloads import (
    AnyId,
    BatchSize,
    Cost,
    DateTime,
    ErrorInfo,
    FeedbackScore,
    Instant,
    Json,
    Name,
    NotBlank,
    OutId,
    Score,
    ScoreSource,
    SpanType,
    SpanWrite,
    StreamLimit,
    TraceVisibility,
    TraceWrite,
    Usage,
    V7Id,
)

MAX_TAG_CHARS = 100
MAX_PATCH_TAGS = 50  # TraceUpdate and SpanUpdate: at most 50 tags of at most 100 characters

Tags = Annotated[
    list[Annotated[str, Meta(max_length=MAX_TAG_CHARS)]], Meta(max_length=MAX_PATCH_TAGS)
]

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
# `from_time`/`to_time`: text, so that one that is no instant is a 400 (Jackson's), not a 422.
InstantText = Annotated[
    str,
    Meta(
        extra_json_schema={"format": "date-time"},
        description="An ISO-8601 instant (no zone: UTC); bounds the record's id, a UUID v7",
    ),
]


# The names as an enum in the schema only: trace_checks.excluded answers Opik's 400 for another.
TraceFieldName = Annotated[str, Meta(extra_json_schema={"enum": list(TRACE_FIELDS)})]
SpanFieldName = Annotated[str, Meta(extra_json_schema={"enum": list(SPAN_FIELDS)})]


class TraceCreate(TraceWrite):
    """A trace to create, or to replace when its id exists and this `last_updated_at` (the
    client's, the row's version) is not older than the stored one. Its project is found by
    name, case-insensitively, or made; no name: "Default Project"."""

    last_updated_at: DateTime | None = None


class TraceBatch(Struct):
    """1 to 1000 traces, stored all together or not at all."""

    traces: Annotated[list[TraceCreate], BatchSize]


class SpanCreate(SpanWrite, kw_only=True):
    """A span of a trace, to create or replace as traces are."""

    trace_id: V7Id
    project_name: Name | None = None
    last_updated_at: DateTime | None = None


class SpanBatch(Struct):
    """1 to 1000 spans, stored all together or not at all."""

    spans: Annotated[list[SpanCreate], BatchSize]


class TraceUpdate(Struct):
    """The fields of a trace to replace; a trace that does not exist yet is kept with these
    and completed by its create when that arrives."""

    project_name: Name | None = None
    project_id: AnyId | None = None
    name: str | None = None
    end_time: DateTime | None = None
    input: Json | UnsetType = UNSET
    output: Json | UnsetType = UNSET
    metadata: Json | UnsetType = UNSET
    tags: Tags | None = None
    tags_to_add: Tags | None = None
    tags_to_remove: Tags | None = None
    error_info: ErrorInfo | None = None
    thread_id: str | None = None
    ttft: float | None = None
    source: str | None = None
    environment: str | None = None


class SpanUpdate(Struct, kw_only=True):
    """The fields of a span to replace, as TraceUpdate; `trace_id` is required."""

    trace_id: V7Id
    project_name: Name | None = None
    project_id: AnyId | None = None
    parent_span_id: V7Id | None = None
    name: str | None = None
    type: SpanType | None = None
    end_time: DateTime | None = None
    input: Json | UnsetType = UNSET
    output: Json | UnsetType = UNSET
    metadata: Json | UnsetType = UNSET
    model: str | None = None
    provider: str | None = None
    tags: Tags | None = None
    tags_to_add: Tags | None = None
    tags_to_remove: Tags | None = None
    usage: dict[str, Usage] | None = None
    error_info: ErrorInfo | None = None
    total_estimated_cost: Cost | None = None
    total_estimated_cost_version: str | None = None
    ttft: float | None = None
    source: str | None = None
    environment: str | None = None

    def __post_init__(self) -> None:
        if self.usage:
            self.usage = {key: int(value) for key, value in self.usage.items()}  # WholeNumber


class ScoreItem(Struct):
    """A feedback score of a trace or span, by its id (whether or not it is stored yet); a
    second score of one name replaces the first."""

    id: V7Id
    name: Annotated[NotBlank, Meta(min_length=1, max_length=255)]
    value: Score
    source: ScoreSource
    category_name: str | None = None
    reason: str | None = None
    project_name: Name | None = None
    project_id: AnyId | None = None
    author: str | None = None


class ScoreBatch(Struct):
    """1 to 1000 feedback scores, stored all together or not at all."""

    scores: Annotated[list[ScoreItem], BatchSize]


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


class Trace(Struct):
    """A trace as Opik's `Trace` Public view shows it, in its order: fields never set (or
    excluded) are left out; the counts of its spans are always there (0 when excluded)."""

    id: OutId
    project_id: OutId
    name: str | UnsetType
    start_time: Instant | UnsetType
    end_time: Instant | UnsetType
    input: Json | UnsetType
    output: Json | UnsetType
    metadata: Json | UnsetType
    tags: Json | UnsetType
    error_info: Json | UnsetType
    usage: dict[str, int] | UnsetType
    created_at: Instant | UnsetType
    last_updated_at: Instant
    created_by: str | UnsetType
    last_updated_by: str | UnsetType
    feedback_scores: list[FeedbackScore] | UnsetType
    total_estimated_cost: float | UnsetType
    span_count: int
    duration: float | UnsetType
    ttft: float | UnsetType
    thread_id: str | UnsetType
    visibility_mode: TraceVisibility | UnsetType
    llm_span_count: int
    has_tool_spans: bool
    providers: list[str] | UnsetType
    source: str | UnsetType
    environment: str | UnsetType


class Span(Struct):
    """A span as Opik's `Span` Public view shows it, in its order; fields never set (or
    excluded) are left out."""

    id: OutId
    project_id: OutId
    trace_id: OutId
    parent_span_id: OutId | UnsetType
    name: str | UnsetType
    type: SpanType | UnsetType
    start_time: Instant | UnsetType
    end_time: Instant | UnsetType
    input: Json | UnsetType
    output: Json | UnsetType
    metadata: Json | UnsetType
    model: str | UnsetType
    provider: str | UnsetType
    tags: Json | UnsetType
    usage: dict[str, int] | UnsetType
    error_info: Json | UnsetType
    created_at: Instant | UnsetType
    last_updated_at: Instant
    created_by: str | UnsetType
    last_updated_by: str | UnsetType
    feedback_scores: list[FeedbackScore] | UnsetType
    total_estimated_cost: float | UnsetType
    total_estimated_cost_version: str | UnsetType
    duration: float | UnsetType
    ttft: float | UnsetType
    source: str | UnsetType
    environment: str | UnsetType


class Project(Struct):
    """A project as Opik's `Project_Public` shows it."""

    id: OutId
    name: str
    visibility: Literal["private", "public"]
    created_at: Instant
    created_by: str
    last_updated_at: Instant
    last_updated_by: str


class ProjectRetrieve(Struct):
    """The project to find, by name (case-insensitive)."""

    name: Annotated[NotBlank, Meta(min_length=1)]


class WorkspaceName(Struct):
    """The request's workspace."""

    workspace_name: str


class TracePage(Struct):
    """One page of traces: `size` is the number on it, `total` of all that match."""

    page: int
    size: int
    total: int
    content: list[Trace]
    sortable_by: list[str]


class SpanPage(Struct):
    """One page of spans, as TracePage."""

    page: int
    size: int
    total: int
    content: list[Span]
    sortable_by: list[str]


class TraceDelete(Struct):
    """1 to 1000 traces to delete, with their spans and both's feedback scores; only those of
    `project_id` when given. Ids of none, or of another workspace, are ignored."""

    ids: Annotated[list[AnyId], BatchSize]
    project_id: AnyId | None = None


class ScoreDelete(Struct):
    """The feedback score of this name to delete: `author`'s only when given, else every
    author's. None stored is no error."""

    name: NotBlank
    author: str | None = None
