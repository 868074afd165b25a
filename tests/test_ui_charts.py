"""The histograms' geometry: shared bins and height across experiments, scores kept on [0, 1],
drawn from each experiment's values counted on a fine grid (app/histograms.py)."""

from collections.abc import Sequence

from app.histograms import FINE_BINS, Histogram, histogram, of_values
from app.ui import charts


def scores(values: Sequence[float]) -> Histogram | None:
    return histogram(values, unit=True)


def test_scores_in_the_unit_range_share_bins_from_0_to_1() -> None:
    m = charts.metric("correct", "", [("a", scores([0, 1, 1])), ("b", scores([0.5]))], True)

    assert m is not None
    assert (m.low, m.high) == (0.0, 1.0)
    a, b = m.charts
    assert [bar.count for bar in a.bars] == [1, 0, 0, 0, 0, 0, 0, 0, 0, 2]
    assert [bar.count for bar in b.bars][5] == 1
    assert a.mean == 2 / 3
    # One scale for all: b's single value is half the height of a's tallest bar.
    assert b.bars[5].height == a.bars[9].height / 2


def test_on_the_unit_grid_each_value_lands_in_the_bin_it_lies_in() -> None:
    values = [k / 1000 for k in range(1001)]
    m = charts.metric("relevance", "", [("a", scores(values))], scores=True)

    assert m is not None
    expected = [0] * charts.BINS
    for v in values:
        expected[min(charts.BINS - 1, int(v * charts.BINS))] += 1
    assert [bar.count for bar in m.charts[0].bars] == expected


def test_other_ranges_are_shared_and_every_value_is_counted_once() -> None:
    a = histogram([100.0, 150.0, 900.0], unit=False)
    b = histogram([1200.0, 1300.0], unit=False)
    m = charts.metric("duration", "ms", [("a", a), ("b", b)], scores=False)

    assert m is not None
    assert (m.low, m.high) == (100.0, 1300.0)
    assert [bar.count for bar in m.charts[0].bars][:2] == [2, 0]
    assert [sum(bar.count for bar in c.bars) for c in m.charts] == [3, 2]
    assert m.charts[1].bars[-1].count == 2  # 1200 and 1300: the last of the shared bins
    assert m.charts[0].mean == 1150 / 3


def test_a_value_that_never_varies_gets_one_bin_around_it() -> None:
    m = charts.metric("duration", "ms", [("a", histogram([120.0, 120.0], False))], False)

    assert m is not None
    assert m.low < 120 < m.high
    assert sum(bar.count for bar in m.charts[0].bars) == 2


def test_no_values_at_all_is_no_chart() -> None:
    assert charts.metric("x", "", [("a", scores([])), ("b", None)], scores=True) is None


def test_metrics_are_each_score_by_name_then_duration() -> None:
    found = charts.metrics(
        [(b"1", "a"), (b"2", "b")],
        {
            b"1": of_values({"relevance": [0.5], "correct": [1.0]}, None),
            b"2": of_values({"correct": [0.0]}, [100.0, 300.0]),
        },
    )

    assert [m.name for m in found] == ["correct", "relevance", "duration"]
    assert [c.values for c in found[1].charts] == [1, 0]
    assert [c.mean for c in found[2].charts] == [None, 200.0]


def test_a_histogram_is_a_hundred_counts_whatever_the_number_of_values() -> None:
    h = histogram([k * 0.37 for k in range(10_000)], unit=False)

    assert h is not None
    assert len(h.counts) == FINE_BINS
    assert h.values == 10_000
