"""The Structs of datasets and their items, as Opik's Dataset and DatasetItem views show them
(opik-reference/datasets-traces.md §3.3-3.5); no I/O here."""

from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Literal

from msgspec import UNSET, Meta, Struct, UnsetType

from app.item_filters import SCHEMA as ITEM_FILTERS
from app.payloads import (
    MAX_STREAM_LIMIT,
    MAX_TAGS,
    MAX_USAGE,
    UUID_PATTERN,
    AnyId,
    BatchSize,
    FullItem,
    Instant,
    Json,
    Name,
    NotBlank,
    OutId,
    StreamLimit,
    V7Id,
    whole,
)

MAX_DESCRIPTION_CHARS = 255
DEFAULT_PAGE_SIZE = 10

DatasetType = Literal["dataset", "evaluation_suite"]
Visibility = Literal["private", "public"]
ItemSource = Literal["manual", "trace", "span", "sdk"]
RequiredName = Annotated[NotBlank, Meta(min_length=1, max_length=255)]
Description = Annotated[NotBlank, Meta(min_length=1, max_length=MAX_DESCRIPTION_CHARS)]
Tags = Annotated[list[Name], Meta(max_length=MAX_TAGS)]
Page = Annotated[int, Meta(ge=1)]
# JSON text: a list of dataset item filters (app/item_filters.py); OpenAPI says so with
# `content` for a query parameter, and with these annotations in a body.
ItemFilters = Annotated[
    str,
    Meta(
        description="JSON text: an array of {field, operator, key, value} item filters",
        extra_json_schema={"contentMediaType": "application/json", "contentSchema": ITEM_FILTERS},
    ),
]
if TYPE_CHECKING:
    PolicyCount = int
else:
    PolicyCount = whole(ge=1, le=MAX_USAGE)
# An object with at least one field: Opik's @NotEmpty Map (dataset_checks says so with a 422).
JsonObject = Annotated[Json, Meta(extra_json_schema={"type": "object", "minProperties": 1})]
_NULL = {"type": "null"}
_ID = {"type": "string", "format": "uuid", "pattern": UUID_PATTERN}
# A JSON array of 1 or more UUIDs, as a query parameter's text.
_UUID_BODY = UUID_PATTERN.strip("^$")
ExperimentIds = Annotated[
    str,
    Meta(
        extra_json_schema={
            "contentMediaType": "application/json",
            "pattern": f'^\\["{_UUID_BODY}"(,"{_UUID_BODY}")*\\]$',
        }
    ),
]


class DatasetWrite(Struct):
    """A dataset to create. Names are unique in a workspace, across projects, and match
    case-insensitively; the project is found by name or created, `project_id` wins."""

    name: RequiredName
    id: V7Id | None = None
    project_name: Annotated[NotBlank, Meta(max_length=255)] | None = None
    project_id: AnyId | None = None
    type: DatasetType = "dataset"
    visibility: Visibility = "private"
    tags: Tags | None = None
    description: Description | None = None


class DatasetIdentifier(Struct):
    """A dataset by name; `project_name` is accepted and changes nothing, since names are
    unique in the workspace (Opik finds the one dataset of that name wherever it is)."""

    dataset_name: RequiredName
    project_name: str | None = None


class Dataset(Struct):
    """A dataset with its counts, in Opik's order. Fields never set are left out."""

    id: OutId
    name: str
    project_id: OutId | UnsetType
    type: DatasetType
    visibility: Visibility
    tags: list[str] | UnsetType
    description: str | UnsetType
    created_at: Instant
    created_by: str
    last_updated_at: Instant
    last_updated_by: str
    experiment_count: int
    dataset_items_count: int
    optimization_count: int
    most_recent_experiment_at: Instant | UnsetType
    last_created_experiment_at: Instant | UnsetType


class ExecutionPolicy(Struct):
    """How many times an item runs, and how many runs must pass."""

    runs_per_item: PolicyCount | None = None
    pass_threshold: PolicyCount | None = None

    def __post_init__(self) -> None:  # 3.0 is 3 (see payloads.WholeNumber)
        if self.runs_per_item is not None:
            self.runs_per_item = int(self.runs_per_item)
        if self.pass_threshold is not None:
            self.pass_threshold = int(self.pass_threshold)


class DatasetItemWrite(Struct):
    """One item to create, or to replace whole when its id exists. `trace_id`/`span_id` must
    match `source` as in Opik: none for sdk and manual, a trace for trace, both for span."""

    source: ItemSource
    data: JsonObject
    id: V7Id | None = None
    trace_id: AnyId | None = None
    span_id: AnyId | None = None
    description: Description | None = None
    tags: Tags | None = None
    evaluators: Json | UnsetType = UNSET  # msgspec takes Raw in no union but with UNSET
    execution_policy: ExecutionPolicy | None = None

    SCHEMA_RULES: ClassVar[dict[str, Any]] = {
        "oneOf": [
            {"properties": {"source": {"enum": ["sdk", "manual"]},
                            "trace_id": _NULL, "span_id": _NULL}},
            {"properties": {"source": {"const": "trace"}, "trace_id": _ID, "span_id": _NULL},
             "required": ["trace_id"]},
            {"properties": {"source": {"const": "span"}, "trace_id": _ID, "span_id": _ID},
             "required": ["trace_id", "span_id"]},
        ]
    }  # fmt: skip


class DatasetItemBatch(Struct):
    """1 to 1000 items of the dataset named (created when missing) or given by id.
    `batch_group_id` is accepted and ignored: dataset versioning is off (contract)."""

    items: Annotated[list[DatasetItemWrite], BatchSize]
    dataset_name: Annotated[NotBlank, Meta(max_length=255)] | None = None
    dataset_id: AnyId | None = None
    project_name: Annotated[NotBlank, Meta(max_length=255)] | None = None
    project_id: AnyId | None = None
    batch_group_id: AnyId | None = None

    SCHEMA_RULES: ClassVar[dict[str, Any]] = {
        "anyOf": [
            {"properties": {"dataset_name": {"type": "string"}}, "required": ["dataset_name"]},
            {"properties": {"dataset_id": _ID}, "required": ["dataset_id"]},
        ]
    }


class DatasetItem(Struct):
    """A dataset item as stored, in Opik's order; `dataset_item_id` repeats `id`."""

    id: OutId
    dataset_item_id: OutId
    trace_id: OutId | UnsetType
    span_id: OutId | UnsetType
    source: ItemSource
    data: Json
    description: str | UnsetType
    tags: list[str]
    evaluators: Json | UnsetType
    execution_policy: ExecutionPolicy | UnsetType
    dataset_id: OutId
    created_at: Instant
    last_updated_at: Instant
    created_by: str
    last_updated_by: str


class DatasetItemStreamRequest(Struct):
    """A page of the stream: items newest id first, older than `last_retrieved_id`.
    `steam_limit` is Opik's own spelling. `filters` is the JSON text of a list of item
    filters (app/item_filters.py); `dataset_version` is accepted and ignored (versioning is
    off)."""

    dataset_name: RequiredName
    last_retrieved_id: AnyId | None = None
    steam_limit: StreamLimit = MAX_STREAM_LIMIT
    dataset_version: str | None = None
    project_name: str | None = None
    filters: ItemFilters | None = None

    def __post_init__(self) -> None:
        self.steam_limit = int(self.steam_limit)  # 2000.0 (see payloads.WholeNumber)


class DatasetItemsQuery(Struct):
    """A page of a dataset's items that meet `filters` (the JSON text of a list of item
    filters, as the stream's), newest id first; `version` is ignored."""

    page: Page = 1
    size: Page = DEFAULT_PAGE_SIZE
    version: str | None = None
    filters: ItemFilters | None = None
    truncate: bool = False


class DatasetItemPage(Struct):
    """One page: `size` is the number of items on it, `total` of all of them."""

    content: list[DatasetItem]
    page: int
    size: int
    total: int
    columns: list[str]
    sortable_by: list[str]


class DatasetItemsDelete(Struct):
    """Items to delete by id (1 to 1000), or the items of `dataset_id` that meet every one of
    `filters` (the stream's item filters, as a JSON array; none: every item); unknown ids are
    ignored."""

    item_ids: Annotated[list[AnyId], BatchSize] | None = None
    dataset_id: AnyId | None = None
    filters: Json | UnsetType = UNSET
    batch_group_id: AnyId | None = None

    SCHEMA_RULES: ClassVar[dict[str, Any]] = {
        "oneOf": [
            {"properties": {"item_ids": {"type": "array"}, "dataset_id": _NULL, "filters": _NULL},
             "required": ["item_ids"]},
            {"properties": {"item_ids": _NULL, "dataset_id": _ID,
                            "filters": {"anyOf": [_NULL, ITEM_FILTERS]}},
             "required": ["dataset_id"]},
        ]
    }  # fmt: skip


class CompareQuery(Struct):
    """A page of the dataset items that the experiments have items for, newest first."""

    experiment_ids: ExperimentIds
    page: Page = 1
    size: Page = DEFAULT_PAGE_SIZE
    filters: str | None = None
    sorting: str | None = None
    search: str | None = None
    truncate: bool = False


class CompareRow(Struct):
    """A dataset item with the experiments' items for it, each with its trace's input,
    output and scores. A dataset item deleted since has `data` {}."""

    id: OutId
    dataset_item_id: OutId
    source: ItemSource | UnsetType
    data: Json
    description: str | UnsetType
    tags: list[str]
    experiment_items: list[FullItem]
    dataset_id: OutId
    created_at: Instant | UnsetType
    last_updated_at: Instant | UnsetType
    created_by: str | UnsetType
    last_updated_by: str | UnsetType


class ComparePage(Struct):
    """One page of the compare view; `total` counts the dataset items of every page."""

    content: list[CompareRow]
    page: int
    size: int
    total: int
    columns: list[str]
    sortable_by: list[str]
