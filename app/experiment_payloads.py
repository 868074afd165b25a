"""The experiments resource's payloads: an experiment with its aggregates, the page that find
answers, and the requests of stream, update, batch update and finish; no I/O here."""

from typing import TYPE_CHECKING, Annotated, Literal

from msgspec import UNSET, Meta, Struct, UnsetType

from app.filters import SCHEMA as FILTERS_SCHEMA
from app.payloads import (
    MAX_NAME_CHARS,
    MAX_STREAM_LIMIT,
    MAX_TAGS,
    UUID_PATTERN,
    AnyId,
    BatchSize,
    EvaluationMethod,
    ExperimentStatus,
    ExperimentType,
    Instant,
    Json,
    NotBlank,
    OutId,
    whole,
)

MAX_TAG_CHARS = 100
MAX_PAGE = 2**31 - 1  # Opik has no maximum; a bound keeps the offset in 64 bits

Tag = Annotated[NotBlank, Meta(min_length=1, max_length=MAX_TAG_CHARS)]
Tags = Annotated[list[Tag], Meta(max_length=MAX_TAGS)]

if TYPE_CHECKING:
    StreamLimit = int
else:
    StreamLimit = whole(ge=1, le=MAX_STREAM_LIMIT)


class ScoreAverage(Struct):
    """A feedback score's average over the experiment's items whose trace is stored."""

    name: str
    value: float


class Duration(Struct):
    """Percentiles of the traces' durations in milliseconds (linear interpolation)."""

    p50: float
    p90: float
    p99: float


class Experiment(Struct):
    """An experiment as Opik's `Experiment_Public` shows it, with its aggregates computed
    now; the field order is Opik's. Fields without a value are left out, and an experiment
    without items has no scores, duration, costs or usage."""

    id: OutId
    dataset_name: str | UnsetType
    dataset_id: OutId
    project_id: OutId | UnsetType
    project_name: str | UnsetType
    name: str
    metadata: Json | UnsetType
    tags: Json | UnsetType
    type: ExperimentType
    evaluation_method: EvaluationMethod
    optimization_id: OutId | UnsetType
    feedback_scores: list[ScoreAverage] | UnsetType
    trace_count: int
    dataset_item_count: int
    created_at: Instant
    duration: Duration | UnsetType
    total_estimated_cost: float | UnsetType
    total_estimated_cost_avg: float | UnsetType
    usage: dict[str, float] | UnsetType
    last_updated_at: Instant
    created_by: str
    last_updated_by: str
    status: ExperimentStatus
    experiment_scores: Json | UnsetType
    prompt_version: Json | UnsetType
    prompt_versions: Json | UnsetType
    dataset_version_id: OutId | UnsetType


# Opik's ExperimentSortingFactory.EXPERIMENT_SORTABLE_FIELDS, in its order.
SORTABLE_BY = [
    *("id", "name", "created_at", "last_updated_at", "created_by", "last_updated_by", "tags"),
    *("trace_count", "total_estimated_cost", "total_estimated_cost_avg", "feedback_scores.*"),
    *("experiment_scores.*", "duration.*", "pass_rate"),
]


class ExperimentPage(Struct):
    """One page of find: `size` is the number of experiments on it, `total` all that match."""

    page: int
    size: int
    total: int
    content: list[Experiment]
    sortable_by: list[str]


class ExperimentStreamRequest(Struct):
    """Which experiments to stream: those whose name holds `name` (case-insensitive), newest
    id first, only ids below `last_retrieved_id` when given, at most `limit`; within the
    project `project_name` when given (none when no project has that name)."""

    name: Annotated[NotBlank, Meta(min_length=1)]
    limit: StreamLimit | None = None  # None: 500
    last_retrieved_id: AnyId | None = None
    project_name: Annotated[str, Meta(max_length=MAX_NAME_CHARS)] | None = None

    def __post_init__(self) -> None:
        if self.limit is not None:
            self.limit = int(self.limit)  # 500.0 (see payloads.WholeNumber)


class ExperimentScoreWrite(Struct):
    """A score of the experiment as a whole."""

    name: Annotated[NotBlank, Meta(min_length=1, max_length=MAX_NAME_CHARS)]
    value: float


class ExperimentUpdate(Struct):
    """What to change; every field is optional and `{}` changes only `last_updated_*`.
    `metadata` and `experiment_scores` replace; `tags` replace unless `tags_to_add` or
    `tags_to_remove` is sent, which then win."""

    name: Annotated[NotBlank, Meta(min_length=1, max_length=MAX_NAME_CHARS)] | None = None
    metadata: Json | UnsetType = UNSET
    tags: Tags | None = None
    tags_to_add: Tags | None = None
    tags_to_remove: Tags | None = None
    type: ExperimentType | None = None
    status: ExperimentStatus | None = None
    experiment_scores: list[ExperimentScoreWrite] | None = None


class ExperimentBatchUpdate(Struct):
    """The same update for 1 to 1000 experiments; ids of other workspaces or of none are
    skipped. `merge_tags`: `tags` are added to the existing ones instead of replacing them."""

    ids: Annotated[list[AnyId], BatchSize]
    update: ExperimentUpdate
    merge_tags: bool | None = None


def _json_param(schema: dict[str, object]) -> Meta:
    # A query parameter whose value is JSON text: openapi.py describes it as OpenAPI's
    # parameter `content` (application/json) with this schema.
    return Meta(extra_json_schema={"contentMediaType": "application/json", "contentSchema": schema})


_UUIDS = {"type": "array", "items": {"type": "string", "format": "uuid", "pattern": UUID_PATTERN}}
_TYPES = {"type": "array", "items": {"enum": ["regular", "trial", "mini-batch", "mutation"]}}
_SORTING = {
    "type": "array",
    "items": {
        "type": "object",
        "properties": {"field": {"type": "string"}, "direction": {"enum": ["ASC", "DESC"]}},
        "required": ["field"],
    },
}
Page = Annotated[int, Meta(ge=1, le=MAX_PAGE)]


class FindQuery(Struct):
    """The query of find: which experiments (all filters AND-combined), in which order (the
    first sorting entry; newest first by default and as the tie-break), which page."""

    page: Page = 1
    size: Page = 10
    name: str | None = None  # a case-insensitive part of the name
    datasetId: AnyId | None = None  # Opik's spelling
    optimization_id: AnyId | None = None
    project_id: AnyId | None = None
    prompt_id: AnyId | None = None
    types: Annotated[str, _json_param(_TYPES)] | None = None
    experiment_ids: Annotated[str, _json_param(_UUIDS)] | None = None
    dataset_deleted: bool = False
    project_deleted: bool = False  # no item in a stored project, or one in none
    filters: Annotated[str, _json_param(FILTERS_SCHEMA)] | None = None
    sorting: Annotated[str, _json_param(_SORTING)] | None = None
    force_sorting: bool = False


class ScoreNamesQuery(Struct):
    """Whose score names: the trace scores of the workspace (of one project), or of the
    experiments `experiment_ids` names, with those experiments' own scores."""

    experiment_ids: Annotated[str, _json_param(_UUIDS)] | None = None
    project_id: AnyId | None = None


class ScoreName(Struct):
    """A score's name, and whether traces (`feedback_scores`) or experiments carry it."""

    name: str
    type: Literal["feedback_scores", "experiment_scores"]


class ScoreNames(Struct):
    """The distinct score names, by type, then name."""

    scores: list[ScoreName]


_GROUPS = {
    "type": "array",
    "minItems": 1,
    "items": {
        "anyOf": [
            {
                "type": "object",
                "properties": {
                    "field": {"const": "metadata"},
                    # Any key with a non-blank character, as app/groups.py checks it.
                    "key": {"type": "string", "pattern": "\\S"},
                    "type": {"const": "dictionary"},
                },
                "required": ["field", "key"],
            },
            {
                "type": "object",
                "properties": {
                    "field": {"enum": ["dataset_id", "project_id"]},
                    "type": {"const": "string"},
                },
                "required": ["field"],
            },
            {
                "type": "object",
                "properties": {"field": {"const": "tags"}, "type": {"const": "list"}},
                "required": ["field"],
            },
        ]
    },
}


class GroupsQuery(Struct):
    """How to group experiments (`groups`: a JSON array of {field, key, type}, one level
    each) and which: as find's `name`, `types`, `project_id`, `project_deleted`, `filters`."""

    groups: Annotated[str, _json_param(_GROUPS)]
    name: str | None = None
    types: Annotated[str, _json_param(_TYPES)] | None = None
    project_id: AnyId | None = None
    project_deleted: bool = False
    filters: Annotated[str, _json_param(FILTERS_SCHEMA)] | None = None


class GroupAggregations(Struct):
    """A group's aggregates over its experiments, each counted once: their number, their
    summed trace counts and costs, the mean of their average costs (an experiment without
    costs counting 0), and per percentile and per score name the mean over the experiments
    that have one. A group with subgroups always has `total_estimated_cost` (0 when none) and
    both score lists; a last-level group leaves out what it has none of."""

    experiment_count: int
    trace_count: int
    total_estimated_cost: float | UnsetType = UNSET
    total_estimated_cost_avg: float | UnsetType = UNSET
    duration: Duration | UnsetType = UNSET
    feedback_scores: list[ScoreAverage] | UnsetType = UNSET
    experiment_scores: list[ScoreAverage] | UnsetType = UNSET


class GroupWithAggregations(Struct):
    """One group: its label (the dataset's or project's name, `__DELETED` when it is gone,
    else the value itself), its aggregates and its subgroups by value (`{}` at the last
    level)."""

    label: str
    aggregations: GroupAggregations
    groups: "dict[str, GroupWithAggregations]"


class GroupsWithAggregations(Struct):
    """The first level's groups by value (a dataset or project id, a tag, a metadata value)."""

    content: dict[str, GroupWithAggregations]
