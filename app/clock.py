"""Timestamps: integer nanoseconds inside, ISO-8601 instants outside."""

import time
from datetime import UTC, datetime, timedelta


def now_ns() -> int:
    """The current UTC time, kept to the microsecond as Java's Instant.now() is on Linux."""
    return time.time_ns() // 1_000 * 1_000


# The date and time of recent whole seconds: items are written in batches, so the instants an
# item read formats share their seconds with many others. Emptied when full, so it stays small.
_SECONDS: dict[int, str] = {}
_SECONDS_KEPT = 4096


def _second(seconds: int) -> str:
    t = time.gmtime(seconds)
    # Four-digit years, as Java writes them (strftime's %Y does not pad years before 1000).
    date = f"{t.tm_year:04d}-{t.tm_mon:02d}-{t.tm_mday:02d}"
    base = f"{date}T{t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d}"
    if len(_SECONDS) >= _SECONDS_KEPT:
        _SECONDS.clear()
    _SECONDS[seconds] = base
    return base


def format_instant(ns: int) -> str:
    """UTC ISO-8601 ending in Z with 0, 3, 6 or 9 fraction digits, the fewest that hold the
    value exactly: the rule of java.time.format.DateTimeFormatter.ISO_INSTANT."""
    seconds, fraction = divmod(ns, 1_000_000_000)
    base = _SECONDS.get(seconds) or _second(seconds)
    if fraction == 0:
        return base + "Z"
    if fraction % 1_000_000 == 0:
        return f"{base}.{fraction // 1_000_000:03d}Z"
    if fraction % 1_000 == 0:
        return f"{base}.{fraction // 1_000:06d}Z"
    return f"{base}.{fraction:09d}Z"


# What a signed 64-bit INTEGER column holds as nanoseconds since the epoch.
MIN_NS, MAX_NS = -(2**63), 2**63 - 1


_EPOCH = datetime(1970, 1, 1)
_EPOCH_UTC = _EPOCH.replace(tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


def to_ns(value: datetime) -> int:
    """Nanoseconds since the epoch of a datetime; one without a zone is taken as UTC. Exact
    (timedelta arithmetic is integral) and a tenth of the cost of timegm(timetuple()), which
    mattered: a batch of 1,000 spans has 2,000 instants."""
    epoch = _EPOCH if value.tzinfo is None else _EPOCH_UTC
    return (value - epoch) // _MICROSECOND * 1_000


def storable(value: datetime) -> bool:
    """Whether the instant fits the store's nanoseconds: years 1677 to 2262."""
    return MIN_NS <= to_ns(value) <= MAX_NS
