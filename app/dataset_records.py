"""The records of datasets, their items and prompt versions as the store takes them,
engine-neutral (as app/records.py for the rest)."""

import msgspec


class DatasetRecord(msgspec.Struct, frozen=True, gc=False):
    """A dataset to create; its project by id, else by name (created when missing)."""

    id: bytes
    name: str
    project_id: bytes | None
    project_name: str | None
    type: str
    visibility: str
    tags: str | None
    description: str | None


class DatasetItemRecord(msgspec.Struct, frozen=True, gc=False):
    """A dataset item as stored: `data` and the other JSON fields as the client's text."""

    id: bytes
    source: str
    data: str
    trace_id: bytes | None = None
    span_id: bytes | None = None
    description: str | None = None
    tags: str | None = None
    evaluators: str | None = None
    execution_policy: str | None = None


class DatasetItemsRecord(msgspec.Struct, frozen=True, gc=False):
    """Items of one dataset: by id (which must exist), else by name (created when missing,
    in the project named)."""

    dataset_id: bytes | None
    dataset_name: str | None
    project_id: bytes | None
    project_name: str | None
    items: tuple[DatasetItemRecord, ...]


class PromptVersionRecord(msgspec.Struct, frozen=True, gc=False):
    """A version to add to the prompt of `name`, which is made (with `prompt_id`, else a new
    id) when the workspace has none of that name."""

    name: str
    template: str
    metadata: str | None
    type: str
    change_description: str | None
    tags: str | None
    template_structure: str
    prompt_id: bytes | None = None
    description: str | None = None
    prompt_tags: str | None = None


# --- Traces, spans, feedback scores (issue 11) ---------------------------------------------


class ItemFilter(msgspec.Struct, frozen=True, gc=False):
    """One condition of a dataset item stream or page (app/item_filters.py checks them): a
    field of Opik's DatasetItemField, an operator its type takes, the `data` key for `data`,
    the value, and for a time field the value as nanoseconds."""

    field: str
    operator: str
    key: str
    value: str
    instant: int | None = None
