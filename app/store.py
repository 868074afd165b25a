"""The storage boundary: what the endpoints and commands ask of a storage engine, and the one
place that picks the engine.

An engine is a package (app/sqlite/ today) with a class that meets `Store`. It takes the
records of app/records.py, already validated, and answers with the API's Structs; it raises
records.Conflict for a 409. Everything else the engine shares with any other (Opik's naming
rules, the 409 sentences, the records themselves) lives outside it, in app/records.py.
"""

from collections.abc import AsyncIterator, Sequence
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Protocol

from app.experiment_payloads import Experiment, ScoreName
from app.payloads import FullItem, Item
from app.records import (
    BulkRecord,
    ExperimentChange,
    ExperimentQuery,
    ExperimentRecord,
    ItemRecord,
    StreamQuery,
)
from app.sqlite import SqliteStore, failures, transfer
from app.sqlite.line_tables import Incoming, Refused
from app.sqlite.transfer import Snapshot, incoming

__all__ = [
    "STORAGE_ERROR",
    "Incoming",
    "Refused",
    "Snapshot",
    "Store",
    "incoming",
    "open_store",
    "snapshot",
    "storage_failure",
]

# What the engine raises when its database fails, and what it can say of such a failure
# (status, message, headers: a full disk, a read-only file, a busy lock), else None.
STORAGE_ERROR = failures.ERROR
storage_failure = failures.describe


class Store(Protocol):
    """One worker's storage, opened once and kept for its lifetime."""

    async def ping(self) -> None:
        """Raises unless the database can be read: the health check."""

    async def close(self) -> None: ...

    # Experiment items

    async def get_item(self, workspace: str, item_id: bytes) -> Item | None: ...

    async def upsert_items(self, workspace: str, user: str, items: Sequence[ItemRecord]) -> None:
        """Stores every item or none, durably, in one transaction."""

    async def delete_items(self, workspace: str, item_ids: Sequence[bytes]) -> None: ...

    def stream_items(self, workspace: str, query: StreamQuery) -> AsyncIterator[list[FullItem]]:
        """The items the query names, in chunks read one at a time, so that a client that
        goes away stops the reading."""
        ...

    # Experiments

    async def create_experiment(self, workspace: str, user: str, record: ExperimentRecord) -> None:
        """A new experiment; Conflict when its id exists already, in any workspace."""

    async def get_experiment(self, workspace: str, key: bytes) -> Experiment | None:
        """The experiment with its aggregates, computed now."""

    async def find_experiments(
        self, workspace: str, query: ExperimentQuery, count: bool = False
    ) -> tuple[list[Experiment], int]:
        """The experiments the query names, in its order, with their aggregates; and how many
        match in all when `count`."""
        ...

    async def update_experiments(
        self, workspace: str, user: str, keys: Sequence[bytes], change: ExperimentChange
    ) -> int:
        """Changes those of `keys` the workspace holds, all or none (records.TooManyTags);
        how many it changed."""

    async def finish_experiments(self, workspace: str, user: str, keys: Sequence[bytes]) -> None:
        """Marks the running ones of `keys` completed; unknown ids are ignored."""

    async def score_names(
        self, workspace: str, keys: Sequence[bytes] | None, project: bytes | None
    ) -> list[ScoreName]:
        """The distinct names of trace scores (of the experiments `keys`, in `project`),
        then those of the experiments' own scores."""
        ...

    async def delete_experiments(self, workspace: str, keys: Sequence[bytes]) -> None:
        """The experiments and their items; traces stay, as in Opik."""

    # Bulk recording

    async def record_bulk(self, workspace: str, user: str, record: BulkRecord) -> None:
        """An evaluation run, all of it or none: experiment, traces, spans, scores, items."""

    # Import

    async def import_records(
        self, workspace: str, user: str, records: Sequence[Incoming]
    ) -> Refused:
        """Stores the records of a transfer file in one transaction, each as given, and says
        why it refused the others; Conflict when the batch breaks a rule no check foresaw."""


async def open_store(location: Path, readers: int = 2, create: bool = True) -> Store:
    """The store at `location`, created (unless `create` is false) or upgraded to this
    release's schema."""
    return await SqliteStore.open(location, readers, create=create)


def snapshot(
    location: Path, workspace: str, experiment: bytes | None = None
) -> AbstractContextManager[Snapshot]:
    """A consistent read of a workspace, or of one experiment and what it refers to, for
    export and push; records.NotFound when the experiment is not there."""
    return transfer.snapshot(location, workspace, experiment)
