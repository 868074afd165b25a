"""The snapshot of export and push on either engine: one read transaction, so that what is
written while it is read is not in it; and one experiment's scope."""

import asyncio
from pathlib import Path

import pytest

from app import ids
from app.lines import ItemLine
from app.records import ItemRecord, NotFound
from app.store import open_store, snapshot

PAGES = 3  # items per experiment: PAGE_ROWS is patched to 2, so each kind spans two pages


def _items(experiment: bytes, count: int) -> list[ItemRecord]:
    return [
        ItemRecord(id=ids.uuid7(), experiment_id=experiment, dataset_item_id=ids.uuid7(),
                   trace_id=ids.uuid7(), project_name=None, project_id=None)
        for _ in range(count)
    ]  # fmt: skip


def _write(location: Path | str, items: list[ItemRecord]) -> None:
    async def write() -> None:
        store = await open_store(location, readers=1)
        try:
            await store.upsert_items("default", "ann", items)
        finally:
            await store.close()

    asyncio.run(write())


def test_what_is_written_during_a_snapshot_is_not_in_it(
    location: Path | str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("app.snapshots.PAGE_ROWS", 2)
    first, later = ids.uuid7(), ids.uuid7()
    _write(location, _items(first, PAGES))

    with snapshot(location, "default") as snap:
        pages = snap.pages("experiment_item")
        before = next(pages)
        _write(location, _items(first, 2) + _items(later, 2))
        seen = [*before, *(line for page in pages for line in page)]
        assert all(isinstance(line, ItemLine) for line in seen)
        counted = snap.count("experiment_item")
    with snapshot(location, "default", later) as scoped:
        scoped_lines = [line for page in scoped.pages("experiment_item") for line in page]

    assert len(before) == 2
    assert counted == len(seen) == PAGES
    keys = [str(line.id) for line in seen if isinstance(line, ItemLine)]
    assert keys == sorted(keys)  # key order
    assert {line.experiment_id for line in scoped_lines if isinstance(line, ItemLine)} == {
        ids.to_str(later)
    }
    assert len(scoped_lines) == 2


def test_a_snapshot_of_an_experiment_the_workspace_lacks_is_not_found(
    location: Path | str,
) -> None:
    _write(location, _items(ids.uuid7(), 1))
    missing = ids.uuid7()

    said = f"no experiment {ids.to_str(missing)}"
    with pytest.raises(NotFound, match=said), snapshot(location, "default", missing):
        pass
    with pytest.raises(NotFound), snapshot(location, "other", missing):
        pass
