"""What the API stores, in words no storage engine owns: the records a Store takes (ids as
16-byte keys, instants as nanoseconds, JSON as its text, every value validated by
app/checks.py), the ways a store refuses, and Opik's rules that every engine keeps alike
(names, the default project, image truncation, durations, the 409 sentences)."""

import json
import re
from collections.abc import Iterable, Iterator
from itertools import islice
from typing import Any, TypeVar

import msgspec
from msgspec import UNSET, Raw, UnsetType

from app import ids

DEFAULT_PROJECT = "Default Project"  # where Opik puts a trace that names no project

T = TypeVar("T")


class Conflict(Exception):
    """The write would touch a record of another workspace, or contradicts a stored one: 409."""

    @classmethod
    def foreign(cls, what: str, key: bytes) -> "Conflict":
        return cls(f"{what} '{ids.to_str(key)}' belongs to another workspace")

    @classmethod
    def experiment_exists(cls, key: bytes) -> "Conflict":
        return cls(f"Already exists experiment with id '{ids.to_str(key)}'")

    @classmethod
    def dataset_mismatch(cls) -> "Conflict":
        return cls("Experiment dataset mismatch")

    @classmethod
    def dataset_exists(cls, name: str) -> "Conflict":
        # Opik answers this one in its ErrorMessage shape, {"errors": [...]}.
        conflict = cls(f"Dataset already exists with name '{name}'")
        conflict.listed = True
        return conflict

    @classmethod
    def prompt_exists(cls, name: str) -> "Conflict":
        conflict = cls(f"Prompt with name '{name}' already exists")
        conflict.listed = True
        return conflict

    listed = False  # True: answered as {"errors": [message]}, else {"code", "message"}


class NotFound(Exception):
    """What a transfer was asked to read is not in the database."""


class SchemaError(RuntimeError):
    """The database was written by a newer release, or is not ours: every engine refuses it
    in the same words."""

    @classmethod
    def newer(cls, version: int, latest: int) -> "SchemaError":
        return cls(
            f"the database has schema version {version}, newer than this release's "
            f"{latest}: upgrade experiment-items to open it"
        )


def name_key(name: str) -> str:
    """What makes two names the same name: Opik matches names case-insensitively."""
    return name.strip().casefold()


def first_spellings(names: Iterable[str]) -> dict[str, str]:
    """Each name by its key, spelled as it came first (the README's rule), stripped."""
    spelled: dict[str, str] = {}
    for name in names:
        spelled.setdefault(name_key(name), name.strip())
    return spelled


def batched(values: Iterable[T], size: int) -> Iterator[tuple[T, ...]]:
    """itertools.batched, which Python 3.11 lacks."""
    iterator = iter(values)
    while chunk := tuple(islice(iterator, size)):
        yield chunk


def json_text(value: Raw | UnsetType) -> str | None:
    """A JSON value's text as the client sent it; an explicit null is no value."""
    if value is UNSET:
        return None
    text = bytes(value).decode()
    return None if text.strip() == "null" else text


# Opik's truncation of embedded base64 images, applied to the JSON text of input and output:
# com.comet.opik.domain.ImageUtils.IMAGE_TRUNCATION_REGEX, replaced with "[image]".
_IMAGE = re.compile(
    r'"(?:data:image/[^;]{3,4};base64,)?'
    r"(?:/9j/|iVBORw0KGgo|R0lGODlh|R0lGODdh|Qk|SUkq|TU0A|UklGR)"
    r'={0,2}[A-Za-z0-9+/]+={0,2}"'
)


def truncate_images(text: str) -> str:
    return _IMAGE.sub('"[image]"', text)


def duration_ms(start_ns: int | None, end_ns: int | None) -> float | UnsetType:
    """Opik's duration: dateDiff('microsecond', start_time, end_time) / 1000.0."""
    if start_ns is None or end_ns is None:
        return UNSET
    return (end_ns // 1_000 - start_ns // 1_000) / 1000.0


# --- Records -------------------------------------------------------------------------------
# Structs with gc=False: a batch makes thousands, and they hold no cycles. Fields that are
# columns are named as the columns are.


class ItemRecord(msgspec.Struct, frozen=True, gc=False):
    """An experiment item to store; its project by name (found or made) or by id."""

    id: bytes
    experiment_id: bytes
    dataset_item_id: bytes
    trace_id: bytes
    project_name: str | None
    project_id: bytes | None


class ExperimentRecord(msgspec.Struct, frozen=True, gc=False):
    """A new experiment; its dataset by name (found or made), its project by id or by name.
    JSON values are their text; None is no value."""

    id: bytes
    name: str
    dataset_name: str
    project_id: bytes | None
    project_name: str | None
    metadata: str | None = None
    tags: str | None = None
    type: str = "regular"
    evaluation_method: str = "dataset"
    optimization_id: bytes | None = None
    status: str | None = None
    experiment_scores: str | None = None
    prompt_version: str | None = None
    prompt_versions: str | None = None
    dataset_version_id: bytes | None = None


class TraceRecord(msgspec.Struct, frozen=True, gc=False):
    """A trace as recorded (its project by name), or the one Opik makes from a task's result."""

    id: bytes
    project_name: str | None
    start_time: int
    name: str | None = None
    end_time: int | None = None
    input: str | None = None
    output: str | None = None
    metadata: str | None = None
    tags: str | None = None
    error_info: str | None = None
    thread_id: str | None = None
    ttft: float | None = None
    source: str | None = None
    environment: str | None = None
    hidden: bool = False


class SpanRecord(msgspec.Struct, frozen=True, gc=False):
    """A span of the trace it is recorded with."""

    id: bytes
    parent_span_id: bytes | None
    start_time: int
    name: str | None = None
    type: str | None = None
    end_time: int | None = None
    input: str | None = None
    output: str | None = None
    metadata: str | None = None
    model: str | None = None
    provider: str | None = None
    tags: str | None = None
    usage: str | None = None
    error_info: str | None = None
    total_estimated_cost: float | None = None
    total_estimated_cost_version: str | None = None
    ttft: float | None = None
    source: str | None = None
    environment: str | None = None


class ScoreRecord(msgspec.Struct, frozen=True, gc=False):
    """A feedback score of the trace it is recorded with; a second of a name by the same
    author replaces it. `author` None: the request's user."""

    name: str
    value: float
    source: str
    category_name: str | None = None
    reason: str | None = None
    author: str | None = None


class RunRecord(msgspec.Struct, frozen=True, gc=False):
    """One dataset item's run in a bulk upload: its trace, spans and scores. With no trace,
    the store makes the one Opik makes from the task's output (and no input)."""

    dataset_item_id: bytes
    trace: TraceRecord | None
    task_output: str | None = None
    spans: tuple[SpanRecord, ...] = ()
    scores: tuple[ScoreRecord, ...] = ()


class BulkRecord(msgspec.Struct, frozen=True, gc=False):
    """An evaluation run recorded at once: the experiment (by id when it exists, else made by
    name) and one run per dataset item. `project_name` None: Opik's default project."""

    experiment_id: bytes | None
    experiment_name: str
    dataset_name: str
    project_name: str | None
    runs: tuple[RunRecord, ...]


class StreamQuery(msgspec.Struct, frozen=True, gc=False):
    """Which items a stream reads: those of every experiment of one name, newest id first,
    older than `before` when it is set, `limit` of them at most."""

    experiment_name: str
    limit: int
    before: bytes | None
    project_name: str | None
    truncate: bool


class TraceUpsert(msgspec.Struct, frozen=True, gc=False):
    """A trace to create or replace: newest `last_updated_at` wins (None: the moment of the
    write), and a row a PATCH made first is completed rather than replaced."""

    trace: TraceRecord
    last_updated_at: int | None = None

    def row(self, project_id: bytes, now: int) -> dict[str, Any]:
        """The trace's columns as stored (audit and workspace aside), in its project, written
        at `now`."""
        row = msgspec.structs.asdict(self.trace)
        del row["project_name"]
        row.update(hidden=int(self.trace.hidden), project_id=project_id)
        row["last_updated_at"] = now if self.last_updated_at is None else self.last_updated_at
        return row


class SpanUpsert(msgspec.Struct, frozen=True, gc=False):
    """A span to create or replace, as TraceUpsert; its trace by id, its project by name."""

    span: SpanRecord
    trace_id: bytes
    project_name: str | None
    last_updated_at: int | None = None

    def row(self, project_id: bytes, now: int) -> dict[str, Any]:
        """As TraceUpsert.row, for the span."""
        row = msgspec.structs.asdict(self.span)
        row.update(trace_id=self.trace_id, project_id=project_id)
        row["last_updated_at"] = now if self.last_updated_at is None else self.last_updated_at
        return row


class Patch(msgspec.Struct, frozen=True, gc=False):
    """The fields of one trace or span to replace, by column name; when the record is not
    stored yet, a partial one holding them. Tags to add and remove apply after `tags`."""

    id: bytes
    project_name: str | None
    fields: dict[str, object]
    tags_to_add: tuple[str, ...] = ()
    tags_to_remove: tuple[str, ...] = ()

    def tags_of(self, stored: str | None) -> str | None:
        """The tags (JSON text) after the patch of those stored: `tags` replaces them, then
        `tags_to_add`, then `tags_to_remove`."""
        given = self.fields.get("tags")
        text = given if isinstance(given, str) else stored
        tags: list[str] = json.loads(text) if text else []
        tags += [tag for tag in self.tags_to_add if tag not in tags]
        tags = [tag for tag in tags if tag not in self.tags_to_remove]
        return json.dumps(tags) if tags or text else None


class ScoreUpsert(msgspec.Struct, frozen=True, gc=False):
    """A feedback score of the trace or span `id`, stored or not; its project made if named."""

    id: bytes
    project_name: str | None
    score: ScoreRecord


class TooManyTags(Exception):
    """An update would leave an experiment with more tags than Opik allows: 422."""

    MESSAGE = "Tag limit exceeded: maximum 50 tags per item"


class ExperimentChange(msgspec.Struct, frozen=True, gc=False):
    """What an update changes in each experiment it names; None (and `metadata_given` or
    `scores_given` false) leaves a field as it is. `tags` replace, or are added when
    `merge_tags`; `tags_to_add`/`tags_to_remove`, when either is given, win over `tags`."""

    name: str | None = None
    metadata: str | None = None
    tags: tuple[str, ...] | None = None
    tags_to_add: tuple[str, ...] | None = None
    tags_to_remove: tuple[str, ...] | None = None
    merge_tags: bool = False
    type: str | None = None
    status: str | None = None
    experiment_scores: str | None = None
    scores_given: bool = False

    def tags_of(self, stored: list[str]) -> list[str] | None:
        """The experiment's tags after the change, in order without duplicates; None when
        the change leaves them."""
        if self.tags_to_add is not None or self.tags_to_remove is not None:
            removed = set(self.tags_to_remove or ())
            kept = [t for t in [*stored, *(self.tags_to_add or ())] if t not in removed]
        elif self.tags is not None:
            kept = [*stored, *self.tags] if self.merge_tags else list(self.tags)
        else:
            return None
        return list(dict.fromkeys(kept))


class ExperimentQuery(msgspec.Struct, frozen=True, gc=False):
    """Which experiments find or stream reads: every condition given (not None) holds, in
    the order of `sort` (a sortable field, `feedback_scores.<name>` and the like) when set,
    newest id first after it; `offset` skipped, `limit` at most."""

    limit: int
    offset: int = 0
    name: str | None = None  # a part of the name, case-insensitive
    before: bytes | None = None  # only ids below it
    project_id: bytes | None = None  # its own project, or that of an item's trace
    project_name: str | None = None  # the same, by name; none has that name: nothing
    dataset_id: bytes | None = None
    optimization_id: bytes | None = None
    prompt_id: bytes | None = None
    types: tuple[str, ...] | None = None
    ids: tuple[bytes, ...] | None = None
    dataset_deleted: bool = False
    project_deleted: bool = False  # no item in a stored project, or one in none
    sort: str | None = None
    descending: bool = False
    filters: tuple["Filter", ...] = ()


class Filter(msgspec.Struct, frozen=True, gc=False):
    """One condition of find's `filters`: a field (with a key: a metadata path, a score's
    name), an operator of app/filters.py and the value, as a number for scores."""

    field: str
    operator: str
    key: str
    value: str
    number: float | None = None
