"""The `filters` query parameter of find (opik-reference/experiments.md §7): a JSON array of
{field, operator, key, value}, AND-combined, checked here into records.Filter."""

from typing import Any

import msgspec

from app.errors import ApiError
from app.records import Filter

_TEXT = ["contains", "not_contains", "starts_with", "ends_with", "=", "!="]
_EMPTY = ["is_empty", "is_not_empty"]
_NUMBER = ["=", "!=", ">", ">=", "<", "<="]
_LIST = ["contains", "not_contains", "=", "!=", *_EMPTY]
# Each field's operators, as Opik's FilterQueryBuilder allows them for its type.
OPERATORS: dict[str, list[str]] = {
    "metadata": [*_TEXT, ">", "<", *_EMPTY],
    "dataset_id": [*_TEXT, ">", "<"],
    "project_id": [*_TEXT, ">", "<"],  # accepted and ignored, as in Opik's find
    "tags": _LIST,
    "prompt_ids": _LIST,  # the prompts of the experiment's prompt versions
    "feedback_scores": [*_NUMBER, *_EMPTY],
    "experiment_scores": [*_NUMBER, *_EMPTY],
}
KEYED = {"metadata", "feedback_scores", "experiment_scores"}
# Each field's type, by its name in Opik's FieldType, which its messages use.
TYPES = {
    "metadata": "DICTIONARY",
    "dataset_id": "STRING_EXACT",
    "project_id": "STRING_EXACT",
    "tags": "LIST",
    "prompt_ids": "LIST",
    "feedback_scores": "FEEDBACK_SCORES_NUMBER",
    "experiment_scores": "FEEDBACK_SCORES_NUMBER",
}
_DECIMAL = r"^-?[0-9]+(\.[0-9]+)?$"


def _branch(field: str, operators: list[str], value: dict[str, Any]) -> dict[str, Any]:
    properties = {"field": {"const": field}, "operator": {"enum": operators}, "value": value}
    required = ["field", "operator", "value"]
    if field in KEYED:
        # Not blank, and no NUL (see parse_filters).
        properties["key"] = {"type": "string", "pattern": r"^[^\u0000]*[^\u0000\s][^\u0000]*$"}
        required.append("key")
    return {"type": "object", "properties": properties, "required": required}


# The JSON Schema of the parameter: each field with the operators and values it takes.
SCHEMA: dict[str, Any] = {
    "type": "array",
    "items": {
        "anyOf": [
            *(
                _branch(field, ops, {"type": "string"})
                for field, ops in OPERATORS.items()
                if field not in ("feedback_scores", "experiment_scores")
            ),
            *(
                _branch(field, _NUMBER, {"type": "string", "pattern": _DECIMAL})
                for field in ("feedback_scores", "experiment_scores")
            ),
            *(_branch(field, _EMPTY, {"type": "string"}) for field in ("feedback_scores",)),
            *(_branch(field, _EMPTY, {"type": "string"}) for field in ("experiment_scores",)),
        ]
    },
}


def parse_filters(raw: str | None) -> tuple[Filter, ...]:
    if raw is None or not raw.strip():
        return ()
    message = f"Invalid filters query parameter '{raw}'"
    try:
        entries = msgspec.json.decode(raw)
    except msgspec.DecodeError:
        raise ApiError(400, message) from None
    if not isinstance(entries, list):
        raise ApiError(400, message)
    found: dict[Filter, None] = {}
    for entry in entries:
        if not isinstance(entry, dict):
            raise ApiError(400, message)
        field, operator = entry.get("field"), entry.get("operator")
        key, value = entry.get("key") or "", entry.get("value")
        if (
            not isinstance(field, str)
            or field not in OPERATORS
            or not isinstance(operator, str)
            or not isinstance(value, str)
        ):
            raise ApiError(400, message)
        if not isinstance(key, str):
            raise ApiError(400, message)
        kind = TYPES[field]
        if operator not in OPERATORS[field]:
            raise ApiError(
                400, f"Invalid operator '{operator}' for field '{field}' of type '{kind}'"
            )
        number = None
        invalid = f"Invalid value '{value}' or key '{key}' for field '{field}' of type '{kind}'"
        # A NUL cannot be in the SQL text the metadata path becomes (sqlite/filters.py).
        if field in KEYED and (not key.strip() or "\x00" in key):
            raise ApiError(400, invalid)
        if field in ("feedback_scores", "experiment_scores") and operator not in _EMPTY:
            try:
                number = float(value)
            except ValueError:
                raise ApiError(400, invalid) from None
        found[Filter(field, operator, key, value, number)] = None
    return tuple(found)


def json_steps(key: str) -> list[str]:
    """Opik's metadata key as the object keys it walks: `model` is one, `a.b` two; no step
    holds a double quote (json_path quotes each)."""
    return [step.replace('"', "") for step in key.removeprefix("$").removeprefix(".").split(".")]


def json_path(key: str) -> str:
    """Opik's metadata key as an SQLite JSON path: `model` is `$.model`, `a.b` is `$.a.b`;
    each step quoted, so that no key makes a malformed path."""
    return "$" + "".join('."' + step + '"' for step in json_steps(key))
