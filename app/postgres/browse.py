"""Reads only the web UI makes (app/ui/): the workspaces and datasets to pick from, and the
dataset items of a comparison that match a text or differ between experiments (as
app/sqlite/browse.py)."""

from collections.abc import Sequence

from app.dataset_answers import dataset
from app.dataset_payloads import Dataset
from app.postgres.connection import Database
from app.postgres.datasets import DATASET_COLUMNS
from app.postgres.item_filters import Params, folded, searched

MAX_DATASETS = 500

WORKSPACES = """
SELECT workspace FROM datasets UNION SELECT workspace FROM experiments ORDER BY 1 LIMIT $1
"""
# The one of the newest experiment first (column 14; datasets without one last, where SQLite
# puts its NULLs in a descending order), then the newest dataset.
DATASETS = DATASET_COLUMNS + "WHERE d.workspace = $1 ORDER BY 14 DESC NULLS LAST, 1 DESC LIMIT $2"

# The dataset items some experiments have items for, as app/postgres/compare.py pages them, as
# the page shows them: per dataset item and experiment one cell, its first item (the smallest
# id, as rows_of orders them) with its trace's input and output...
_CELLS = """
WITH shown AS (
    SELECT DISTINCT ON (dataset_item_id, experiment_id) dataset_item_id AS d, id AS item
    FROM experiment_items
    WHERE workspace = $1 AND experiment_id = ANY($2::bytea[])
    ORDER BY dataset_item_id, experiment_id, id
), cells AS (
    SELECT s.d AS d, t.input AS input, t.output AS output{scores}
    FROM shown AS s JOIN experiment_items AS i ON i.id = s.item
    LEFT JOIN traces AS t ON t.id = i.trace_id AND t.workspace = i.workspace
)
SELECT c.d, count(*) OVER () FROM cells AS c{join}
GROUP BY c.d HAVING {having}
ORDER BY c.d DESC LIMIT {limit} OFFSET {offset}
"""
# ...and, for the differences, each score of a name as the cell shows it: its authors' average
# to 4 significant digits (app/ui/render.py's `number`, '%.4g': to_char's EEEE is the C
# library's '%.3e', the same digits), of a stored trace only; '[]' for a trace without scores.
_CELL_SCORES = """,
    CASE WHEN t.id IS NOT NULL THEN (
        SELECT coalesce(json_agg(json_build_array(name, value) ORDER BY name)::text, '[]')
        FROM (
            SELECT f.name AS name, to_char(avg(f.value), '9.999EEEE') AS value
            FROM feedback_scores AS f
            WHERE f.trace_id = i.trace_id AND f.workspace = i.workspace
            GROUP BY f.name) AS s
    ) END AS scores"""
_DATASET_ITEM = """
LEFT JOIN dataset_items AS di ON di.id = c.d AND di.workspace = $1"""
# A text (ASCII case ignored) in a cell's input or output, or in the dataset item.
_HOLDS = (
    """bool_or(strpos({input}, {text}) + strpos({output}, {text}) + strpos({data}, {text}) > 0)"""
)
# The experiments differ where one has no item, the outputs are not all the same, or a score
# is missing from one cell or shows another value.
_DIFFER = """(count(*) < {experiments} OR count(DISTINCT coalesce(c.output, '')) > 1
    OR count(DISTINCT coalesce(c.scores, '')) > 1)"""


async def workspaces(db: Database, limit: int) -> list[str]:
    """The workspaces that hold a dataset or an experiment, by name."""
    return [row[0] for row in await db.fetch_all(WORKSPACES, limit)]


async def datasets(db: Database, workspace: str) -> list[Dataset]:
    """The workspace's datasets with their counts, the one of the newest experiment first."""
    return [dataset(row) for row in await db.fetch_all(DATASETS, workspace, MAX_DATASETS)]


async def matching_items(
    db: Database,
    workspace: str,
    experiments: Sequence[bytes],
    text: str | None,
    differences: bool,
    page: int,
    size: int,
) -> tuple[list[bytes], int]:
    """A page of the dataset items (newest id first) that hold `text` and, with
    `differences`, where the experiments differ; and their number in all. One statement over
    the experiments' items: the count rides along each row of the page."""
    params = Params(workspace, list(experiments))
    join, conditions = "", []
    if text:
        join = _DATASET_ITEM
        mark = folded(f"{params.add(searched(text))}::text")
        conditions.append(_HOLDS.format(
            text=mark, input=folded("coalesce(c.input, '')"),
            output=folded("coalesce(c.output, '')"), data=folded("coalesce(di.data, '')"),
        ))  # fmt: skip
    if differences:
        conditions.append(_DIFFER.format(experiments=params.add(len(experiments))))
    bounds = Params(*params.values)
    sql = _CELLS.format(
        scores=_CELL_SCORES if differences else "",
        join=join,
        having=" AND ".join(conditions) or "true",
        limit=bounds.add(size),
        offset=bounds.add((page - 1) * size),
    )
    rows = await db.fetch_all(sql, *bounds.values)
    if rows:
        return [row[0] for row in rows], rows[0][1]
    if page == 1:
        return [], 0
    # Past the last page: the number alone, from the first.
    first = await db.fetch_all(sql, *params.values, 1, 0)
    return [], first[0][1] if first else 0
