"""The PostgreSQL engine's Store: the verbs of the experiment-items core (`CoreStore`
in app/store.py) and every other verb of `Store`, each one transaction or a few statements on
the worker's pool."""

from collections.abc import AsyncIterator, Sequence

from app.dataset_payloads import CompareRow, Dataset, DatasetItem
from app.dataset_records import DatasetItemsRecord, DatasetRecord, ItemFilter, PromptVersionRecord
from app.experiment_payloads import Experiment, ScoreName
from app.histograms import Histograms
from app.line_columns import Incoming, Refused
from app.payloads import FullItem, Item
from app.postgres import (
    aggregates,
    browse,
    bulk,
    compare,
    datasets,
    experiments,
    find,
    items,
    prompts,
    stream,
    trace_reads,
    traces,
    transfer,
)
from app.postgres.connection import MIGRATIONS, Database
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
from app.trace_payloads import Project, Span, Trace
from app.trace_records import TraceQuery


class PostgresStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    @classmethod
    async def open(
        cls, url: str, connections: int = 3, migrations: Sequence[str] = MIGRATIONS
    ) -> "PostgresStore":
        """The database at the libpq URL `url`, created or upgraded to the latest schema."""
        return cls(await Database.open(url, connections, migrations))

    async def close(self) -> None:
        await self.db.close()

    async def ping(self) -> None:
        await self.db.check()

    # Traces, spans, feedback scores, projects

    async def upsert_traces(
        self, workspace: str, user: str, records: Sequence[TraceUpsert]
    ) -> None:
        await traces.upsert_traces(self.db, workspace, user, records)

    async def upsert_spans(self, workspace: str, user: str, records: Sequence[SpanUpsert]) -> None:
        await traces.upsert_spans(self.db, workspace, user, records)

    async def patch_trace(self, workspace: str, user: str, patch: Patch) -> None:
        await traces.patch_trace(self.db, workspace, user, patch)

    async def patch_span(self, workspace: str, user: str, patch: Patch) -> None:
        await traces.patch_span(self.db, workspace, user, patch)

    async def score_traces(self, workspace: str, user: str, scores: Sequence[ScoreUpsert]) -> None:
        await traces.score_traces(self.db, workspace, user, scores)

    async def score_spans(self, workspace: str, user: str, scores: Sequence[ScoreUpsert]) -> None:
        await traces.score_spans(self.db, workspace, user, scores)

    async def delete_traces(
        self, workspace: str, keys: Sequence[bytes], project_id: bytes | None
    ) -> None:
        await traces.delete_traces(self.db, workspace, keys, project_id)

    async def delete_trace_score(
        self, workspace: str, key: bytes, name: str, author: str | None
    ) -> None:
        await traces.delete_trace_score(self.db, workspace, key, name, author)

    async def delete_span_score(
        self, workspace: str, key: bytes, name: str, author: str | None
    ) -> None:
        await traces.delete_span_score(self.db, workspace, key, name, author)

    async def get_trace(self, workspace: str, key: bytes) -> Trace | None:
        return await trace_reads.get_trace(self.db, workspace, key)

    async def get_span(self, workspace: str, key: bytes) -> Span | None:
        return await trace_reads.get_span(self.db, workspace, key)

    def search_traces(self, workspace: str, query: TraceQuery) -> AsyncIterator[list[Trace]]:
        return trace_reads.search_traces(self.db, workspace, query)

    def search_spans(self, workspace: str, query: TraceQuery) -> AsyncIterator[list[Span]]:
        return trace_reads.search_spans(self.db, workspace, query)

    async def page_traces(self, workspace: str, query: TraceQuery) -> tuple[list[Trace], int]:
        return await trace_reads.page(self.db, workspace, "traces", query)

    async def page_spans(self, workspace: str, query: TraceQuery) -> tuple[list[Span], int]:
        return await trace_reads.page(self.db, workspace, "spans", query)

    async def get_project(self, workspace: str, key: bytes) -> Project | None:
        return await trace_reads.get_project(self.db, workspace, key)

    async def find_project(self, workspace: str, name: str) -> Project | None:
        return await trace_reads.find_project(self.db, workspace, name)

    async def trace_spans(self, workspace: str, trace_id: bytes) -> list[Span]:
        return await trace_reads.trace_spans(self.db, workspace, trace_id)

    async def get_item(self, workspace: str, item_id: bytes) -> Item | None:
        return await items.get_item(self.db, workspace, item_id)

    async def upsert_items(self, workspace: str, user: str, records: Sequence[ItemRecord]) -> None:
        await items.upsert_items(self.db, workspace, user, records)

    async def delete_items(self, workspace: str, item_ids: Sequence[bytes]) -> None:
        await items.delete_items(self.db, workspace, item_ids)

    def stream_items(self, workspace: str, query: StreamQuery) -> AsyncIterator[list[FullItem]]:
        return stream.stream_items(self.db, workspace, query)

    # Datasets and their items, prompt versions, what only the web UI reads

    async def create_dataset(self, workspace: str, user: str, record: DatasetRecord) -> None:
        await datasets.create_dataset(self.db, workspace, user, record)

    async def find_dataset(self, workspace: str, name: str) -> Dataset | None:
        return await datasets.find_dataset(self.db, workspace, name)

    async def get_dataset(self, workspace: str, key: bytes) -> Dataset | None:
        return await datasets.get_dataset(self.db, workspace, key)

    async def delete_dataset(self, workspace: str, key: bytes) -> None:
        await datasets.delete_dataset(self.db, workspace, key)

    async def upsert_dataset_items(
        self, workspace: str, user: str, record: DatasetItemsRecord
    ) -> None:
        await datasets.upsert_dataset_items(self.db, workspace, user, record)

    async def stream_dataset_items(
        self,
        workspace: str,
        name: str,
        before: bytes | None,
        limit: int,
        filters: Sequence[ItemFilter] = (),
    ) -> list[DatasetItem]:
        return await datasets.stream_dataset_items(self.db, workspace, name, before, limit, filters)

    async def page_dataset_items(
        self,
        workspace: str,
        dataset_id: bytes,
        page: int,
        size: int,
        truncate: bool,
        filters: Sequence[ItemFilter] = (),
    ) -> tuple[list[DatasetItem], int]:
        return await datasets.page_dataset_items(
            self.db, workspace, dataset_id, page, size, truncate, filters
        )

    async def delete_dataset_items(
        self,
        workspace: str,
        keys: Sequence[bytes],
        dataset_id: bytes | None,
        filters: Sequence[ItemFilter] = (),
    ) -> None:
        await datasets.delete_dataset_items(self.db, workspace, keys, dataset_id, filters)

    async def compare_dataset_items(
        self,
        workspace: str,
        dataset_id: bytes,
        experiments: Sequence[bytes],
        page: int,
        size: int,
        truncate: bool,
    ) -> tuple[list[CompareRow], int]:
        return await compare.compare_page(
            self.db, workspace, dataset_id, experiments, page, size, truncate
        )

    async def create_prompt_version(
        self, workspace: str, user: str, record: PromptVersionRecord, new_prompt: bool
    ) -> PromptVersion:
        return await prompts.create_version(self.db, workspace, user, record, new_prompt)

    async def find_prompt_version(
        self, workspace: str, name: str, commit: str | None
    ) -> PromptVersion | None:
        return await prompts.find_version(self.db, workspace, name, commit)

    async def get_prompt_version(self, workspace: str, key: bytes) -> PromptVersion | None:
        return await prompts.get_version(self.db, workspace, key)

    async def list_workspaces(self, limit: int) -> list[str]:
        return await browse.workspaces(self.db, limit)

    async def list_datasets(self, workspace: str) -> list[Dataset]:
        return await browse.datasets(self.db, workspace)

    async def compare_rows(
        self,
        workspace: str,
        dataset_id: bytes,
        experiments: Sequence[bytes],
        dataset_items: Sequence[bytes],
        truncate: bool,
    ) -> list[CompareRow]:
        return await compare.rows_of(
            self.db, workspace, dataset_id, experiments, dataset_items, truncate
        )

    async def matching_dataset_items(
        self,
        workspace: str,
        experiments: Sequence[bytes],
        text: str | None,
        differences: bool,
        page: int,
        size: int,
    ) -> tuple[list[bytes], int]:
        return await browse.matching_items(
            self.db, workspace, experiments, text, differences, page, size
        )

    async def create_experiment(self, workspace: str, user: str, record: ExperimentRecord) -> None:
        await experiments.create_experiment(self.db, workspace, user, record)

    async def get_experiment(self, workspace: str, key: bytes) -> Experiment | None:
        return await aggregates.get_experiment(self.db, workspace, key)

    async def update_experiments(
        self, workspace: str, user: str, keys: Sequence[bytes], change: ExperimentChange
    ) -> int:
        return await experiments.update_experiments(self.db, workspace, user, keys, change)

    async def finish_experiments(self, workspace: str, user: str, keys: Sequence[bytes]) -> None:
        await experiments.finish_experiments(self.db, workspace, user, keys)

    async def delete_experiments(self, workspace: str, keys: Sequence[bytes]) -> None:
        await experiments.delete_experiments(self.db, workspace, keys)

    # Experiments: find, score names; bulk recording, histograms, import

    async def find_experiments(
        self, workspace: str, query: ExperimentQuery, count: bool = False
    ) -> tuple[list[Experiment], int]:
        async with self.db.pool.acquire() as conn, conn.transaction(isolation="repeatable_read"):
            keys, total = await find.find_ids(conn, workspace, query, count)
            return await aggregates.experiments(conn, workspace, keys), total

    async def score_names(
        self, workspace: str, keys: Sequence[bytes] | None, project: bytes | None
    ) -> list[ScoreName]:
        return await find.score_names(self.db, workspace, keys, project)

    async def record_bulk(self, workspace: str, user: str, record: BulkRecord) -> None:
        await bulk.record_bulk(self.db, workspace, user, record)

    async def histograms(
        self, workspace: str, experiments: Sequence[bytes]
    ) -> dict[bytes, Histograms]:
        return await aggregates.histograms(self.db, workspace, experiments)

    async def import_records(
        self, workspace: str, user: str, records: Sequence[Incoming]
    ) -> Refused:
        return await transfer.import_records(self.db, workspace, user, records)
