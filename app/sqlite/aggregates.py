"""Experiments as the API shows them: the stored fields and the aggregates of their items'
traces, spans and scores (opik-reference/experiments.md §2.2), kept or computed by
summaries.py, for a whole page of experiments in one statement when all are kept."""

from collections.abc import Sequence
from typing import Any

from app.experiment_answers import Shown, experiment, score_names_of
from app.experiment_answers import shown as shown_
from app.experiment_payloads import Experiment, ScoreName
from app.records import batched
from app.sqlite import summaries as summaries_
from app.sqlite.connection import Database
from app.sqlite.summaries import Summaries
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
    FROM experiments AS x WHERE +x.workspace = ? AND x.id IN ({marks})  -- by id, not name
)
SELECT e.id, d.name, e.dataset_id, e.shown_project, p.name, e.name, e.metadata, e.tags,
       e.type, e.evaluation_method, e.optimization_id, e.created_at, e.last_updated_at,
       e.created_by, e.last_updated_by, e.status, e.experiment_scores, e.prompt_version,
       e.prompt_versions, e.dataset_version_id, s.summary
FROM e
LEFT JOIN datasets AS d ON d.id = e.dataset_id AND d.workspace = e.workspace
LEFT JOIN projects AS p ON p.id = e.shown_project AND p.workspace = e.workspace
LEFT JOIN experiment_summaries AS s ON s.experiment_id = e.id AND s.workspace = e.workspace
"""


# A kept summary's blob only changes with what it sums: the same blob shows the same way, so
# the pages read most (find's first, the UI's list) show it once. The answers only read them.
_SHOWN_KEPT: dict[bytes, Shown] = {}
_SHOWN_KEPT_AT_MOST = 4096


def _shown_kept(blob: bytes) -> Shown:
    shown = _SHOWN_KEPT.get(blob)
    if shown is None:
        if len(_SHOWN_KEPT) >= _SHOWN_KEPT_AT_MOST:
            _SHOWN_KEPT.clear()
        shown = _SHOWN_KEPT[blob] = shown_(summaries_.decode(blob))
    return shown


_KEYS_PER_QUERY = 5000  # twice in a statement, under SQLite's 32,766 parameters


async def experiments(
    db: Database, kept: Summaries, workspace: str, keys: Sequence[bytes]
) -> list[Experiment]:
    """The experiments of `keys` in the workspace, in the order of `keys`; missing ones are
    left out. Their aggregates are the kept summaries; those missing are computed here, on
    the reader, and `kept` keeps them for the next read."""
    found: list[Experiment] = []
    for chunk in batched(keys, _KEYS_PER_QUERY):
        found += await _experiments(db, kept, workspace, chunk)
    return found


async def _experiments(
    db: Database, kept: Summaries, workspace: str, keys: Sequence[bytes]
) -> list[Experiment]:
    rows = await db.fetch_all(EXPERIMENT_ROWS.format(marks=marks(len(keys))), (workspace, *keys))
    shown = {row[0]: _shown_kept(row[-1]) for row in rows if row[-1] is not None}
    missing = [row[0] for row in rows if row[-1] is None]
    if missing:
        computed = await summaries_.compute(db.fetch_all, workspace, missing)
        shown |= {key: shown_(a) for key, a in computed.items()}
        kept.keep(workspace, missing)
    found = {row[0]: experiment(row, shown[row[0]]) for row in rows}
    return [found[key] for key in keys if key in found]


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
    traces = await db.fetch_all(sql, params)
    experiments = []
    if keys:
        sql = EXPERIMENT_SCORE_NAMES.format(marks=marks(len(keys)))
        experiments = await db.fetch_all(sql, (workspace, *keys))
    return score_names_of(traces, experiments)
