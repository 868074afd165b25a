"""Experiments: create one, read one, delete some with their items."""

from collections.abc import Callable, Sequence
from typing import Any

import msgspec
from msgspec import UNSET, Raw, UnsetType

from app import clock, ids
from app.payloads import Experiment
from app.records import Conflict, ExperimentRecord, name_key
from app.sqlite.connection import Database
from app.sqlite.tables import EXPERIMENTS, PROJECTS, select
from app.sqlite.write import Write

# Each join stays inside the workspace: a name is never read across workspaces.
GET_EXPERIMENT = f"""
SELECT {
    select(
        Experiment,
        id="e.id",
        dataset_name="d.name",
        dataset_id="e.dataset_id",
        project_id="e.project_id",
        project_name="p.name",
        name="e.name",
        metadata="e.metadata",
        tags="e.tags",
        type="e.type",
        evaluation_method="e.evaluation_method",
        optimization_id="e.optimization_id",
        created_at="e.created_at",
        last_updated_at="e.last_updated_at",
        created_by="e.created_by",
        last_updated_by="e.last_updated_by",
        status="e.status",
        experiment_scores="e.experiment_scores",
        prompt_version="e.prompt_version",
        prompt_versions="e.prompt_versions",
        dataset_version_id="e.dataset_version_id",
    )
}
FROM experiments AS e
JOIN datasets AS d ON d.id = e.dataset_id AND d.workspace = e.workspace
LEFT JOIN projects AS p ON p.id = e.project_id AND p.workspace = e.workspace
WHERE e.id = ? AND e.workspace = ?
"""
FIND_EXPERIMENT = "SELECT workspace, dataset_id FROM experiments WHERE id = ?"
INSERT_EXPERIMENT = EXPERIMENTS.insert()
DELETE_EXPERIMENT_ITEMS = "DELETE FROM experiment_items WHERE workspace = ? AND experiment_id = ?"
DELETE_EXPERIMENT = "DELETE FROM experiments WHERE workspace = ? AND id = ?"


def id_or_unset(key: bytes | None) -> str | UnsetType:
    return UNSET if key is None else ids.to_str(key)


def raw_or_unset(text: str | None) -> Raw | UnsetType:
    return UNSET if text is None else Raw(text.encode())


def _plain(value: Any) -> Any:
    return value


def _or_unset(value: Any) -> Any:
    return UNSET if value is None else value


# How each stored column shows in the answer, by Experiment's field.
_SHOWN: dict[str, Callable[[Any], Any]] = {
    "id": ids.to_str,
    "dataset_id": ids.to_str,
    "project_id": id_or_unset,
    "project_name": _or_unset,
    "metadata": raw_or_unset,
    "tags": raw_or_unset,
    "optimization_id": id_or_unset,
    "created_at": clock.format_instant,
    "last_updated_at": clock.format_instant,
    "status": _or_unset,
    "experiment_scores": raw_or_unset,
    "prompt_version": raw_or_unset,
    "prompt_versions": raw_or_unset,
    "dataset_version_id": id_or_unset,
}
_FIELDS = tuple((field, _SHOWN.get(field, _plain)) for field in Experiment.__struct_fields__)


def experiment(row: Sequence[Any]) -> Experiment:
    """The answer of a row selected by GET_EXPERIMENT's list (Experiment's fields, in order)."""
    return Experiment(
        **{field: show(value) for (field, show), value in zip(_FIELDS, row, strict=True)}
    )


async def insert_experiment(
    w: Write, record: ExperimentRecord, dataset_id: bytes, project_id: bytes | None
) -> None:
    values = msgspec.structs.asdict(record)
    del values["dataset_name"], values["project_name"]
    values.update(dataset_id=dataset_id, project_id=project_id, **w.stamp)
    await w.conn.execute(INSERT_EXPERIMENT, values)


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


async def get_experiment(db: Database, workspace: str, key: bytes) -> Experiment | None:
    rows = await db.fetch_all(GET_EXPERIMENT, (key, workspace))
    return experiment(rows[0]) if rows else None


async def delete_experiments(db: Database, workspace: str, keys: Sequence[bytes]) -> None:
    async with db.transaction() as conn:
        rows = [(workspace, key) for key in keys]
        await conn.executemany(DELETE_EXPERIMENT_ITEMS, rows)
        await conn.executemany(DELETE_EXPERIMENT, rows)
