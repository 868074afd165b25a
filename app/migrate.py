"""Migrate: a whole SQLite file (every workspace) copied into an empty PostgreSQL database,
every row of every table as SQLite holds it, in one transaction there.

Not export and import: an export is one workspace's transfer file, and it leaves out what no
line carries (prompts and their versions, a trace that only a PATCH wrote so far); this
copies the tables themselves, so that the PostgreSQL engine serves what SQLite served."""

import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from app.progress import Progress
from app.store import copy_tables

# experiment_summaries holds aggregates computed from the other tables and dropped whenever
# they change (schema.sql's triggers): the engine that finds one missing computes it again.
CACHES = ("experiment_summaries",)


@dataclass(frozen=True, slots=True)
class Table:
    """One table of the source: its columns in their order and how many rows it holds."""

    name: str
    columns: tuple[str, ...]
    rows: int


class Source(Protocol):
    """The source's tables, caches aside, from one read transaction."""

    schema_version: int
    tables: list[Table]

    def rows(self, table: Table) -> Iterator[tuple[Any, ...]]:
        """The table's rows, read one at a time."""
        ...


class Incomplete(RuntimeError):
    """A table received fewer rows than the source holds: nothing was kept."""


@dataclass(frozen=True, slots=True)
class Migrated:
    rows: dict[str, int]  # by table
    seconds: float


def migrate(source: Path, target: str, progress: Progress) -> Migrated:
    """Copies the file at `source` (upgraded first to this release's schema, as `serve` would)
    into the PostgreSQL database at `target`, whose schema is made when missing; refused
    (a ValueError) when it holds rows already."""
    started = time.monotonic()
    copied = copy_tables(source, target, progress)
    return Migrated(copied, time.monotonic() - started)
