"""An experiment as the API answers it, from what any engine reads: its stored row and its
aggregates (opik-reference/experiments.md §2.2), so that both engines answer alike."""

from collections.abc import Callable
from typing import Any

import msgspec
from msgspec import UNSET, Raw, UnsetType

from app import clock, ids
from app.experiment_payloads import Duration, ScoreAverage


def id_or_unset(key: bytes | None) -> str | UnsetType:
    return UNSET if key is None else ids.to_str(key)


def raw_or_unset(text: str | None) -> Raw | UnsetType:
    return UNSET if text is None else Raw(text.encode())


class Aggregates(msgspec.Struct, array_like=True, frozen=True):
    """What an engine's statements found for one experiment, as the database gave it (ints
    stay ints): `shown` turns it into the answer's fields."""

    trace_count: int = 0
    dataset_item_count: int = 0
    feedback_scores: list[tuple[str, float]] = []
    duration: tuple[float, float, float] | None = None  # p50, p90, p99 in ms
    cost: float | None = None
    cost_avg: float | None = None
    usage: dict[str, float] = {}


def number(value: float) -> float:
    """A JSON number in its shortest form: 0 rather than 0.0 (contract, "Numbers are plain
    JSON numbers")."""
    if value.is_integer() and abs(value) < 2**53:
        return int(value)
    return value


def _positive(value: float | None) -> Any:
    return UNSET if value is None or value <= 0 else number(value)


def _tags(text: str | None) -> Any:
    return UNSET if text is None or text.strip() == "[]" else raw_or_unset(text)


# The columns of an experiment's row, by Experiment's field (each engine's EXPERIMENT_ROWS
# selects them in this order), and how each shows in the answer.
STORED = [
    "id",
    "dataset_name",
    "dataset_id",
    "project_id",
    "project_name",
    "name",
    "metadata",
    "tags",
    "type",
    "evaluation_method",
    "optimization_id",
    "created_at",
    "last_updated_at",
    "created_by",
    "last_updated_by",
    "status",
    "experiment_scores",
    "prompt_version",
    "prompt_versions",
    "dataset_version_id",
]
SHOWN: tuple[Callable[[Any], Any], ...] = (
    ids.to_str,
    lambda name: UNSET if name is None else name,
    ids.to_str,
    id_or_unset,
    lambda name: UNSET if name is None else name,
    str,
    raw_or_unset,
    _tags,
    str,
    str,
    id_or_unset,
    clock.format_instant,
    clock.format_instant,
    str,
    str,
    lambda status: status or "completed",  # Opik's default, and its reading of unknown ones
    lambda text: UNSET if text is None or text.strip() == "[]" else raw_or_unset(text),
    raw_or_unset,
    raw_or_unset,
    id_or_unset,
)


def shown(a: Aggregates) -> dict[str, Any]:
    """An experiment's aggregates as the answer's fields; an experiment without items leaves
    out those it has none of, as Opik does."""
    return {
        "feedback_scores": [ScoreAverage(n, number(v)) for n, v in a.feedback_scores] or UNSET,
        "trace_count": a.trace_count,
        "dataset_item_count": a.dataset_item_count,
        "duration": UNSET if a.duration is None else Duration(*map(number, a.duration)),
        "total_estimated_cost": _positive(a.cost),
        "total_estimated_cost_avg": _positive(a.cost_avg),
        "usage": {k: number(v) for k, v in a.usage.items()} or UNSET,
    }
