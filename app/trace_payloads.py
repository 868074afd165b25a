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
