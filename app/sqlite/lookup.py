"""Point reads by key, batched: the statement a lookup runs (Database.lookup) and the queue
of keys that wait for a reader."""

import asyncio
import itertools
from typing import Any

Row = tuple[Any, ...]


class Lookup:
    """A statement that reads rows by key, for Database.lookup.

    `template` holds `{keys}` where the keys go (`... WHERE id IN ({keys}) AND scope = ?`), the
    scope's parameter last; the row's column `key_column` is its key. sql[n] is the statement
    for n keys.
    """

    MAX_KEYS = 64

    def __init__(self, template: str, key_column: int) -> None:
        self.key_column = key_column
        self.sql = [""] + [
            template.format(keys=", ".join("?" * n)) for n in range(1, self.MAX_KEYS + 1)
        ]


Waiting = dict[Any, list["asyncio.Future[Row | None]"]]


def _take(waiting: dict[tuple[Lookup, Any], Waiting]) -> tuple[tuple[Lookup, Any], Waiting]:
    """The oldest group of waiting lookups, at most MAX_KEYS keys of it; the rest stay."""
    group = next(iter(waiting))
    keys = waiting[group]
    if len(keys) <= Lookup.MAX_KEYS:
        del waiting[group]
        return group, keys
    taken = dict(itertools.islice(keys.items(), Lookup.MAX_KEYS))
    for key in taken:
        del keys[key]
    return group, taken
