"""The storage boundary: the domain's verbs over the database, with their SQL."""

from collections.abc import Sequence
from dataclasses import dataclass

from msgspec import UNSET

from app import clock, ids
from app.db import Database
from app.payloads import Item


class Conflict(Exception):
    """The write touches a record that belongs to another workspace."""


@dataclass(frozen=True, slots=True)
class ItemRecord:
    """An item to store, validated: ids as 16-byte keys."""

    id: bytes
    experiment_id: bytes
    dataset_item_id: bytes
    trace_id: bytes
    project_name: str | None
    project_id: bytes | None


# An item's project is its own, else its trace's; its trace decides its visibility.
GET_ITEM = """
SELECT i.experiment_id, i.dataset_item_id, i.trace_id, i.id,
       coalesce(i.project_id, t.project_id),
       i.created_at, i.last_updated_at, i.created_by, i.last_updated_by, t.hidden
FROM experiment_items AS i
LEFT JOIN traces AS t ON t.id = i.trace_id AND t.workspace = i.workspace
WHERE i.id = ? AND i.workspace = ?
"""

FIND_PROJECTS = "SELECT name_key, id FROM projects WHERE workspace = ? AND name_key IN ({})"

INSERT_PROJECT = """
INSERT INTO projects (id, workspace, name, name_key, created_at, created_by,
                      last_updated_at, last_updated_by)
VALUES (?, ?, ?, ?, ?, ?, ?, ?)
"""

# An existing id of the same workspace is updated, keeping its creation; one of another
# workspace is left alone (the WHERE), which the row count then reveals.
UPSERT_ITEM = """
INSERT INTO experiment_items (id, workspace, experiment_id, dataset_item_id, trace_id,
                              project_id, created_at, created_by, last_updated_at,
                              last_updated_by)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (id) DO UPDATE SET
    experiment_id = excluded.experiment_id,
    dataset_item_id = excluded.dataset_item_id,
    trace_id = excluded.trace_id,
    project_id = coalesce(excluded.project_id, experiment_items.project_id),
    last_updated_at = excluded.last_updated_at,
    last_updated_by = excluded.last_updated_by
WHERE experiment_items.workspace = excluded.workspace
"""

FIND_FOREIGN_ITEM = "SELECT id FROM experiment_items WHERE id = ? AND workspace <> ?"

DELETE_ITEM = "DELETE FROM experiment_items WHERE id = ? AND workspace = ?"

PING = "SELECT count(*) FROM sqlite_schema"


def name_key(name: str) -> str:
    """What makes two names the same name: Opik matches names case-insensitively."""
    return name.strip().casefold()


class Store:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def ping(self) -> None:
        await self.db.fetch_all(PING)

    async def get_item(self, workspace: str, item_id: bytes) -> Item | None:
        rows = await self.db.fetch_all(GET_ITEM, (item_id, workspace))
        if not rows:
            return None
        e, d, t, i, p, created, updated, created_by, updated_by, hidden = rows[0]
        return Item(
            ids.to_str(e),
            ids.to_str(d),
            ids.to_str(t),
            ids.to_str(i),
            UNSET if p is None else ids.to_str(p),
            clock.format_instant(created),
            clock.format_instant(updated),
            created_by,
            updated_by,
            "hidden" if hidden else "default",
        )

    async def upsert_items(self, workspace: str, user: str, items: Sequence[ItemRecord]) -> None:
        """Store every item or none, durably, in one transaction."""
        now = clock.now_ns()
        names = {name_key(i.project_name): i.project_name for i in items if i.project_name}
        async with self.db.transaction() as conn:
            projects: dict[str, bytes] = {}
            if names:
                sql = FIND_PROJECTS.format(", ".join("?" * len(names)))
                found = await conn.execute_fetchall(sql, (workspace, *names))
                projects = {key: project_id for key, project_id in found}
                missing = [(key, name) for key, name in names.items() if key not in projects]
                for key, _ in missing:
                    projects[key] = ids.uuid7()
                await conn.executemany(
                    INSERT_PROJECT,
                    [
                        (projects[key], workspace, name.strip(), key, now, user, now, user)
                        for key, name in missing
                    ],
                )
            rows = [
                (
                    i.id,
                    workspace,
                    i.experiment_id,
                    i.dataset_item_id,
                    i.trace_id,
                    projects[name_key(i.project_name)] if i.project_name else i.project_id,
                    now,
                    user,
                    now,
                    user,
                )
                for i in items
            ]
            cursor = await conn.executemany(UPSERT_ITEM, rows)
            if cursor.rowcount != len(rows):
                for item in items:
                    if await conn.execute_fetchall(FIND_FOREIGN_ITEM, (item.id, workspace)):
                        raise Conflict(
                            f"Experiment item '{ids.to_str(item.id)}' belongs to another workspace"
                        )

    async def delete_items(self, workspace: str, item_ids: Sequence[bytes]) -> None:
        async with self.db.transaction() as conn:
            await conn.executemany(DELETE_ITEM, [(i, workspace) for i in item_ids])
