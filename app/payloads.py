"""Every payload the service reads or writes, as msgspec Structs; no I/O here."""

from typing import Annotated, Literal

import msgspec
from msgspec import UNSET, Meta, Struct, UnsetType

MAX_BATCH_ITEMS = 1000
MAX_NAME_CHARS = 255

BatchSize = Meta(min_length=1, max_length=MAX_BATCH_ITEMS)
Name = Annotated[str, Meta(max_length=MAX_NAME_CHARS)]
TraceVisibility = Literal["default", "hidden"]


class Item(Struct):
    """An experiment item as Opik's `ExperimentItemPublic` shows it; the field order is the
    contract's. `project_id` is left out while it is unknown, as Opik leaves out nulls."""

    experiment_id: str
    dataset_item_id: str
    trace_id: str
    id: str
    project_id: str | UnsetType
    created_at: str
    last_updated_at: str
    created_by: str
    last_updated_by: str
    trace_visibility_mode: TraceVisibility


class ItemWrite(Struct):
    """One item to create, or to update when its id exists. Ids are UUID version 7 strings;
    fields this service does not know (newer SDKs send more) are ignored."""

    experiment_id: str
    dataset_item_id: str
    trace_id: str
    id: str | None = None
    project_name: Name | None = None
    project_id: str | None = None


class ItemBatch(Struct):
    """A batch of 1 to 1000 items with distinct ids, stored all together or not at all."""

    experiment_items: Annotated[list[ItemWrite], BatchSize]


class IdList(Struct):
    """The ids of 1 to 1000 records to delete; ids that do not exist are ignored."""

    ids: Annotated[list[str], BatchSize]


class Error(Struct):
    """The error body of every status but 422."""

    code: int
    message: str
    details: str | UnsetType = UNSET


class ValidationErrors(Struct):
    """A 422: each entry names a JSON path and the rule the body broke there."""

    errors: list[str]


class Health(Struct):
    """Whether this worker can read its database."""

    message: str
    healthy: bool


class Version(Struct):
    """The running release."""

    version: str


encoder = msgspec.json.Encoder()
