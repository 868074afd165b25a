"""What the pages read, through the store's read verbs only: query parameters made safe, the
experiments a page names, a page of compare rows (searched, or the differences only) and the
histograms of some experiments."""

from collections.abc import Sequence
from dataclasses import dataclass, field

from msgspec import UnsetType
from starlette.requests import Request

from app import ids
from app.dataset_payloads import CompareRow
from app.experiment_payloads import Experiment
from app.payloads import FeedbackScore, FullItem
from app.records import ExperimentQuery
from app.store import Store
from app.ui import charts
from app.ui.render import BadQuery

MAX_COMPARED = 8
MAX_TEXT_CHARS = 200
MAX_PAGE = 1_000_000
MAX_ROWS_PER_PAGE = 100


def _whole_number(request: Request, name: str, default: int, top: int) -> int:
    text = request.query_params.get(name)
    if text is None or text == "":
        return default
    # ASCII digits only: str.isdigit() takes "²", which int() refuses; and a few of them,
    # since int() refuses more than 4,300 digits too.
    if not (text.isascii() and text.isdigit() and len(text) <= len(str(top))) or not (
        1 <= int(text) <= top
    ):
        raise BadQuery(f"{name}: a whole number from 1 to {top:,}, not “{text[:40]}”.")
    return int(text)


def page_number(request: Request) -> int:
    return _whole_number(request, "page", 1, MAX_PAGE)


def page_size(request: Request, default: int) -> int:
    """The rows a page shows: `size`, at most MAX_ROWS_PER_PAGE."""
    return _whole_number(request, "size", default, MAX_ROWS_PER_PAGE)


def text_param(request: Request, name: str) -> str | None:
    text = request.query_params.get(name, "").strip()
    if len(text) > MAX_TEXT_CHARS:
        raise BadQuery(f"{name}: at most {MAX_TEXT_CHARS} characters.")
    return text or None


def switch(request: Request, name: str) -> bool:
    """A checkbox: `1` on; absent, empty or `0` off."""
    text = request.query_params.get(name, "")
    if text not in ("", "0", "1"):
        raise BadQuery(f"{name}: 1 or 0, not “{text[:40]}”.")
    return text == "1"


def path_key(request: Request) -> bytes | None:
    return ids.parse(request.path_params["id"])


def experiment_keys(request: Request) -> list[bytes]:
    """The `experiments` of the query (repeated, or comma-separated), each once, in order."""
    keys: list[bytes] = []
    for value in request.query_params.getlist("experiments"):
        for text in value.split(","):
            if not text.strip():
                continue
            key = ids.parse(text.strip())
            if key is None:
                raise BadQuery(f"experiments: “{text.strip()[:40]}” is not an experiment id.")
            if key not in keys:
                keys.append(key)
    if len(keys) > MAX_COMPARED:
        raise BadQuery(f"experiments: at most {MAX_COMPARED} at once.")
    return keys


async def experiments_of(store: Store, workspace: str, keys: Sequence[bytes]) -> list[Experiment]:
    """The experiments of `keys` the workspace holds, in the order of `keys`."""
    found, _ = await store.find_experiments(
        workspace, ExperimentQuery(limit=len(keys), ids=tuple(keys))
    )
    by_key = {ids.parse(e.id): e for e in found}
    return [by_key[key] for key in keys if key in by_key]


async def rows_page(
    store: Store,
    workspace: str,
    dataset_id: bytes,
    keys: Sequence[bytes],
    text: str | None,
    differences: bool,
    page: int,
    size: int,
) -> tuple[list[CompareRow], int]:
    """A page of compare rows: the store's compare view, or with a text or the differences
    only, the dataset items that match, then their rows."""
    if text is None and not differences:
        return await store.compare_dataset_items(workspace, dataset_id, keys, page, size, True)
    found, total = await store.matching_dataset_items(
        workspace, keys, text, differences, page, size
    )
    if not found:
        return [], total
    return await store.compare_rows(workspace, dataset_id, keys, found, True), total


async def histograms(
    store: Store, workspace: str, experiments: Sequence[Experiment]
) -> list[charts.Metric]:
    keys = [(ids.parse(e.id) or b"", e.name) for e in experiments]
    return charts.metrics(keys, await store.histograms(workspace, [key for key, _ in keys]))


def scores_of(item: FullItem) -> dict[str, FeedbackScore]:
    if isinstance(item.feedback_scores, UnsetType):
        return {}
    return {s.name: s for s in item.feedback_scores}


def averages(e: Experiment) -> dict[str, float]:
    if isinstance(e.feedback_scores, UnsetType):
        return {}
    return {s.name: s.value for s in e.feedback_scores}


@dataclass
class Cell:
    """One experiment's items for one dataset item, with each score's change against the
    baseline's (none for the baseline itself)."""

    items: list[FullItem]
    scores: dict[str, FeedbackScore] = field(default_factory=dict)
    changes: dict[str, float] = field(default_factory=dict)
    same_output: bool = True


def cells(row: CompareRow, experiments: Sequence[Experiment], baseline: int) -> list[Cell]:
    """A cell per experiment, in their order."""
    found = []
    for e in experiments:
        items = [i for i in row.experiment_items if i.experiment_id == e.id]
        found.append(Cell(items, scores_of(items[0]) if items else {}))
    base = found[baseline]
    base_output = _output(base.items[0]) if base.items else None
    for n, cell in enumerate(found):
        if n == baseline or not cell.items:
            continue
        for name, score in cell.scores.items():
            if name in base.scores:
                cell.changes[name] = score.value - base.scores[name].value
        cell.same_output = _output(cell.items[0]) == base_output
    return found


def _output(item: FullItem) -> bytes | None:
    return None if isinstance(item.output, UnsetType) else bytes(item.output)
