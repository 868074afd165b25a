"""Trace and project reads: a trace with what its spans and scores sum to, the trace search
and pages (one project's traces newest id first, the conditions they share with spans'), and
projects by id or name. A row only a
PATCH made (partial) is not read: it has no start time yet, which every answer carries."""

import math
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any, TypeVar

import msgspec
from msgspec import UNSET

from app import clock, ids
from app.experiment_answers import raw_or_unset
from app.records import TraceQuery, batched, duration_ms, name_key, truncate_images
from app.sqlite.connection import Database
from app.sqlite.scores import TRACE_SCORES, read_scores, span_score, trace_score
from app.sqlite.stream import STREAM_USAGE
from app.sqlite.tables import LAST_KEY, marks
from app.trace_payloads import Project, Trace

_SEARCH_CHUNK_TRACES = 100

_TRACE_COLUMNS = (
    "id project_id name start_time end_time input output metadata tags error_info created_at "
    "last_updated_at created_by last_updated_by ttft thread_id hidden source environment"
)
TRACES_BY_ID = (
    f"SELECT {', '.join(_TRACE_COLUMNS.split())} FROM traces"
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
# The page of a search or of GET /traces and /spans: {table} is traces or spans and {order}
# one of the ORDER expressions below, never input. The id breaks ties, so a page is stable.
SEARCH_PAGE = """
SELECT t.id FROM {table} AS t
WHERE t.workspace = ? AND t.project_id = ? AND t.id < ? AND t.partial = 0{conditions}
ORDER BY {order}t.id DESC LIMIT ? OFFSET ?
"""
SEARCH_COUNT = """
SELECT count(*) FROM {table} AS t
WHERE t.workspace = ? AND t.project_id = ? AND t.partial = 0{conditions}
"""
_NAME_CONDITIONS = {
    "=": "t.name = ?",
    "!=": "coalesce(t.name, '') <> ?",
    "contains": "instr(lower(t.name), lower(?)) > 0",
    "not_contains": "instr(lower(coalesce(t.name, '')), lower(?)) = 0",
    "starts_with": "substr(t.name, 1, length(:v)) = :v",
    "ends_with": "substr(t.name, -length(:v)) = :v",
}
# What `search` looks in (Opik's TRACE_SEARCH_CLAUSE and SPAN_SEARCH_CLAUSE, an ilike of
# '%text%' on each): the text, lowercased, is a part of one of these, lowercased. The id is
# matched on its hex digits, so that a part of its canonical text with dashes finds it too.
_SEARCHED_TEXT = "instr(lower({column}), ?) > 0"
_SEARCHED_ID = "instr(lower(hex({column})), ?) > 0"
_SEARCHED_TAGS = "EXISTS (SELECT 1 FROM json_each(t.tags) AS g WHERE instr(lower(g.value), ?) > 0)"
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
# What a page sorts by (trace_payloads' TRACE_SORTABLE_BY and SPAN_SORTABLE_BY), each an
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
        "usage.*": (
            "(SELECT sum(u.value) FROM spans AS s, json_each(s.usage) AS u"
            " WHERE s.workspace = t.workspace AND s.trace_id = t.id AND s.partial = 0"
            " AND u.key = ?)"
        ),
        "feedback_scores.*": trace_score("t.id", "t.workspace"),
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
        "usage.*": "(SELECT u.value FROM json_each(t.usage) AS u WHERE u.key = ?)",
        "feedback_scores.*": span_score("t.id", "t.workspace"),
    },
}
PROJECT_COLUMNS = "id, name, created_at, created_by, last_updated_at, last_updated_by"
PROJECT_BY_ID = f"SELECT {PROJECT_COLUMNS} FROM projects WHERE workspace = ? AND id = ?"
PROJECT_BY_NAME = f"SELECT {PROJECT_COLUMNS} FROM projects WHERE workspace = ? AND name_key = ?"


def _project(row: Sequence[Any]) -> Project:
    key, name, created_at, created_by, updated_at, updated_by = row
    return Project(
        ids.to_str(key), name, "private", clock.format_instant(created_at), created_by,
        clock.format_instant(updated_at), updated_by,
    )  # fmt: skip


async def get_project(db: Database, workspace: str, key: bytes) -> Project | None:
    rows = await db.fetch_all(PROJECT_BY_ID, (workspace, key))
    return _project(rows[0]) if rows else None


async def find_project(db: Database, workspace: str, name: str) -> Project | None:
    rows = await db.fetch_all(PROJECT_BY_NAME, (workspace, name_key(name)))
    return _project(rows[0]) if rows else None


def or_unset(value: Any) -> Any:
    return UNSET if value is None else value


def instant_or_unset(ns: int | None) -> str | Any:
    return UNSET if ns is None else clock.format_instant(ns)


async def _usage(
    db: Database, workspace: str, keys: Sequence[bytes]
) -> dict[bytes, dict[str, int]]:
    usage: dict[bytes, dict[str, int]] = {}
    sql = STREAM_USAGE.format(marks=marks(len(keys)))
    for trace_id, name, total in await db.fetch_all(sql, (workspace, *keys)):
        if math.isfinite(total):
            usage.setdefault(trace_id, {})[name] = int(total)
    return usage


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
    counts = {
        row[0]: row[1:]
        for row in await db.fetch_all(SPAN_COUNTS.format(marks=marks(len(found))), found_params)
    }
    providers: dict[bytes, list[str]] = {}
    for trace_id, provider in await db.fetch_all(
        SPAN_PROVIDERS.format(marks=marks(len(found))), found_params
    ):
        providers.setdefault(trace_id, []).append(provider)
    usage = await _usage(db, workspace, found)
    scores = await read_scores(db, TRACE_SCORES, workspace, found)
    by_id = {}
    for row in rows:
        (key, project_id, name, start, end, input_, output, metadata, tags, error_info,
         created_at, updated_at, created_by, updated_by, ttft, thread_id, hidden, source,
         environment) = row  # fmt: skip
        if truncate:
            input_, output = input_ and truncate_images(input_), output and truncate_images(output)
            metadata = metadata and truncate_images(metadata)
        span_count, llm_count, has_tool, cost = counts.get(key, (0, 0, 0, None))
        by_id[key] = Trace(
            id=ids.to_str(key),
            project_id=ids.to_str(project_id),
            name=or_unset(name),
            start_time=clock.format_instant(start),
            end_time=instant_or_unset(end),
            input=raw_or_unset(input_),
            output=raw_or_unset(output),
            metadata=raw_or_unset(metadata),
            tags=raw_or_unset(tags),
            error_info=raw_or_unset(error_info),
            usage=usage.get(key, UNSET),
            created_at=clock.format_instant(created_at),
            last_updated_at=clock.format_instant(updated_at),
            created_by=created_by,
            last_updated_by=updated_by,
            feedback_scores=scores.get(key, UNSET),
            total_estimated_cost=or_unset(cost),
            span_count=span_count,
            duration=duration_ms(start, end),
            ttft=or_unset(ttft),
            thread_id=or_unset(thread_id),
            visibility_mode="hidden" if hidden else "default",
            llm_span_count=int(llm_count),
            has_tool_spans=bool(has_tool),
            providers=providers.get(key, UNSET),
            source=or_unset(source),
            environment=or_unset(environment),
        )
    return [by_id[key] for key in keys if key in by_id]


async def get_trace(db: Database, workspace: str, key: bytes) -> Trace | None:
    found = await traces(db, workspace, [key])
    return found[0] if found else None


def where(query: TraceQuery, table: str, score: str) -> tuple[str, list[object]]:
    """The conditions of the query on `t`, a row of `table`, each after AND, and their
    parameters; `score` is the score of a name of `t` (scores.trace_score or span_score)."""
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
        held = [_SEARCHED_TEXT.format(column=c) for c in texts_in] + [_SEARCHED_TAGS]
        params += [text] * (len(texts_in) + 1)
        if hex_text and all(ch in "0123456789abcdef" for ch in hex_text):
            held += [_SEARCHED_ID.format(column=c) for c in ids_in]
            params += [hex_text] * len(ids_in)
        clauses.append(f"({' OR '.join(held)})")
    for c in query.conditions:
        if c.field == "name":
            clause = _NAME_CONDITIONS[c.operator]
            clauses.append(clause.replace(":v", "?"))
            params += [c.value] * max(1, clause.count(":v"))
        else:
            operator = "<>" if c.operator == "!=" else c.operator
            clauses.append(f"{score} {operator} ?")
            params += [c.key, c.value]
    return "".join(f" AND {c}" for c in clauses), params


async def page_keys(
    db: Database, workspace: str, table: str, score: str, query: TraceQuery
) -> list[bytes]:
    """The ids the query names, newest first or in its sort's order (NULLs last either way,
    as ClickHouse sorts them), then newest first."""
    conditions, params = where(query, table, score)
    order, order_params = "", []
    if query.sort is not None:
        expression = ORDER[table][query.sort.field]
        direction = "DESC" if query.sort.descending else "ASC"
        order = f"{expression} {direction} NULLS LAST, "
        order_params = [query.sort.key] * expression.count("?")
    sql = SEARCH_PAGE.format(table=table, conditions=conditions, order=order)
    head = [workspace, query.project_id, query.before or LAST_KEY]
    rows = await db.fetch_all(sql, [*head, *params, *order_params, query.limit, query.offset])
    return [row[0] for row in rows]


async def count(db: Database, workspace: str, table: str, score: str, query: TraceQuery) -> int:
    """How many rows the query's conditions match, cursor and page aside."""
    conditions, params = where(query, table, score)
    sql = SEARCH_COUNT.format(table=table, conditions=conditions)
    return int((await db.fetch_all(sql, [workspace, query.project_id, *params]))[0][0])


_TRACE_SCORE = trace_score("t.id", "t.workspace")


async def search_traces(
    db: Database, workspace: str, query: TraceQuery
) -> AsyncIterator[list[Trace]]:
    page = await page_keys(db, workspace, "traces", _TRACE_SCORE, query)
    for chunk in batched(page, _SEARCH_CHUNK_TRACES):
        yield await traces(db, workspace, chunk, query.truncate)


T = TypeVar("T")
Read = Callable[[Database, str, Sequence[bytes], bool], Awaitable[list[T]]]


async def page_of(
    db: Database, workspace: str, table: str, score: str, read: Read[T], query: TraceQuery
) -> tuple[list[T], int]:
    """One page of the project's traces or spans (`table`, read by `read`) and how many
    match in all."""
    total = await count(db, workspace, table, score, query)
    if query.offset >= total:  # also keeps a huge page number out of SQLite's 64 bits
        return [], total
    limited = msgspec.structs.replace(query, limit=min(query.limit, total))
    found: list[T] = []
    for chunk in batched(await page_keys(db, workspace, table, score, limited), 500):
        found += await read(db, workspace, chunk, query.truncate)
    return found, total


async def page_traces(db: Database, workspace: str, query: TraceQuery) -> tuple[list[Trace], int]:
    """One page of the project's traces and how many there are in all."""
    return await page_of(db, workspace, "traces", _TRACE_SCORE, traces, query)
