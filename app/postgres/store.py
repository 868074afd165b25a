"""The PostgreSQL engine's Store, so far: the verbs of the experiment-items core (`CoreStore`
in app/store.py), experiment update and finish, and traces, spans, their feedback scores and
projects; each one transaction or a few statements on the worker's pool."""

from collections.abc import AsyncIterator, Sequence

from app.experiment_payloads import Experiment
from app.payloads import FullItem, Item
from app.postgres import aggregates, experiments, items, stream, trace_reads, traces
from app.postgres.connection import MIGRATIONS, Database
from app.records import (
    ExperimentChange,
    ExperimentRecord,
    ItemRecord,
    Patch,
    ScoreUpsert,
    SpanUpsert,
    StreamQuery,
    TraceQuery,
    TraceUpsert,
)
from app.trace_payloads import Project, Span, Trace


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
