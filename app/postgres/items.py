"""Experiment items: read one by id (the hot path), write a batch, delete some."""

from collections.abc import Sequence
from typing import Any

from msgspec import UNSET

from app import clock, ids
from app.payloads import Item
from app.postgres.connection import Database
from app.postgres.write import Write
from app.records import Conflict, ItemRecord, name_key

# An item's project is its own, else its trace's; its trace decides its visibility. The
# key first (Database.lookup's rule), then the columns in Item's field order.
GET_ITEMS = """
SELECT i.id, i.experiment_id, i.dataset_item_id, i.trace_id, i.id,
       coalesce(i.project_id, t.project_id), i.created_at, i.last_updated_at, i.created_by,
       i.last_updated_by, t.hidden
FROM experiment_items AS i
LEFT JOIN traces AS t ON t.id = i.trace_id AND t.workspace = i.workspace
WHERE i.id = ANY($1::bytea[]) AND i.workspace = $2
"""

# The whole batch in one statement. An existing id of the same workspace is updated, keeping
# its creation and, when the write names none, its project; an id another workspace holds is
# left alone by the WHERE and so missing from RETURNING. That answer, not a read before the
# write, is what makes the 409: under READ COMMITTED two transactions can both find an id
# free, and the second then waits on the first's row and takes the DO UPDATE branch
# (https://www.postgresql.org/docs/15/sql-insert.html#SQL-ON-CONFLICT).
UPSERT_ITEMS = """
INSERT INTO experiment_items AS i (id, workspace, experiment_id, dataset_item_id, trace_id,
                                   project_id, created_at, created_by, last_updated_at,
                                   last_updated_by)
SELECT u.id, $1, u.experiment_id, u.dataset_item_id, u.trace_id, u.project_id, $2, $3, $2, $3
FROM unnest($4::bytea[], $5::bytea[], $6::bytea[], $7::bytea[], $8::bytea[])
    AS u(id, experiment_id, dataset_item_id, trace_id, project_id)
ON CONFLICT (id) DO UPDATE SET
    experiment_id = excluded.experiment_id,
    dataset_item_id = excluded.dataset_item_id,
    trace_id = excluded.trace_id,
    project_id = coalesce(excluded.project_id, i.project_id),
    last_updated_at = excluded.last_updated_at,
    last_updated_by = excluded.last_updated_by
WHERE i.workspace = excluded.workspace
RETURNING i.id
"""
DELETE_ITEMS = "DELETE FROM experiment_items WHERE workspace = $1 AND id = ANY($2::bytea[])"


def item(row: Any) -> Item:
    """The answer of a row of GET_ITEMS."""
    _, e, d, t, i, p, created, updated, created_by, updated_by, hidden = row
    created_at = clock.format_instant(created)
    return Item(
        ids.to_str(e),
        ids.to_str(d),
        ids.to_str(t),
        ids.to_str(i),
        UNSET if p is None else ids.to_str(p),
        created_at,
        # An item never written again was last updated when it was created.
        created_at if updated == created else clock.format_instant(updated),
        created_by,
        updated_by,
        "hidden" if hidden else "default",
    )


async def get_item(db: Database, workspace: str, item_id: bytes) -> Item | None:
    # The hot path: batched with the other requests of this moment, one statement for all.
    row = await db.lookup(GET_ITEMS, workspace, item_id)
    return None if row is None else item(row)


async def upsert_items(
    db: Database, workspace: str, user: str, items: Sequence[ItemRecord]
) -> None:
    async with db.transaction() as conn:
        w = Write(conn, workspace, user)
        await w.refuse_foreign("experiments", list({i.experiment_id for i in items}), "Experiment")
        given = list({i.project_id for i in items if i.project_id and not i.project_name})
        await w.refuse_foreign("projects", given, "Project")
        projects = await w.named("projects", [i.project_name for i in items if i.project_name])
        # In id order: two batches that share ids then lock their rows in one order, and
        # wait for each other rather than deadlock (SQLite's one writer never needs this).
        items = sorted(items, key=lambda i: i.id)
        written = await conn.fetch(
            UPSERT_ITEMS,
            workspace,
            w.now,
            user,
            [i.id for i in items],
            [i.experiment_id for i in items],
            [i.dataset_item_id for i in items],
            [i.trace_id for i in items],
            [projects[name_key(i.project_name)] if i.project_name else i.project_id for i in items],
        )
        if len(written) != len(items):
            # Rolled back by the raise: the batch is stored whole or not at all.
            kept = {row[0] for row in written}
            raise Conflict.foreign("Experiment item", min(i.id for i in items if i.id not in kept))


async def delete_items(db: Database, workspace: str, item_ids: Sequence[bytes]) -> None:
    async with db.transaction() as conn:
        await conn.execute(DELETE_ITEMS, workspace, list(item_ids))
