"""Dataset and dataset-item payloads to records: what msgspec's types cannot say (version 7
ids, names that must say something, `source` against `trace_id`/`span_id`, `data` an object)."""

from app import ids
from app.body import require_text, require_v7
from app.checks import encoded, optional_uuid
from app.dataset_payloads import DatasetItemBatch, DatasetItemWrite, DatasetWrite
from app.dataset_records import DatasetItemRecord, DatasetItemsRecord, DatasetRecord
from app.errors import Invalid
from app.records import json_text

# @SourceValidation (Opik's DatasetItem): which of trace_id and span_id each source needs.
_NEEDS = {"sdk": (False, False), "manual": (False, False), "trace": (True, False)}
_NEEDS["span"] = (True, True)


def tags_text(tags: list[str] | None) -> str | None:
    """Tags in the order given, each once, as JSON text."""
    return None if tags is None else encoded(list(dict.fromkeys(tags)))


def _optional_text(value: str | None) -> str | None:
    return None if value is None else value.strip()


def dataset_record(write: DatasetWrite) -> DatasetRecord:
    require_text(write.name, "name")
    if write.project_name is not None:
        require_text(write.project_name, "project_name")
    if write.description is not None:
        require_text(write.description, "description")
    return DatasetRecord(
        id=ids.uuid7() if write.id is None else require_v7(write.id, "id", "Dataset"),
        name=write.name.strip(),
        project_id=optional_uuid(write.project_id, "project_id"),
        project_name=_optional_text(write.project_name),
        type=write.type,
        visibility=write.visibility,
        tags=tags_text(write.tags),
        description=write.description,
    )


def _item(item: DatasetItemWrite, at: str) -> DatasetItemRecord:
    key = ids.uuid7() if item.id is None else require_v7(item.id, f"{at}.id", "Dataset item")
    trace_id = optional_uuid(item.trace_id, f"{at}.trace_id")
    span_id = optional_uuid(item.span_id, f"{at}.span_id")
    needs_trace, needs_span = _NEEDS[item.source]
    for field, value, needed in (
        ("trace_id", trace_id, needs_trace),
        ("span_id", span_id, needs_span),
    ):
        if needed and value is None:
            raise Invalid([f"{at}.source when it is {item.source}, {field} must not be null"])
        if not needed and value is not None:
            raise Invalid([f"{at}.source when it is {item.source}, {field} must be null"])
    data = bytes(item.data)
    stripped = data.strip()
    if not stripped.startswith(b"{") or stripped.replace(b" ", b"") == b"{}":
        raise Invalid([f"{at}.data must be a JSON object with at least one field"])
    if item.description is not None:
        require_text(item.description, f"{at}.description")
    policy = item.execution_policy
    return DatasetItemRecord(
        id=key,
        source=item.source,
        data=data.decode(),
        trace_id=trace_id,
        span_id=span_id,
        description=item.description,
        tags=tags_text(item.tags),
        evaluators=json_text(item.evaluators),
        execution_policy=encoded(policy),
    )


def dataset_items_record(batch: DatasetItemBatch) -> DatasetItemsRecord:
    if batch.dataset_name is None and batch.dataset_id is None:
        raise Invalid(["must provide either a dataset_name or a dataset_id"])
    if batch.dataset_name is not None:
        require_text(batch.dataset_name, "dataset_name")
    if batch.project_name is not None:
        require_text(batch.project_name, "project_name")
    optional_uuid(batch.batch_group_id, "batch_group_id")  # ignored (versioning is off)
    items = tuple(_item(item, f"items[{n}]") for n, item in enumerate(batch.items))
    return DatasetItemsRecord(
        dataset_id=optional_uuid(batch.dataset_id, "dataset_id"),
        dataset_name=_optional_text(batch.dataset_name),
        project_id=optional_uuid(batch.project_id, "project_id"),
        project_name=_optional_text(batch.project_name),
        items=items,
    )
