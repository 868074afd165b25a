"""Experiments as the API shows them: the stored fields and the aggregates of their items'
traces, spans and scores (opik-reference/experiments.md §2.2), computed now, for a whole page
of experiments in a few grouped statements."""

from collections.abc import Callable, Sequence
from typing import Any

from msgspec import UNSET

from app import clock, ids
from app.experiment_payloads import Duration, Experiment, ScoreAverage, ScoreName
from app.records import batched
from app.sqlite.connection import Database
from app.sqlite.experiments import id_or_unset, raw_or_unset
from app.sqlite.tables import marks

# An experiment's project is its own, else the project of one of its items (or of their
# traces), as Opik's groupUniqArray(...)[1]. Each join stays inside the workspace.
EXPERIMENT_ROWS = """
WITH e AS (
    SELECT x.*, coalesce(x.project_id, (
        SELECT coalesce(i.project_id, t.project_id) FROM experiment_items AS i
        LEFT JOIN traces AS t ON t.id = i.trace_id AND t.workspace = i.workspace
        WHERE i.workspace = x.workspace AND i.experiment_id = x.id
          AND coalesce(i.project_id, t.project_id) IS NOT NULL
        LIMIT 1)) AS shown_project
    FROM experiments AS x WHERE x.workspace = ? AND x.id IN ({marks})
)
SELECT e.id, d.name, e.dataset_id, e.shown_project, p.name, e.name, e.metadata, e.tags,
       e.type, e.evaluation_method, e.optimization_id, e.created_at, e.last_updated_at,
       e.created_by, e.last_updated_by, e.status, e.experiment_scores, e.prompt_version,
       e.prompt_versions, e.dataset_version_id
FROM e
LEFT JOIN datasets AS d ON d.id = e.dataset_id AND d.workspace = e.workspace
LEFT JOIN projects AS p ON p.id = e.shown_project AND p.workspace = e.workspace
"""
# The items of the page's experiments, for the statements below: parameters workspace, ids.
_ITEMS = "experiment_items AS i WHERE i.workspace = ? AND i.experiment_id IN ({marks})"
# Traces that no longer exist still count (Opik's count(DISTINCT trace_id)).
ITEM_COUNTS = f"""
SELECT i.experiment_id, count(DISTINCT i.trace_id), count(DISTINCT i.dataset_item_id)
FROM {_ITEMS} GROUP BY i.experiment_id
"""
# One row per item: a trace two items share counts twice, as in Opik. Only stored traces.
_ITEM_TRACES = """experiment_items AS i
JOIN traces AS t ON t.id = i.trace_id AND t.workspace = i.workspace
WHERE i.workspace = ? AND i.experiment_id IN ({marks})"""
# Per item and name, the trace's score is its authors' average; the experiment's is the
# average of those over its items (experiments.md §2.2, feedback_scores steps 1-3).
SCORE_AVERAGES = """
SELECT experiment_id, name, avg(value) FROM (
    SELECT i.experiment_id AS experiment_id, f.name AS name, avg(f.value) AS value
    FROM experiment_items AS i
    JOIN traces AS t ON t.id = i.trace_id AND t.workspace = i.workspace
    JOIN feedback_scores AS f ON f.trace_id = i.trace_id AND f.workspace = i.workspace
    WHERE i.workspace = ? AND i.experiment_id IN ({marks})
    GROUP BY i.id, f.name
)
GROUP BY experiment_id, name ORDER BY experiment_id, name
"""


def _bounds(percent: int) -> str:
    # Linear interpolation at index q * (n - 1) of the sorted values (ClickHouse's quantiles
    # for fewer than 8192 values): the values at the index's floor and the next, and the
    # index's fraction, in integer arithmetic so that a whole index is exact.
    low = f"({percent} * last / 100)"
    return (
        f"max(CASE WHEN k = {low} THEN ms END) AS lo{percent}, "
        f"max(CASE WHEN k = {low} + 1 THEN ms END) AS hi{percent}, "
        f"(({percent} * last) % 100 / 100.0) AS f{percent}"
    )


def _percentile(percent: int) -> str:
    return f"lo{percent} + (coalesce(hi{percent}, lo{percent}) - lo{percent}) * f{percent}"


# Opik's duration: dateDiff('microsecond', start, end) / 1000.0, of traces that have ended.
DURATIONS = f"""
WITH d AS (
    SELECT i.experiment_id AS e, (t.end_time / 1000 - t.start_time / 1000) / 1000.0 AS ms
    FROM {_ITEM_TRACES} AND t.end_time IS NOT NULL
), r AS (
    SELECT e, ms, row_number() OVER (PARTITION BY e ORDER BY ms) - 1 AS k,
           count(*) OVER (PARTITION BY e) - 1 AS last
    FROM d
), b AS (
    SELECT e, {_bounds(50)}, {_bounds(90)}, {_bounds(99)} FROM r GROUP BY e
)
SELECT e, {_percentile(50)}, {_percentile(90)}, {_percentile(99)} FROM b
"""
# Per item, its trace's spans' summed cost; the average counts an item without spans as 0.
_TRACES_OF_ITEMS = (
    "SELECT trace_id FROM experiment_items WHERE workspace = ? AND experiment_id IN ({marks})"
)
COSTS = f"""
WITH c AS (
    SELECT trace_id, total(total_estimated_cost) AS cost FROM spans
    WHERE workspace = ? AND total_estimated_cost IS NOT NULL
      AND trace_id IN ({_TRACES_OF_ITEMS})
    GROUP BY trace_id
)
SELECT i.experiment_id, total(c.cost), avg(coalesce(c.cost, 0))
FROM experiment_items AS i LEFT JOIN c ON c.trace_id = i.trace_id
WHERE i.workspace = ? AND i.experiment_id IN ({{marks}})
GROUP BY i.experiment_id
"""
# Per key, the mean over the items whose trace's spans have that key (Opik's avgMap).
USAGE = f"""
WITH u AS (
    SELECT s.trace_id, j.key AS key, total(j.value) AS value
    FROM spans AS s, json_each(s.usage) AS j
    WHERE s.workspace = ? AND s.usage IS NOT NULL AND s.trace_id IN ({_TRACES_OF_ITEMS})
    GROUP BY s.trace_id, j.key
)
SELECT i.experiment_id, u.key, avg(u.value)
FROM experiment_items AS i JOIN u ON u.trace_id = i.trace_id
WHERE i.workspace = ? AND i.experiment_id IN ({{marks}})
GROUP BY i.experiment_id, u.key ORDER BY i.experiment_id, u.key
"""


def number(value: float) -> float:
    """A JSON number in its shortest form: 0 rather than 0.0 (contract, "Numbers are plain
    JSON numbers")."""
    if value.is_integer() and abs(value) < 2**53:
        return int(value)
    return value


def _positive(value: float | None) -> Any:
    return UNSET if value is None or value <= 0 else number(value)


def _tags(text: str | None) -> Any:
    return UNSET if text is None or text.strip() == "[]" else raw_or_unset(text)


# EXPERIMENT_ROWS's columns, by Experiment's field, and how each shows in the answer.
_STORED = [
    "id",
    "dataset_name",
    "dataset_id",
    "project_id",
    "project_name",
    "name",
    "metadata",
    "tags",
    "type",
    "evaluation_method",
    "optimization_id",
    "created_at",
    "last_updated_at",
    "created_by",
    "last_updated_by",
    "status",
    "experiment_scores",
    "prompt_version",
    "prompt_versions",
    "dataset_version_id",
]
_SHOWN: tuple[Callable[[Any], Any], ...] = (
    ids.to_str,
    lambda name: UNSET if name is None else name,
    ids.to_str,
    id_or_unset,
    lambda name: UNSET if name is None else name,
    str,
    raw_or_unset,
    _tags,
    str,
    str,
    id_or_unset,
    clock.format_instant,
    clock.format_instant,
    str,
    str,
    lambda status: status or "completed",  # Opik's default, and its reading of unknown ones
    lambda text: UNSET if text is None or text.strip() == "[]" else raw_or_unset(text),
    raw_or_unset,
    raw_or_unset,
    id_or_unset,
)


_KEYS_PER_QUERY = 5000  # twice in a statement, under SQLite's 32,766 parameters


async def experiments(db: Database, workspace: str, keys: Sequence[bytes]) -> list[Experiment]:
    """The experiments of `keys` in the workspace, in the order of `keys`; missing ones are
    left out."""
    found: list[Experiment] = []
    for chunk in batched(keys, _KEYS_PER_QUERY):
        found += await _experiments(db, workspace, chunk)
    return found


async def _experiments(db: Database, workspace: str, keys: Sequence[bytes]) -> list[Experiment]:
    m = marks(len(keys))
    one = (workspace, *keys)
    rows = await db.fetch_all(EXPERIMENT_ROWS.format(marks=m), one)
    counts = {e: (traces, items) for e, traces, items in await _all(db, ITEM_COUNTS, m, one)}
    scores: dict[bytes, list[ScoreAverage]] = {}
    for e, name, value in await _all(db, SCORE_AVERAGES, m, one):
        scores.setdefault(e, []).append(ScoreAverage(name, number(value)))
    durations = {
        e: Duration(number(p50), number(p90), number(p99))
        for e, p50, p90, p99 in await _all(db, DURATIONS, m, one)
    }
    costs = {e: (s, a) for e, s, a in await _all(db, COSTS, m, (workspace, *one, *one))}
    usage: dict[bytes, dict[str, float]] = {}
    for e, key, value in await _all(db, USAGE, m, (workspace, *one, *one)):
        usage.setdefault(e, {})[key] = number(value)
    found: dict[bytes, Experiment] = {}
    for row in rows:
        shown = [show(value) for show, value in zip(_SHOWN, row, strict=True)]
        key = row[0]
        traces, items = counts.get(key, (0, 0))
        cost, cost_avg = costs.get(key, (None, None))
        found[key] = Experiment(
            **dict(zip(_STORED, shown, strict=True)),
            feedback_scores=scores.get(key, UNSET),
            trace_count=traces,
            dataset_item_count=items,
            duration=durations.get(key, UNSET),
            total_estimated_cost=_positive(cost),
            total_estimated_cost_avg=_positive(cost_avg),
            usage=usage.get(key, UNSET),
        )
    return [found[key] for key in keys if key in found]


async def _all(db: Database, sql: str, m: str, params: Sequence[Any]) -> list[Any]:
    return await db.fetch_all(sql.format(marks=m), params)


# --- Score names ---------------------------------------------------------------------------

TRACE_SCORE_NAMES = """
SELECT DISTINCT f.name FROM feedback_scores AS f
JOIN traces AS t ON t.id = f.trace_id AND t.workspace = f.workspace
WHERE f.workspace = ? {project} {experiments}
ORDER BY f.name
"""
_OF_EXPERIMENTS = """AND f.trace_id IN (
    SELECT trace_id FROM experiment_items WHERE workspace = ? AND experiment_id IN ({marks}))"""
EXPERIMENT_SCORE_NAMES = """
SELECT DISTINCT json_extract(j.value, '$.name') AS name FROM experiments AS e,
    json_each(CASE WHEN json_valid(e.experiment_scores) THEN e.experiment_scores ELSE '[]' END)
    AS j
WHERE e.workspace = ? AND e.id IN ({marks}) AND json_extract(j.value, '$.name') IS NOT NULL
ORDER BY 1
"""


async def score_names(
    db: Database, workspace: str, keys: Sequence[bytes] | None, project: bytes | None
) -> list[ScoreName]:
    params: list[Any] = [workspace]
    project_sql = experiments_sql = ""
    if project is not None:
        project_sql = "AND t.project_id = ?"
        params.append(project)
    if keys is not None:
        experiments_sql = _OF_EXPERIMENTS.format(marks=marks(len(keys)))
        params += [workspace, *keys]
    sql = TRACE_SCORE_NAMES.format(project=project_sql, experiments=experiments_sql)
    names = [ScoreName(row[0], "feedback_scores") for row in await db.fetch_all(sql, params)]
    if keys:
        sql = EXPERIMENT_SCORE_NAMES.format(marks=marks(len(keys)))
        rows = await db.fetch_all(sql, (workspace, *keys))
        names += [ScoreName(str(row[0]), "experiment_scores") for row in rows]
    return names
