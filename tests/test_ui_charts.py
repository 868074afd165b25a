"""The histograms' geometry: shared bins and height across experiments, scores kept on [0, 1]."""

from app.ui import charts


def test_scores_in_the_unit_range_share_bins_from_0_to_1() -> None:
    m = charts.metric("correct", "", [("a", [0, 1, 1]), ("b", [0.5])], scores=True)

    assert m is not None
    assert (m.low, m.high) == (0.0, 1.0)
    a, b = m.charts
    assert [bar.count for bar in a.bars] == [1, 0, 0, 0, 0, 0, 0, 0, 0, 2]
    assert [bar.count for bar in b.bars][5] == 1
    assert a.mean == 2 / 3
    # One scale for all: b's single value is half the height of a's tallest bar.
    assert b.bars[5].height == a.bars[9].height / 2


def test_a_value_that_never_varies_gets_one_bin_around_it() -> None:
    m = charts.metric("duration", "ms", [("a", [120.0, 120.0])], scores=False)

    assert m is not None
    assert m.low < 120 < m.high
    assert sum(bar.count for bar in m.charts[0].bars) == 2


def test_no_values_at_all_is_no_chart() -> None:
    assert charts.metric("x", "", [("a", []), ("b", [])], scores=True) is None


def test_metrics_are_each_score_by_name_then_duration() -> None:
    found = charts.metrics(
        [(b"1", "a"), (b"2", "b")],
        {b"1": {"relevance": [0.5], "correct": [1.0]}, b"2": {"correct": [0.0]}},
        {b"2": [100.0, 300.0]},
    )

    assert [m.name for m in found] == ["correct", "relevance", "duration"]
    assert [c.values for c in found[1].charts] == [1, 0]
    assert [c.mean for c in found[2].charts] == [None, 200.0]
