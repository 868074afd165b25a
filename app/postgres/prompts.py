"""Prompts and their versions: a version added to a prompt made on first use, the latest or
one by commit read back by the prompt's name, any by id (as app/sqlite/prompts.py)."""

from app import ids
from app.dataset_answers import commit_of, prompt_version
from app.dataset_records import PromptVersionRecord
from app.postgres.connection import Database
from app.postgres.write import Write
from app.prompt_payloads import PromptVersion
from app.records import Conflict, name_key

FIND_PROMPT = "SELECT id FROM prompts WHERE workspace = $1 AND name_key = $2"
# Ids are global: one any workspace's prompt holds is refused, as a dataset's is.
FIND_ANY_PROMPT = "SELECT 1 FROM prompts WHERE id = $1"
# A name or an id another transaction takes at the same moment is left alone, and RETURNING
# says so (items.py's rule): the read before it cannot see that transaction's row.
INSERT_PROMPT = """
INSERT INTO prompts (id, workspace, name, name_key, description, tags, template_structure,
                     created_at, created_by, last_updated_at, last_updated_by)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $8, $9)
ON CONFLICT DO NOTHING RETURNING id
"""
# A commit the prompt has already (the last 8 hex digits of another version's id) is left
# alone, and the version gets another id.
INSERT_VERSION = """
INSERT INTO prompt_versions (id, workspace, prompt_id, commit_hash, template, metadata, type,
                             change_description, tags, created_at, created_by,
                             last_updated_at, last_updated_by)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $10, $11)
ON CONFLICT DO NOTHING RETURNING id
"""
_VERSION = """
SELECT v.id, v.prompt_id, v.commit_hash, v.template, v.metadata, v.type, v.change_description,
       v.tags, p.template_structure, v.created_at, v.created_by
FROM prompt_versions AS v
JOIN prompts AS p ON p.id = v.prompt_id AND p.workspace = v.workspace
"""
VERSION_BY_ID = _VERSION + "WHERE v.workspace = $1 AND v.id = $2"
LATEST_VERSION = _VERSION + "WHERE v.workspace = $1 AND p.name_key = $2 ORDER BY v.id DESC LIMIT 1"
VERSION_BY_COMMIT = _VERSION + "WHERE v.workspace = $1 AND p.name_key = $2 AND v.commit_hash = $3"


async def _prompt_of(w: Write, record: PromptVersionRecord, new_prompt: bool) -> bytes:
    """The id of the prompt of the record's name, made when missing; with `new_prompt`,
    Conflict when the name is taken."""
    key = name_key(record.name)
    found: bytes | None = await w.conn.fetchval(FIND_PROMPT, w.workspace, key)
    if found is None:
        prompt_id = record.prompt_id or ids.uuid7()
        if await w.conn.fetchval(FIND_ANY_PROMPT, prompt_id) is not None:
            raise Conflict.foreign("Prompt", prompt_id)
        made = await w.conn.fetchval(
            INSERT_PROMPT, prompt_id, w.workspace, record.name, key, record.description,
            record.prompt_tags, record.template_structure, w.now, w.user,
        )  # fmt: skip
        if made is not None:
            return prompt_id
        # Its name or its id was taken meanwhile, by another write that has committed.
        found = await w.conn.fetchval(FIND_PROMPT, w.workspace, key)
        if found is None:
            raise Conflict.foreign("Prompt", prompt_id)
    if new_prompt:
        raise Conflict.prompt_exists(record.name)
    return found


async def create_version(
    db: Database, workspace: str, user: str, record: PromptVersionRecord, new_prompt: bool
) -> PromptVersion:
    """The version added; with `new_prompt`, Conflict when the name is taken."""
    async with db.transaction() as conn:
        w = Write(conn, workspace, user)
        prompt_id = await _prompt_of(w, record, new_prompt)
        while True:
            key = ids.uuid7()
            if await conn.fetchval(
                INSERT_VERSION, key, workspace, prompt_id, commit_of(key), record.template,
                record.metadata, record.type, record.change_description, record.tags, w.now, user,
            ) is not None:  # fmt: skip
                break
        return prompt_version(await conn.fetchrow(VERSION_BY_ID, workspace, key))


async def find_version(
    db: Database, workspace: str, name: str, commit: str | None
) -> PromptVersion | None:
    if commit is None:
        row = await db.fetch_row(LATEST_VERSION, workspace, name_key(name))
    else:
        row = await db.fetch_row(VERSION_BY_COMMIT, workspace, name_key(name), commit)
    return None if row is None else prompt_version(row)


async def get_version(db: Database, workspace: str, key: bytes) -> PromptVersion | None:
    row = await db.fetch_row(VERSION_BY_ID, workspace, key)
    return None if row is None else prompt_version(row)
