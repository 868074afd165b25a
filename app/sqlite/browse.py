"""Reads only the web UI makes (app/ui/): the workspaces and datasets to pick from, the dataset
items of a comparison that match a text or differ between experiments, a trace's spans, and
the values behind the score and duration histograms. Reads only, each on a reader."""

from collections.abc import Sequence
from typing import Any

from app.dataset_payloads import Dataset
from app.records import batched
from app.sqlite.connection import Database
from app.sqlite.datasets import _DATASET, _dataset
from app.sqlite.span_reads import get_span
from app.sqlite.tables import marks
from app.trace_payloads import Span

MAX_DATASETS = 500
MAX_SPANS = 500
_KEYS_PER_QUERY = 5000

WORKSPACES = """
SELECT workspace FROM datasets UNION SELECT workspace FROM experiments ORDER BY 1 LIMIT ?
"""
# Newest experiment first, then newest dataset: where the last run went is on top.
# The one of the newest experiment first (column 14; datasets without one last), then the
# newest dataset: where the last run went is on top.
DATASETS = _DATASET + "WHERE d.workspace = ? ORDER BY 14 DESC, 1 DESC LIMIT ?"

# The dataset items some experiments have items for, as app/sqlite/compare.py pages them,
# narrowed to those whose input, output or dataset item hold a text (ASCII case ignored)...
_MATCHING = """
SELECT i.dataset_item_id FROM experiment_items AS i
LEFT JOIN traces AS t ON t.id = i.trace_id AND t.workspace = i.workspace
LEFT JOIN dataset_items AS d ON d.id = i.dataset_item_id AND d.workspace = i.workspace
WHERE i.workspace = ? AND i.experiment_id IN ({marks}){text}
GROUP BY i.dataset_item_id{having}
"""
_TEXT = """ AND (instr(lower(coalesce(t.input, '')), lower(?)) > 0
  OR instr(lower(coalesce(t.output, '')), lower(?)) > 0
  OR instr(lower(coalesce(d.data, '')), lower(?)) > 0)"""
# ...or to those where the experiments differ: one lacks an item, the outputs are not all the
# same, or a score is missing from one or takes different values.
_DIFFERENT = """
HAVING count(DISTINCT i.experiment_id) < ? OR count(DISTINCT coalesce(t.output, '')) > 1
  OR EXISTS (
    SELECT 1 FROM experiment_items AS j
    JOIN feedback_scores AS f ON f.trace_id = j.trace_id AND f.workspace = j.workspace
    WHERE j.workspace = i.workspace AND j.dataset_item_id = i.dataset_item_id
      AND j.experiment_id IN ({marks})
    GROUP BY f.name HAVING count(DISTINCT f.value) > 1 OR count(DISTINCT j.experiment_id) < ?)
"""
SPANS_OF_TRACE = """
SELECT id FROM spans WHERE workspace = ? AND trace_id = ? AND partial = 0
ORDER BY start_time, id LIMIT ?
"""
# Only items whose trace is stored, as the aggregates count them (app/sqlite/summaries.py);
# an item's value of a name is its authors' average.
SCORE_VALUES = """
SELECT i.experiment_id, f.name, avg(f.value) FROM experiment_items AS i
JOIN traces AS t ON t.id = i.trace_id AND t.workspace = i.workspace
JOIN feedback_scores AS f ON f.trace_id = i.trace_id AND f.workspace = i.workspace
WHERE i.workspace = ? AND i.experiment_id IN ({marks})
GROUP BY i.id, f.name
"""
DURATIONS = """
SELECT i.experiment_id, (t.end_time / 1000 - t.start_time / 1000) / 1000.0
FROM experiment_items AS i
JOIN traces AS t ON t.id = i.trace_id AND t.workspace = i.workspace
WHERE i.workspace = ? AND i.experiment_id IN ({marks}) AND t.end_time IS NOT NULL
"""


async def workspaces(db: Database, limit: int) -> list[str]:
    """The workspaces that hold a dataset or an experiment, by name."""
    return [row[0] for row in await db.fetch_all(WORKSPACES, (limit,))]


async def datasets(db: Database, workspace: str) -> list[Dataset]:
    """The workspace's datasets with their counts, the one of the newest experiment first."""
    return [_dataset(row) for row in await db.fetch_all(DATASETS, (workspace, MAX_DATASETS))]


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
    `differences`, where the experiments differ; and their number in all."""
    m = marks(len(experiments))
    params: list[Any] = [workspace, *experiments]
    text_sql = having = ""
    if text:
        text_sql = _TEXT
        params += [text, text, text]
    if differences:
        having = _DIFFERENT.format(marks=m)
        params += [len(experiments), *experiments, len(experiments)]
    inner = _MATCHING.format(marks=m, text=text_sql, having=having)
    total = (await db.fetch_all(f"SELECT count(*) FROM ({inner})", params))[0][0]
    sql = f"{inner} ORDER BY i.dataset_item_id DESC LIMIT ? OFFSET ?"
    rows = await db.fetch_all(sql, [*params, size, (page - 1) * size])
    return [row[0] for row in rows], total


async def trace_spans(db: Database, workspace: str, trace_id: bytes) -> list[Span]:
    """The trace's spans, earliest first, each as GET /spans/{id} answers it."""
    rows = await db.fetch_all(SPANS_OF_TRACE, (workspace, trace_id, MAX_SPANS))
    spans = [await get_span(db, workspace, row[0]) for row in rows]
    return [span for span in spans if span is not None]


async def distributions(
    db: Database, workspace: str, experiments: Sequence[bytes]
) -> tuple[dict[bytes, dict[str, list[float]]], dict[bytes, list[float]]]:
    """Every feedback score's values per experiment and name, and the traces' durations in
    milliseconds per experiment."""
    scores: dict[bytes, dict[str, list[float]]] = {}
    durations: dict[bytes, list[float]] = {}
    for chunk in batched(experiments, _KEYS_PER_QUERY):
        params = (workspace, *chunk)
        for e, name, value in await db.fetch_all(
            SCORE_VALUES.format(marks=marks(len(chunk))), params
        ):
            scores.setdefault(e, {}).setdefault(name, []).append(value)
        for e, ms in await db.fetch_all(DURATIONS.format(marks=marks(len(chunk))), params):
            durations.setdefault(e, []).append(ms)
    return scores, durations
