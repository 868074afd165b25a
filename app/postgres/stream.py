"""The item stream: the items of every experiment of one name, newest id first, each with its
trace's input and output, cost, duration, usage and feedback scores, read as
app/sqlite/stream.py reads them; the chunks and the lines are app/item_stream.py's."""

from collections.abc import AsyncIterator, Sequence
from typing import Any

import msgspec

from app import item_stream
from app.feedback_scores import ScoreRow, by_entity
from app.item_stream import chunks, rows_by_id, usage_of
from app.payloads import FeedbackScore, FullItem
from app.postgres.connection import Database
from app.postgres.filters import json_number
from app.records import StreamQuery, name_key

LAST_KEY = b"\xff" * 16  # sorts after every 16-byte id: the cursor without last_retrieved_id

FIND_PROJECT = "SELECT id FROM projects WHERE workspace = $1 AND name_key = $2"
# One page as ids, newest first: each experiment of the name gives its own newest `limit`
# from one range of experiment_items_by_experiment, however many items it holds.
STREAM_PAGE = """
SELECT p.id FROM experiments AS e
CROSS JOIN LATERAL (
    SELECT i.id FROM experiment_items AS i
    LEFT JOIN traces AS t ON t.id = i.trace_id AND t.workspace = i.workspace
    WHERE i.workspace = e.workspace AND i.experiment_id = e.id AND i.id < $3
      AND ($5::bytea IS NULL OR coalesce(i.project_id, t.project_id) = $5)
    ORDER BY i.id DESC LIMIT $4
) AS p
WHERE e.workspace = $1 AND e.name = $2
ORDER BY p.id DESC LIMIT $4
"""
# What each item's trace weighs, in characters as SQLite's length(), read before the items.
STREAM_SIZES = """
SELECT i.id, coalesce(length(t.input), 0) + coalesce(length(t.output), 0)
FROM experiment_items AS i
LEFT JOIN traces AS t ON t.id = i.trace_id AND t.workspace = i.workspace
WHERE i.workspace = $1 AND i.id = ANY($2::bytea[])
"""
STREAM_ITEMS = """
SELECT i.experiment_id, i.dataset_item_id, i.trace_id, i.id,
       coalesce(i.project_id, t.project_id), (t.id IS NOT NULL)::int, t.input, t.output,
       t.start_time, t.end_time, i.created_at, i.last_updated_at, i.created_by,
       i.last_updated_by, t.hidden
FROM experiment_items AS i
LEFT JOIN traces AS t ON t.id = i.trace_id AND t.workspace = i.workspace
WHERE i.workspace = $1 AND i.id = ANY($2::bytea[])
"""
STREAM_COSTS = """
SELECT trace_id, sum(total_estimated_cost ORDER BY id) FROM spans
WHERE workspace = $1 AND trace_id = ANY($2::bytea[]) AND total_estimated_cost IS NOT NULL
GROUP BY trace_id
"""
# As SQLite's total(): a float sum, in which a value that is no number counts as 0. In key
# order, byte by byte, as SQLite's GROUP BY leaves it: the answer's keys come in this order.
STREAM_USAGE = """
SELECT s.trace_id, u.key,
       sum(CASE WHEN json_typeof(u.value) = 'number' THEN {number} ELSE 0 END ORDER BY s.id)
FROM spans AS s, json_each(
    CASE WHEN json_typeof(s.usage::json) = 'object' THEN s.usage::json ELSE '{{}}'::json END
) AS u
WHERE s.workspace = $1 AND s.trace_id = ANY($2::bytea[]) AND s.usage IS NOT NULL
GROUP BY s.trace_id, u.key
ORDER BY s.trace_id, u.key COLLATE "C"
""".format(number=json_number("u.value #>> '{}'"))
TRACE_SCORES = """
SELECT trace_id, name, author, category_name, value, reason, source, created_at,
       last_updated_at, created_by, last_updated_by
FROM feedback_scores WHERE workspace = $1 AND trace_id = ANY($2::bytea[])
ORDER BY trace_id, name, author
"""


def _tuples(rows: Sequence[Any]) -> list[tuple[Any, ...]]:
    return [tuple(row) for row in rows]


async def stream_items(
    db: Database, workspace: str, query: StreamQuery
) -> AsyncIterator[list[FullItem]]:
    page = await _page(db, workspace, query)
    if not page:
        return
    sizes = dict(_tuples(await db.fetch_all(STREAM_SIZES, workspace, page)))
    for chunk in chunks(page, sizes):
        yield await full_items(db, workspace, chunk, query.truncate)


async def _page(db: Database, workspace: str, query: StreamQuery) -> list[bytes]:
    project = None
    if query.project_name is not None:
        found = await db.fetch_row(FIND_PROJECT, workspace, name_key(query.project_name))
        if found is None:
            return []
        project = found[0]
    rows = await db.fetch_all(
        STREAM_PAGE,
        workspace,
        query.experiment_name,
        query.before or LAST_KEY,
        query.limit,
        project,
    )
    return [row[0] for row in rows]


async def full_items(
    db: Database, workspace: str, keys: Sequence[bytes], truncate: bool
) -> list[FullItem]:
    rows = rows_by_id(_tuples(await db.fetch_all(STREAM_ITEMS, workspace, list(keys))))
    traces = list({row.trace_id for row in rows.values() if row.known})
    costs: dict[bytes, float] = {}
    usage: dict[bytes, dict[str, int]] = {}
    scores: dict[bytes, list[FeedbackScore]] = {}
    if traces:
        costs = dict(_tuples(await db.fetch_all(STREAM_COSTS, workspace, traces)))
        usage = usage_of(await db.fetch_all(STREAM_USAGE, workspace, traces))
        score_rows = _tuples(await db.fetch_all(TRACE_SCORES, workspace, traces))
        scores = by_entity(msgspec.convert(score_rows, list[ScoreRow]))
    return item_stream.full_items(keys, rows, costs, usage, scores, truncate)
