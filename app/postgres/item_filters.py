"""Dataset item filters as SQL conditions on `dataset_items`, as app/sqlite/item_filters.py
writes them for SQLite: text compared with ASCII case ignored, ids as their lowercase text, a
missing value as the empty text, `data` by a top-level key, tags by element, times as
nanoseconds.

Text is compared in the "C" collation, as every text column of the schema is: byte order, as
SQLite's BINARY, and lower() folds ASCII letters only, as SQLite's does (under the database's
default collation it would fold others too, https://www.postgresql.org/docs/15/collation.html).
"""

from collections.abc import Sequence
from typing import Any

from app.dataset_records import ItemFilter

# A 16-byte id as its lowercase UUID text.
UUID_TEXT = (
    "regexp_replace(encode({c}, 'hex'), '^(.{{8}})(.{{4}})(.{{4}})(.{{4}})', '\\1-\\2-\\3-\\4-')"
)
# Each text field's SQL expression; NULL reads as '' as in ClickHouse.
_TEXT = {
    "id": UUID_TEXT.format(c="id"),
    "trace_id": f"coalesce({UUID_TEXT.format(c='trace_id')}, '')",
    "span_id": f"coalesce({UUID_TEXT.format(c='span_id')}, '')",
    "full_data": "data",
    "source": "source",
    "created_by": "created_by",
    "last_updated_by": "last_updated_by",
}
# A `data` key's value as text, as SQLite's CAST(json_extract(...) AS TEXT) gives it: a string
# without its quotes, true and false as 1 and 0, an integer as itself, a real as SQLite's
# "%!.15g" (_REAL), an object or an array as its text without the spaces between its tokens.
# {key}: the key's parameter.
_DATA_VALUE = """coalesce((SELECT CASE json_typeof(j)
        WHEN 'string' THEN j #>> '{{}}'
        WHEN 'boolean' THEN CASE j::text WHEN 'true' THEN '1' ELSE '0' END
        WHEN 'number' THEN CASE
            WHEN j::text ~ '^-?[0-9]+$'
                AND j::text::numeric BETWEEN -9223372036854775808 AND 9223372036854775807
            THEN j::text::numeric::text
            -- Past a double's range, as SQLite's parse ends there; inside it, as a double.
            WHEN abs(j::text::numeric) > 1.7976931348623157e308
            THEN CASE WHEN j::text LIKE '-%' THEN '-Inf' ELSE 'Inf' END
            WHEN abs(j::text::numeric) <= 2.4703282292062328e-324 AND j::text::numeric <> 0
            THEN '0.0'
            ELSE {real} END
        WHEN 'null' THEN NULL
        ELSE regexp_replace(j::text, '("(?:[^"\\\\]|\\\\.)*")|\\s+', '\\1', 'g') END
    FROM (SELECT {parsed}::json -> {key}) AS v(j)), '')"""
# SQLite's "%!.15g" of a double: 15 significant digits (to_char's EEEE is the C library's
# "%.14e"; a float8 cast to numeric keeps 15), in the plain form with ".0" at least for an
# exponent from -4 to 14, else as a mantissa with ".0" at least and a 2-digit exponent.
_REAL = """(SELECT CASE WHEN split_part(e, 'e', 2)::int BETWEEN -4 AND 14
        THEN CASE WHEN n LIKE '%.%' THEN n ELSE n || '.0' END
        ELSE regexp_replace(rtrim(btrim(split_part(e, 'e', 1)), '0'), '[.]$', '.0')
            || 'e' || split_part(e, 'e', 2) END
    FROM (SELECT to_char(j::text::float8, '9.99999999999999EEEE'),
                 j::text::float8::numeric::text) AS r(e, n))"""
# JSON text as PostgreSQL's json parses it: a \u0000 anywhere, which its text cannot hold,
# fails every operator on the value, so it reads as U+FFFD here (SQLite's text ends at it).
_PARSABLE = "replace({c}, '\\u0000', '\\ufffd')"
NUL = "\x00"
_COMPARISONS = {"=": "=", "!=": "<>", ">": ">", ">=": ">=", "<": "<", "<=": "<="}


class Params:
    """The parameters of one statement, in order: each added one's placeholder is $n."""

    def __init__(self, *values: Any) -> None:
        self.values = list(values)

    def add(self, value: Any) -> str:
        self.values.append(value)
        return f"${len(self.values)}"


def searched(text: str) -> str:
    """A text to look for, as a parameter: PostgreSQL's text holds no NUL, which reads as
    U+FFFD here, as a \\u0000 in the JSON looked in does (_PARSABLE)."""
    return text.replace(NUL, "\ufffd")


def folded(sql: str) -> str:
    """`sql` with ASCII letters lower-cased, in the "C" collation."""
    return f'lower(({sql}) COLLATE "C")'


def _text(value: str, operator: str, given: str, params: Params) -> str:
    v = folded(value)
    mark = params.add(searched(given))
    p = folded(f"{mark}::text")
    if operator == "contains":
        return f"strpos({v}, {p}) > 0"
    if operator == "not_contains":
        return f"strpos({v}, {p}) = 0"
    if operator == "starts_with":
        return f"left({v}, length({mark}::text)) = {p}"
    if operator == "ends_with":
        return f"right({v}, length({mark}::text)) = {p}"
    return f"{v} {_COMPARISONS[operator]} {p}"


def condition(f: ItemFilter, params: Params) -> str:
    if f.field in _TEXT:
        return _text(_TEXT[f.field], f.operator, f.value, params)
    if f.field == "data":
        key = params.add(f.key) + "::text"  # one top-level key (app/item_filters.py)
        value = _DATA_VALUE.format(key=key, real=_REAL, parsed=_PARSABLE.format(c="data"))
        return _text(value, f.operator, f.value, params)
    if f.field == "tags":
        mark = params.add(searched(f.value))
        match = (
            f'value = {mark}::text COLLATE "C"'
            if f.operator in ("=", "!=")
            else f"strpos({folded('value')}, {folded(f'{mark}::text')}) > 0"
        )
        exists = (
            f"EXISTS (SELECT 1 FROM json_array_elements_text({_PARSABLE.format(c='tags')}::json)"
            f" AS t(value) WHERE {match})"
        )
        return exists if f.operator in ("=", "contains") else f"NOT {exists}"
    if f.instant is None:  # created_at, last_updated_at: a value that is no instant
        return "false"
    return f"{f.field} {_COMPARISONS[f.operator]} {params.add(f.instant)}::bigint"


def conditions(filters: Sequence[ItemFilter], params: Params) -> str:
    """Every filter's condition, each after AND, its parameters added to `params`."""
    return "".join(f" AND {condition(f, params)}" for f in filters)
