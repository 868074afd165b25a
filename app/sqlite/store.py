"""The SQLite engine's Store: the verbs of app/store.py over one database file, each one
transaction on the writer or a few statements on a reader (app/sqlite/connection.py)."""

from collections.abc import AsyncIterator, Sequence
from pathlib import Path

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
from app.sqlite import aggregates, bulk, experiments, items, stream, transfer
from app.sqlite.connection import Database
from app.sqlite.line_tables import Incoming, Refused
from app.sqlite.migrations import MIGRATIONS


class SqliteStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    @classmethod
    async def open(
        cls,
        path: Path | str,
        readers: int = 2,
        migrations: Sequence[str] = MIGRATIONS,
        create: bool = True,
    ) -> "SqliteStore":
        """The database at `path`, created (unless `create` is false) or upgraded in place
        to the latest schema."""
        return cls(await Database.open(path, readers, migrations, create))

    async def close(self) -> None:
        await self.db.close()

    async def ping(self) -> None:
        await self.db.check()

    async def get_item(self, workspace: str, item_id: bytes) -> Item | None:
        # The hot path: one batched lookup on a reader, one conversion.
        row = await self.db.lookup(items.ITEM_BY_ID, workspace, item_id)
        return None if row is None else items.item(row)

    async def upsert_items(self, workspace: str, user: str, records: Sequence[ItemRecord]) -> None:
        await items.upsert_items(self.db, workspace, user, records)

    async def delete_items(self, workspace: str, item_ids: Sequence[bytes]) -> None:
        await items.delete_items(self.db, workspace, item_ids)

    def stream_items(self, workspace: str, query: StreamQuery) -> AsyncIterator[list[FullItem]]:
        return stream.stream_items(self.db, workspace, query)

    async def create_experiment(self, workspace: str, user: str, record: ExperimentRecord) -> None:
        await experiments.create_experiment(self.db, workspace, user, record)

    async def get_experiment(self, workspace: str, key: bytes) -> Experiment | None:
        found = await aggregates.experiments(self.db, workspace, [key])
        return found[0] if found else None

    async def find_experiments(
        self, workspace: str, query: ExperimentQuery, count: bool = False
    ) -> tuple[list[Experiment], int]:
        keys, total = await experiments.find_ids(self.db, workspace, query, count)
        return await aggregates.experiments(self.db, workspace, keys), total

    async def update_experiments(
        self, workspace: str, user: str, keys: Sequence[bytes], change: ExperimentChange
    ) -> int:
        return await experiments.update_experiments(self.db, workspace, user, keys, change)

    async def finish_experiments(self, workspace: str, user: str, keys: Sequence[bytes]) -> None:
        await experiments.finish_experiments(self.db, workspace, user, keys)

    async def score_names(
        self, workspace: str, keys: Sequence[bytes] | None, project: bytes | None
    ) -> list[ScoreName]:
        return await aggregates.score_names(self.db, workspace, keys, project)

    async def delete_experiments(self, workspace: str, keys: Sequence[bytes]) -> None:
        await experiments.delete_experiments(self.db, workspace, keys)

    async def record_bulk(self, workspace: str, user: str, record: BulkRecord) -> None:
        await bulk.record_bulk(self.db, workspace, user, record)

    async def import_records(
        self, workspace: str, user: str, records: Sequence[Incoming]
    ) -> Refused:
        return await transfer.import_records(self.db, workspace, user, records)
