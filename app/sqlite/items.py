"""Experiment items: read one by id (the hot path), write a batch, delete some."""

from collections.abc import Sequence

from msgspec import UNSET

from app import clock, ids
from app.payloads import Item
from app.records import ItemRecord, name_key
from app.sqlite.connection import Database
from app.sqlite.lookup import Lookup, Row
from app.sqlite.tables import EXPERIMENT_ITEMS, EXPERIMENTS, PROJECTS, select
from app.sqlite.write import Write

# An item's project is its own, else its trace's; its trace decides its visibility.
GET_ITEM = f"""
SELECT {
    select(
        Item,
        experiment_id="i.experiment_id",
        dataset_item_id="i.dataset_item_id",
        trace_id="i.trace_id",
        id="i.id",
        project_id="coalesce(i.project_id, t.project_id)",
        created_at="i.created_at",
        last_updated_at="i.last_updated_at",
        created_by="i.created_by",
        last_updated_by="i.last_updated_by",
        trace_visibility_mode="t.hidden",
    )
}
FROM experiment_items AS i
LEFT JOIN traces AS t ON t.id = i.trace_id AND t.workspace = i.workspace
WHERE i.id IN ({{keys}}) AND +i.workspace = ?
"""
ITEM_BY_ID = Lookup(GET_ITEM, key_column=Item.__struct_fields__.index("id"))

# An existing id of the same workspace is updated, keeping its creation and, when the write
# names none, its project.
UPSERT_ITEM = EXPERIMENT_ITEMS.upsert(
    merge={"project_id": "coalesce(excluded.project_id, experiment_items.project_id)"}
)
DELETE_ITEM = "DELETE FROM experiment_items WHERE id = ? AND workspace = ?"

# The text of ids that many items share: an experiment's, and a dataset item's, which every
# experiment over the dataset repeats. Emptied when full, so it stays small.
_SHARED_TEXT: dict[bytes, str] = {}
_SHARED_KEPT = 4096


def shared_text(key: bytes) -> str:
    text = _SHARED_TEXT.get(key)
    if text is None:
        if len(_SHARED_TEXT) >= _SHARED_KEPT:
            _SHARED_TEXT.clear()
        text = _SHARED_TEXT[key] = ids.to_str(key)
    return text


def item(row: Row) -> Item:
    """The answer of a row of GET_ITEM, whose columns are in Item's field order."""
    e, d, t, i, p, created, updated, created_by, updated_by, hidden = row
    created_at = clock.format_instant(created)
    return Item(
        shared_text(e),
        shared_text(d),
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


async def upsert_items(
    db: Database, workspace: str, user: str, items: Sequence[ItemRecord]
) -> None:
    async with db.transaction() as conn:
        w = Write(conn, workspace, user)
        await w.refuse_foreign(EXPERIMENTS, list({i.experiment_id for i in items}), "Experiment")
        given = list({i.project_id for i in items if i.project_id and not i.project_name})
        await w.refuse_foreign(PROJECTS, given, "Project")
        projects = await w.named("projects", [i.project_name for i in items if i.project_name])
        rows = [
            {
                "id": i.id,
                "experiment_id": i.experiment_id,
                "dataset_item_id": i.dataset_item_id,
                "trace_id": i.trace_id,
                "project_id": projects[name_key(i.project_name)]
                if i.project_name
                else i.project_id,
                **w.stamp,
            }
            for i in items
        ]
        written = await conn.executemany(UPSERT_ITEM, rows)
        # The upsert leaves alone a row that another workspace holds under the same id (ids
        # are global) and does not count it; only then is it worth finding which.
        if written.rowcount != len(rows):
            await w.refuse_foreign(EXPERIMENT_ITEMS, [i.id for i in items], "Experiment item")
            raise AssertionError("an upsert skipped rows that no other workspace holds")


async def delete_items(db: Database, workspace: str, item_ids: Sequence[bytes]) -> None:
    async with db.transaction() as conn:
        await conn.executemany(DELETE_ITEM, [(i, workspace) for i in item_ids])
