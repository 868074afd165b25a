"""The item stream: the items of every experiment of one name, newest id first, each with its
trace's input and output, cost, duration, usage and feedback scores."""

from collections.abc import AsyncIterator, Sequence

from app import item_stream
from app.item_stream import StreamRow, chunks, rows_by_id, usage_of
from app.payloads import FeedbackScore, FullItem
from app.records import StreamQuery, batched, name_key
from app.sqlite.connection import Database
from app.sqlite.scores import TRACE_SCORES, read_scores
from app.sqlite.tables import LAST_KEY, marks, select

_EXPERIMENTS_PER_QUERY = 200  # under SQLite's 500 terms of one compound SELECT

FIND_EXPERIMENTS_BY_NAME = "SELECT id FROM experiments WHERE workspace = ? AND name = ?"
FIND_PROJECT = "SELECT id FROM projects WHERE workspace = ? AND name_key = ?"

# One page of the stream is found as ids first, newest first. Each experiment's own newest
# ids come from one range of experiment_items_by_experiment, so a page reads at most `limit`
# index entries per experiment, however many items the experiment holds.
STREAM_PAGE_BRANCH = """
SELECT * FROM (
    SELECT i.id FROM experiment_items AS i
    WHERE i.workspace = ? AND i.experiment_id = ? AND i.id < ?
    ORDER BY i.id DESC LIMIT ?
)"""
STREAM_PAGE_BRANCH_IN_PROJECT = """
SELECT * FROM (
    SELECT i.id FROM experiment_items AS i
    LEFT JOIN traces AS t ON t.id = i.trace_id AND t.workspace = i.workspace
    WHERE i.workspace = ? AND i.experiment_id = ? AND i.id < ?
      AND coalesce(i.project_id, t.project_id) = ?
    ORDER BY i.id DESC LIMIT ?
)"""


# The unary + keeps the planner off experiment_items_by_experiment, which a long IN list
# would otherwise make it scan whole: each id is one primary-key lookup
# (https://www.sqlite.org/optoverview.html#disqualifying_where_clause_terms_using_unary_).
STREAM_ITEMS = f"""
SELECT {
    select(
        StreamRow,
        experiment_id="i.experiment_id",
        dataset_item_id="i.dataset_item_id",
        trace_id="i.trace_id",
        id="i.id",
        project_id="coalesce(i.project_id, t.project_id)",
        known="t.id IS NOT NULL",
        input="t.input",
        output="t.output",
        start_time="t.start_time",
        end_time="t.end_time",
        created_at="i.created_at",
        last_updated_at="i.last_updated_at",
        created_by="i.created_by",
        last_updated_by="i.last_updated_by",
        hidden="t.hidden",
    )
}
FROM experiment_items AS i
LEFT JOIN traces AS t ON t.id = i.trace_id AND t.workspace = i.workspace
WHERE +i.workspace = ? AND i.id IN ({{marks}})
"""
# What each item's trace weighs, read before the items: SQLite's length() reads the text in
# C and keeps none of it (3.40 has no octet_length()).
STREAM_SIZES = """
SELECT i.id, coalesce(length(t.input), 0) + coalesce(length(t.output), 0)
FROM experiment_items AS i
LEFT JOIN traces AS t ON t.id = i.trace_id AND t.workspace = i.workspace
WHERE +i.workspace = ? AND i.id IN ({marks})
"""
STREAM_COSTS = """
SELECT trace_id, sum(total_estimated_cost) FROM spans
WHERE workspace = ? AND trace_id IN ({marks}) AND total_estimated_cost IS NOT NULL
GROUP BY trace_id
"""
# total(), not sum(): a float, which cannot overflow as sum() of integers does (raising
# mid-stream); the API bounds usage counts, but an imported file is stored as given.
STREAM_USAGE = """
SELECT s.trace_id, u.key, total(u.value) FROM spans AS s, json_each(s.usage) AS u
WHERE s.workspace = ? AND s.trace_id IN ({marks}) AND s.usage IS NOT NULL
GROUP BY s.trace_id, u.key
"""


async def stream_items(
    db: Database, workspace: str, query: StreamQuery
) -> AsyncIterator[list[FullItem]]:
    page = await _page(db, workspace, query)
    sizes: dict[bytes, int] = {}
    for keys in batched(page, _SIZES_PER_QUERY):
        sql = STREAM_SIZES.format(marks=marks(len(keys)))
        sizes.update(await db.fetch_all(sql, (workspace, *keys)))
    for chunk in chunks(page, sizes):
        yield await full_items(db, workspace, chunk, query.truncate)


_SIZES_PER_QUERY = 2000  # a whole page of the largest limit


async def _page(db: Database, workspace: str, query: StreamQuery) -> list[bytes]:
    experiments = await db.fetch_all(FIND_EXPERIMENTS_BY_NAME, (workspace, query.experiment_name))
    if not experiments:
        return []
    branch, filter_values = STREAM_PAGE_BRANCH, tuple[object, ...]()
    if query.project_name is not None:
        project = await db.fetch_all(FIND_PROJECT, (workspace, name_key(query.project_name)))
        if not project:
            return []
        branch, filter_values = STREAM_PAGE_BRANCH_IN_PROJECT, (project[0][0],)
    page: list[bytes] = []
    for chunk in batched([row[0] for row in experiments], _EXPERIMENTS_PER_QUERY):
        sql = " UNION ALL ".join([branch] * len(chunk))
        params: list[object] = []
        for experiment_id in chunk:
            params += [workspace, experiment_id, query.before or LAST_KEY, *filter_values]
            params.append(query.limit)
        page += [row[0] for row in await db.fetch_all(sql, params)]
    page.sort(reverse=True)
    return page[: query.limit]


async def full_items(
    db: Database, workspace: str, keys: Sequence[bytes], truncate: bool
) -> list[FullItem]:
    found = await db.fetch_all(STREAM_ITEMS.format(marks=marks(len(keys))), (workspace, *keys))
    rows = rows_by_id(found)
    traces = list({row.trace_id for row in rows.values() if row.known})
    costs: dict[bytes, float] = {}
    usage: dict[bytes, dict[str, int]] = {}
    scores: dict[bytes, list[FeedbackScore]] = {}
    if traces:
        trace_marks = marks(len(traces))
        params = (workspace, *traces)
        costs = dict(await db.fetch_all(STREAM_COSTS.format(marks=trace_marks), params))
        usage = usage_of(await db.fetch_all(STREAM_USAGE.format(marks=trace_marks), params))
        scores = await read_scores(db, TRACE_SCORES, workspace, traces)
    return item_stream.full_items(keys, rows, costs, usage, scores, truncate)
