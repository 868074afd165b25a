"""Histograms drawn on the server: each feedback score's values and the traces' durations,
one small chart per experiment on shared bins and a shared scale, as SVG geometry the
templates draw (no script, no chart library)."""

from collections.abc import Sequence
from dataclasses import dataclass

BINS = 10
WIDTH = 240
HEIGHT = 90
GAP = 2


@dataclass(frozen=True, slots=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    count: int
    low: float
    high: float


@dataclass(frozen=True, slots=True)
class Chart:
    experiment: str
    bars: list[Bar]
    values: int
    mean: float | None


@dataclass(frozen=True, slots=True)
class Metric:
    """One measure (a score's name, or duration) across the experiments."""

    name: str
    unit: str
    low: float
    high: float
    charts: list[Chart]


def _edges(values: Sequence[float], unit: bool) -> tuple[float, float]:
    low, high = min(values), max(values)
    if unit and low >= 0 and high <= 1:  # scores in [0, 1] keep that range: comparable
        return 0.0, 1.0
    if low == high:
        return low - 0.5, high + 0.5
    return low, high


def metric(
    name: str, unit: str, series: Sequence[tuple[str, Sequence[float]]], scores: bool
) -> Metric | None:
    """The histograms of `series` (experiment name, values) on the same bins and height;
    None when there is no value at all."""
    every = [v for _, values in series for v in values]
    if not every:
        return None
    low, high = _edges(every, scores)
    step = (high - low) / BINS
    counted: list[tuple[str, list[int], int, float | None]] = []
    for experiment, values in series:
        counts = [0] * BINS
        for v in values:
            counts[min(BINS - 1, max(0, int((v - low) / step)))] += 1
        mean = sum(values) / len(values) if values else None
        counted.append((experiment, counts, len(values), mean))
    tallest = max(max(counts) for _, counts, _, _ in counted) or 1
    width = WIDTH / BINS
    charts = []
    for experiment, counts, n, mean in counted:
        bars = []
        for b, count in enumerate(counts):
            height = (HEIGHT - 12) * count / tallest
            bars.append(
                Bar(
                    x=b * width + GAP / 2,
                    y=HEIGHT - height,
                    width=width - GAP,
                    height=height,
                    count=count,
                    low=low + b * step,
                    high=low + (b + 1) * step,
                )
            )
        charts.append(Chart(experiment, bars, n, mean))
    return Metric(name, unit, low, high, charts)


def metrics(
    experiments: Sequence[tuple[bytes, str]],
    scores: dict[bytes, dict[str, list[float]]],
    durations: dict[bytes, list[float]],
) -> list[Metric]:
    """A Metric per score name (by name), then one of duration."""
    names = sorted({name for e, _ in experiments for name in scores.get(e, {})})
    found = []
    for name in names:
        series = [(label, scores.get(e, {}).get(name, [])) for e, label in experiments]
        if (m := metric(name, "", series, scores=True)) is not None:
            found.append(m)
    series = [(label, durations.get(e, [])) for e, label in experiments]
    if (m := metric("duration", "ms", series, scores=False)) is not None:
        found.append(m)
    return found
