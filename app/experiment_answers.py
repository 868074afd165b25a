"""An experiment as the API answers it, from what any engine reads: its stored row and its
aggregates (opik-reference/experiments.md §2.2), so that both engines answer alike."""

from collections.abc import Iterable, Sequence
from typing import Any

import msgspec
from msgspec import UNSET, Raw, UnsetType

from app import clock, ids
from app.experiment_payloads import Duration, Experiment, ScoreAverage, ScoreName
from app.histograms import Histograms


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
    # Kept by the SQLite engine's `Summaries` only (a read that computes a summary leaves them
    # out): None in a summary a read computed, or kept before they were.
    histograms: Histograms | None = None


Row = Sequence[Any]


def aggregates_of(
    keys: Sequence[bytes],
    counts: Iterable[Row],
    scores: Iterable[Row],
    durations: Iterable[Row],
    costs: Iterable[Row],
    usage: Iterable[Row],
) -> dict[bytes, Aggregates]:
    """The Aggregates of each of `keys` from the rows of an engine's statements, each row led
    by its experiment's id: (traces, dataset items), (score name, average), (p50, p90, p99),
    (cost, average cost), (usage key, average); scores and usage in their answer's order."""
    counted = {e: (traces, items) for e, traces, items in counts}
    averages: dict[bytes, list[tuple[str, float]]] = {}
    for e, name, value in scores:
        averages.setdefault(e, []).append((name, value))
    timed = {e: (p50, p90, p99) for e, p50, p90, p99 in durations}
    costed = {e: (total, avg) for e, total, avg in costs}
    used: dict[bytes, dict[str, float]] = {}
    for e, key, value in usage:
        used.setdefault(e, {})[key] = value
    found = {}
    for key in keys:
        traces, items = counted.get(key, (0, 0))
        cost, cost_avg = costed.get(key, (None, None))
        found[key] = Aggregates(
            traces, items, averages.get(key, []), timed.get(key), cost, cost_avg,
            used.get(key, {}),
        )  # fmt: skip
    return found


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


def _name(name: str | None) -> Any:
    return UNSET if name is None else name


def _scores(text: str | None) -> Any:
    return UNSET if text is None or text.strip() == "[]" else raw_or_unset(text)


# An experiment's aggregates as the answer shows them: feedback_scores, trace_count,
# dataset_item_count, duration, total_estimated_cost, total_estimated_cost_avg, usage. An
# experiment without items leaves out those it has none of, as Opik does.
Shown = tuple[Any, int, int, Any, Any, Any, Any]


def shown(a: Aggregates) -> Shown:
    return (
        [ScoreAverage(n, number(v)) for n, v in a.feedback_scores] or UNSET,
        a.trace_count,
        a.dataset_item_count,
        UNSET if a.duration is None else Duration(*map(number, a.duration)),
        _positive(a.cost),
        _positive(a.cost_avg),
        {k: number(v) for k, v in a.usage.items()} or UNSET,
    )


def experiment(row: Sequence[Any], aggregates: Shown) -> Experiment:
    """An experiment's row (each engine's EXPERIMENT_ROWS, its stored columns first, in this
    order) and its aggregates as shown, built by position (a find page builds a hundred;
    keywords cost twice as much)."""
    (key, dataset_name, dataset_id, project_id, project_name, name, metadata, tags, kind,
     method, optimization_id, created_at, last_updated_at, created_by, last_updated_by,
     status, experiment_scores, prompt_version, prompt_versions, dataset_version_id,
     *_) = row  # fmt: skip
    scores, traces, items, duration, cost, cost_avg, usage = aggregates
    return Experiment(
        ids.to_str(key),
        _name(dataset_name),
        ids.to_str(dataset_id),
        id_or_unset(project_id),
        _name(project_name),
        name,
        raw_or_unset(metadata),
        _tags(tags),
        kind,
        method,
        id_or_unset(optimization_id),
        scores,
        traces,
        items,
        clock.format_instant(created_at),
        duration,
        cost,
        cost_avg,
        usage,
        clock.format_instant(last_updated_at),
        created_by,
        last_updated_by,
        status or "completed",  # Opik's default, and its reading of unknown ones
        _scores(experiment_scores),
        raw_or_unset(prompt_version),
        raw_or_unset(prompt_versions),
        id_or_unset(dataset_version_id),
    )


def score_names_of(traces: Iterable[Row], experiments: Iterable[Row]) -> list[ScoreName]:
    """The names of an engine's rows: its traces' score names, then its experiments' own."""
    names = [ScoreName(row[0], "feedback_scores") for row in traces]
    return names + [ScoreName(str(row[0]), "experiment_scores") for row in experiments]
