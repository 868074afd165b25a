"""Timestamps: integer nanoseconds inside, ISO-8601 instants outside."""

import calendar
import time
from datetime import UTC, datetime


def now_ns() -> int:
    """The current UTC time, kept to the microsecond as Java's Instant.now() is on Linux."""
    return time.time_ns() // 1_000 * 1_000


def format_instant(ns: int) -> str:
    """UTC ISO-8601 ending in Z with 0, 3, 6 or 9 fraction digits, the fewest that hold the
    value exactly: the rule of java.time.format.DateTimeFormatter.ISO_INSTANT."""
    seconds, fraction = divmod(ns, 1_000_000_000)
    base = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds))
    if fraction == 0:
        return base + "Z"
    if fraction % 1_000_000 == 0:
        return f"{base}.{fraction // 1_000_000:03d}Z"
    if fraction % 1_000 == 0:
        return f"{base}.{fraction // 1_000:06d}Z"
    return f"{base}.{fraction:09d}Z"


def to_ns(value: datetime) -> int:
    """Nanoseconds since the epoch of a datetime; one without a zone is taken as UTC."""
    if value.tzinfo is not None:
        value = value.astimezone(UTC)
    return calendar.timegm(value.timetuple()) * 1_000_000_000 + value.microsecond * 1_000
