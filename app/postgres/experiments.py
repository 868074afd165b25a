"""Experiments: create, update, finish, and delete with their items (what they show is
app/postgres/aggregates.py)."""

from collections.abc import Sequence
from typing import Any

import msgspec

from app import clock
from app.experiment_writes import changed_columns, changed_tags, linked
from app.postgres.connection import Database
from app.postgres.write import Write
from app.records import Conflict, ExperimentChange, ExperimentRecord, name_key

FIND_EXPERIMENT = "SELECT 1 FROM experiments WHERE id = $1"
COLUMNS = [
    "id",
    "workspace",
    "name",
    "dataset_id",
    "project_id",
    "metadata",
    "tags",
    "type",
    "evaluation_method",
    "optimization_id",
    "status",
    "experiment_scores",
    "prompt_version",
    "prompt_versions",
    "dataset_version_id",
    "created_at",
    "created_by",
    "last_updated_at",
    "last_updated_by",
]
# Ids are global: an id any workspace holds is left alone, and RETURNING says so.
INSERT_EXPERIMENT = (
    f"INSERT INTO experiments ({', '.join(COLUMNS)}) "
    f"VALUES ({', '.join(f'${n}' for n in range(1, len(COLUMNS) + 1))}) "
    "ON CONFLICT (id) DO NOTHING RETURNING id"
)
DELETE_EXPERIMENT_ITEMS = (
    "DELETE FROM experiment_items WHERE workspace = $1 AND experiment_id = ANY($2::bytea[])"
)
DELETE_EXPERIMENTS = "DELETE FROM experiments WHERE workspace = $1 AND id = ANY($2::bytea[])"

# Opik's PromptVersionLink, read back with the version's commit and its prompt's id and name.
LINKED_VERSION = """
SELECT v.commit_hash, v.prompt_id, p.name FROM prompt_versions AS v
JOIN prompts AS p ON p.id = v.prompt_id AND p.workspace = v.workspace
WHERE v.workspace = $1 AND v.id = $2
"""


async def _linked(w: Write, text: str | None) -> str | None:
    """The links of `text`, completed from the versions stored in this workspace."""

    async def versions(key: bytes) -> Any:
        return await w.conn.fetch(LINKED_VERSION, w.workspace, key)

    return await linked(text, versions)


async def project_of(w: Write, project_id: bytes | None, project_name: str | None) -> bytes | None:
    """The experiment's project: the one with its id (Conflict when another workspace holds
    it), else the one of its name, made when missing; None when neither is given."""
    if project_id is not None:
        await w.refuse_foreign("projects", [project_id], "Project")
        return project_id
    if project_name:
        return (await w.named("projects", [project_name]))[name_key(project_name)]
    return None


async def create_experiment(
    db: Database, workspace: str, user: str, record: ExperimentRecord
) -> None:
    async with db.transaction() as conn:
        w = Write(conn, workspace, user)
        # Read first only so that an existing id is named before any other conflict, as on
        # SQLite; the insert's RETURNING is what refuses it when two creates race.
        if await conn.fetchval(FIND_EXPERIMENT, record.id):
            raise Conflict.experiment_exists(record.id)
        datasets = await w.named("datasets", [record.dataset_name])
        values = msgspec.structs.asdict(record)
        del values["dataset_name"], values["project_name"]
        values.update(
            workspace=workspace,
            dataset_id=datasets[name_key(record.dataset_name)],
            project_id=await project_of(w, record.project_id, record.project_name),
            prompt_version=await _linked(w, record.prompt_version),
            prompt_versions=await _linked(w, record.prompt_versions),
            created_at=w.now,
            created_by=user,
            last_updated_at=w.now,
            last_updated_by=user,
        )
        if await conn.fetchval(INSERT_EXPERIMENT, *(values[c] for c in COLUMNS)) is None:
            raise Conflict.experiment_exists(record.id)


async def delete_experiments(db: Database, workspace: str, keys: Sequence[bytes]) -> None:
    async with db.transaction() as conn:
        await conn.execute(DELETE_EXPERIMENT_ITEMS, workspace, list(keys))
        await conn.execute(DELETE_EXPERIMENTS, workspace, list(keys))


# Locked as read: an update that adds tags to the stored ones is a read, then a write, and
# another server's update between the two would be lost (SQLite's one writer never meets it).
READ_FOR_UPDATE = """
SELECT id, tags FROM experiments WHERE workspace = $1 AND id = ANY($2::bytea[])
ORDER BY id FOR UPDATE
"""
FINISH = """
UPDATE experiments SET status = 'completed', last_updated_at = $1, last_updated_by = $2
WHERE workspace = $3 AND status = 'running' AND id = ANY($4::bytea[])
"""


async def update_experiments(
    db: Database, workspace: str, user: str, keys: Sequence[bytes], change: ExperimentChange
) -> int:
    """Applies `change` to those of `keys` the workspace holds, all or none (TooManyTags);
    how many it changed."""
    async with db.transaction() as conn:
        rows = await conn.fetch(READ_FOR_UPDATE, workspace, list(keys))
        columns = changed_columns(change, clock.now_ns(), user)
        for key, stored in rows:
            values = {**columns, **changed_tags(change, stored)}
            assert set(values) <= set(COLUMNS), values  # fixed names, never input
            assignments = ", ".join(f"{c} = ${n}" for n, c in enumerate(values, start=3))
            await conn.execute(
                f"UPDATE experiments SET {assignments} WHERE id = $1 AND workspace = $2",
                key,
                workspace,
                *values.values(),
            )
        return len(rows)


async def finish_experiments(
    db: Database, workspace: str, user: str, keys: Sequence[bytes]
) -> None:
    async with db.transaction() as conn:
        await conn.execute(FINISH, clock.now_ns(), user, workspace, list(keys))
