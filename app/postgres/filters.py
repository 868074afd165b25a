"""Find's filters as PostgreSQL conditions on `experiments AS e` (opik-reference/experiments.md
§7), as app/sqlite/filters.py writes SQLite's: text comparisons case-insensitive (ASCII only,
as SQLite's lower()) on metadata, case-sensitive on ids; scores compare the experiment's
average, computed here when read (nothing is kept in experiment_summaries yet).

Stored JSON is always valid (the API and import keep a value's text only once it parsed), so
a column is cast to json where SQLite guards with json_valid; every text is compared in the
"C" collation, SQLite's BINARY, whatever the database's locale."""

from collections.abc import Callable
from typing import Any

from app.filters import json_steps
from app.records import Filter

# Adds a parameter and gives its placeholder: `bind(value, "text")` is "$3::text".
Bind = Callable[[Any, str], str]

UNQUOTED = " #>> '{}'"  # a JSON value's text, a string's without its quotes
UUID_TEXT = "(encode({c}, 'hex')::uuid::text COLLATE \"C\")"


def json_array(column: str) -> str:
    """The column's JSON as an array to iterate, '[]' when it is none (json_each's guard)."""
    return f"(CASE WHEN json_typeof({column}::json) = 'array' THEN {column}::json ELSE '[]' END)"


# A double's range: past the first a cast rounds to an infinity, up to the second to 0 (halfway
# to the next value rounds to even), where PostgreSQL's cast to float8 would fail instead.
_DOUBLE_OVERFLOW = "1.797693134862315807937289714053034150799e308"
_DOUBLE_UNDERFLOW = "2.470328229206232720882843964341106861825e-324"


def json_number(text: str) -> str:
    """The JSON number `text` (SQL giving its text) as the double SQLite's JSON reads: an
    infinity past the double's range, 0 below its least value."""
    n = f"({text})::numeric"
    return (
        f"(CASE WHEN {n} >= {_DOUBLE_OVERFLOW} THEN 'Infinity'::float8 "
        f"WHEN {n} <= -{_DOUBLE_OVERFLOW} THEN '-Infinity'::float8 "
        f"WHEN abs({n}) <= {_DOUBLE_UNDERFLOW} THEN 0::float8 ELSE {n}::float8 END)"
    )


# A JSON number's text as SQLite's CAST(json_extract(...) AS TEXT) writes it: an integer of 64
# bits as its digits, anything else as a double in printf's %!.15g (15 digits, a ".0" where
# none shows): float8's text with extra_float_digits = 0, which find sets, is %.15g.
_NUMBER_TEXT = """(CASE WHEN {t} ~ '^-?[0-9]+$' AND abs(({t})::numeric) <= 9223372036854775807
    THEN (({t})::numeric)::text
    ELSE (SELECT CASE WHEN d = 'Infinity' THEN 'Inf' WHEN d = '-Infinity' THEN '-Inf'
                 WHEN d ~ '[.]' THEN d WHEN d ~ 'e' THEN replace(d, 'e', '.0e') ELSE d || '.0' END
          FROM (SELECT ({number})::text AS d) AS f) END)"""


def number_text(text: str) -> str:
    """The JSON number `text` (SQL giving its text) as SQLite's text of it."""
    return _NUMBER_TEXT.format(t=text, number=json_number(text))


def fold(bind: Bind, value: Any) -> str:
    """A parameter folded as SQLite's lower(?) folds it: ASCII letters only."""
    return f'lower({bind(value, "text")} COLLATE "C")'


# An item's trace's score of a name: its authors' average, NULL when it has none; the name
# compared case-insensitively when folded (app/sqlite/scores.py's trace_score). Floats are
# added in SQLite's order (by key), where the order changes the last bit of a sum.
TRACE_SCORE = """(SELECT avg(f.value ORDER BY f.name, f.author) FROM feedback_scores AS f
    WHERE f.trace_id = i.trace_id AND f.workspace = i.workspace AND {match})"""
ITEM_TRACES_OF_E = """experiment_items AS i
    JOIN traces AS t ON t.id = i.trace_id AND t.workspace = i.workspace
    WHERE i.workspace = e.workspace AND i.experiment_id = e.id"""


def score_average(name: str) -> str:
    """The experiment's average of one trace score, over the items that have it; `name` is
    the SQL that matches f.name."""
    return f"(SELECT avg({TRACE_SCORE.format(match=name)} ORDER BY i.id) FROM {ITEM_TRACES_OF_E})"


def experiment_score(bind: Bind, name: str, folded: bool) -> str:
    """The value of the experiment's own score of that name, the first one so named."""
    match = (
        f"lower((j.value ->> 'name') COLLATE \"C\") = {fold(bind, name)}"
        if folded
        else f"(j.value ->> 'name') = {bind(name, 'text')}"
    )
    return f"""(SELECT CASE WHEN json_typeof(j.value -> 'value') = 'number'
        THEN {json_number("j.value ->> 'value'")} END
    FROM json_array_elements({json_array("e.experiment_scores")}) WITH ORDINALITY AS j(value, n)
    WHERE {match} ORDER BY j.n LIMIT 1)"""


# A metadata value as SQLite's CAST(json_extract(...) AS TEXT) reads it: a string unquoted, a
# number as SQLite writes it, true and false as 1 and 0, null as no value, an object or an
# array as its JSON text without white space.
_METADATA_TEXT = """(CASE json_typeof({raw}) WHEN 'string' THEN {raw} #>> '{{}}'
    WHEN 'number' THEN {number}
    WHEN 'boolean' THEN CASE WHEN {raw}::text = 'true' THEN '1' ELSE '0' END
    WHEN 'null' THEN NULL ELSE regexp_replace({raw}::text, {minified}) END COLLATE "C")"""
# Whitespace between JSON tokens, each string matched whole and kept: an object or array as
# SQLite's json_extract writes it (its strings and numbers as sent, nothing between tokens).
_MINIFIED = r"""'("(?:[^"\\]|\\.)*")|[ \t\n\r]+', '\1', 'g'"""
_TAGS = f"SELECT value FROM json_array_elements_text({json_array('e.tags')}) AS value"
# Opik's prompt_ids: the prompts of the experiment's prompt-version links, as they read back.
_PROMPT_IDS = f"""SELECT value FROM (
    SELECT j.value ->> 'prompt_id' AS value
    FROM json_array_elements({json_array("e.prompt_versions")}) AS j
    UNION ALL
    SELECT e.prompt_version::json ->> 'prompt_id'
) AS l WHERE value IS NOT NULL"""
_LISTS = {"tags": (_TAGS, False), "prompt_ids": (_PROMPT_IDS, True)}


def _text(bind: Bind, value_sql: str, operator: str, value: str, folded: bool) -> str:
    v = f"lower({value_sql})" if folded else value_sql

    def p() -> str:  # each use binds the value again, as SQLite's `?`s do
        return fold(bind, value) if folded else bind(value, "text")

    if operator == "contains":
        return f"strpos({v}, {p()}) > 0"
    if operator == "not_contains":
        return f"coalesce(strpos({v}, {p()}), 0) = 0"
    if operator == "starts_with":
        return f"substr({v}, 1, length({p()})) = {p()}"
    if operator == "ends_with":
        tail = f"substr({v}, length({v}) - length({p()}) + 1) = {p()}"
        return f"(length({v}) >= length({p()}) AND {tail})"
    if operator == "!=":
        return f"coalesce({v} <> {p()}, true)"
    assert operator in ("=", ">", "<"), operator
    return f"{v} {operator} {p()}"


_NUMBER = {"=": "=", "!=": "<>", ">": ">", ">=": ">=", "<": "<", "<=": "<="}


def condition(f: Filter, bind: Bind) -> str:
    """The filter's condition, its parameters bound; "true" for one that find ignores."""
    if f.field == "project_id":
        return "true"
    if f.field == "dataset_id":
        return _text(bind, UUID_TEXT.format(c="e.dataset_id"), f.operator, f.value, folded=False)
    if f.field == "metadata":
        if f.operator in (">", "<"):
            try:
                number = float(f.value)
            except ValueError:
                return "false"  # Opik's toFloat64OrNull: no number, no match
        # Bound once, and only when used: every parameter must appear in the statement.
        raw = f"(e.metadata::json #> {bind(json_steps(f.key), 'text[]')})"
        as_text = number_text(raw + UNQUOTED)
        value = _METADATA_TEXT.format(raw=raw, number=as_text, minified=_MINIFIED)
        if f.operator in ("is_empty", "is_not_empty"):
            empty = f"coalesce({value} IN ('', 'null'), true)"
            return empty if f.operator == "is_empty" else f"NOT {empty}"
        if f.operator in (">", "<"):
            return (
                f"(CASE WHEN json_typeof({raw}) = 'number' THEN {json_number(raw + UNQUOTED)} "
                f"{f.operator} {bind(number, 'float8')} ELSE false END)"
            )
        return _text(bind, value, f.operator, f.value, folded=True)
    if f.field in _LISTS:
        # An element equal to the value (=, !=: none is), or holding it, case-insensitively.
        values, folded_equal = _LISTS[f.field]
        if f.operator in ("is_empty", "is_not_empty"):
            empty = f"NOT EXISTS ({values})"
            return empty if f.operator == "is_empty" else f"NOT {empty}"
        element = 'l.value COLLATE "C"'
        if f.operator in ("=", "!="):
            match = (
                f"lower({element}) = {fold(bind, f.value)}"
                if folded_equal
                else f"{element} = {bind(f.value, 'text')}"
            )
        else:
            match = f"strpos(lower({element}), {fold(bind, f.value)}) > 0"
        exists = f"EXISTS (SELECT 1 FROM ({values}) AS l WHERE {match})"
        return exists if f.operator in ("=", "contains") else f"NOT {exists}"
    if f.field == "feedback_scores":
        score = score_average(f"lower(f.name) = {fold(bind, f.key)}")
    else:
        score = experiment_score(bind, f.key, folded=True)
    if f.operator == "is_empty":
        return f"{score} IS NULL"
    if f.operator == "is_not_empty":
        return f"{score} IS NOT NULL"
    return f"{score} {_NUMBER[f.operator]} {bind(f.number, 'float8')}"
