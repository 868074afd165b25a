"""Trace and project reads: a trace with what its spans and scores sum to, the trace search
and pages (one project's traces newest id first, the conditions they share with spans'), and
projects by id or name. A row only a
PATCH made (partial) is not read: it has no start time yet, which every answer carries."""

from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import TypeVar

from app.records import batched, name_key
from app.sqlite.connection import Database
from app.sqlite.scores import TRACE_SCORES, read_scores
from app.sqlite.stream import STREAM_USAGE
from app.sqlite.tables import LAST_KEY, marks
from app.trace_answers import PROJECT_COLUMNS, TRACE_COLUMNS, project, traces_in_order
from app.trace_payloads import Project, Trace
from app.trace_records import TraceQuery
from app.trace_search import Dialect, order, page_of, where

_SEARCH_CHUNK_TRACES = 100

TRACES_BY_ID = (
    f"SELECT {', '.join(TRACE_COLUMNS)} FROM traces"
    " WHERE workspace = ? AND partial = 0 AND id IN ({marks})"
)
SPAN_COUNTS = """
SELECT trace_id, count(*), total(type = 'llm'), max(type = 'tool'), sum(total_estimated_cost)
FROM spans WHERE workspace = ? AND partial = 0 AND trace_id IN ({marks}) GROUP BY trace_id
"""
SPAN_PROVIDERS = """
SELECT DISTINCT trace_id, provider FROM spans
WHERE workspace = ? AND partial = 0 AND trace_id IN ({marks}) AND provider IS NOT NULL
ORDER BY trace_id, provider
"""
# The page of a search or of GET /traces and /spans: {table} is traces or spans, {conditions}
# and {order} app/trace_search.py's, never input. The id breaks ties, so a page is stable.
SEARCH_PAGE = """
SELECT t.id FROM {table} AS t
WHERE t.workspace = ? AND t.project_id = ? AND t.id < ? AND t.partial = 0{conditions}
ORDER BY {order}t.id DESC LIMIT ? OFFSET ?
"""
SEARCH_COUNT = """
SELECT count(*) FROM {table} AS t
WHERE t.workspace = ? AND t.project_id = ? AND t.partial = 0{conditions}
"""
# The SQL the shared conditions and orders (app/trace_search.py) take in SQLite's words.
DIALECT = Dialect(
    names={
        "=": "t.name = ?",
        "!=": "coalesce(t.name, '') <> ?",
        "contains": "instr(lower(t.name), lower(?)) > 0",
        "not_contains": "instr(lower(coalesce(t.name, '')), lower(?)) = 0",
        "starts_with": "substr(t.name, 1, length(?)) = ?",
        "ends_with": "substr(t.name, -length(?)) = ?",
    },
    holds_text="instr(lower({column}), ?) > 0",
    holds_hex="instr(lower(hex({column})), ?) > 0",
    tags_hold="EXISTS (SELECT 1 FROM json_each(t.tags) AS g WHERE instr(lower(g.value), ?) > 0)",
    usage={
        "traces": (
            "(SELECT sum(u.value) FROM spans AS s, json_each(s.usage) AS u"
            " WHERE s.workspace = t.workspace AND s.trace_id = t.id AND s.partial = 0"
            " AND u.key = ?)"
        ),
        "spans": "(SELECT u.value FROM json_each(t.usage) AS u WHERE u.key = ?)",
    },
)
PROJECT_BY_ID = f"SELECT {PROJECT_COLUMNS} FROM projects WHERE workspace = ? AND id = ?"
PROJECT_BY_NAME = f"SELECT {PROJECT_COLUMNS} FROM projects WHERE workspace = ? AND name_key = ?"


async def get_project(db: Database, workspace: str, key: bytes) -> Project | None:
    rows = await db.fetch_all(PROJECT_BY_ID, (workspace, key))
    return project(rows[0]) if rows else None


async def find_project(db: Database, workspace: str, name: str) -> Project | None:
    rows = await db.fetch_all(PROJECT_BY_NAME, (workspace, name_key(name)))
    return project(rows[0]) if rows else None


async def traces(
    db: Database, workspace: str, keys: Sequence[bytes], truncate: bool = False
) -> list[Trace]:
    """The traces of these ids that are stored whole, in the order of `keys`."""
    params = (workspace, *keys)
    rows = await db.fetch_all(TRACES_BY_ID.format(marks=marks(len(keys))), params)
    if not rows:
        return []
    found = [row[0] for row in rows]
    found_params = (workspace, *found)
    found_marks = marks(len(found))
    return traces_in_order(
        keys,
        rows,
        await db.fetch_all(SPAN_COUNTS.format(marks=found_marks), found_params),
        await db.fetch_all(SPAN_PROVIDERS.format(marks=found_marks), found_params),
        await db.fetch_all(STREAM_USAGE.format(marks=found_marks), found_params),
        await read_scores(db, TRACE_SCORES, workspace, found),
        truncate,
    )


async def get_trace(db: Database, workspace: str, key: bytes) -> Trace | None:
    found = await traces(db, workspace, [key])
    return found[0] if found else None


async def page_keys(db: Database, workspace: str, table: str, query: TraceQuery) -> list[bytes]:
    """The ids the query names, newest first or in its sort's order, then newest first."""
    conditions, params = where(query, table, DIALECT)
    sort, sort_params = order(query, table, DIALECT)
    sql = SEARCH_PAGE.format(table=table, conditions=conditions, order=sort)
    head = [workspace, query.project_id, query.before or LAST_KEY]
    rows = await db.fetch_all(sql, [*head, *params, *sort_params, query.limit, query.offset])
    return [row[0] for row in rows]


async def count(db: Database, workspace: str, table: str, query: TraceQuery) -> int:
    """How many rows the query's conditions match, cursor and page aside."""
    conditions, params = where(query, table, DIALECT)
    sql = SEARCH_COUNT.format(table=table, conditions=conditions)
    return int((await db.fetch_all(sql, [workspace, query.project_id, *params]))[0][0])


async def search_traces(
    db: Database, workspace: str, query: TraceQuery
) -> AsyncIterator[list[Trace]]:
    page = await page_keys(db, workspace, "traces", query)
    for chunk in batched(page, _SEARCH_CHUNK_TRACES):
        yield await traces(db, workspace, chunk, query.truncate)


T = TypeVar("T")
Read = Callable[[Database, str, Sequence[bytes], bool], Awaitable[list[T]]]


async def page(
    db: Database, workspace: str, table: str, read: Read[T], query: TraceQuery
) -> tuple[list[T], int]:
    """One page of the project's traces or spans (`table`, read by `read`) and how many
    match in all."""

    async def counted(q: TraceQuery) -> int:
        return await count(db, workspace, table, q)

    async def keys(q: TraceQuery) -> list[bytes]:
        return await page_keys(db, workspace, table, q)

    async def records(chunk: Sequence[bytes], truncate: bool) -> list[T]:
        return await read(db, workspace, chunk, truncate)

    return await page_of(query, counted, keys, records)


async def page_traces(db: Database, workspace: str, query: TraceQuery) -> tuple[list[Trace], int]:
    """One page of the project's traces and how many there are in all."""
    return await page(db, workspace, "traces", traces, query)
