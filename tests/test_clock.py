"""Timestamps: ISO_INSTANT's rule of 0, 3, 6 or 9 fraction digits."""

import datetime as dt

import pytest

from app import clock

BASE = 1_705_311_000 * 1_000_000_000  # 2024-01-15T09:30:00Z


@pytest.mark.parametrize(
    ("ns", "text"),
    [
        (BASE, "2024-01-15T09:30:00Z"),
        (BASE + 120_000_000, "2024-01-15T09:30:00.120Z"),
        (BASE + 123_456_000, "2024-01-15T09:30:00.123456Z"),
        (BASE + 123_456_789, "2024-01-15T09:30:00.123456789Z"),
        (BASE + 1_000, "2024-01-15T09:30:00.000001Z"),
        (BASE + 1, "2024-01-15T09:30:00.000000001Z"),
        (0, "1970-01-01T00:00:00Z"),
    ],
)
def test_format_instant_uses_the_fewest_digits_that_hold_the_value(ns: int, text: str) -> None:
    assert clock.format_instant(ns) == text


def test_now_is_utc_to_the_microsecond() -> None:
    now = clock.now_ns()
    parsed = dt.datetime.fromisoformat(clock.format_instant(now))

    assert now % 1_000 == 0
    assert abs(parsed.timestamp() - dt.datetime.now(dt.UTC).timestamp()) < 5


def test_years_before_1000_have_four_digits_as_java_writes_them() -> None:
    assert clock.format_instant(-30_610_224_000 * 1_000_000_000 - 1_000_000_000) == (
        "0999-12-31T23:59:59Z"
    )


def test_formatting_stays_right_past_the_cache_of_recent_seconds() -> None:
    start = dt.datetime(2024, 2, 28, 23, 0, tzinfo=dt.UTC)
    # More distinct seconds than the cache keeps, each formatted twice, out of order.
    seconds = [s * 7919 % 10_000 for s in range(10_000)] * 2
    for s in seconds:
        expected = (start + dt.timedelta(seconds=s)).strftime("%Y-%m-%dT%H:%M:%S.250Z")
        ns = (int(start.timestamp()) + s) * 1_000_000_000 + 250_000_000
        assert clock.format_instant(ns) == expected
