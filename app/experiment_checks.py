"""The experiments resource's requests as records: find's and the stream's queries (names,
types, ids, filters, sorting) and an update's changes, checked as app/checks.py checks writes
(opik-reference/experiments.md, sections 6 to 9)."""

from typing import Any, cast

import msgspec

from app import ids
from app.body import require_text, require_uuid
from app.checks import encoded, given_name, optional_uuid
from app.errors import ApiError
from app.experiment_payloads import (
    SORTABLE_BY,
    ExperimentStreamRequest,
    ExperimentUpdate,
    FindQuery,
)
from app.filters import parse_filters
from app.payloads import DEFAULT_STREAM_LIMIT
from app.records import ExperimentChange, ExperimentQuery, json_text


def experiment_stream_query(request: ExperimentStreamRequest) -> ExperimentQuery:
    require_text(request.name, "name")
    before = None
    if request.last_retrieved_id is not None:
        before = require_uuid(request.last_retrieved_id, "last_retrieved_id")
    return ExperimentQuery(
        limit=DEFAULT_STREAM_LIMIT if request.limit is None else request.limit,
        name=request.name,
        before=before,
        project_name=given_name(request.project_name),
    )


def _json_list(raw: str | None, message: str) -> list[Any] | None:
    """A query parameter's JSON array; None when it is absent or blank; 400 otherwise."""
    if raw is None or not raw.strip():
        return None
    try:
        value = msgspec.json.decode(raw)
    except msgspec.DecodeError:
        raise ApiError(400, f"{message} '{raw}'") from None
    if not isinstance(value, list):
        raise ApiError(400, f"{message} '{raw}'")
    return value


_TYPES = ("regular", "trial", "mini-batch", "mutation")
# pass_rate (test suites, never stored) sorts as the default order does.
SORTABLE_FIELDS = frozenset(f for f in SORTABLE_BY if "*" not in f and f != "pass_rate")


def _sort(raw: str | None) -> tuple[str | None, bool]:
    """The first sorting entry's field and whether it is descending; an unknown field is
    ignored, as in Opik."""
    entries = _json_list(raw, "Invalid sorting query parameter")
    message = f"Invalid sorting query parameter '{raw}'"
    for entry in entries or ():
        if not isinstance(entry, dict) or not isinstance(entry.get("field"), str):
            raise ApiError(400, message)
        direction = entry.get("direction", "ASC")
        if direction not in ("ASC", "DESC"):
            raise ApiError(400, message)
    if not entries:
        return None, False
    field, direction = entries[0]["field"], entries[0].get("direction", "ASC")
    head, dot, name = field.partition(".")
    if (
        (dot and head in ("feedback_scores", "experiment_scores") and name)
        or field in SORTABLE_FIELDS
        or field in ("duration.p50", "duration.p90", "duration.p99")
    ):
        return field, direction == "DESC"
    return None, False


def experiment_ids(raw: str | None, blank_is_none: bool = True) -> tuple[bytes, ...] | None:
    """The keys of an `experiment_ids` query parameter (a JSON array of UUIDs): 400 otherwise;
    None when it is absent (or blank, where Opik skips a blank one)."""
    if raw is not None and not raw.strip() and not blank_is_none:
        raise ApiError(400, f"Invalid query param ids '{raw}'")
    keys = _json_list(raw, "Invalid query param ids")
    if keys is None:
        return None
    parsed = [ids.parse(k) if isinstance(k, str) else None for k in keys]
    if None in parsed:
        raise ApiError(400, f"Invalid query param ids '{raw}'")
    return tuple(cast(list[bytes], parsed))


def find_query(query: FindQuery) -> ExperimentQuery:
    types = _json_list(query.types, "Invalid query param types")
    if types is not None and not all(t in _TYPES for t in types):
        raise ApiError(400, f"Invalid query param types '{query.types}'")
    sort, descending = _sort(query.sorting)
    return ExperimentQuery(
        limit=query.size,
        offset=(query.page - 1) * query.size,
        name=query.name or None,
        project_id=optional_uuid(query.project_id, "project_id"),
        dataset_id=optional_uuid(query.datasetId, "datasetId"),
        optimization_id=optional_uuid(query.optimization_id, "optimization_id"),
        prompt_id=optional_uuid(query.prompt_id, "prompt_id"),
        types=None if types is None else tuple(types),
        ids=experiment_ids(query.experiment_ids),
        filters=parse_filters(query.filters),
        dataset_deleted=query.dataset_deleted,
        project_deleted=query.project_deleted,
        sort=sort,
        descending=descending,
    )


def experiment_change(update: ExperimentUpdate, merge_tags: bool = False) -> ExperimentChange:
    if update.name is not None:
        require_text(update.name, "name")
    for field in ("tags", "tags_to_add", "tags_to_remove"):
        for n, tag in enumerate(getattr(update, field) or ()):
            require_text(tag, f"{field}[{n}]")
    for n, score in enumerate(update.experiment_scores or ()):
        require_text(score.name, f"experiment_scores[{n}].name")
    scores = update.experiment_scores
    return ExperimentChange(
        name=None if update.name is None else update.name.strip(),
        metadata=json_text(update.metadata),
        tags=None if update.tags is None else tuple(update.tags),
        tags_to_add=None if update.tags_to_add is None else tuple(update.tags_to_add),
        tags_to_remove=None if update.tags_to_remove is None else tuple(update.tags_to_remove),
        merge_tags=merge_tags,
        type=update.type,
        status=update.status,
        experiment_scores=encoded(scores) if scores else None,
        scores_given=scores is not None,
    )
