"""Experiments: create, find, update, finish, delete with their items (what they show,
with their aggregates, is app/sqlite/aggregates.py)."""

from collections.abc import Sequence
from typing import Any

import msgspec

from app import clock
from app.experiment_writes import changed_columns, changed_tags, linked
from app.records import (
    Conflict,
    ExperimentChange,
    ExperimentQuery,
    ExperimentRecord,
    name_key,
)
from app.sqlite import filters
from app.sqlite.connection import Database
from app.sqlite.scores import trace_score
from app.sqlite.tables import EXPERIMENTS, PROJECTS, marks
from app.sqlite.write import Write

FIND_EXPERIMENT = "SELECT workspace, dataset_id FROM experiments WHERE id = ?"
INSERT_EXPERIMENT = EXPERIMENTS.insert()
DELETE_EXPERIMENT_ITEMS = "DELETE FROM experiment_items WHERE workspace = ? AND experiment_id = ?"
DELETE_EXPERIMENT = "DELETE FROM experiments WHERE workspace = ? AND id = ?"


async def insert_experiment(
    w: Write, record: ExperimentRecord, dataset_id: bytes, project_id: bytes | None
) -> None:
    values = msgspec.structs.asdict(record)
    del values["dataset_name"], values["project_name"]
    values.update(dataset_id=dataset_id, project_id=project_id, **w.stamp)
    values["prompt_version"] = await _linked(w, record.prompt_version)
    values["prompt_versions"] = await _linked(w, record.prompt_versions)
    await w.conn.execute(INSERT_EXPERIMENT, values)


# Opik's PromptVersionLink, read back with the version's commit and its prompt's id and name.
LINKED_VERSION = """
SELECT v.commit_hash, v.prompt_id, p.name FROM prompt_versions AS v
JOIN prompts AS p ON p.id = v.prompt_id AND p.workspace = v.workspace
WHERE v.workspace = ? AND v.id = ?
"""


async def _linked(w: Write, text: str | None) -> str | None:
    """The links of `text`, completed from the versions stored in this workspace."""

    async def versions(key: bytes) -> Any:
        return await w.conn.execute_fetchall(LINKED_VERSION, (w.workspace, key))

    return await linked(text, versions)


async def project_of(w: Write, project_id: bytes | None, project_name: str | None) -> bytes | None:
    """The experiment's project: the one with its id (Conflict when another workspace holds
    it), else the one of its name, made when missing; None when neither is given."""
    if project_id is not None:
        await w.refuse_foreign(PROJECTS, [project_id], "Project")
        return project_id
    if project_name:
        return (await w.named("projects", [project_name]))[name_key(project_name)]
    return None


async def create_experiment(
    db: Database, workspace: str, user: str, record: ExperimentRecord
) -> None:
    async with db.transaction() as conn:
        w = Write(conn, workspace, user)
        if await conn.execute_fetchall(FIND_EXPERIMENT, (record.id,)):
            raise Conflict.experiment_exists(record.id)
        datasets = await w.named("datasets", [record.dataset_name])
        project_id = await project_of(w, record.project_id, record.project_name)
        await insert_experiment(w, record, datasets[name_key(record.dataset_name)], project_id)


async def delete_experiments(db: Database, workspace: str, keys: Sequence[bytes]) -> None:
    async with db.transaction() as conn:
        rows = [(workspace, key) for key in keys]
        await conn.executemany(DELETE_EXPERIMENT_ITEMS, rows)
        await conn.executemany(DELETE_EXPERIMENT, rows)


# --- Find and stream -----------------------------------------------------------------------

# An experiment is in a project when it is its own, or that of one of its items (or their
# traces), as Opik's has(combined_project_ids, :project_id).
_IN_PROJECT = """(e.project_id = ? OR EXISTS (
    SELECT 1 FROM experiment_items AS i
    LEFT JOIN traces AS t ON t.id = i.trace_id AND t.workspace = i.workspace
    WHERE i.workspace = e.workspace AND i.experiment_id = e.id
      AND coalesce(i.project_id, t.project_id) = ?))"""
# A prompt's id: the prompt of the experiment's prompt version or of one of its versions.
_HAS_PROMPT = """EXISTS (
    SELECT 1 FROM json_each(CASE WHEN json_valid(e.prompt_versions) THEN e.prompt_versions
                            ELSE '[]' END) AS j
    JOIN prompt_versions AS v ON v.workspace = e.workspace
     AND lower(hex(v.id)) = lower(replace(json_extract(j.value, '$.id'), '-', ''))
    WHERE v.prompt_id = ?
) OR EXISTS (
    SELECT 1 FROM prompt_versions AS v WHERE v.workspace = e.workspace AND v.prompt_id = ?
     AND json_valid(e.prompt_version)
     AND lower(hex(v.id)) = lower(replace(json_extract(e.prompt_version, '$.id'), '-', ''))
)"""
# Opik's project_deleted, has(project_ids, '') OR empty(project_ids) over the projects of the
# experiment's items: no item in a stored project, or an item in none (its own project, else
# its trace's).
_ITEM_PROJECTS = """SELECT 1 FROM experiment_items AS i
    LEFT JOIN traces AS t ON t.id = i.trace_id AND t.workspace = i.workspace
    LEFT JOIN projects AS p ON p.id = coalesce(i.project_id, t.project_id)
     AND p.workspace = i.workspace
    WHERE i.workspace = e.workspace AND i.experiment_id = e.id AND p.id IS"""
_PROJECT_DELETED = f"(NOT EXISTS ({_ITEM_PROJECTS} NOT NULL) OR EXISTS ({_ITEM_PROJECTS} NULL))"
_ITEMS_OF_E = "experiment_items AS i WHERE i.workspace = e.workspace AND i.experiment_id = e.id"
_COST_OF_E = f"""(SELECT total(s.total_estimated_cost) FROM {
    _ITEMS_OF_E.replace(
        " WHERE",
        '''
    JOIN spans AS s ON s.trace_id = i.trace_id AND s.workspace = i.workspace WHERE''',
    )
})"""


# The aggregates' sort keys read the experiment's kept summary (app/sqlite/summaries.py,
# joined as `kept`); only an experiment without one evaluates the live expression. The live `?`
# comes first.
def _kept_or(kept: str, live: str) -> str:
    return f"(CASE WHEN kept.experiment_id IS NULL THEN {live} ELSE {kept} END)"


# The sort key of each sortable field; `?` is the name of a score. A missing score sorts as 0.
SORT_KEYS = {
    "id": "e.id",
    "name": "e.name",
    "created_at": "e.created_at",
    "last_updated_at": "e.last_updated_at",
    "created_by": "e.created_by",
    "last_updated_by": "e.last_updated_by",
    "tags": "coalesce(e.tags, '[]')",
    "trace_count": _kept_or(
        "kept.trace_count", f"(SELECT count(DISTINCT i.trace_id) FROM {_ITEMS_OF_E})"
    ),
    "total_estimated_cost": _kept_or("kept.cost", _COST_OF_E),
    "total_estimated_cost_avg": _kept_or(
        "kept.cost_avg", f"({_COST_OF_E} / max(1, (SELECT count(*) FROM {_ITEMS_OF_E})))"
    ),
    "feedback_scores.": _kept_or(
        "coalesce((SELECT value FROM json_each(kept.scores) WHERE key = ?), 0)",
        f"""coalesce((SELECT avg({trace_score("i.trace_id", "i.workspace")})
        FROM {
            _ITEMS_OF_E.replace(
                " WHERE",
                '''
        JOIN traces AS t ON t.id = i.trace_id AND t.workspace = i.workspace
        WHERE''',
            )
        }), 0)""",
    ),
    "experiment_scores.": """coalesce((SELECT json_extract(j.value, '$.value')
        FROM json_each(CASE WHEN json_valid(e.experiment_scores) THEN e.experiment_scores
                       ELSE '[]' END) AS j
        WHERE json_extract(j.value, '$.name') = ? LIMIT 1), 0)""",
}


def _duration_of_e(percent: int) -> str:
    # As summaries.DURATIONS, for the one experiment `e`; no ended trace sorts as 0.
    low = f"({percent} * last / 100)"
    return f"""coalesce((SELECT lo + (coalesce(hi, lo) - lo) * f FROM (
        SELECT max(CASE WHEN k = {low} THEN ms END) AS lo,
               max(CASE WHEN k = {low} + 1 THEN ms END) AS hi,
               (({percent} * last) % 100 / 100.0) AS f
        FROM (SELECT ms, row_number() OVER (ORDER BY ms) - 1 AS k, count(*) OVER () - 1 AS last
              FROM (SELECT (t.end_time / 1000 - t.start_time / 1000) / 1000.0 AS ms
                    FROM experiment_items AS i
                    JOIN traces AS t ON t.id = i.trace_id AND t.workspace = i.workspace
                    WHERE i.workspace = e.workspace AND i.experiment_id = e.id
                      AND t.end_time IS NOT NULL)))), 0)"""


SORT_KEYS |= {f"duration.p{p}": _kept_or(f"kept.p{p}", _duration_of_e(p)) for p in (50, 90, 99)}
# The sort keys whose `?` is bound twice: once for the live expression, once for the kept.
_TWICE = {"feedback_scores."}
# SQLite leaves the join out when nothing reads `kept` (its key is the experiment's id).
_WITH_KEPT = """experiments AS e
LEFT JOIN experiment_summaries AS kept
    ON kept.experiment_id = e.id AND kept.workspace = e.workspace"""
FIND_IDS = f"SELECT e.id FROM {_WITH_KEPT} WHERE {{where}} ORDER BY {{order}} LIMIT ? OFFSET ?"
COUNT_FOUND = f"SELECT count(*) FROM {_WITH_KEPT} WHERE {{where}}"
FIND_PROJECT_ID = "SELECT id FROM projects WHERE workspace = ? AND name_key = ?"


def _where(workspace: str, q: ExperimentQuery, project: bytes | None) -> tuple[str, list[Any]]:
    conditions, params = ["e.workspace = ?"], list[Any]([workspace])
    if q.name is not None:
        # A part of the name, as Opik's ilike '%name%' (without its wildcards).
        conditions.append("instr(lower(e.name), lower(?)) > 0")
        params.append(q.name)
    if q.before is not None:
        conditions.append("e.id < ?")
        params.append(q.before)
    if project is not None:
        conditions.append(_IN_PROJECT)
        params += [project, project]
    for column, value in (
        ("dataset_id", q.dataset_id),
        ("optimization_id", q.optimization_id),
    ):
        if value is not None:
            conditions.append(f"e.{column} = ?")
            params.append(value)
    if q.prompt_id is not None:
        conditions.append(f"({_HAS_PROMPT})")
        params += [q.prompt_id, q.prompt_id]
    if q.types is not None:
        conditions.append(f"e.type IN ({marks(len(q.types))})")
        params += q.types
    if q.ids is not None:
        conditions.append(f"e.id IN ({marks(len(q.ids))})")
        params += q.ids
    for f in q.filters:
        sql, values = filters.condition(f)
        conditions.append(f"({sql})")
        params += values
    if q.project_deleted:
        conditions.append(_PROJECT_DELETED)
    if q.dataset_deleted:
        conditions.append(
            "NOT EXISTS (SELECT 1 FROM datasets AS d"
            " WHERE d.id = e.dataset_id AND d.workspace = e.workspace)"
        )
    return " AND ".join(conditions), params


def _order(q: ExperimentQuery) -> tuple[str, list[Any]]:
    if q.sort is None:
        return "e.id DESC", []
    if q.sort in SORT_KEYS:  # duration.p50 and the plain fields
        return f"{SORT_KEYS[q.sort]} {'DESC' if q.descending else 'ASC'}, e.id DESC", []
    field, _, name = q.sort.partition(".")
    key = SORT_KEYS[f"{field}."]
    direction = "DESC" if q.descending else "ASC"
    return f"{key} {direction}, e.id DESC", [name] * (2 if f"{field}." in _TWICE else 1)


def uses_aggregates(q: ExperimentQuery) -> bool:
    """Whether find sorts or filters `q`'s experiments by their aggregates, and so reads the
    summaries of every experiment of the workspace."""
    plain = {"id", "name", "created_at", "last_updated_at", "created_by", "last_updated_by"}
    return (q.sort is not None and q.sort not in plain | {"tags"} and not
            q.sort.startswith("experiment_scores.")) or any(
        f.field == "feedback_scores" for f in q.filters)  # fmt: skip


async def find_ids(
    db: Database, workspace: str, q: ExperimentQuery, count: bool = False
) -> tuple[list[bytes], int]:
    """The ids of the experiments `q` names, in its order, and (when `count`) how many match
    in all; none when it names a project that does not exist."""
    project = q.project_id
    if q.project_name is not None:
        found = await db.fetch_all(FIND_PROJECT_ID, (workspace, name_key(q.project_name)))
        if not found:
            return [], 0
        project = found[0][0]
    where, params = _where(workspace, q, project)
    order, order_params = _order(q)
    rows = await db.fetch_all(
        FIND_IDS.format(where=where, order=order), [*params, *order_params, q.limit, q.offset]
    )
    total = 0
    if count:
        total = (await db.fetch_all(COUNT_FOUND.format(where=where), params))[0][0]
    return [row[0] for row in rows], total


# --- Update and finish ---------------------------------------------------------------------

READ_FOR_UPDATE = "SELECT id, tags FROM experiments WHERE workspace = ? AND id IN ({marks})"
FINISH = """
UPDATE experiments SET status = 'completed', last_updated_at = ?, last_updated_by = ?
WHERE workspace = ? AND status = 'running' AND id IN ({marks})
"""


async def update_experiments(
    db: Database, workspace: str, user: str, keys: Sequence[bytes], change: ExperimentChange
) -> int:
    """Applies `change` to those of `keys` the workspace holds, all or none (TooManyTags);
    how many it changed."""
    async with db.transaction() as conn:
        w = Write(conn, workspace, user)
        sql = READ_FOR_UPDATE.format(marks=marks(len(keys)))
        rows = list(await conn.execute_fetchall(sql, (workspace, *keys)))
        columns = changed_columns(change, w.now, user)
        for key, stored in rows:
            values = {**columns, **changed_tags(change, stored)}
            assignments = ", ".join(f"{EXPERIMENTS.check([c])[0]} = :{c}" for c in values)
            await conn.execute(
                f"UPDATE experiments SET {assignments} WHERE id = :id AND workspace = :workspace",
                {**values, "id": key, "workspace": workspace},
            )
        return len(rows)


async def finish_experiments(
    db: Database, workspace: str, user: str, keys: Sequence[bytes]
) -> None:
    async with db.transaction() as conn:
        now = clock.now_ns()
        await conn.execute(FINISH.format(marks=marks(len(keys))), (now, user, workspace, *keys))
