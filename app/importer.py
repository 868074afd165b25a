"""Import: the records of a transfer file, or bare items, into a workspace, a batch at a time."""

import codecs
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from app import lines
from app.auth import DEFAULT_USER
from app.progress import Progress
from app.records import Conflict
from app.store import Incoming, Refused, Store, incoming, open_store

DEFAULT_BATCH_LINES = 1000
# About a second of writing on a small box: other writers wait far inside the busy timeout.
MAX_BATCH_LINES = 10_000
MAX_LISTED = 20  # rejected lines the report names; it counts the others


@dataclass
class Report:
    """What an import did: lines read (blank ones aside), stored and rejected, and the
    first MAX_LISTED rejected lines with the reason."""

    read: int = 0
    stored: int = 0
    rejected: int = 0
    listed: list[tuple[int, str]] = field(default_factory=list)

    def reject(self, line: int, reason: str) -> None:
        self.rejected += 1
        self.listed.append((line, reason))
        if len(self.listed) > 2 * MAX_LISTED:  # a batch reports its lines after later ones
            self.listed = sorted(self.listed)[:MAX_LISTED]

    def first_rejected(self) -> list[tuple[int, str]]:
        return sorted(self.listed)[:MAX_LISTED]


async def import_lines(
    database: Path | str,
    source: Iterable[bytes],
    workspace: str,
    batch_lines: int,
    progress: Progress,
) -> Report:
    """Stores the good lines of `source` in `database` (created when missing), one
    transaction per `batch_lines` of them, and reports the others by line number."""
    store = await open_store(database, readers=1)
    try:
        return await _import(store, source, workspace, batch_lines, progress)
    finally:
        await store.close()
        progress.done()


async def _import(
    store: Store, source: Iterable[bytes], workspace: str, batch_lines: int, progress: Progress
) -> Report:
    report, batch = Report(), list[Incoming]()
    for number, text in enumerate(source, 1):
        if number == 1:  # a file saved by some Windows tools starts with a byte order mark
            text = text.removeprefix(codecs.BOM_UTF8)
        if not text.strip():
            continue
        report.read += 1
        try:
            batch.append(incoming(*lines.decode(text), number))
        except ValueError as exc:
            report.reject(number, str(exc))
        if len(batch) == batch_lines:
            await _store(store, workspace, batch, report)
            batch = []
        progress.show(
            f"read {report.read:,} lines: {report.stored:,} stored, {report.rejected:,} rejected"
        )
    if batch:
        await _store(store, workspace, batch, report)
    return report


async def _store(store: Store, workspace: str, batch: list[Incoming], report: Report) -> None:
    try:
        refused = await store.import_records(workspace, DEFAULT_USER, batch)
    except Conflict:
        # The batch broke a rule that no check foresaw: one transaction per line finds which.
        refused = await _one_by_one(store, workspace, batch)
    for line, reason in refused.items():
        report.reject(line, reason)
    report.stored += len(batch) - len(refused)


async def _one_by_one(store: Store, workspace: str, batch: list[Incoming]) -> Refused:
    refused: Refused = {}
    for record in batch:
        try:
            refused.update(await store.import_records(workspace, DEFAULT_USER, [record]))
        except Conflict as exc:
            refused[record.line] = f"refused: {exc}"
    return refused
