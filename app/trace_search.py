"""The conditions and order of a trace or span search or page (a TraceQuery) on `t`, a row of
traces or spans, as SQL with `?` parameters: which conditions, in which order, with which
parameters, is the same on every engine; each engine's `Dialect` gives the few expressions its
SQL spells its own way. And the rule of a page, which both engines keep."""

from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import NamedTuple, TypeVar

import msgspec

from app.records import batched
from app.trace_records import TraceQuery


class Dialect(NamedTuple):
    """An engine's spelling of what the conditions and orders need, each with `?` for its
    parameters."""

    # A name condition by operator: every `?` takes the filter's value.
    names: Mapping[str, str]
    # `{column}`, lowercased, holds the text (`?`, lowercased already).
    holds_text: str
    # The hex digits of the id `{column}` hold the text (`?`, lowercase hex).
    holds_hex: str
    # An element of t.tags, lowercased, holds the text (`?`).
    tags_hold: str
    # What a page sorts `usage.*` by, per table: the usage value of the key `?`.
    usage: Mapping[str, str]


# What `search` looks in (Opik's TRACE_SEARCH_CLAUSE and SPAN_SEARCH_CLAUSE, an ilike of
# '%text%' on each): the text, lowercased, is a part of one of these, lowercased; and the ids,
# matched on their hex digits, so that a part of the canonical text with dashes finds them too.
SEARCHED = {
    "traces": (
        ("t.id",), ("t.name", "t.input", "t.output", "t.metadata", "t.error_info", "t.thread_id")
    ),
    "spans": (
        ("t.id", "t.trace_id"),
        ("t.name", "coalesce(t.type, 'general')", "t.input", "t.output", "t.metadata", "t.model",
         "t.provider"),
    ),
}  # fmt: skip
_SPANS_OF_T = (
    "FROM spans AS s WHERE s.workspace = t.workspace AND s.trace_id = t.id AND s.partial = 0"
)
# The score of a name (`?`) of the trace or span `t`: its authors' average; NULL when none.
SCORE = {
    "traces": """(SELECT avg(f.value) FROM feedback_scores AS f
    WHERE f.trace_id = t.id AND f.workspace = t.workspace AND f.name = ?)""",
    "spans": """(SELECT avg(f.value) FROM span_feedback_scores AS f
    WHERE f.span_id = t.id AND f.workspace = t.workspace AND f.name = ?)""",
}
# What a page sorts by (trace_queries' TRACE_SORTABLE_BY and SPAN_SORTABLE_BY), each an
# expression of `t`; `?` is the key of a `.*` field. Columns as stored: JSON text compares as
# text, as Opik's String columns do.
_COMMON_ORDER = {
    "id": "t.id", "name": "t.name", "input": "t.input", "output": "t.output",
    "metadata": "t.metadata", "start_time": "t.start_time", "end_time": "t.end_time",
    "duration": "t.end_time - t.start_time", "ttft": "t.ttft", "tags": "t.tags",
    "error_info": "t.error_info", "created_by": "t.created_by",
}  # fmt: skip
ORDER = {
    "traces": {
        **_COMMON_ORDER,
        "thread_id": "t.thread_id",
        "span_count": f"(SELECT count(*) {_SPANS_OF_T})",
        "llm_span_count": f"(SELECT count(*) {_SPANS_OF_T} AND s.type = 'llm')",
        "total_estimated_cost": f"(SELECT sum(s.total_estimated_cost) {_SPANS_OF_T})",
        "feedback_scores.*": SCORE["traces"],
    },
    "spans": {
        **_COMMON_ORDER,
        "type": "coalesce(t.type, 'general')",
        "trace_id": "t.trace_id",
        "parent_span_id": "t.parent_span_id",
        "created_at": "t.created_at",
        "last_updated_at": "t.last_updated_at",
        "model": "t.model",
        "provider": "t.provider",
        "total_estimated_cost": "t.total_estimated_cost",
        "feedback_scores.*": SCORE["spans"],
    },
}


def where(query: TraceQuery, table: str, dialect: Dialect) -> tuple[str, list[object]]:
    """The conditions of the query on `t`, a row of `table`, each after AND, and their
    parameters."""
    clauses: list[str] = []
    params: list[object] = []
    if query.trace_id is not None:
        clauses.append("t.trace_id = ?")
        params.append(query.trace_id)
    if query.span_type is not None:
        clauses.append("coalesce(t.type, 'general') = ?")  # a span without one reads general
        params.append(query.span_type)
    if query.from_id is not None:
        clauses.append("t.id >= ?")
        params.append(query.from_id)
    if query.to_id is not None:
        clauses.append("t.id <= ?")
        params.append(query.to_id)
    if query.search is not None:
        ids_in, texts_in = SEARCHED[table]
        text = query.search.lower()
        hex_text = text.replace("-", "")
        held = [dialect.holds_text.format(column=c) for c in texts_in] + [dialect.tags_hold]
        params += [text] * (len(texts_in) + 1)
        if hex_text and all(ch in "0123456789abcdef" for ch in hex_text):
            held += [dialect.holds_hex.format(column=c) for c in ids_in]
            params += [hex_text] * len(ids_in)
        clauses.append(f"({' OR '.join(held)})")
    for c in query.conditions:
        if c.field == "name":
            clause = dialect.names[c.operator]
            clauses.append(clause)
            params += [c.value] * clause.count("?")
        else:
            operator = "<>" if c.operator == "!=" else c.operator
            clauses.append(f"{SCORE[table]} {operator} ?")
            params += [c.key, c.value]
    return "".join(f" AND {c}" for c in clauses), params


def order(query: TraceQuery, table: str, dialect: Dialect) -> tuple[str, list[object]]:
    """The sort of the query before the newest id (NULLs last either way, as ClickHouse
    sorts them), ending in ", ", and its parameters; "" when it has none."""
    if query.sort is None:
        return "", []
    if query.sort.field == "usage.*":
        expression = dialect.usage[table]
    else:
        expression = ORDER[table][query.sort.field]
    direction = "DESC" if query.sort.descending else "ASC"
    return f"{expression} {direction} NULLS LAST, ", [query.sort.key] * expression.count("?")


T = TypeVar("T")
READ_PER_STATEMENT = 500  # records of a page read by one statement, at most


async def page_of(
    query: TraceQuery,
    count: Callable[[TraceQuery], Awaitable[int]],
    keys: Callable[[TraceQuery], Awaitable[list[bytes]]],
    read: Callable[[Sequence[bytes], bool], Awaitable[list[T]]],
) -> tuple[list[T], int]:
    """One page of the query's records and how many match in all: `count` counts them, `keys`
    gives a page's ids in its order, `read` the records of some ids in theirs."""
    total = await count(query)
    if query.offset >= total:  # also keeps a huge page number out of 64-bit integers
        return [], total
    limited = msgspec.structs.replace(query, limit=min(query.limit, total))
    found: list[T] = []
    for chunk in batched(await keys(limited), READ_PER_STATEMENT):
        found += await read(chunk, query.truncate)
    return found, total
