"""Dataset item filters as SQL conditions on `dataset_items` (Opik's FilterQueryBuilder for
DatasetItemField): text compared case-insensitively, ids as their lowercase text, a missing
value as the empty text (ClickHouse's default), `data` by a top-level key, tags by element,
times as nanoseconds."""

from collections.abc import Sequence
from typing import Any

from app.dataset_records import ItemFilter
from app.sqlite.filters import UUID_TEXT

# Each text field's SQL expression; NULL reads as '' as in ClickHouse.
_TEXT = {
    "id": UUID_TEXT.format(c="id"),
    "trace_id": f"CASE WHEN trace_id IS NULL THEN '' ELSE {UUID_TEXT.format(c='trace_id')} END",
    "span_id": f"CASE WHEN span_id IS NULL THEN '' ELSE {UUID_TEXT.format(c='span_id')} END",
    "full_data": "data",
    "source": "source",
    "created_by": "created_by",
    "last_updated_by": "last_updated_by",
}
# A `data` key's value as text (a string without its quotes, other JSON as its text).
_DATA_VALUE = (
    "coalesce(CAST(json_extract(CASE WHEN json_valid(data) THEN data END, ?) AS TEXT), '')"
)
_TAGS = "json_each(CASE WHEN json_valid(tags) THEN tags ELSE '[]' END)"
_COMPARISONS = {"=": "=", "!=": "<>", ">": ">", ">=": ">=", "<": "<", "<=": "<="}


def _text(value: str, operator: str, given: str, head: list[Any]) -> tuple[str, list[Any]]:
    """A case-insensitive condition on the text `value`; `head` the parameters `value` needs
    (each use of it repeats them)."""
    v = f"lower({value})"
    if operator == "contains":
        return f"instr({v}, lower(?)) > 0", [*head, given]
    if operator == "not_contains":
        return f"instr({v}, lower(?)) = 0", [*head, given]
    if operator == "starts_with":
        return f"substr({v}, 1, length(?)) = lower(?)", [*head, given, given]
    if operator == "ends_with":
        return (
            f"(length({v}) >= length(?) AND substr({v}, length({v}) - length(?) + 1) = lower(?))",
            [*head, given, *head, *head, given, given],
        )
    return f"{v} {_COMPARISONS[operator]} lower(?)", [*head, given]


def _data_path(key: str) -> str:
    # One top-level key, quoted (app/item_filters.py leaves out the quotes it holds), so that
    # no key makes a malformed path (Opik's map keys are the data's own top-level keys: "a.b"
    # is a key, not a path).
    return '$."' + key + '"'


def condition(f: ItemFilter) -> tuple[str, list[Any]]:
    if f.field in _TEXT:
        return _text(_TEXT[f.field], f.operator, f.value, [])
    if f.field == "data":
        return _text(_DATA_VALUE, f.operator, f.value, [_data_path(f.key)])
    if f.field == "tags":
        match = "value = ?" if f.operator in ("=", "!=") else "instr(lower(value), lower(?)) > 0"
        exists = f"EXISTS (SELECT 1 FROM {_TAGS} WHERE {match})"
        return (exists if f.operator in ("=", "contains") else f"NOT {exists}"), [f.value]
    if f.instant is None:  # created_at, last_updated_at: a value that is no instant
        return "0", []
    return f"{f.field} {_COMPARISONS[f.operator]} ?", [f.instant]


def conditions(filters: Sequence[ItemFilter]) -> tuple[str, list[Any]]:
    """Every filter's condition, each after AND, and their parameters in order."""
    sql, params = "", []
    for f in filters:
        clause, values = condition(f)
        sql += f" AND {clause}"
        params += values
    return sql, params
