"""Experiments as the API shows them: the stored fields and the aggregates of their items'
traces, spans and scores (opik-reference/experiments.md §2.2), computed when read for a whole
page at once, by the statements of app/sqlite/summaries.py in PostgreSQL's words. Nothing is
kept in experiment_summaries yet: its triggers keep it empty when what a summary is made from
changes, so a later release can keep summaries here as the SQLite engine does."""

from collections.abc import Sequence
from typing import Any

from app import histograms as histograms_
from app.experiment_answers import Aggregates, aggregates_of, experiment, shown
from app.experiment_payloads import Experiment
from app.histograms import Histograms
from app.postgres.connection import Database
from app.postgres.filters import json_number

# An experiment's project is its own, else the project of one of its items (or of their
# traces), the first by item id, as SQLite's walk of experiment_items_by_experiment finds it.
EXPERIMENT_ROWS = """
WITH e AS (
    SELECT x.*, coalesce(x.project_id, (
        SELECT coalesce(i.project_id, t.project_id) FROM experiment_items AS i
        LEFT JOIN traces AS t ON t.id = i.trace_id AND t.workspace = i.workspace
        WHERE i.workspace = x.workspace AND i.experiment_id = x.id
          AND coalesce(i.project_id, t.project_id) IS NOT NULL
        ORDER BY i.id LIMIT 1)) AS shown_project
    FROM experiments AS x WHERE x.workspace = $1 AND x.id = ANY($2::bytea[])
)
SELECT e.id, d.name, e.dataset_id, e.shown_project, p.name, e.name, e.metadata, e.tags,
       e.type, e.evaluation_method, e.optimization_id, e.created_at, e.last_updated_at,
       e.created_by, e.last_updated_by, e.status, e.experiment_scores, e.prompt_version,
       e.prompt_versions, e.dataset_version_id
FROM e
LEFT JOIN datasets AS d ON d.id = e.dataset_id AND d.workspace = e.workspace
LEFT JOIN projects AS p ON p.id = e.shown_project AND p.workspace = e.workspace
"""

# The items of the experiments: parameters $1 workspace, $2 experiment ids.
_OF_KEYS = "i.workspace = $1 AND i.experiment_id = ANY($2::bytea[])"
# Traces that no longer exist still count (Opik's count(DISTINCT trace_id)).
ITEM_COUNTS = f"""
SELECT i.experiment_id, count(DISTINCT i.trace_id), count(DISTINCT i.dataset_item_id)
FROM experiment_items AS i WHERE {_OF_KEYS} GROUP BY i.experiment_id
"""
_JOIN_TRACES = """experiment_items AS i
JOIN traces AS t ON t.id = i.trace_id AND t.workspace = i.workspace"""
_JOIN_SCORES = "JOIN feedback_scores AS f ON f.trace_id = i.trace_id AND f.workspace = i.workspace"
_ITEM_TRACES = f"{_JOIN_TRACES}\nWHERE {_OF_KEYS}"
# Per item and name, the trace's score is its authors' average; the experiment's is the
# average of those over its items. Floats are added in SQLite's order (by key: authors, items,
# spans), where the order changes the last bit of a sum.
SCORE_AVERAGES = f"""
SELECT experiment_id, name, avg(value ORDER BY item) FROM (
    SELECT i.experiment_id AS experiment_id, i.id AS item, f.name AS name,
           avg(f.value ORDER BY f.author) AS value
    FROM {_JOIN_TRACES}
    {_JOIN_SCORES}
    WHERE {_OF_KEYS}
    GROUP BY i.experiment_id, i.id, f.name
) AS s
GROUP BY experiment_id, name ORDER BY experiment_id, name
"""


def _bounds(percent: int) -> str:
    # Linear interpolation at index q * (n - 1) of the sorted values, in integer arithmetic
    # so that a whole index is exact (summaries.py's _bounds).
    low = f"({percent} * last / 100)"
    return (
        f"max(CASE WHEN k = {low} THEN ms END) AS lo{percent}, "
        f"max(CASE WHEN k = {low} + 1 THEN ms END) AS hi{percent}, "
        f"max(({percent} * last) % 100 / 100.0::float8) AS f{percent}"
    )


def percentile(percent: int) -> str:
    return f"lo{percent} + (coalesce(hi{percent}, lo{percent}) - lo{percent}) * f{percent}"


# Opik's duration: dateDiff('microsecond', start, end) / 1000.0, of traces that have ended.
DURATION_MS = "(t.end_time / 1000 - t.start_time / 1000) / 1000.0::float8"
DURATIONS = f"""
WITH d AS (
    SELECT i.experiment_id AS e, {DURATION_MS} AS ms
    FROM {_ITEM_TRACES} AND t.end_time IS NOT NULL
), r AS (
    SELECT e, ms, row_number() OVER (PARTITION BY e ORDER BY ms) - 1 AS k,
           count(*) OVER (PARTITION BY e) - 1 AS last
    FROM d
), b AS (
    SELECT e, {_bounds(50)}, {_bounds(90)}, {_bounds(99)} FROM r GROUP BY e
)
SELECT e, {percentile(50)}, {percentile(90)}, {percentile(99)} FROM b
"""
# Per item, its trace's spans' summed cost; the average counts an item without spans as 0.
_TRACES_OF_ITEMS = (
    "SELECT trace_id FROM experiment_items WHERE workspace = $1 "
    "AND experiment_id = ANY($2::bytea[])"
)
COSTS = f"""
WITH c AS (
    SELECT trace_id, sum(total_estimated_cost ORDER BY id) AS cost FROM spans
    WHERE workspace = $1 AND total_estimated_cost IS NOT NULL
      AND trace_id IN ({_TRACES_OF_ITEMS})
    GROUP BY trace_id
)
SELECT i.experiment_id, coalesce(sum(c.cost ORDER BY i.id), 0),
       avg(coalesce(c.cost, 0) ORDER BY i.id)
FROM experiment_items AS i LEFT JOIN c ON c.trace_id = i.trace_id
WHERE {_OF_KEYS}
GROUP BY i.experiment_id
"""
# A span's usage as a JSON object, '{}' when it is none (json_each refuses any other value).
USAGE_OBJECT = (
    "CASE WHEN json_typeof(s.usage::json) = 'object' THEN s.usage::json ELSE '{}'::json END"
)
# A usage value as SQLite's total() adds it: a number as itself, anything else as 0.
_USAGE_NUMBER = json_number("j.value #>> '{}'")
USAGE_VALUE = f"CASE WHEN json_typeof(j.value) = 'number' THEN {_USAGE_NUMBER} ELSE 0 END"
# Per key, the mean over the items whose trace's spans have that key (Opik's avgMap), in
# byte order of the keys (json_each's keys have the database's collation, not "C").
USAGE = f"""
WITH u AS (
    SELECT s.trace_id, j.key AS key, sum({USAGE_VALUE} ORDER BY s.id) AS value
    FROM spans AS s, json_each({USAGE_OBJECT}) AS j
    WHERE s.workspace = $1 AND s.usage IS NOT NULL AND s.trace_id IN ({_TRACES_OF_ITEMS})
    GROUP BY s.trace_id, j.key
)
SELECT i.experiment_id, u.key, avg(u.value ORDER BY i.id)
FROM experiment_items AS i JOIN u ON u.trace_id = i.trace_id
WHERE {_OF_KEYS}
GROUP BY i.experiment_id, u.key ORDER BY i.experiment_id, u.key COLLATE "C"
"""
# The values the histograms count: per item and name its authors' average, of stored traces
# as above; and the durations of the traces that have ended.
SCORE_VALUES = f"""
SELECT i.experiment_id, f.name, avg(f.value ORDER BY f.author)
FROM {_JOIN_TRACES}
{_JOIN_SCORES}
WHERE {_OF_KEYS}
GROUP BY i.experiment_id, i.id, f.name
"""
DURATION_VALUES = f"""
SELECT i.experiment_id, {DURATION_MS} FROM {_ITEM_TRACES} AND t.end_time IS NOT NULL
"""


async def compute(conn: Any, workspace: str, keys: Sequence[bytes]) -> dict[bytes, Aggregates]:
    """The aggregates of each of `keys`, from what `conn` (the pool, or a connection) reads
    now; an experiment without items has none."""
    keys = list(keys)
    return aggregates_of(
        keys,
        *[await conn.fetch(sql, workspace, keys) for sql in (ITEM_COUNTS, SCORE_AVERAGES)],
        *[await conn.fetch(sql, workspace, keys) for sql in (DURATIONS, COSTS, USAGE)],
    )


async def experiments(conn: Any, workspace: str, keys: Sequence[bytes]) -> list[Experiment]:
    """The experiments of `keys` in the workspace, in the order of `keys`, with their
    aggregates; missing ones are left out. `conn` should hold one snapshot (REPEATABLE READ)."""
    rows = await conn.fetch(EXPERIMENT_ROWS, workspace, list(keys))
    aggregates = await compute(conn, workspace, [row[0] for row in rows])
    found = {row[0]: experiment(row, shown(aggregates[row[0]])) for row in rows}
    return [found[key] for key in keys if key in found]


async def get_experiment(db: Database, workspace: str, key: bytes) -> Experiment | None:
    """The experiment with its aggregates, all read in one snapshot."""
    async with db.pool.acquire() as conn, conn.transaction(isolation="repeatable_read"):
        found = await experiments(conn, workspace, [key])
    return found[0] if found else None


async def histograms(
    db: Database, workspace: str, keys: Sequence[bytes]
) -> dict[bytes, Histograms]:
    """Each experiment's histograms of its feedback scores and its traces' durations."""
    keys = list(keys)
    async with db.pool.acquire() as conn, conn.transaction(isolation="repeatable_read"):
        scores = await conn.fetch(SCORE_VALUES, workspace, keys)
        durations = await conn.fetch(DURATION_VALUES, workspace, keys)
    return histograms_.of_rows(keys, scores, durations)
