"""The `filters` of the dataset item stream and page: a JSON array of {field, operator, key,
value} (the SDK's OQL `for_dataset_items`), AND-combined, checked into records. The fields are
Opik's DatasetItemField and each takes the operators FilterQueryBuilder has for its type; any
other field or operator is a 400, as Opik's FiltersFactory answers it."""

from datetime import UTC, datetime
from typing import Any

import msgspec

from app.dataset_records import ItemFilter
from app.errors import ApiError

_STRING = ["=", "!=", "contains", "not_contains", "starts_with", "ends_with", ">", "<"]
_MAP = ["=", "!=", "contains", "not_contains", "starts_with", "ends_with"]
_LIST = ["=", "!=", "contains", "not_contains"]
_DATE_TIME = ["=", "!=", ">", ">=", "<", "<="]
# Each field, with its FieldType and the operators FilterQueryBuilder maps for that type.
FIELDS: dict[str, tuple[str, list[str]]] = {
    "id": ("STRING", _STRING),
    "data": ("MAP", _MAP),
    "full_data": ("STRING", _STRING),
    "source": ("STRING", _STRING),
    "trace_id": ("STRING", _STRING),
    "span_id": ("STRING", _STRING),
    "tags": ("LIST", _LIST),
    "created_at": ("DATE_TIME", _DATE_TIME),
    "last_updated_at": ("DATE_TIME", _DATE_TIME),
    "created_by": ("STRING", _STRING),
    "last_updated_by": ("STRING", _STRING),
}
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _branch(fields: list[str], operators: list[str], keyed: bool) -> dict[str, Any]:
    key = {"type": "string", "minLength": 1} if keyed else {"type": ["string", "null"]}
    return {
        "type": "object",
        "properties": {
            "field": {"enum": fields},
            "operator": {"enum": operators},
            "key": key,
            "value": {"type": ["string", "number"]},
        },
        "required": ["field", "operator", "value", *(["key"] if keyed else [])],
    }


def _of_kind(kind: str) -> list[str]:
    return [field for field, (its, _) in FIELDS.items() if its == kind]


# The JSON Schema of the filters' text: each field with the operators it takes.
SCHEMA: dict[str, Any] = {
    "type": "array",
    "items": {
        "anyOf": [
            _branch(_of_kind("STRING"), _STRING, keyed=False),
            _branch(["data"], _MAP, keyed=True),
            _branch(["tags"], _LIST, keyed=False),
            _branch(_of_kind("DATE_TIME"), _DATE_TIME, keyed=False),
        ]
    },
}


def _instant(text: str) -> int | None:
    """Nanoseconds since the epoch of an ISO-8601 instant (UTC when it names no offset)."""
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    delta = moment - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000_000 + delta.microseconds * 1000


def parse_item_filters(raw: str | None) -> tuple[ItemFilter, ...]:
    """The filters of `raw`, JSON text; none for null, blank or []. 400 naming what is wrong."""
    if raw is None or not raw.strip():
        return ()
    invalid = ApiError(400, f"Invalid filters query parameter '{raw}'")
    try:
        entries = msgspec.json.decode(raw)
    except msgspec.DecodeError:
        raise invalid from None
    if entries is None:
        return ()
    if not isinstance(entries, list):
        raise invalid
    found: dict[ItemFilter, None] = {}
    for entry in entries:
        if not isinstance(entry, dict):
            raise invalid
        field, operator = entry.get("field"), entry.get("operator")
        key, value = entry.get("key") or "", entry.get("value")
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise invalid  # Jackson reads a number as its text; anything else fails
        value = str(value)
        if not isinstance(field, str) or field not in FIELDS:
            raise ApiError(400, f"Invalid filters query parameter '{raw}': unknown field {field!r}")
        if not isinstance(operator, str) or not isinstance(key, str):
            raise invalid
        kind, operators = FIELDS[field]
        if operator not in operators:
            raise ApiError(
                400, f"Invalid operator '{operator}' for field '{field}' of type '{kind}'"
            )
        if kind == "MAP" and not key:
            raise ApiError(400, f"Invalid value '{value}' or key '{key}' for field '{field}'")
        # A time that is no instant matches nothing (ClickHouse's parseDateTime64BestEffortOrNull
        # would give NULL).
        instant = _instant(value) if kind == "DATE_TIME" else None
        # A `data` key is one top-level key, so without the double quotes that would end it
        # in a JSON path, and without NULs, which no engine's path or text holds.
        key = key.replace('"', "").replace("\x00", "") if kind == "MAP" else ""
        found[ItemFilter(field, operator, key, value, instant)] = None
    return tuple(found)
