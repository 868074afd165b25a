"""Prompts and their versions: a version added to a prompt made on first use, the latest or
one by commit read back by the prompt's name, any by id."""

from app import ids
from app.dataset_answers import commit_of, prompt_version
from app.dataset_records import PromptVersionRecord
from app.prompt_payloads import PromptVersion
from app.records import Conflict, name_key
from app.sqlite.connection import Database
from app.sqlite.tables import PROMPT_VERSIONS, PROMPTS
from app.sqlite.write import Write

FIND_PROMPT = "SELECT id, template_structure FROM prompts WHERE workspace = ? AND name_key = ?"
# Ids are global: one any workspace's prompt holds is refused, as a dataset's is.
FIND_ANY_PROMPT = "SELECT 1 FROM prompts WHERE id = ?"
INSERT_PROMPT = PROMPTS.insert()
INSERT_VERSION = PROMPT_VERSIONS.insert()
COMMIT_TAKEN = (
    "SELECT 1 FROM prompt_versions WHERE workspace = ? AND prompt_id = ? AND commit_hash = ?"
)
_VERSION = """
SELECT v.id, v.prompt_id, v.commit_hash, v.template, v.metadata, v.type, v.change_description,
       v.tags, p.template_structure, v.created_at, v.created_by
FROM prompt_versions AS v
JOIN prompts AS p ON p.id = v.prompt_id AND p.workspace = v.workspace
"""
VERSION_BY_ID = _VERSION + "WHERE v.workspace = ? AND v.id = ?"
LATEST_VERSION = _VERSION + "WHERE v.workspace = ? AND p.name_key = ? ORDER BY v.id DESC LIMIT 1"
VERSION_BY_COMMIT = _VERSION + "WHERE v.workspace = ? AND p.name_key = ? AND v.commit_hash = ?"


async def create_version(
    db: Database, workspace: str, user: str, record: PromptVersionRecord, new_prompt: bool
) -> PromptVersion:
    """The version added; with `new_prompt`, Conflict when the name is taken."""
    async with db.transaction() as conn:
        w = Write(conn, workspace, user)
        found = list(await conn.execute_fetchall(FIND_PROMPT, (workspace, name_key(record.name))))
        if found and new_prompt:
            raise Conflict.prompt_exists(record.name)
        if found:
            prompt_id = found[0][0]
        else:
            prompt_id = record.prompt_id or ids.uuid7()
            if await conn.execute_fetchall(FIND_ANY_PROMPT, (prompt_id,)):
                raise Conflict.foreign("Prompt", prompt_id)
            await conn.execute(INSERT_PROMPT, {
                "id": prompt_id, "name": record.name, "name_key": name_key(record.name),
                "description": record.description, "tags": record.prompt_tags,
                "template_structure": record.template_structure, **w.stamp,
            })  # fmt: skip
        key = ids.uuid7()
        while await conn.execute_fetchall(COMMIT_TAKEN, (workspace, prompt_id, commit_of(key))):
            key = ids.uuid7()
        await conn.execute(INSERT_VERSION, {
            "id": key, "prompt_id": prompt_id, "commit_hash": commit_of(key),
            "template": record.template, "metadata": record.metadata, "type": record.type,
            "change_description": record.change_description, "tags": record.tags, **w.stamp,
        })  # fmt: skip
        (row,) = await conn.execute_fetchall(VERSION_BY_ID, (workspace, key))
        return prompt_version(row)


async def find_version(
    db: Database, workspace: str, name: str, commit: str | None
) -> PromptVersion | None:
    if commit is None:
        rows = await db.fetch_all(LATEST_VERSION, (workspace, name_key(name)))
    else:
        rows = await db.fetch_all(VERSION_BY_COMMIT, (workspace, name_key(name), commit))
    return prompt_version(rows[0]) if rows else None


async def get_version(db: Database, workspace: str, key: bytes) -> PromptVersion | None:
    rows = await db.fetch_all(VERSION_BY_ID, (workspace, key))
    return prompt_version(rows[0]) if rows else None
