"""The PostgreSQL engine's Store, so far: the verbs of the experiment-items core (`CoreStore`
in app/store.py), experiment update and finish, and the experiments' find, score names, bulk
runs, histograms and import, each one transaction or one statement on the worker's pool."""

from collections.abc import AsyncIterator, Sequence

from app.experiment_payloads import Experiment, ScoreName
from app.histograms import Histograms
from app.line_columns import Incoming, Refused
from app.payloads import FullItem, Item
from app.postgres import aggregates, bulk, experiments, find, items, stream, transfer
from app.postgres.connection import MIGRATIONS, Database
from app.records import (
    BulkRecord,
    ExperimentChange,
    ExperimentQuery,
    ExperimentRecord,
    ItemRecord,
    StreamQuery,
)


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
