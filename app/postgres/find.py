"""Find: the ids of the experiments a query names, filtered, sorted and paged as
app/sqlite/experiments.py's find_ids does; and the distinct score names. Every aggregate a
filter or sort reads is computed here when read (the SQLite engine reads its kept summaries,
which hold the same figures)."""

from collections.abc import Sequence
from typing import Any

from app.experiment_answers import score_names_of
from app.experiment_payloads import ScoreName
from app.postgres import filters
from app.postgres.aggregates import percentile
from app.postgres.connection import Database
from app.records import ExperimentQuery, name_key


class Params:
    """The parameters of one statement, each bound as it is written ($1, $2, ...)."""

    def __init__(self) -> None:
        self.values: list[Any] = []

    def __call__(self, value: Any, cast: str) -> str:
        self.values.append(value)
        return f"${len(self.values)}::{cast}"


# An experiment is in a project when it is its own, or that of one of its items (or their
# traces), as Opik's has(combined_project_ids, :project_id).
_IN_PROJECT = """(e.project_id = {p} OR EXISTS (
    SELECT 1 FROM experiment_items AS i
    LEFT JOIN traces AS t ON t.id = i.trace_id AND t.workspace = i.workspace
    WHERE i.workspace = e.workspace AND i.experiment_id = e.id
      AND coalesce(i.project_id, t.project_id) = {p}))"""
# A prompt's id: the prompt of the experiment's prompt version or of one of its versions.
_HAS_PROMPT = f"""EXISTS (
    SELECT 1 FROM json_array_elements({filters.json_array("e.prompt_versions")}) AS j
    JOIN prompt_versions AS v ON v.workspace = e.workspace
     AND encode(v.id, 'hex') = lower(replace(j.value ->> 'id', '-', ''))
    WHERE v.prompt_id = {{p}}
) OR EXISTS (
    SELECT 1 FROM prompt_versions AS v WHERE v.workspace = e.workspace AND v.prompt_id = {{p}}
     AND encode(v.id, 'hex') = lower(replace(e.prompt_version::json ->> 'id', '-', ''))
)"""
# Opik's project_deleted: no item in a stored project, or an item in none (its own project,
# else its trace's).
_ITEM_PROJECTS = """SELECT 1 FROM experiment_items AS i
    LEFT JOIN traces AS t ON t.id = i.trace_id AND t.workspace = i.workspace
    LEFT JOIN projects AS p ON p.id = coalesce(i.project_id, t.project_id)
     AND p.workspace = i.workspace
    WHERE i.workspace = e.workspace AND i.experiment_id = e.id AND p.id IS"""
_PROJECT_DELETED = f"(NOT EXISTS ({_ITEM_PROJECTS} NOT NULL) OR EXISTS ({_ITEM_PROJECTS} NULL))"
_ITEMS_OF_E = "experiment_items AS i WHERE i.workspace = e.workspace AND i.experiment_id = e.id"
_COST_OF_E = """(SELECT coalesce(sum(s.total_estimated_cost ORDER BY i.id, s.id), 0)
    FROM experiment_items AS i
    JOIN spans AS s ON s.trace_id = i.trace_id AND s.workspace = i.workspace
    WHERE i.workspace = e.workspace AND i.experiment_id = e.id)"""


def _duration_of_e(percent: int) -> str:
    # As aggregates.DURATIONS, for the one experiment `e`; no ended trace sorts as 0.
    low = f"({percent} * last / 100)"
    return f"""coalesce((SELECT {percentile(percent)} FROM (
        SELECT max(CASE WHEN k = {low} THEN ms END) AS lo{percent},
               max(CASE WHEN k = {low} + 1 THEN ms END) AS hi{percent},
               max(({percent} * last) % 100 / 100.0::float8) AS f{percent}
        FROM (SELECT ms, row_number() OVER (ORDER BY ms) - 1 AS k, count(*) OVER () - 1 AS last
              FROM (SELECT (t.end_time / 1000 - t.start_time / 1000) / 1000.0::float8 AS ms
                    FROM {filters.ITEM_TRACES_OF_E} AND t.end_time IS NOT NULL) AS d) AS r
        HAVING count(*) > 0) AS b), 0)"""


# The sort key of each sortable field. A missing score sorts as 0.
SORT_KEYS = {
    "id": "e.id",
    "name": "e.name",
    "created_at": "e.created_at",
    "last_updated_at": "e.last_updated_at",
    "created_by": "e.created_by",
    "last_updated_by": "e.last_updated_by",
    "tags": "coalesce(e.tags, '[]')",
    "trace_count": f"(SELECT count(DISTINCT i.trace_id) FROM {_ITEMS_OF_E})",
    "total_estimated_cost": _COST_OF_E,
    "total_estimated_cost_avg": (
        f"({_COST_OF_E} / greatest(1, (SELECT count(*) FROM {_ITEMS_OF_E})))"
    ),
} | {f"duration.p{p}": _duration_of_e(p) for p in (50, 90, 99)}

FIND_IDS = "SELECT e.id FROM experiments AS e WHERE {where} ORDER BY {order} LIMIT {limit}"
COUNT_FOUND = "SELECT count(*) FROM experiments AS e WHERE {where}"
FIND_PROJECT_ID = "SELECT id FROM projects WHERE workspace = $1 AND name_key = $2"


def _where(workspace: str, q: ExperimentQuery, project: bytes | None, bind: Params) -> str:
    conditions = [f"e.workspace = {bind(workspace, 'text')}"]
    if q.name is not None:
        # A part of the name, as Opik's ilike '%name%' (without its wildcards).
        conditions.append(f"strpos(lower(e.name), {filters.fold(bind, q.name)}) > 0")
    if q.before is not None:
        conditions.append(f"e.id < {bind(q.before, 'bytea')}")
    if project is not None:
        conditions.append(_IN_PROJECT.format(p=bind(project, "bytea")))
    for column, value in (("dataset_id", q.dataset_id), ("optimization_id", q.optimization_id)):
        if value is not None:
            conditions.append(f"e.{column} = {bind(value, 'bytea')}")
    if q.prompt_id is not None:
        conditions.append(f"({_HAS_PROMPT.format(p=bind(q.prompt_id, 'bytea'))})")
    if q.types is not None:
        conditions.append(f"e.type = ANY({bind(list(q.types), 'text[]')})")
    if q.ids is not None:
        conditions.append(f"e.id = ANY({bind(list(q.ids), 'bytea[]')})")
    for f in q.filters:
        conditions.append(f"({filters.condition(f, bind)})")
    if q.project_deleted:
        conditions.append(_PROJECT_DELETED)
    if q.dataset_deleted:
        conditions.append(
            "NOT EXISTS (SELECT 1 FROM datasets AS d"
            " WHERE d.id = e.dataset_id AND d.workspace = e.workspace)"
        )
    return " AND ".join(conditions)


def _order(q: ExperimentQuery, bind: Params) -> str:
    if q.sort is None:
        return "e.id DESC"
    if q.sort in SORT_KEYS:  # duration.p50 and the plain fields
        key = SORT_KEYS[q.sort]
    else:
        field, _, name = q.sort.partition(".")
        if field == "feedback_scores":
            named = f"f.name = {bind(name, 'text')}"
            key = f"coalesce({filters.score_average(named)}, 0)"
        else:
            assert field == "experiment_scores", q.sort
            key = f"coalesce({filters.experiment_score(bind, name, folded=False)}, 0)"
    # SQLite puts NULLs first going up; no key here is NULL, but the order stays SQLite's.
    direction = "DESC NULLS LAST" if q.descending else "ASC NULLS FIRST"
    return f"{key} {direction}, e.id DESC"


async def find_ids(
    conn: Any, workspace: str, q: ExperimentQuery, count: bool = False
) -> tuple[list[bytes], int]:
    """The ids of the experiments `q` names, in its order, and (when `count`) how many match
    in all; none when it names a project that does not exist. `conn`: a connection in a
    transaction."""
    project = q.project_id
    if q.project_name is not None:
        found = await conn.fetchrow(FIND_PROJECT_ID, workspace, name_key(q.project_name))
        if found is None:
            return [], 0
        project = found[0]
    if any(f.field == "metadata" for f in q.filters):
        # float8's text in printf's %.15g, as filters.number_text reads it: this transaction's.
        await conn.execute("SET LOCAL extra_float_digits = 0")
    bind = Params()
    where = _where(workspace, q, project, bind)
    counted = list(bind.values)
    order = _order(q, bind)
    limit = f"{bind(q.limit, 'bigint')} OFFSET {bind(q.offset, 'bigint')}"
    rows = await conn.fetch(FIND_IDS.format(where=where, order=order, limit=limit), *bind.values)
    total = 0
    if count:
        total = (await conn.fetchrow(COUNT_FOUND.format(where=where), *counted))[0]
    return [row[0] for row in rows], total


TRACE_SCORE_NAMES = """
SELECT DISTINCT f.name FROM feedback_scores AS f
JOIN traces AS t ON t.id = f.trace_id AND t.workspace = f.workspace
WHERE f.workspace = $1 {project} {experiments}
ORDER BY f.name
"""
_OF_EXPERIMENTS = """AND f.trace_id IN (
    SELECT trace_id FROM experiment_items WHERE workspace = $1
    AND experiment_id = ANY({keys}::bytea[]))"""
EXPERIMENT_SCORE_NAMES = f"""
SELECT DISTINCT (j.value ->> 'name') COLLATE "C" AS name FROM experiments AS e,
    json_array_elements({filters.json_array("e.experiment_scores")}) AS j
WHERE e.workspace = $1 AND e.id = ANY($2::bytea[]) AND j.value ->> 'name' IS NOT NULL
ORDER BY 1
"""


async def score_names(
    db: Database, workspace: str, keys: Sequence[bytes] | None, project: bytes | None
) -> list[ScoreName]:
    params: list[Any] = [workspace]
    project_sql = experiments_sql = ""
    if project is not None:
        params.append(project)
        project_sql = f"AND t.project_id = ${len(params)}"
    if keys is not None:
        params.append(list(keys))
        experiments_sql = _OF_EXPERIMENTS.format(keys=f"${len(params)}")
    sql = TRACE_SCORE_NAMES.format(project=project_sql, experiments=experiments_sql)
    traces = await db.fetch_all(sql, *params)
    experiments = await db.fetch_all(EXPERIMENT_SCORE_NAMES, workspace, list(keys)) if keys else []
    return score_names_of(traces, experiments)
