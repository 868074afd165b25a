"""The compare view: a page of the dataset items that some experiments have items for, each
with those items and what their traces tell (Opik's findDatasetItemsWithExperimentItems)."""

from collections.abc import Sequence

from app import dataset_answers, ids
from app.dataset_payloads import CompareRow
from app.payloads import FullItem
from app.records import batched
from app.sqlite.connection import Database
from app.sqlite.datasets import items_by_id
from app.sqlite.stream import full_items
from app.sqlite.tables import marks

_IDS_PER_QUERY = 500

# Opik's SELECT_DATASET_ITEMS_WITH_EXPERIMENT_ITEMS: one row per dataset item that has an item
# in the experiments, newest dataset item id first. The experiments are the workspace's only.
PAGE = """
SELECT dataset_item_id FROM experiment_items
WHERE workspace = ? AND experiment_id IN ({marks})
GROUP BY dataset_item_id ORDER BY dataset_item_id DESC LIMIT ? OFFSET ?
"""
COUNT = """
SELECT count(DISTINCT dataset_item_id) FROM experiment_items
WHERE workspace = ? AND experiment_id IN ({marks})
"""
ITEMS_OF = """
SELECT id FROM experiment_items
WHERE workspace = ? AND experiment_id IN ({marks}) AND dataset_item_id IN ({items})
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
    scope = (workspace, *experiments)
    experiment_marks = marks(len(experiments))
    total = (await db.fetch_all(COUNT.format(marks=experiment_marks), scope))[0][0]
    offset = (page - 1) * size
    if offset >= total:
        return [], total
    rows = await db.fetch_all(PAGE.format(marks=experiment_marks), (*scope, size, offset))
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
    scope = (workspace, *experiments)
    experiment_marks = marks(len(experiments))
    stored = await items_by_id(db, workspace, dataset_items)
    keys: list[bytes] = []
    for chunk in batched(dataset_items, _IDS_PER_QUERY):
        sql = ITEMS_OF.format(marks=experiment_marks, items=marks(len(chunk)))
        keys += [found for (found,) in await db.fetch_all(sql, (*scope, *chunk))]
    # Every item of the page read at once, a chunk of ids at a time, then put in its row.
    by_dataset_item: dict[bytes, list[FullItem]] = {key: [] for key in dataset_items}
    for chunk in batched(sorted(keys), _IDS_PER_QUERY):
        for full in await full_items(db, workspace, chunk, truncate):
            owner = ids.parse(full.dataset_item_id)
            assert owner is not None
            by_dataset_item[owner].append(full)
    return dataset_answers.compare_rows(dataset_id, stored, by_dataset_item, truncate)
