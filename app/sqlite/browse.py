"""Reads only the web UI makes (app/ui/): the workspaces and datasets to pick from, the dataset
items of a comparison that match a text or differ between experiments, a trace's spans, and
the values behind the score and duration histograms. Reads only, each on a reader."""

from collections.abc import Sequence
from typing import Any

from app.dataset_answers import dataset
from app.dataset_payloads import Dataset
from app.histograms import Histograms
from app.records import batched
from app.sqlite import summaries
from app.sqlite.connection import Database
from app.sqlite.datasets import _DATASET
from app.sqlite.span_reads import spans
from app.sqlite.summaries import Summaries
from app.sqlite.tables import marks
from app.trace_answers import MAX_TRACE_SPANS
from app.trace_payloads import Span

MAX_DATASETS = 500
_KEYS_PER_QUERY = 5000

WORKSPACES = """
SELECT workspace FROM datasets UNION SELECT workspace FROM experiments ORDER BY 1 LIMIT ?
"""
# Newest experiment first, then newest dataset: where the last run went is on top.
# The one of the newest experiment first (column 14; datasets without one last), then the
# newest dataset: where the last run went is on top.
DATASETS = _DATASET + "WHERE d.workspace = ? ORDER BY 14 DESC, 1 DESC LIMIT ?"

# The dataset items some experiments have items for, as app/sqlite/compare.py pages them, as
# the page shows them: per dataset item and experiment one cell, its first item (the smallest
# id, as rows_of orders them) with its trace's input and output...
_CELLS = """
WITH shown AS (
    SELECT dataset_item_id AS d, experiment_id AS e, min(id) AS item FROM experiment_items
    WHERE workspace = ? AND experiment_id IN ({marks}) GROUP BY dataset_item_id, experiment_id
), cells AS (
    SELECT s.d AS d, t.input AS input, t.output AS output{scores}
    FROM shown AS s JOIN experiment_items AS i ON i.id = s.item
    LEFT JOIN traces AS t ON t.id = i.trace_id AND t.workspace = i.workspace
)
SELECT c.d, count(*) OVER () FROM cells AS c{join}
GROUP BY c.d HAVING {having}
ORDER BY c.d DESC LIMIT ? OFFSET ?
"""
# ...and, for the differences, each score of a name as the cell shows it: its authors' average
# to 4 significant digits (app/ui/render.py's `number`), of a stored trace only.
_CELL_SCORES = """,
    CASE WHEN t.id IS NOT NULL THEN (
        SELECT json_group_array(json_array(name, value)) FROM (
            SELECT f.name AS name, printf('%.4g', avg(f.value)) AS value FROM feedback_scores AS f
            WHERE f.trace_id = i.trace_id AND f.workspace = i.workspace
            GROUP BY f.name ORDER BY f.name)
    ) END AS scores"""
_DATASET_ITEM = """
LEFT JOIN dataset_items AS di ON di.id = c.d AND di.workspace = ?"""
# A text (ASCII case ignored) in a cell's input or output, or in the dataset item.
_HOLDS = """max(instr(lower(coalesce(c.input, '')), lower(?))
    + instr(lower(coalesce(c.output, '')), lower(?))
    + instr(lower(coalesce(di.data, '')), lower(?))) > 0"""
# The experiments differ where one has no item, the outputs are not all the same, or a score
# is missing from one cell or shows another value.
_DIFFER = """(count(*) < ? OR count(DISTINCT coalesce(c.output, '')) > 1
    OR count(DISTINCT coalesce(c.scores, '')) > 1)"""
SPANS_OF_TRACE = """
SELECT id FROM spans WHERE workspace = ? AND trace_id = ? AND partial = 0
ORDER BY start_time, id LIMIT ?
"""


async def workspaces(db: Database, limit: int) -> list[str]:
    """The workspaces that hold a dataset or an experiment, by name."""
    return [row[0] for row in await db.fetch_all(WORKSPACES, (limit,))]


async def datasets(db: Database, workspace: str) -> list[Dataset]:
    """The workspace's datasets with their counts, the one of the newest experiment first."""
    return [dataset(row) for row in await db.fetch_all(DATASETS, (workspace, MAX_DATASETS))]


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
    params: list[Any] = [workspace, *experiments]
    join, conditions = "", []
    if text:
        join = _DATASET_ITEM
        params.append(workspace)
        conditions.append(_HOLDS)
    having: list[Any] = [text, text, text] if text else []
    if differences:
        conditions.append(_DIFFER)
        having.append(len(experiments))
    sql = _CELLS.format(
        marks=marks(len(experiments)),
        scores=_CELL_SCORES if differences else "",
        join=join,
        having=" AND ".join(conditions) or "1",
    )
    rows = await db.fetch_all(sql, [*params, *having, size, (page - 1) * size])
    if rows:
        return [row[0] for row in rows], rows[0][1]
    if page == 1:
        return [], 0
    # Past the last page: the number alone, from the first.
    first = await db.fetch_all(sql, [*params, *having, 1, 0])
    return [], first[0][1] if first else 0


async def trace_spans(db: Database, workspace: str, trace_id: bytes) -> list[Span]:
    """The trace's spans, earliest first, each as GET /spans/{id} answers it."""
    rows = await db.fetch_all(SPANS_OF_TRACE, (workspace, trace_id, MAX_TRACE_SPANS))
    return await spans(db, workspace, [row[0] for row in rows]) if rows else []


async def histograms(
    db: Database, kept: Summaries, workspace: str, experiments: Sequence[bytes]
) -> dict[bytes, Histograms]:
    """Each experiment's histograms: those its kept summary holds, the others computed here,
    on the reader, and `kept` keeps them (with the whole summary) for the next read."""
    found: dict[bytes, Histograms] = {}
    for chunk in batched(experiments, _KEYS_PER_QUERY):
        sql = summaries.KEPT.format(marks=marks(len(chunk)))
        for key, blob in await db.fetch_all(sql, (workspace, *chunk)):
            charts = summaries.decode(blob).histograms
            if charts is not None:
                found[key] = charts
        missing = [key for key in chunk if key not in found]
        if missing:
            found |= await summaries.histograms(db.fetch_all, workspace, missing)
            kept.keep(workspace, missing)
    return found
