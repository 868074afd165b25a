"""The transfer file: JSON Lines that `export` writes and `import` reads, one record a line.

Each line is one object with one key, the record's kind, around the record in the API's own
shape: `{"experiment": {...}}` is what GET /v1/private/experiments/{id} answers,
`{"experiment_item": {...}}` what GET /v1/private/experiments/items/{id} answers (without the
trace's `trace_visibility_mode`, which the trace line carries), `{"dataset": {...}}` what
GET /v1/private/datasets/{id} answers without its counts (computed, never stored) and
`{"dataset_item": {...}}` a DatasetItem as GET /v1/private/datasets/{id}/items shows it. Kinds
come in dependency order, and a line without a kind is an item as POST
/v1/private/experiments/items takes it. Prompts and their versions are not in the file: no
route writes them yet.

These Structs live here rather than in payloads.py because no endpoint reads or writes them:
they are a file format, and keeping them out of payloads.py keeps them out of the OpenAPI
document. Unlike the responses they copy, they can be read back: every field a response
leaves out has a default.
"""

import calendar
import functools
import re
from datetime import datetime
from typing import Literal, get_args

import msgspec
from msgspec import UNSET, Struct, UnsetType

from app.dataset_payloads import DatasetType, ItemSource, Visibility
from app.payloads import (
    EvaluationMethod,
    ExperimentStatus,
    ExperimentType,
    Json,
    SpanType,
    TraceVisibility,
)

Kind = Literal[
    "project",
    "dataset",
    "experiment",
    "trace",
    "span",
    "feedback_score",
    "span_feedback_score",
    "dataset_item",
    "experiment_item",
]
KINDS: tuple[Kind, ...] = get_args(Kind)  # dependency order: what a line names comes first
LINE_END = b"\n"

# What clock.format_instant writes, with any 1 to 9 fraction digits: read to the nanosecond.
_INSTANT = re.compile(r"(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)(?:\.(\d{1,9}))?Z")
_INSTANT_RULE = "must be an instant like 2024-01-15T09:30:00.123456789Z"


class NamedLine(Struct, kw_only=True):
    """A project: a name in a workspace, matched case-insensitively."""

    id: str
    name: str
    created_at: str
    last_updated_at: str
    created_by: str
    last_updated_by: str


class DatasetLine(Struct, kw_only=True):
    """A dataset as GET /v1/private/datasets/{id} answers it (dataset_payloads.Dataset, in
    its order) without its counts. A file of schema version 1 has only the id, the name and
    the audit fields: the others have the defaults that POST /v1/private/datasets gives."""

    id: str
    name: str
    project_id: str | UnsetType = UNSET
    type: DatasetType = "dataset"
    visibility: Visibility = "private"
    tags: list[str] | UnsetType = UNSET
    description: str | UnsetType = UNSET
    created_at: str
    created_by: str
    last_updated_at: str
    last_updated_by: str


class DatasetItemLine(Struct, kw_only=True):
    """A dataset item as dataset_payloads.DatasetItem shows it, in its order, but that
    `tags` is left out when none were given (GET shows []), so that none stays none;
    `dataset_item_id` repeats `id` and is only written."""

    id: str
    dataset_item_id: str | UnsetType = UNSET
    trace_id: str | UnsetType = UNSET
    span_id: str | UnsetType = UNSET
    source: ItemSource
    data: Json
    description: str | UnsetType = UNSET
    tags: list[str] | UnsetType = UNSET
    evaluators: Json | UnsetType = UNSET
    execution_policy: Json | UnsetType = UNSET
    dataset_id: str
    created_at: str
    last_updated_at: str
    created_by: str
    last_updated_by: str


class ExperimentLine(Struct, kw_only=True):
    """An experiment as GET /v1/private/experiments/{id} answers it (the stored fields of
    experiment_payloads.Experiment). `dataset_name` makes its dataset when the file holds
    none with `dataset_id`; `project_name` is only read."""

    id: str
    dataset_name: str
    dataset_id: str
    project_id: str | UnsetType = UNSET
    project_name: str | UnsetType = UNSET
    name: str
    metadata: Json | UnsetType = UNSET
    tags: Json | UnsetType = UNSET
    type: ExperimentType = "regular"
    evaluation_method: EvaluationMethod = "dataset"
    optimization_id: str | UnsetType = UNSET
    created_at: str
    last_updated_at: str
    created_by: str
    last_updated_by: str
    status: ExperimentStatus | UnsetType = UNSET
    experiment_scores: Json | UnsetType = UNSET
    prompt_version: Json | UnsetType = UNSET
    prompt_versions: Json | UnsetType = UNSET
    dataset_version_id: str | UnsetType = UNSET


class TraceLine(Struct, kw_only=True):
    """A trace with the fields Opik's Trace has and this service keeps."""

    id: str
    project_id: str
    name: str | UnsetType = UNSET
    start_time: str
    end_time: str | UnsetType = UNSET
    input: Json | UnsetType = UNSET
    output: Json | UnsetType = UNSET
    metadata: Json | UnsetType = UNSET
    tags: Json | UnsetType = UNSET
    error_info: Json | UnsetType = UNSET
    thread_id: str | UnsetType = UNSET
    ttft: float | UnsetType = UNSET
    source: str | UnsetType = UNSET
    environment: str | UnsetType = UNSET
    visibility_mode: TraceVisibility = "default"
    created_at: str
    last_updated_at: str
    created_by: str
    last_updated_by: str


class SpanLine(Struct, kw_only=True):
    """A span with the fields Opik's Span has and this service keeps."""

    id: str
    trace_id: str
    project_id: str
    parent_span_id: str | UnsetType = UNSET
    name: str | UnsetType = UNSET
    type: SpanType | UnsetType = UNSET
    start_time: str
    end_time: str | UnsetType = UNSET
    input: Json | UnsetType = UNSET
    output: Json | UnsetType = UNSET
    metadata: Json | UnsetType = UNSET
    model: str | UnsetType = UNSET
    provider: str | UnsetType = UNSET
    tags: Json | UnsetType = UNSET
    usage: Json | UnsetType = UNSET
    error_info: Json | UnsetType = UNSET
    total_estimated_cost: float | UnsetType = UNSET
    total_estimated_cost_version: str | UnsetType = UNSET
    ttft: float | UnsetType = UNSET
    source: str | UnsetType = UNSET
    environment: str | UnsetType = UNSET
    created_at: str
    last_updated_at: str
    created_by: str
    last_updated_by: str


class ScoreLine(Struct, kw_only=True):
    """One author's feedback score of a trace (a payloads.ValueEntry with its trace's id, its
    name, its author and its audit fields)."""

    trace_id: str
    name: str
    author: str | UnsetType = UNSET  # left out (files before schema 3): its last_updated_by
    category_name: str | UnsetType = UNSET
    value: float
    reason: str | UnsetType = UNSET
    source: str
    created_at: str
    last_updated_at: str
    created_by: str
    last_updated_by: str


class SpanScoreLine(Struct, kw_only=True):
    """A feedback score of a span: ScoreLine with its span's id."""

    span_id: str
    name: str
    author: str | UnsetType = UNSET  # left out (files before schema 3): its last_updated_by
    category_name: str | UnsetType = UNSET
    value: float
    reason: str | UnsetType = UNSET
    source: str
    created_at: str
    last_updated_at: str
    created_by: str
    last_updated_by: str


class ItemLine(Struct, kw_only=True):
    """An experiment item: payloads.Item as exported, or payloads.ItemWrite as POSTed. The
    four audit fields come all together, kept as they are, or not at all, and then the item is
    written as the API writes it (by the importing user, now)."""

    experiment_id: str
    dataset_item_id: str
    trace_id: str
    # POST takes null for "none" where an export leaves the field out: both mean no value.
    id: str | UnsetType | None = UNSET
    project_id: str | UnsetType | None = UNSET
    created_at: str | UnsetType | None = UNSET
    last_updated_at: str | UnsetType | None = UNSET
    created_by: str | UnsetType | None = UNSET
    last_updated_by: str | UnsetType | None = UNSET
    project_name: str | UnsetType | None = UNSET  # only read, as in POST


Record = (
    NamedLine
    | DatasetLine
    | ExperimentLine
    | TraceLine
    | SpanLine
    | ScoreLine
    | SpanScoreLine
    | DatasetItemLine
    | ItemLine
)


class Line(Struct):
    """One line of the file: exactly one of these is set."""

    project: NamedLine | None = None
    dataset: DatasetLine | None = None
    experiment: ExperimentLine | None = None
    trace: TraceLine | None = None
    span: SpanLine | None = None
    feedback_score: ScoreLine | None = None
    span_feedback_score: SpanScoreLine | None = None
    dataset_item: DatasetItemLine | None = None
    experiment_item: ItemLine | None = None


class BadLine(ValueError):
    """A line that cannot be read; the message says why, for the import's report."""


_line_decoder = msgspec.json.Decoder(Line)
_item_decoder = msgspec.json.Decoder(ItemLine)
_encoder = msgspec.json.Encoder()
_TAGS = {kind: b'{"' + kind.encode() + b'":' for kind in KINDS}


def encode(kind: Kind, record: Record) -> bytes:
    """One line, its end included."""
    return _TAGS[kind] + _encoder.encode(record) + b"}" + LINE_END


def decode(text: bytes) -> tuple[Kind, Record]:
    """The kind and record of one line; a line with no kind is a bare item."""
    try:
        line = _line_decoder.decode(text)
        found = [(kind, getattr(line, kind)) for kind in KINDS if getattr(line, kind) is not None]
        if not found:
            return "experiment_item", _item_decoder.decode(text)
    except msgspec.ValidationError as exc:
        raise BadLine(f"wrong shape: {exc}") from None
    except msgspec.DecodeError as exc:
        raise BadLine(f"not JSON: {exc}") from None
    if len(found) > 1:
        raise BadLine(f"wrong shape: one record a line, not {', '.join(k for k, _ in found)}")
    return found[0]


@functools.lru_cache(maxsize=4096)  # a file repeats its instants: a batch's audit fields
def parse_instant(text: str) -> int:
    """Nanoseconds since the epoch of a UTC instant as clock.format_instant writes it."""
    match = _INSTANT.fullmatch(text)
    if match is None:
        raise ValueError(_INSTANT_RULE)
    year, month, day, hour, minute, second = (int(value) for value in match.groups()[:6])
    try:
        moment = datetime(year, month, day, hour, minute, second)
    except ValueError as exc:  # a day or an hour that does not exist
        raise ValueError(f"{_INSTANT_RULE} ({exc})") from None
    fraction = match.group(7) or ""
    return calendar.timegm(moment.timetuple()) * 1_000_000_000 + int(fraction.ljust(9, "0"))
