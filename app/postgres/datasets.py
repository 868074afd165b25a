"""Datasets and their items: create, find by name or id, delete; items upserted by id,
streamed and paged newest id first, deleted (as app/sqlite/datasets.py)."""

from collections.abc import Sequence
from typing import Any

from app import ids
from app.dataset_answers import dataset, dataset_item
from app.dataset_payloads import Dataset, DatasetItem
from app.dataset_records import DatasetItemsRecord, DatasetRecord, ItemFilter
from app.postgres import item_filters
from app.postgres.connection import Database
from app.postgres.experiments import project_of
from app.postgres.item_filters import Params
from app.postgres.stream import LAST_KEY
from app.postgres.write import Write
from app.records import Conflict, NotFound, name_key

# Counts are read with the dataset, as Opik's enrichment does on retrieve and get by id.
DATASET_COLUMNS = """
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
DATASET_BY_ID = DATASET_COLUMNS + "WHERE d.workspace = $1 AND d.id = $2"
DATASET_BY_NAME = DATASET_COLUMNS + "WHERE d.workspace = $1 AND d.name_key = $2"
FIND_ID_BY_NAME = "SELECT id FROM datasets WHERE workspace = $1 AND name_key = $2"
FIND_ID = "SELECT id FROM datasets WHERE workspace = $1 AND id = $2"
FIND_ANY_ID = "SELECT 1 FROM datasets WHERE id = $1"
# A name or an id another transaction takes at the same moment is left alone, and RETURNING
# says so: the reads before it cannot see that transaction's row (items.py's rule).
INSERT_DATASET = """
INSERT INTO datasets (id, workspace, name, name_key, project_id, description, tags, type,
                      visibility, created_at, created_by, last_updated_at, last_updated_by)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $10, $11)
ON CONFLICT DO NOTHING RETURNING id
"""
DELETE_DATASET = "DELETE FROM datasets WHERE workspace = $1 AND id = $2"

_ITEM_COLUMNS = """
SELECT id, trace_id, span_id, source, data, description, tags, evaluators, execution_policy,
       dataset_id, created_at, last_updated_at, created_by, last_updated_by
FROM dataset_items
"""
# {conditions}: item_filters.conditions, each after AND, their parameters from $4 (the stream)
# or $3 (the page and the count) on; then the limit (and the offset).
ITEMS_BEFORE = (
    _ITEM_COLUMNS + "WHERE workspace = $1 AND dataset_id = $2 AND id < $3{conditions}"
    " ORDER BY id DESC LIMIT {limit}"
)
ITEMS_PAGE = (
    _ITEM_COLUMNS + "WHERE workspace = $1 AND dataset_id = $2{conditions}"
    " ORDER BY id DESC LIMIT {limit} OFFSET {offset}"
)
COUNT_ITEMS = (
    "SELECT count(*) FROM dataset_items WHERE workspace = $1 AND dataset_id = $2{conditions}"
)
ITEMS_BY_ID = _ITEM_COLUMNS + "WHERE workspace = $1 AND id = ANY($2::bytea[])"
# The whole batch in one statement; an id of another workspace is left alone by the WHERE,
# and so missing from RETURNING, which makes the 409 (items.py's UPSERT_ITEMS).
UPSERT_ITEMS = """
INSERT INTO dataset_items AS i (id, workspace, dataset_id, source, trace_id, span_id, data,
                                description, tags, evaluators, execution_policy, created_at,
                                created_by, last_updated_at, last_updated_by)
SELECT u.id, $1, $2, u.source, u.trace_id, u.span_id, u.data, u.description, u.tags,
       u.evaluators, u.execution_policy, $3, $4, $3, $4
FROM unnest($5::bytea[], $6::text[], $7::bytea[], $8::bytea[], $9::text[], $10::text[],
            $11::text[], $12::text[], $13::text[])
    AS u(id, source, trace_id, span_id, data, description, tags, evaluators, execution_policy)
ON CONFLICT (id) DO UPDATE SET
    dataset_id = excluded.dataset_id,
    source = excluded.source,
    trace_id = excluded.trace_id,
    span_id = excluded.span_id,
    data = excluded.data,
    description = excluded.description,
    tags = excluded.tags,
    evaluators = excluded.evaluators,
    execution_policy = excluded.execution_policy,
    last_updated_at = excluded.last_updated_at,
    last_updated_by = excluded.last_updated_by
WHERE i.workspace = excluded.workspace
RETURNING i.id
"""
DELETE_ITEMS = "DELETE FROM dataset_items WHERE workspace = $1 AND id = ANY($2::bytea[])"
DELETE_DATASET_ITEMS = (
    "DELETE FROM dataset_items WHERE workspace = $1 AND dataset_id = $2{conditions}"
)


async def create_dataset(db: Database, workspace: str, user: str, record: DatasetRecord) -> None:
    async with db.transaction() as conn:
        w = Write(conn, workspace, user)
        # Read first so that the name is named before the id, as on SQLite; the insert's
        # RETURNING is what refuses either when two creates race.
        if await conn.fetchval(FIND_ID_BY_NAME, workspace, name_key(record.name)) is not None:
            raise Conflict.dataset_exists(record.name)
        if await conn.fetchval(FIND_ANY_ID, record.id) is not None:
            raise Conflict.foreign("Dataset", record.id)
        if not await _insert_dataset(w, record.id, record.name, record.project_id,
                                     record.project_name, record):  # fmt: skip
            if await conn.fetchval(FIND_ID_BY_NAME, workspace, name_key(record.name)):
                raise Conflict.dataset_exists(record.name)
            raise Conflict.foreign("Dataset", record.id)


async def _insert_dataset(
    w: Write,
    key: bytes,
    name: str,
    project_id: bytes | None,
    project_name: str | None,
    record: DatasetRecord | None = None,
) -> bool:
    """Whether the dataset was made: not when its name or its id was taken meanwhile."""
    project = await project_of(w, project_id, project_name)
    made = await w.conn.fetchval(
        INSERT_DATASET,
        key,
        w.workspace,
        name,
        name_key(name),
        project,
        None if record is None else record.description,
        None if record is None else record.tags,
        "dataset" if record is None else record.type,
        "private" if record is None else record.visibility,
        w.now,
        w.user,
    )
    return made is not None


async def find_dataset(db: Database, workspace: str, name: str) -> Dataset | None:
    row = await db.fetch_row(DATASET_BY_NAME, workspace, name_key(name))
    return None if row is None else dataset(row)


async def get_dataset(db: Database, workspace: str, key: bytes) -> Dataset | None:
    row = await db.fetch_row(DATASET_BY_ID, workspace, key)
    return None if row is None else dataset(row)


async def delete_dataset(db: Database, workspace: str, key: bytes) -> None:
    """The dataset; its items stay, as in Opik (experiments may refer to them)."""
    async with db.transaction() as conn:
        await conn.execute(DELETE_DATASET, workspace, key)


async def upsert_dataset_items(
    db: Database, workspace: str, user: str, record: DatasetItemsRecord
) -> None:
    """Every item or none; NotFound when `dataset_id` names no dataset of the workspace."""
    async with db.transaction() as conn:
        w = Write(conn, workspace, user)
        dataset_id = await _dataset_of(w, record)
        latest = {item.id: item for item in record.items}  # a repeated id: the last one wins
        await w.refuse_foreign("dataset_items", list(latest), "Dataset item")
        await w.refuse_foreign(
            "traces", [i.trace_id for i in latest.values() if i.trace_id], "Trace"
        )
        await w.refuse_foreign("spans", [i.span_id for i in latest.values() if i.span_id], "Span")
        # In id order: two batches that share ids lock their rows in one order (items.py).
        items = sorted(latest.values(), key=lambda i: i.id)
        written = await conn.fetch(
            UPSERT_ITEMS,
            workspace,
            dataset_id,
            w.now,
            user,
            [i.id for i in items],
            [i.source for i in items],
            [i.trace_id for i in items],
            [i.span_id for i in items],
            [i.data for i in items],
            [i.description for i in items],
            [i.tags for i in items],
            [i.evaluators for i in items],
            [i.execution_policy for i in items],
        )
        if len(written) != len(items):
            # Rolled back by the raise: the batch is stored whole or not at all.
            kept = {row[0] for row in written}
            raise Conflict.foreign("Dataset item", min(i.id for i in items if i.id not in kept))


async def _dataset_of(w: Write, record: DatasetItemsRecord) -> bytes:
    if record.dataset_id is not None:
        if await w.conn.fetchval(FIND_ID, w.workspace, record.dataset_id) is None:
            raise NotFound("Dataset not found")
        return record.dataset_id
    assert record.dataset_name is not None
    key_of_name = name_key(record.dataset_name)
    found: bytes | None = await w.conn.fetchval(FIND_ID_BY_NAME, w.workspace, key_of_name)
    if found is not None:
        return found
    key = ids.uuid7()
    if await _insert_dataset(w, key, record.dataset_name, record.project_id, record.project_name):
        return key
    # Another write made the name at the same moment: the items go into its dataset.
    made: bytes = await w.conn.fetchval(FIND_ID_BY_NAME, w.workspace, key_of_name)
    return made


async def stream_dataset_items(
    db: Database,
    workspace: str,
    name: str,
    before: bytes | None,
    limit: int,
    filters: Sequence[ItemFilter] = (),
) -> list[DatasetItem]:
    found = await db.fetch_row(FIND_ID_BY_NAME, workspace, name_key(name))
    if found is None:
        return []
    params = Params(workspace, found[0], before or LAST_KEY)
    where = item_filters.conditions(filters, params)
    sql = ITEMS_BEFORE.format(conditions=where, limit=params.add(limit))
    return [dataset_item(row) for row in await db.fetch_all(sql, *params.values)]


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
    params = Params(workspace, dataset_id)
    where = item_filters.conditions(filters, params)
    total: int = (await db.fetch_row(COUNT_ITEMS.format(conditions=where), *params.values))[0]
    offset = (page - 1) * size
    if offset >= total:
        return [], total
    limit, start = params.add(min(size, total)), params.add(offset)
    sql = ITEMS_PAGE.format(conditions=where, limit=limit, offset=start)
    rows = await db.fetch_all(sql, *params.values)
    return [dataset_item(row, truncate) for row in rows], total


async def items_by_id(db: Database, workspace: str, keys: Sequence[bytes]) -> dict[bytes, Any]:
    """The rows of the workspace's dataset items of these ids, by id."""
    return {row[0]: row for row in await db.fetch_all(ITEMS_BY_ID, workspace, list(keys))}


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
            params = Params(workspace, dataset_id)
            sql = DELETE_DATASET_ITEMS.format(conditions=item_filters.conditions(filters, params))
            await conn.execute(sql, *params.values)
        if keys:
            await conn.execute(DELETE_ITEMS, workspace, list(keys))
