"""Find's filters as SQL conditions on `experiments AS e` (opik-reference/experiments.md §7):
text comparisons case-insensitive on metadata, case-sensitive on ids; scores compare the
experiment's average (CONTRACT.md, "Experiments resource")."""

from typing import Any

from app.filters import json_path
from app.records import Filter
from app.sqlite.scores import trace_score

UUID_TEXT = (
    "lower(substr(hex({c}), 1, 8) || '-' || substr(hex({c}), 9, 4) || '-' || "
    "substr(hex({c}), 13, 4) || '-' || substr(hex({c}), 17, 4) || '-' || substr(hex({c}), 21))"
)
_METADATA = "CASE WHEN json_valid(e.metadata) THEN e.metadata END"
# The kept summary's average (app/sqlite/summaries.py, joined as `kept`), else the live one:
# each item's trace's score (its authors' average), averaged over the items that have one.
# The name is bound twice, for the live `?` first.
_SCORE_AVERAGE = f"""(CASE WHEN kept.experiment_id IS NULL
    THEN (SELECT avg({trace_score("i.trace_id", "i.workspace", fold=True)})
    FROM experiment_items AS i
    JOIN traces AS t ON t.id = i.trace_id AND t.workspace = i.workspace
    WHERE i.workspace = e.workspace AND i.experiment_id = e.id)
    ELSE (SELECT value FROM json_each(kept.folded_scores) WHERE key = lower(?)) END)"""
_EXPERIMENT_SCORE = """(SELECT json_extract(j.value, '$.value')
    FROM json_each(CASE WHEN json_valid(e.experiment_scores) THEN e.experiment_scores
                   ELSE '[]' END) AS j
    WHERE lower(json_extract(j.value, '$.name')) = lower(?) LIMIT 1)"""
_TAGS = "SELECT value FROM json_each(CASE WHEN json_valid(e.tags) THEN e.tags ELSE '[]' END)"
# Opik's prompt_ids: the prompts of the experiment's prompt-version links, as they read back.
_PROMPT_IDS = """SELECT value FROM (
    SELECT json_extract(j.value, '$.prompt_id') AS value
    FROM json_each(CASE WHEN json_valid(e.prompt_versions) THEN e.prompt_versions
                   ELSE '[]' END) AS j
    UNION ALL
    SELECT json_extract(CASE WHEN json_valid(e.prompt_version) THEN e.prompt_version END,
                        '$.prompt_id')
) WHERE value IS NOT NULL"""
_LISTS = {"tags": (_TAGS, "value = ?"), "prompt_ids": (_PROMPT_IDS, "lower(value) = lower(?)")}


def _text(value_sql: str, operator: str, value: str, fold: bool) -> tuple[str, list[Any]]:
    v = f"lower({value_sql})" if fold else value_sql
    p = "lower(?)" if fold else "?"
    conditions = {
        "contains": (f"instr({v}, {p}) > 0", 1),
        "not_contains": (f"coalesce(instr({v}, {p}), 0) = 0", 1),
        "starts_with": (f"substr({v}, 1, length({p})) = {p}", 2),
        "ends_with": (
            f"(length({v}) >= length({p}) AND substr({v}, length({v}) - length({p}) + 1) = {p})",
            3,
        ),
        "=": (f"{v} = {p}", 1),
        "!=": (f"coalesce({v} <> {p}, 1)", 1),
        ">": (f"{v} > {p}", 1),
        "<": (f"{v} < {p}", 1),
    }
    sql, count = conditions[operator]
    return sql, [value] * count


_NUMBER = {"=": "=", "!=": "<>", ">": ">", ">=": ">=", "<": "<", "<=": "<="}


def condition(f: Filter) -> tuple[str, list[Any]]:
    """The filter's condition and its parameters; "1" for one that find ignores."""
    if f.field == "project_id":
        return "1", []
    if f.field == "dataset_id":
        return _text(UUID_TEXT.format(c="e.dataset_id"), f.operator, f.value, fold=False)
    if f.field == "metadata":
        # The path as an SQL literal (json_path's text, quotes doubled), not a parameter:
        # each use of it is then one expression, whatever the operator.
        path = "'" + json_path(f.key).replace("'", "''") + "'"
        raw = f"json_extract({_METADATA}, {path})"
        value = f"CAST({raw} AS TEXT)"
        if f.operator in ("is_empty", "is_not_empty"):
            empty = f"coalesce({value} IN ('', 'null'), 1)"
            return (empty if f.operator == "is_empty" else f"NOT {empty}"), []
        if f.operator in (">", "<"):
            try:
                number = float(f.value)
            except ValueError:
                return "0", []  # Opik's toFloat64OrNull: no number, no match
            numeric = f"json_type({_METADATA}, {path}) IN ('integer', 'real')"
            return f"({numeric} AND {raw} {f.operator} ?)", [number]
        return _text(value, f.operator, f.value, fold=True)
    if f.field in _LISTS:
        # An element equal to the value (=, !=: none is), or holding it, case-insensitively.
        values, equal = _LISTS[f.field]
        if f.operator in ("is_empty", "is_not_empty"):
            empty = f"NOT EXISTS ({values})"
            return (empty if f.operator == "is_empty" else f"NOT {empty}"), []
        match = equal if f.operator in ("=", "!=") else "instr(lower(value), lower(?)) > 0"
        exists = f"EXISTS (SELECT 1 FROM ({values}) WHERE {match})"
        return (exists if f.operator in ("=", "contains") else f"NOT {exists}"), [f.value]
    score, names = _EXPERIMENT_SCORE, [f.key]
    if f.field == "feedback_scores":
        score, names = _SCORE_AVERAGE, [f.key, f.key]
    if f.operator == "is_empty":
        return f"{score} IS NULL", names
    if f.operator == "is_not_empty":
        return f"{score} IS NOT NULL", names
    return f"{score} {_NUMBER[f.operator]} ?", [*names, f.number]
