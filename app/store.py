"""The storage boundary: what the endpoints and commands ask of a storage engine, and the one
place that picks the engine.

An engine is a package (app/sqlite/, app/postgres/) with a class that meets `Store`. It takes
the records of app/records.py, already validated, and answers with the API's Structs; it
raises records.Conflict for a 409. Everything else the engine shares with any other (Opik's
naming rules, the 409 sentences, the records, the answers made of rows) lives outside it.
"""

import asyncio
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any, Protocol

from app.config import is_postgres_url
from app.dataset_payloads import CompareRow, Dataset, DatasetItem
from app.dataset_records import (
    DatasetItemsRecord,
    DatasetRecord,
    ItemFilter,
    PromptVersionRecord,
)
from app.experiment_payloads import Experiment, ScoreName
from app.histograms import Histograms
from app.line_columns import Incoming, Refused, incoming
from app.payloads import FullItem, Item
from app.progress import Progress
from app.prompt_payloads import PromptVersion
from app.records import (
    BulkRecord,
    ExperimentChange,
    ExperimentQuery,
    ExperimentRecord,
    ItemRecord,
    Patch,
    ScoreUpsert,
    SpanUpsert,
    StreamQuery,
    TraceUpsert,
)
from app.snapshots import Snapshot
from app.sqlite import SqliteStore, failures, transfer
from app.trace_payloads import Project, Span, Trace
from app.trace_records import TraceQuery

__all__ = [
    "STORAGE_ERROR",
    "CoreStore",
    "Incoming",
    "Refused",
    "Snapshot",
    "Store",
    "copy_tables",
    "incoming",
    "is_new",
    "open_store",
    "snapshot",
    "stats",
    "storage_errors",
    "storage_failure",
]

# What the engine raises when its database fails, and what it can say of such a failure
# (status, message, headers: a full disk, a read-only file, a busy lock), else None.
STORAGE_ERROR = failures.ERROR
storage_failure = failures.describe
Describe = Callable[[Exception], tuple[int, str, dict[str, str]] | None]


def storage_errors(location: Path | str) -> list[tuple[type[Exception], Describe]]:
    """What the engine of `location` raises when its database fails, each class with what
    describes it: the app answers those in the error shape (app/errors.py)."""
    if is_postgres_url(location):
        from app.postgres import failures as postgres_failures  # asyncpg: only when named

        return [(error, postgres_failures.describe) for error in postgres_failures.ERRORS]
    return [(STORAGE_ERROR, storage_failure)]


class CoreStore(Protocol):
    """The experiment-items core of a store: the hot path and what every other verb builds on."""

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

    async def update_experiments(
        self, workspace: str, user: str, keys: Sequence[bytes], change: ExperimentChange
    ) -> int:
        """Changes those of `keys` the workspace holds, all or none (records.TooManyTags);
        how many it changed."""

    async def finish_experiments(self, workspace: str, user: str, keys: Sequence[bytes]) -> None:
        """Marks the running ones of `keys` completed; unknown ids are ignored."""

    async def delete_experiments(self, workspace: str, keys: Sequence[bytes]) -> None:
        """The experiments and their items; traces stay, as in Opik."""


class Store(CoreStore, Protocol):
    """One worker's storage, opened once and kept for its lifetime."""

    # Experiments

    async def find_experiments(
        self, workspace: str, query: ExperimentQuery, count: bool = False
    ) -> tuple[list[Experiment], int]:
        """The experiments the query names, in its order, with their aggregates; and how many
        match in all when `count`."""
        ...

    async def score_names(
        self, workspace: str, keys: Sequence[bytes] | None, project: bytes | None
    ) -> list[ScoreName]:
        """The distinct names of trace scores (of the experiments `keys`, in `project`),
        then those of the experiments' own scores."""
        ...

    # Bulk recording

    async def record_bulk(self, workspace: str, user: str, record: BulkRecord) -> None:
        """An evaluation run, all of it or none: experiment, traces, spans, scores, items."""

    # Datasets and their items

    async def create_dataset(self, workspace: str, user: str, record: DatasetRecord) -> None:
        """Conflict when the workspace has a dataset of that name (names match
        case-insensitively) or another workspace holds the id."""

    async def find_dataset(self, workspace: str, name: str) -> Dataset | None: ...

    async def get_dataset(self, workspace: str, key: bytes) -> Dataset | None: ...

    async def delete_dataset(self, workspace: str, key: bytes) -> None:
        """The dataset; its items stay, as in Opik. An unknown id is no error."""

    async def upsert_dataset_items(
        self, workspace: str, user: str, record: DatasetItemsRecord
    ) -> None:
        """Every item or none, replacing those whose id exists; the dataset named is made
        when missing; records.NotFound when `dataset_id` names no dataset here."""

    async def stream_dataset_items(
        self,
        workspace: str,
        name: str,
        before: bytes | None,
        limit: int,
        filters: Sequence[ItemFilter] = (),
    ) -> list[DatasetItem]:
        """At most `limit` items of the dataset of that name that meet every filter, newest id
        first, older than `before`; none when there is no such dataset."""

    async def page_dataset_items(
        self,
        workspace: str,
        dataset_id: bytes,
        page: int,
        size: int,
        truncate: bool,
        filters: Sequence[ItemFilter] = (),
    ) -> tuple[list[DatasetItem], int]:
        """A page of the items that meet every filter, newest id first, and their number in
        all."""

    async def delete_dataset_items(
        self,
        workspace: str,
        keys: Sequence[bytes],
        dataset_id: bytes | None,
        filters: Sequence[ItemFilter] = (),
    ) -> None:
        """The items of these ids, or the items of `dataset_id` that meet every filter."""

    async def compare_dataset_items(
        self,
        workspace: str,
        dataset_id: bytes,
        experiments: Sequence[bytes],
        page: int,
        size: int,
        truncate: bool,
    ) -> tuple[list[CompareRow], int]:
        """A page of the dataset items the experiments have items for, each with them."""

    # Prompt versions

    async def create_prompt_version(
        self, workspace: str, user: str, record: PromptVersionRecord, new_prompt: bool
    ) -> PromptVersion:
        """A version added to the prompt of that name, made when missing; with `new_prompt`,
        Conflict when the workspace has a prompt of that name."""

    async def find_prompt_version(
        self, workspace: str, name: str, commit: str | None
    ) -> PromptVersion | None:
        """The version of `commit` of the prompt of that name, else its latest."""

    async def get_prompt_version(self, workspace: str, key: bytes) -> PromptVersion | None: ...

    # Traces, spans, feedback scores, projects

    async def upsert_traces(
        self, workspace: str, user: str, records: Sequence[TraceUpsert]
    ) -> None:
        """Stores every trace or none; each replaces a stored one of its id only when its
        last_updated_at is not older, and completes one a PATCH made first. Conflict when an
        id belongs to another workspace."""

    async def upsert_spans(self, workspace: str, user: str, records: Sequence[SpanUpsert]) -> None:
        """As upsert_traces, for spans."""

    async def patch_trace(self, workspace: str, user: str, patch: Patch) -> None:
        """Replaces the given fields, or keeps them as a partial trace until its create."""

    async def patch_span(self, workspace: str, user: str, patch: Patch) -> None:
        """As patch_trace, for a span."""

    async def score_traces(self, workspace: str, user: str, scores: Sequence[ScoreUpsert]) -> None:
        """Stores every score or none, each replacing the one of its trace and name."""

    async def score_spans(self, workspace: str, user: str, scores: Sequence[ScoreUpsert]) -> None:
        """As score_traces, for spans."""

    async def delete_traces(
        self, workspace: str, keys: Sequence[bytes], project_id: bytes | None
    ) -> None:
        """The traces of these ids (of `project_id` only, when given) with their spans and the
        scores of both, in one transaction; ids of none or of another workspace are ignored."""

    async def delete_trace_score(
        self, workspace: str, key: bytes, name: str, author: str | None
    ) -> None:
        """The trace's score of that name, `author`'s only when given; none is no error."""

    async def delete_span_score(
        self, workspace: str, key: bytes, name: str, author: str | None
    ) -> None:
        """As delete_trace_score, for a span."""

    async def get_trace(self, workspace: str, key: bytes) -> Trace | None:
        """The trace with its span counts, sums and scores; None while only a PATCH is in."""

    async def get_span(self, workspace: str, key: bytes) -> Span | None: ...

    def search_traces(self, workspace: str, query: TraceQuery) -> AsyncIterator[list[Trace]]:
        """The project's traces the query names, in chunks read one at a time."""
        ...

    def search_spans(self, workspace: str, query: TraceQuery) -> AsyncIterator[list[Span]]:
        """As search_traces, for spans."""
        ...

    async def page_traces(self, workspace: str, query: TraceQuery) -> tuple[list[Trace], int]:
        """One page of the project's traces the query names, and how many match in all."""

    async def page_spans(self, workspace: str, query: TraceQuery) -> tuple[list[Span], int]:
        """As page_traces, for spans."""

    async def get_project(self, workspace: str, key: bytes) -> Project | None: ...

    async def find_project(self, workspace: str, name: str) -> Project | None:
        """The project of this name, matched case-insensitively."""

    # What only the web UI reads (app/ui/)

    async def list_workspaces(self, limit: int) -> list[str]:
        """The workspaces that hold a dataset or an experiment, by name."""

    async def list_datasets(self, workspace: str) -> list[Dataset]:
        """The workspace's datasets with their counts, the one of the newest experiment first."""

    async def compare_rows(
        self,
        workspace: str,
        dataset_id: bytes,
        experiments: Sequence[bytes],
        dataset_items: Sequence[bytes],
        truncate: bool,
    ) -> list[CompareRow]:
        """The compare view's rows of these dataset items, in their order."""

    async def matching_dataset_items(
        self,
        workspace: str,
        experiments: Sequence[bytes],
        text: str | None,
        differences: bool,
        page: int,
        size: int,
    ) -> tuple[list[bytes], int]:
        """A page of the dataset items the experiments have items for, newest first, that hold
        `text` (in input, output or the dataset item) and, with `differences`, where the
        experiments' outputs or scores differ; and how many in all."""

    async def trace_spans(self, workspace: str, trace_id: bytes) -> list[Span]:
        """The trace's spans, earliest first."""

    async def histograms(
        self, workspace: str, experiments: Sequence[bytes]
    ) -> dict[bytes, Histograms]:
        """Each experiment's histograms of its feedback scores and its traces' durations."""

    # Import

    async def import_records(
        self, workspace: str, user: str, records: Sequence[Incoming]
    ) -> Refused:
        """Stores the records of a transfer file in one transaction, each as given, and says
        why it refused the others; Conflict when the batch breaks a rule no check foresaw."""


async def open_store(location: Path | str, readers: int = 2, create: bool = True) -> Store:
    """The store at `location`, created (unless `create` is false) or upgraded to this
    release's schema: a SQLite file, or a PostgreSQL database for a postgresql:// URL (the
    password in it, else PGPASSWORD), whose pool holds a connection per reader and one more
    for writes; its schema is made when missing whatever `create` says (several servers share
    one database, and the first to start makes it, under the migrations' lock)."""
    if is_postgres_url(location):
        # Imported here, not at the top: importing asyncpg takes a quarter of a second, which
        # every command and worker of a SQLite user would otherwise pay.
        from app.postgres import PostgresStore

        return await PostgresStore.open(str(location), connections=readers + 1)
    return await SqliteStore.open(Path(location), readers, create=create)


def is_new(location: Path | str) -> bool:
    """Whether the database holds nothing of experiment-items yet: a file that does not exist,
    a PostgreSQL database without its tables (what `serve --demo-if-new` loads the demo into)."""
    if is_postgres_url(location):
        from app.postgres.connection import has_schema  # asyncpg: only when named

        return not asyncio.run(has_schema(str(location)))
    return not Path(location).exists()


def snapshot(
    location: Path | str, workspace: str, experiment: bytes | None = None
) -> AbstractContextManager[Snapshot]:
    """A consistent read of a workspace, or of one experiment and what it refers to, for
    export and push, the same lines in the same order on either engine; records.NotFound
    when the experiment is not there."""
    if is_postgres_url(location):
        from app.postgres import snapshot as postgres_snapshot  # asyncpg: only when named

        return postgres_snapshot.snapshot(str(location), workspace, experiment)
    return transfer.snapshot(Path(location), workspace, experiment)


def stats(location: Path | str, top: int) -> Any:
    """What the database holds, as its engine counts it (app/stats.py prints either)."""
    if is_postgres_url(location):
        from app.postgres.stats import collect as collect_postgres  # asyncpg: only when named

        return asyncio.run(collect_postgres(str(location), top))
    from app.sqlite.stats import collect as collect_sqlite

    return collect_sqlite(Path(location), top)


def copy_tables(source: Path, target: str, progress: Progress) -> dict[str, int]:
    """Every table of the SQLite file at `source` (upgraded first to this release's schema, as
    `serve` would), caches aside, copied into the empty PostgreSQL database at `target` in one
    transaction there (app/migrate.py); the rows copied, by table."""
    from app.postgres.load import load  # asyncpg: only when named
    from app.sqlite.dump import dump

    async def upgrade() -> None:
        store = await SqliteStore.open(source, readers=1, create=False)
        await store.close()

    asyncio.run(upgrade())
    with dump(source) as tables:
        return asyncio.run(load(target, tables, progress))
