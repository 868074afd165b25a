"""An experiment's distributions (each feedback score's values, its traces' durations) as
counts on a fine grid: small enough to keep with its summary (app/sqlite/summaries.py), fine
enough for app/ui/charts.py to draw several experiments on shared bins from them."""

import math
from collections.abc import Iterable, Sequence
from typing import Any

import msgspec

FINE_BINS = 100


class Histogram(msgspec.Struct, array_like=True, frozen=True, gc=False):
    """Values counted in FINE_BINS equal bins from `low` to `high`: from 0 to 1 for scores
    all in that range (any two experiments' grids then line up), else from the least value
    to the most. `least` and `most` are the values' own range; `total` their sum."""

    low: float
    high: float
    least: float
    most: float
    counts: list[int]
    total: float

    @property
    def values(self) -> int:
        return sum(self.counts)

    def centers(self) -> list[tuple[float, int]]:
        """Each bin with values: its middle and its count."""
        step = (self.high - self.low) / FINE_BINS
        return [(self.low + (k + 0.5) * step, n) for k, n in enumerate(self.counts) if n]


class Histograms(msgspec.Struct, array_like=True, frozen=True, gc=False):
    """An experiment's: one per feedback score name, and one of its traces' durations (ms)."""

    scores: dict[str, Histogram]
    duration: Histogram | None


def histogram(values: Sequence[float], unit: bool) -> Histogram | None:
    """`values` counted; `unit`: scores, whose grid is 0 to 1 when they all lie in it. None
    for no value, or one that is not finite."""
    if not values or not all(math.isfinite(v) for v in values):
        return None
    least, most = min(values), max(values)
    low, high = (0.0, 1.0) if unit and least >= 0 and most <= 1 else (least, most)
    counts = [0] * FINE_BINS
    step = (high - low) / FINE_BINS
    for v in values:
        counts[0 if step == 0 else min(FINE_BINS - 1, int((v - low) / step))] += 1
    return Histogram(low, high, least, most, counts, math.fsum(values))


def of_values(scores: dict[str, list[float]], durations: list[float] | None) -> Histograms:
    """An experiment's Histograms from its values: each score's by name, and durations."""
    found = {name: histogram(values, unit=True) for name, values in sorted(scores.items())}
    return Histograms(
        {name: h for name, h in found.items() if h is not None},
        histogram(durations or [], unit=False),
    )


def of_rows(
    keys: Sequence[bytes], scores: Iterable[Sequence[Any]], durations: Iterable[Sequence[Any]]
) -> dict[bytes, Histograms]:
    """The Histograms of each of `keys` from an engine's rows, each led by its experiment's id:
    (score name, an item's value) and (a trace's duration in ms)."""
    values: dict[bytes, dict[str, list[float]]] = {}
    for e, name, value in scores:
        values.setdefault(e, {}).setdefault(name, []).append(value)
    timed: dict[bytes, list[float]] = {}
    for e, ms in durations:
        timed.setdefault(e, []).append(ms)
    return {key: of_values(values.get(key, {}), timed.get(key)) for key in keys}
