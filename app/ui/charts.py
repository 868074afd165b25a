"""Histograms drawn on the server: each feedback score's values and the traces' durations,
one small chart per experiment on shared bins and a shared scale, as SVG geometry the
templates draw (no script, no chart library). Each experiment's values come counted on a fine
grid (app/histograms.py); a fine bin falls into the shared bin of its middle, which is exact
where the grids line up (scores from 0 to 1) and within a hundredth of the range elsewhere."""

from collections.abc import Sequence
from dataclasses import dataclass

from app.histograms import Histogram, Histograms

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


def _edges(least: float, most: float, unit: bool) -> tuple[float, float]:
    if unit and least >= 0 and most <= 1:  # scores in [0, 1] keep that range: comparable
        return 0.0, 1.0
    if least == most:
        return least - 0.5, most + 0.5
    return least, most


def metric(
    name: str, unit: str, series: Sequence[tuple[str, Histogram | None]], scores: bool
) -> Metric | None:
    """The histograms of `series` (experiment name, its values counted) on the same bins
    and height; None when there is no value at all."""
    found = [h for _, h in series if h is not None]
    if not found:
        return None
    low, high = _edges(min(h.least for h in found), max(h.most for h in found), scores)
    step = (high - low) / BINS
    counted: list[tuple[str, list[int], int, float | None]] = []
    for experiment, h in series:
        counts = [0] * BINS
        for middle, n in h.centers() if h is not None else ():
            counts[min(BINS - 1, max(0, int((middle - low) / step)))] += n
        values = 0 if h is None else h.values
        counted.append((experiment, counts, values, h.total / values if h and values else None))
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
    experiments: Sequence[tuple[bytes, str]], histograms: dict[bytes, Histograms]
) -> list[Metric]:
    """A Metric per score name (by name), then one of duration."""
    none = Histograms({}, None)
    names = sorted({n for e, _ in experiments for n in histograms.get(e, none).scores})
    found = []
    for name in names:
        series = [(label, histograms.get(e, none).scores.get(name)) for e, label in experiments]
        if (m := metric(name, "", series, scores=True)) is not None:
            found.append(m)
    series = [(label, histograms.get(e, none).duration) for e, label in experiments]
    if (m := metric("duration", "ms", series, scores=False)) is not None:
        found.append(m)
    return found
