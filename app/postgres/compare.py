"""The compare view: a page of the dataset items that some experiments have items for, each
with those items and what their traces tell (as app/sqlite/compare.py)."""

from collections.abc import Sequence

from app import ids
from app.dataset_answers import compare_rows
from app.dataset_payloads import CompareRow
from app.payloads import FullItem
from app.postgres.connection import Database
from app.postgres.datasets import items_by_id
from app.postgres.stream import full_items
from app.records import batched

_ITEMS_PER_QUERY = 500  # experiment items read at once, with their traces

# Opik's SELECT_DATASET_ITEMS_WITH_EXPERIMENT_ITEMS: one row per dataset item that has an item
# in the experiments, newest dataset item id first. The experiments are the workspace's only.
PAGE = """
SELECT dataset_item_id FROM experiment_items
WHERE workspace = $1 AND experiment_id = ANY($2::bytea[])
GROUP BY dataset_item_id ORDER BY dataset_item_id DESC LIMIT $3 OFFSET $4
"""
COUNT = """
SELECT count(DISTINCT dataset_item_id) FROM experiment_items
WHERE workspace = $1 AND experiment_id = ANY($2::bytea[])
"""
ITEMS_OF = """
SELECT id FROM experiment_items
WHERE workspace = $1 AND experiment_id = ANY($2::bytea[]) AND dataset_item_id = ANY($3::bytea[])
ORDER BY id
"""


async def compare_page(
    db: Database,
    workspace: str,
    dataset_id: bytes,
    experiments: Sequence[bytes],
    page: int,
    size: int,
    truncate: bool,
) -> tuple[list[CompareRow], int]:
    """One page of rows and the number of rows in all."""
    total: int = (await db.fetch_row(COUNT, workspace, list(experiments)))[0]
    offset = (page - 1) * size
    if offset >= total:
        return [], total
    rows = await db.fetch_all(PAGE, workspace, list(experiments), size, offset)
    dataset_items = [row[0] for row in rows]
    return await rows_of(db, workspace, dataset_id, experiments, dataset_items, truncate), total


async def rows_of(
    db: Database,
    workspace: str,
    dataset_id: bytes,
    experiments: Sequence[bytes],
    dataset_items: Sequence[bytes],
    truncate: bool,
) -> list[CompareRow]:
    """The rows of these dataset items, in their order, each with the experiments' items."""
    stored = await items_by_id(db, workspace, dataset_items)
    found = await db.fetch_all(ITEMS_OF, workspace, list(experiments), list(dataset_items))
    # Every item of the page, by id, a chunk at a time, then put in its row.
    by_dataset_item: dict[bytes, list[FullItem]] = {key: [] for key in dataset_items}
    for chunk in batched([row[0] for row in found], _ITEMS_PER_QUERY):
        for full in await full_items(db, workspace, chunk, truncate):
            owner = ids.parse(full.dataset_item_id)
            assert owner is not None
            by_dataset_item[owner].append(full)
    return compare_rows(dataset_id, stored, by_dataset_item, truncate)
