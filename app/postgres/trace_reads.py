"""Trace, span and project reads: traces with what their spans and scores sum to, spans with
their scores, the searches and pages (one project's, newest id first, with the conditions and
orders of app/trace_search.py in PostgreSQL's words), a trace's spans for the web UI, and
projects by id or name. A row only a PATCH made (partial) is not read."""

import itertools
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any, TypeVar

import msgspec

from app.feedback_scores import ScoreRow, by_entity
from app.payloads import FeedbackScore
from app.postgres.connection import Database
from app.postgres.stream import LAST_KEY, STREAM_USAGE, TRACE_SCORES
from app.records import batched, name_key
from app.trace_answers import (
    MAX_TRACE_SPANS,
    PROJECT_COLUMNS,
    SPAN_COLUMNS,
    TRACE_COLUMNS,
    project,
    span,
    traces_in_order,
)
from app.trace_payloads import Project, Span, Trace
from app.trace_records import TraceQuery
from app.trace_search import Dialect, order, page_of, where

_SEARCH_CHUNK = 100  # records a search reads per statement

TRACES_BY_ID = (
    f"SELECT {', '.join(TRACE_COLUMNS)} FROM traces"
    " WHERE workspace = $1 AND partial = 0 AND id = ANY($2::bytea[])"
)
SPANS_BY_ID = (
    f"SELECT {', '.join(SPAN_COLUMNS)} FROM spans"
    " WHERE workspace = $1 AND partial = 0 AND id = ANY($2::bytea[])"
)
# As NO_SPANS: how many, how many of type llm, whether any is a tool, the summed cost.
SPAN_COUNTS = """
SELECT trace_id, count(*), count(*) FILTER (WHERE type = 'llm'), bool_or(type = 'tool'),
       sum(total_estimated_cost)
FROM spans WHERE workspace = $1 AND partial = 0 AND trace_id = ANY($2::bytea[])
GROUP BY trace_id
"""
SPAN_PROVIDERS = """
SELECT DISTINCT trace_id, provider FROM spans
WHERE workspace = $1 AND partial = 0 AND trace_id = ANY($2::bytea[]) AND provider IS NOT NULL
ORDER BY trace_id, provider
"""
SPAN_SCORES = """
SELECT span_id, name, author, category_name, value, reason, source, created_at,
       last_updated_at, created_by, last_updated_by
FROM span_feedback_scores WHERE workspace = $1 AND span_id = ANY($2::bytea[])
ORDER BY span_id, name, author
"""
SPANS_OF_TRACE = """
SELECT id FROM spans WHERE workspace = $1 AND trace_id = $2 AND partial = 0
ORDER BY start_time, id LIMIT $3
"""
PROJECT_BY_ID = f"SELECT {PROJECT_COLUMNS} FROM projects WHERE workspace = $1 AND id = $2"
PROJECT_BY_NAME = f"SELECT {PROJECT_COLUMNS} FROM projects WHERE workspace = $1 AND name_key = $2"

# The page of a search or of GET /traces and /spans, with `?` for its parameters (numbered
# by `numbered`): {table} is traces or spans, {conditions} and {order} app/trace_search.py's,
# never input. The id breaks ties, so a page is stable.
SEARCH_PAGE = """
SELECT t.id FROM {table} AS t
WHERE t.workspace = ? AND t.project_id = ? AND t.id < ? AND t.partial = 0{conditions}
ORDER BY {order}t.id DESC LIMIT ? OFFSET ?
"""
SEARCH_COUNT = """
SELECT count(*) FROM {table} AS t
WHERE t.workspace = ? AND t.project_id = ? AND t.partial = 0{conditions}
"""
# Text compares as SQLite's: a parameter is cast to text (asyncpg must know its type), and
# lowercased in the "C" collation, ASCII letters only, as SQLite's lower() and the columns'.
_TEXT = '?::text COLLATE "C"'
_USAGE_OBJECT = (
    "CASE WHEN json_typeof({usage}::json) = 'object' THEN {usage}::json ELSE '{{}}'::json END"
)
DIALECT = Dialect(
    names={
        "=": "t.name = ?::text",
        "!=": "coalesce(t.name, '') <> ?::text",
        "contains": f"strpos(lower(t.name), lower({_TEXT})) > 0",
        "not_contains": f"strpos(lower(coalesce(t.name, '')), lower({_TEXT})) = 0",
        "starts_with": "substr(t.name, 1, length(?::text)) = ?::text",
        # SQLite's substr(name, -length(v)) = v: an empty value's substr is the whole name.
        "ends_with": (
            "(CASE WHEN length(?::text) = 0 THEN t.name"
            " ELSE right(t.name, length(?::text)) END) = ?::text"
        ),
    },
    holds_text="strpos(lower({column}), ?::text) > 0",
    holds_hex="strpos(encode({column}, 'hex'), ?::text) > 0",
    tags_hold=(
        "EXISTS (SELECT 1 FROM json_array_elements_text(CASE WHEN json_typeof(t.tags::json)"
        " = 'array' THEN t.tags::json ELSE '[]'::json END) AS g(value)"
        ' WHERE strpos(lower(g.value COLLATE "C"), ?::text) > 0)'
    ),
    usage={
        "traces": (
            "(SELECT sum(CASE WHEN json_typeof(u.value) = 'number'"
            " THEN (u.value #>> '{}')::float8 END)"
            f" FROM spans AS s, json_each({_USAGE_OBJECT.format(usage='s.usage')}) AS u"
            " WHERE s.workspace = t.workspace AND s.trace_id = t.id AND s.partial = 0"
            " AND u.key = ?::text)"
        ),
        "spans": (
            "(CASE WHEN json_typeof(t.usage::json -> ?::text) = 'number'"
            " THEN (t.usage::json ->> ?::text)::float8 END)"
        ),
    },
)


def numbered(sql: str) -> str:
    """`sql` with its `?` parameters as PostgreSQL's $1, $2, ... in their order."""
    counter = itertools.count(1)
    return re.sub(r"\?", lambda _: f"${next(counter)}", sql)


async def get_project(db: Database, workspace: str, key: bytes) -> Project | None:
    row = await db.fetch_row(PROJECT_BY_ID, workspace, key)
    return None if row is None else project(row)


async def find_project(db: Database, workspace: str, name: str) -> Project | None:
    row = await db.fetch_row(PROJECT_BY_NAME, workspace, name_key(name))
    return None if row is None else project(row)


async def _scores(db: Database, sql: str, workspace: str, keys: list[bytes]) -> dict[bytes, Any]:
    rows = [tuple(row) for row in await db.fetch_all(sql, workspace, keys)]
    found: dict[bytes, list[FeedbackScore]] = by_entity(msgspec.convert(rows, list[ScoreRow]))
    return found


async def traces(
    db: Database, workspace: str, keys: Sequence[bytes], truncate: bool = False
) -> list[Trace]:
    """The traces of these ids that are stored whole, in the order of `keys`."""
    rows = await db.fetch_all(TRACES_BY_ID, workspace, list(keys))
    if not rows:
        return []
    found = [row[0] for row in rows]
    return traces_in_order(
        keys,
        rows,
        await db.fetch_all(SPAN_COUNTS, workspace, found),
        await db.fetch_all(SPAN_PROVIDERS, workspace, found),
        await db.fetch_all(STREAM_USAGE, workspace, found),
        await _scores(db, TRACE_SCORES, workspace, found),
        truncate,
    )


async def spans(
    db: Database, workspace: str, keys: Sequence[bytes], truncate: bool = False
) -> list[Span]:
    """The spans of these ids that are stored whole, in the order of `keys`."""
    rows = await db.fetch_all(SPANS_BY_ID, workspace, list(keys))
    scores = await _scores(db, SPAN_SCORES, workspace, [row[0] for row in rows])
    by_id = {row[0]: span(row, scores.get(row[0]), truncate) for row in rows}
    return [by_id[key] for key in keys if key in by_id]


async def get_trace(db: Database, workspace: str, key: bytes) -> Trace | None:
    found = await traces(db, workspace, [key])
    return found[0] if found else None


async def get_span(db: Database, workspace: str, key: bytes) -> Span | None:
    found = await spans(db, workspace, [key])
    return found[0] if found else None


async def trace_spans(db: Database, workspace: str, trace_id: bytes) -> list[Span]:
    """The trace's spans, earliest first, each as GET /spans/{id} answers it."""
    rows = await db.fetch_all(SPANS_OF_TRACE, workspace, trace_id, MAX_TRACE_SPANS)
    return await spans(db, workspace, [row[0] for row in rows])


async def page_keys(db: Database, workspace: str, table: str, query: TraceQuery) -> list[bytes]:
    """The ids the query names, newest first or in its sort's order, then newest first."""
    conditions, params = where(query, table, DIALECT)
    sort, sort_params = order(query, table, DIALECT)
    sql = numbered(SEARCH_PAGE.format(table=table, conditions=conditions, order=sort))
    head = [workspace, query.project_id, query.before or LAST_KEY]
    rows = await db.fetch_all(sql, *head, *params, *sort_params, query.limit, query.offset)
    return [row[0] for row in rows]


async def count(db: Database, workspace: str, table: str, query: TraceQuery) -> int:
    """How many rows the query's conditions match, cursor and page aside."""
    conditions, params = where(query, table, DIALECT)
    sql = numbered(SEARCH_COUNT.format(table=table, conditions=conditions))
    return int((await db.fetch_row(sql, workspace, query.project_id, *params))[0])


R = TypeVar("R", Trace, Span)
Read = Callable[[Database, str, Sequence[bytes], bool], Awaitable[list[R]]]
_READS: dict[str, Read[Any]] = {"traces": traces, "spans": spans}


async def search(db: Database, workspace: str, table: str, query: TraceQuery) -> AsyncIterator[Any]:
    """The search's traces or spans (`table`), in chunks read one at a time."""
    read = _READS[table]
    for chunk in batched(await page_keys(db, workspace, table, query), _SEARCH_CHUNK):
        yield await read(db, workspace, chunk, query.truncate)


def search_traces(db: Database, workspace: str, query: TraceQuery) -> AsyncIterator[list[Trace]]:
    return search(db, workspace, "traces", query)


def search_spans(db: Database, workspace: str, query: TraceQuery) -> AsyncIterator[list[Span]]:
    return search(db, workspace, "spans", query)


async def page(
    db: Database, workspace: str, table: str, query: TraceQuery
) -> tuple[list[Any], int]:
    """One page of the project's traces or spans (`table`) and how many match in all."""
    read = _READS[table]

    async def counted(q: TraceQuery) -> int:
        return await count(db, workspace, table, q)

    async def keys(q: TraceQuery) -> list[bytes]:
        return await page_keys(db, workspace, table, q)

    async def records(chunk: Sequence[bytes], truncate: bool) -> list[Any]:
        return await read(db, workspace, chunk, truncate)

    return await page_of(query, counted, keys, records)
