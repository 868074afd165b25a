"""Every payload the service reads or writes, as msgspec Structs; no I/O here."""

from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any, Literal

import msgspec
from msgspec import UNSET, Meta, Struct, UnsetType

MAX_BATCH_ITEMS = 1000
MAX_NAME_CHARS = 255

BatchSize = Meta(min_length=1, max_length=MAX_BATCH_ITEMS)
Name = Annotated[str, Meta(max_length=MAX_NAME_CHARS)]
TraceVisibility = Literal["default", "hidden"]

# Text whose rule the endpoints check themselves, answering as the contract says: 400
# "Invalid UUID for id" for an id that must be version 7 (body.require_v7), 422 "<path> must
# be a UUID" or "<path> must not be blank" (body.require_uuid, body.require_text). msgspec's
# own `pattern` would refuse the same text with another 422, so the rule is only stated in
# the JSON Schema (extra_json_schema), which changes nothing in decoding or encoding.
UUID_PATTERN = "^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
UUID_V7_PATTERN = (
    "^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-7[0-9a-fA-F]{3}-[89abAB][0-9a-fA-F]{3}-[0-9a-fA-F]{12}$"
)
UUID_OUT_PATTERN = "^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"
INSTANT_PATTERN = r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{3}|\.\d{6}|\.\d{9})?Z$"
# Opik's @NotBlank as str.strip() sees it: some character Python does not count as white
# space. Spelled out, since \s differs between Python and ECMA 262.
NOT_BLANK_PATTERN = "[^\t-\r\x1c- \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]"

AnyId = Annotated[str, Meta(extra_json_schema={"format": "uuid", "pattern": UUID_PATTERN})]
V7Id = Annotated[str, Meta(extra_json_schema={"format": "uuid", "pattern": UUID_V7_PATTERN})]
NotBlank = Annotated[str, Meta(extra_json_schema={"pattern": NOT_BLANK_PATTERN})]
# What the service writes: lowercase ids, and clock.format_instant's 0, 3, 6 or 9 digits.
OutId = Annotated[str, Meta(extra_json_schema={"format": "uuid", "pattern": UUID_OUT_PATTERN})]
Instant = Annotated[
    str, Meta(extra_json_schema={"format": "date-time", "pattern": INSTANT_PATTERN})
]
# msgspec reads RFC 3339 text into a datetime, and its schema says only "string". The bounds
# (clock.storable, checked by items.py with a 422) JSON Schema cannot state for a date-time.
DateTime = Annotated[
    datetime,
    Meta(
        extra_json_schema={"format": "date-time"},
        description="An instant between the years 1677 and 2262 (64-bit nanoseconds since 1970)",
    ),
]


class Item(Struct):
    """An experiment item as Opik's `ExperimentItemPublic` shows it; the field order is the
    contract's. `project_id` is left out while it is unknown, as Opik leaves out nulls."""

    experiment_id: OutId
    dataset_item_id: OutId
    trace_id: OutId
    id: OutId
    project_id: OutId | UnsetType
    created_at: Instant
    last_updated_at: Instant
    created_by: str
    last_updated_by: str
    trace_visibility_mode: TraceVisibility


class ItemWrite(Struct):
    """One item to create, or to update when its id exists. Ids are UUID version 7 strings;
    fields this service does not know (newer SDKs send more) are ignored."""

    experiment_id: V7Id
    dataset_item_id: V7Id
    trace_id: V7Id
    id: V7Id | None = None
    project_name: Name | None = None
    project_id: AnyId | None = None


class ItemBatch(Struct):
    """A batch of 1 to 1000 items with distinct ids, stored all together or not at all."""

    experiment_items: Annotated[list[ItemWrite], BatchSize]


class IdList(Struct):
    """The ids of 1 to 1000 records to delete; ids that do not exist are ignored."""

    ids: Annotated[list[AnyId], BatchSize]


class Error(Struct):
    """The error body of every status but 422."""

    code: int
    message: str
    details: str | UnsetType = UNSET


class ValidationErrors(Struct):
    """A 422: each entry names a JSON path and the rule the body broke there."""

    errors: list[str]


class Health(Struct):
    """Whether this worker can read and write its database."""

    message: str
    healthy: bool


class Version(Struct):
    """The Opik release whose API this service follows (the SDK turns features on by it:
    parallel dataset uploads from 2.2.8), and this service's own release."""

    version: str
    experiment_items: str


encoder = msgspec.json.Encoder()


# --- Experiments -------------------------------------------------------------------------

MAX_TAGS = 50
MAX_STREAM_LIMIT = 2000
DEFAULT_STREAM_LIMIT = 500
MAX_SPANS = 100
MAX_SCORES = 100

ExperimentType = Literal["regular", "trial", "mini-batch", "mutation"]
EvaluationMethod = Literal["dataset", "evaluation_suite"]
ExperimentStatus = Literal["running", "completed", "cancelled", "failed"]
ScoreSource = Literal["ui", "sdk", "online_scoring"]
SpanType = Literal["general", "tool", "llm", "guardrail"]
# Any JSON value, kept as the client's text: stored and sent back without re-encoding.
Json = msgspec.Raw


class ExperimentScore(Struct):
    """A score of the experiment as a whole."""

    name: str
    value: float


class PromptVersionLink(Struct):
    """A prompt version the experiment ran with."""

    id: AnyId


class ExperimentWrite(Struct):
    """An experiment to create. Its dataset and project are found by name (case-insensitive)
    and created on first use; `project_id` wins over `project_name` when both are sent."""

    dataset_name: Annotated[NotBlank, Meta(min_length=1, max_length=MAX_NAME_CHARS)]
    id: V7Id | None = None
    name: Name | None = None
    project_name: Name | None = None
    project_id: AnyId | None = None
    metadata: Json | UnsetType = UNSET
    tags: Annotated[list[Name], Meta(max_length=MAX_TAGS)] | None = None
    type: ExperimentType = "regular"
    evaluation_method: EvaluationMethod = "dataset"
    optimization_id: AnyId | None = None
    status: ExperimentStatus | None = None
    experiment_scores: list[ExperimentScore] | None = None
    prompt_version: PromptVersionLink | None = None
    prompt_versions: list[PromptVersionLink] | None = None
    dataset_version_id: AnyId | None = None


# --- Whole numbers -----------------------------------------------------------------------

# JSON Schema's "integer" is any number whose fraction is zero, 1.0 included (JSON Schema
# 2020-12 validation, 6.1.1), and Jackson reads 1.0 into Opik's Integer fields; msgspec's
# `int` refuses 1.0. So a request's integer field takes a float that is a multiple of 1 too,
# and its Struct's __post_init__ turns it into the int that mypy is told the field holds.
# 1.5 is still a 422 naming the field. openapi.py describes the pair as one "integer".


def whole(ge: int | None = None, le: int | None = None) -> Any:
    return Annotated[int, Meta(ge=ge, le=le)] | Annotated[float, Meta(ge=ge, le=le, multiple_of=1)]


# Bounds on the numbers the store sums or averages, so that no valid write can make a later
# read overflow (SQLite's sum() raises "integer overflow" past 64 bits; floats go to inf).
# Opik's own: span usage is Map<String, Integer> (api/Span.java), 32-bit per value; a feedback
# score is a decimal in [-999999999.999999999, 999999999.999999999] (Decimal(18,9)); a span
# cost is at least 0 and stored as Decimal(38,12), under 10^26. A trace would need 2^32 spans
# for its usage to overflow, and 10^282 for its cost.
MIN_USAGE = -(2**31)
MAX_USAGE = 2**31 - 1
MAX_SCORE = 1e9  # Opik's 999999999.999999999, as a double
MAX_COST = 1e26

Score = Annotated[float, Meta(ge=-MAX_SCORE, le=MAX_SCORE)]
Cost = Annotated[float, Meta(ge=0, lt=MAX_COST)]

if TYPE_CHECKING:
    WholeNumber = int
    StreamLimit = int
    Usage = int
else:
    WholeNumber = whole()
    StreamLimit = whole(ge=1, le=MAX_STREAM_LIMIT)
    Usage = whole(ge=MIN_USAGE, le=MAX_USAGE)


# --- Streaming ---------------------------------------------------------------------------


class StreamRequest(Struct):
    """Which items to stream: those of every experiment named `experiment_name`, newest id
    first, only ids below `last_retrieved_id` when given, at most `limit`."""

    experiment_name: Annotated[NotBlank, Meta(min_length=1)]
    limit: StreamLimit | None = None  # None: 500
    last_retrieved_id: AnyId | None = None
    truncate: bool | None = None  # None: true
    project_name: str | None = None

    def __post_init__(self) -> None:
        if self.limit is not None:
            self.limit = int(self.limit)  # 500.0 (see WholeNumber)


class ValueEntry(Struct):
    """One author's latest score of a name."""

    value: float
    reason: str | UnsetType
    category_name: str | UnsetType
    source: str
    last_updated_at: Instant


class FeedbackScore(Struct):
    """A score of a trace or span by name, as Opik shows it: the average of its authors'
    latest values (the one value when there is one author), their categories, reasons and
    users joined by ", ", and each author's own in `value_by_author`."""

    name: str
    category_name: str | UnsetType
    value: float
    reason: str | UnsetType
    source: str
    created_at: Instant
    last_updated_at: Instant
    created_by: str
    last_updated_by: str
    value_by_author: dict[str, ValueEntry]


class FullItem(Struct):
    """An experiment item with what its trace tells, one line of the stream. The trace's
    fields are left out where the trace is not known."""

    experiment_id: OutId
    dataset_item_id: OutId
    trace_id: OutId
    id: OutId
    project_id: OutId | UnsetType
    input: Json | UnsetType
    output: Json | UnsetType
    feedback_scores: list[FeedbackScore] | UnsetType
    total_estimated_cost: float | UnsetType
    duration: float | UnsetType
    usage: dict[str, int] | UnsetType
    created_at: Instant
    last_updated_at: Instant
    created_by: str
    last_updated_by: str
    trace_visibility_mode: TraceVisibility


# --- Bulk recording ----------------------------------------------------------------------


class ErrorInfo(Struct):
    """What failed in a trace or span."""

    exception_type: str
    traceback: str
    message: str | None = None


class TraceWrite(Struct):
    """The trace an item records; its project defaults to the request's, then to Opik's
    "Default Project"."""

    start_time: DateTime
    id: V7Id | None = None
    project_name: Name | None = None
    name: str | None = None
    end_time: DateTime | None = None
    input: Json | UnsetType = UNSET
    output: Json | UnsetType = UNSET
    metadata: Json | UnsetType = UNSET
    tags: list[str] | None = None
    error_info: ErrorInfo | None = None
    thread_id: str | None = None
    ttft: float | None = None
    source: str | None = None
    environment: str | None = None
    visibility_mode: TraceVisibility = "default"


class SpanWrite(Struct):
    """A span of the item's trace."""

    start_time: DateTime
    id: V7Id | None = None
    parent_span_id: V7Id | None = None
    name: str | None = None
    type: SpanType | None = None
    end_time: DateTime | None = None
    input: Json | UnsetType = UNSET
    output: Json | UnsetType = UNSET
    metadata: Json | UnsetType = UNSET
    model: str | None = None
    provider: str | None = None
    tags: list[str] | None = None
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


class ScoreWrite(Struct):
    """A feedback score of the item's trace; a second score of one name replaces the first."""

    name: Annotated[str, Meta(min_length=1, max_length=MAX_NAME_CHARS)]
    value: Score
    source: ScoreSource
    category_name: str | None = None
    reason: str | None = None


class BulkRecord(Struct):
    """One evaluated dataset item: its trace, or the task's result from which a trace is made
    (never both; an explicit null counts as sent), with its spans and scores."""

    dataset_item_id: V7Id
    trace: TraceWrite | UnsetType | None = UNSET
    evaluate_task_result: Json | UnsetType = UNSET
    spans: Annotated[list[SpanWrite], Meta(max_length=MAX_SPANS)] | None = None
    feedback_scores: Annotated[list[ScoreWrite], Meta(max_length=MAX_SCORES)] | None = None


class BulkUpload(Struct):
    """A whole evaluation run, recorded in one transaction: the experiment (found by
    `experiment_id`, else created with `experiment_name`) and 1 to 1000 items."""

    experiment_name: Annotated[NotBlank, Meta(min_length=1, max_length=MAX_NAME_CHARS)]
    dataset_name: Annotated[NotBlank, Meta(min_length=1, max_length=MAX_NAME_CHARS)]
    items: Annotated[list[BulkRecord], BatchSize]
    experiment_id: V7Id | None = None
    project_name: Name | None = None
