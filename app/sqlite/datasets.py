"""Datasets and their items: create, find by name or id, delete; items upserted by id,
streamed and paged newest id first, deleted."""

from collections.abc import Sequence
from typing import Any

import msgspec

from app import ids
from app.dataset_answers import dataset, dataset_item
from app.dataset_payloads import Dataset, DatasetItem
from app.dataset_records import DatasetItemsRecord, DatasetRecord, ItemFilter
from app.records import Conflict, NotFound, batched, name_key
from app.sqlite import item_filters
from app.sqlite.connection import Database
from app.sqlite.experiments import project_of
from app.sqlite.lookup import Row
from app.sqlite.tables import DATASET_ITEMS, DATASETS, LAST_KEY, SPANS, TRACES, marks
from app.sqlite.write import Write

_IDS_PER_QUERY = 1000

# Counts are read with the dataset, as Opik's enrichment does on retrieve and get by id.
_DATASET = """
SELECT d.id, d.name, d.project_id, d.type, d.visibility, d.tags, d.description,
       d.created_at, d.created_by, d.last_updated_at, d.last_updated_by,
       (SELECT count(*) FROM experiments AS e
        WHERE e.workspace = d.workspace AND e.dataset_id = d.id),
       (SELECT count(*) FROM dataset_items AS i
        WHERE i.workspace = d.workspace AND i.dataset_id = d.id),
       (SELECT max(e.created_at) FROM experiments AS e
        WHERE e.workspace = d.workspace AND e.dataset_id = d.id)
FROM datasets AS d
"""
DATASET_BY_ID = _DATASET + "WHERE d.workspace = ? AND d.id = ?"
DATASET_BY_NAME = _DATASET + "WHERE d.workspace = ? AND d.name_key = ?"
FIND_ID_BY_NAME = "SELECT id FROM datasets WHERE workspace = ? AND name_key = ?"
FIND_ID = "SELECT id FROM datasets WHERE workspace = ? AND id = ?"
FIND_ANY_ID = "SELECT 1 FROM datasets WHERE id = ?"
INSERT_DATASET = DATASETS.insert()
DELETE_DATASET = "DELETE FROM datasets WHERE workspace = ? AND id = ?"

_ITEM_COLUMNS = """
SELECT id, trace_id, span_id, source, data, description, tags, evaluators, execution_policy,
       dataset_id, created_at, last_updated_at, created_by, last_updated_by
FROM dataset_items
"""
# {conditions}: item_filters.conditions, each after AND.
ITEMS_BEFORE = (
    _ITEM_COLUMNS + "WHERE workspace = ? AND dataset_id = ? AND id < ?{conditions}"
    " ORDER BY id DESC LIMIT ?"
)
ITEMS_PAGE = (
    _ITEM_COLUMNS + "WHERE workspace = ? AND dataset_id = ?{conditions}"
    " ORDER BY id DESC LIMIT ? OFFSET ?"
)
ITEMS_BY_ID = _ITEM_COLUMNS + "WHERE workspace = ? AND id IN ({marks})"
COUNT_ITEMS = (
    "SELECT count(*) FROM dataset_items WHERE workspace = ? AND dataset_id = ?{conditions}"
)
UPSERT_ITEM = DATASET_ITEMS.upsert()
DELETE_ITEMS = "DELETE FROM dataset_items WHERE workspace = ? AND id IN ({marks})"
DELETE_DATASET_ITEMS = (
    "DELETE FROM dataset_items WHERE workspace = ? AND dataset_id = ?{conditions}"
)


async def create_dataset(db: Database, workspace: str, user: str, record: DatasetRecord) -> None:
    async with db.transaction() as conn:
        w = Write(conn, workspace, user)
        if await conn.execute_fetchall(FIND_ID_BY_NAME, (workspace, name_key(record.name))):
            raise Conflict.dataset_exists(record.name)
        if await conn.execute_fetchall(FIND_ANY_ID, (record.id,)):
            raise Conflict.foreign("Dataset", record.id)
        await _insert_dataset(w, record.id, record.name, record.project_id, record.project_name,
                              record)  # fmt: skip


async def _insert_dataset(
    w: Write,
    key: bytes,
    name: str,
    project_id: bytes | None,
    project_name: str | None,
    record: DatasetRecord | None = None,
) -> None:
    project = await project_of(w, project_id, project_name)
    row: dict[str, Any] = {
        "id": key,
        "name": name,
        "name_key": name_key(name),
        "project_id": project,
        "description": None if record is None else record.description,
        "tags": None if record is None else record.tags,
        "type": "dataset" if record is None else record.type,
        "visibility": "private" if record is None else record.visibility,
        **w.stamp,
    }
    await w.conn.execute(INSERT_DATASET, row)


async def find_dataset(db: Database, workspace: str, name: str) -> Dataset | None:
    rows = await db.fetch_all(DATASET_BY_NAME, (workspace, name_key(name)))
    return dataset(rows[0]) if rows else None


async def get_dataset(db: Database, workspace: str, key: bytes) -> Dataset | None:
    rows = await db.fetch_all(DATASET_BY_ID, (workspace, key))
    return dataset(rows[0]) if rows else None


async def delete_dataset(db: Database, workspace: str, key: bytes) -> None:
    """The dataset; its items stay, as in Opik (experiments may refer to them)."""
    async with db.transaction() as conn:
        await conn.execute(DELETE_DATASET, (workspace, key))


async def upsert_dataset_items(
    db: Database, workspace: str, user: str, record: DatasetItemsRecord
) -> None:
    """Every item or none; NotFound when `dataset_id` names no dataset of the workspace."""
    async with db.transaction() as conn:
        w = Write(conn, workspace, user)
        dataset_id = await _dataset_of(w, record)
        latest = {item.id: item for item in record.items}  # a repeated id: the last one wins
        await w.refuse_foreign(DATASET_ITEMS, list(latest), "Dataset item")
        await w.refuse_foreign(TRACES, [i.trace_id for i in latest.values() if i.trace_id], "Trace")
        await w.refuse_foreign(SPANS, [i.span_id for i in latest.values() if i.span_id], "Span")
        rows = [
            {**msgspec.structs.asdict(item), "dataset_id": dataset_id, **w.stamp}
            for item in latest.values()
        ]
        await conn.executemany(UPSERT_ITEM, rows)


async def _dataset_of(w: Write, record: DatasetItemsRecord) -> bytes:
    if record.dataset_id is not None:
        if not await w.conn.execute_fetchall(FIND_ID, (w.workspace, record.dataset_id)):
            raise NotFound("Dataset not found")
        return record.dataset_id
    assert record.dataset_name is not None
    sql, scope = FIND_ID_BY_NAME, (w.workspace, name_key(record.dataset_name))
    for (found,) in await w.conn.execute_fetchall(sql, scope):
        key: bytes = found
        return key
    key = ids.uuid7()
    await _insert_dataset(w, key, record.dataset_name, record.project_id, record.project_name)
    return key


async def stream_dataset_items(
    db: Database,
    workspace: str,
    name: str,
    before: bytes | None,
    limit: int,
    filters: Sequence[ItemFilter] = (),
) -> list[DatasetItem]:
    found = await db.fetch_all(FIND_ID_BY_NAME, (workspace, name_key(name)))
    if not found:
        return []
    where, params = item_filters.conditions(filters)
    sql = ITEMS_BEFORE.format(conditions=where)
    rows = await db.fetch_all(sql, (workspace, found[0][0], before or LAST_KEY, *params, limit))
    return [dataset_item(row) for row in rows]


async def page_dataset_items(
    db: Database,
    workspace: str,
    dataset_id: bytes,
    page: int,
    size: int,
    truncate: bool,
    filters: Sequence[ItemFilter] = (),
) -> tuple[list[DatasetItem], int]:
    """One page of the items that meet the filters, newest id first, and how many there are
    in all."""
    where, params = item_filters.conditions(filters)
    count_sql = COUNT_ITEMS.format(conditions=where)
    total = (await db.fetch_all(count_sql, (workspace, dataset_id, *params)))[0][0]
    offset = (page - 1) * size
    if offset >= total:
        return [], total
    sql = ITEMS_PAGE.format(conditions=where)
    rows = await db.fetch_all(sql, (workspace, dataset_id, *params, min(size, total), offset))
    return [dataset_item(row, truncate) for row in rows], total


async def items_by_id(db: Database, workspace: str, keys: Sequence[bytes]) -> dict[bytes, Row]:
    found: dict[bytes, Row] = {}
    for chunk in batched(keys, _IDS_PER_QUERY):
        sql = ITEMS_BY_ID.format(marks=marks(len(chunk)))
        found.update((row[0], row) for row in await db.fetch_all(sql, (workspace, *chunk)))
    return found


async def delete_dataset_items(
    db: Database,
    workspace: str,
    keys: Sequence[bytes],
    dataset_id: bytes | None,
    filters: Sequence[ItemFilter] = (),
) -> None:
    """The items with these ids, or the items of `dataset_id` that meet every filter; unknown
    ids are ignored."""
    async with db.transaction() as conn:
        if dataset_id is not None:
            where, params = item_filters.conditions(filters)
            sql = DELETE_DATASET_ITEMS.format(conditions=where)
            await conn.execute(sql, (workspace, dataset_id, *params))
        for chunk in batched(keys, _IDS_PER_QUERY):
            await conn.execute(DELETE_ITEMS.format(marks=marks(len(chunk))), (workspace, *chunk))
