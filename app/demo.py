"""The demo data set: three experiments over one small dataset, as an Opik evaluation writes."""

import contextlib
from dataclasses import dataclass
from pathlib import Path

from app.auth import DEFAULT_USER, DEFAULT_WORKSPACE
from app.records import Conflict, ExperimentRecord, ItemRecord
from app.store import open_store

PROJECT = "support-bot"
DATASET = "support-questions"
EXPERIMENTS = ("gpt-4o-mini baseline", "gpt-4o-mini + retrieval", "claude-haiku + retrieval")
DATASET_ITEMS = 20

# Fixed ids, so loading twice updates the same items rather than adding more. They are valid
# UUIDs version 7 (RFC 9562, section 5.7) stamped 2025-01-15T09:30:00Z; the low bits say what
# each one is, which keeps them readable in the demo's output.
_STAMP_MS = 1_736_933_400_000
_KIND = {"experiment": 1, "dataset_item": 2, "trace": 3, "item": 4}


def demo_id(kind: str, number: int) -> bytes:
    value = (_STAMP_MS << 80) | (0x7 << 76) | (0b10 << 62) | (_KIND[kind] << 32) | number
    return value.to_bytes(16)


@dataclass(frozen=True, slots=True)
class Loaded:
    workspace: str
    experiments: dict[str, bytes]  # name: id
    items: int
    first_item: bytes


def records() -> list[list[ItemRecord]]:
    """One batch per experiment: each experiment evaluated every dataset item once."""
    batches = []
    for e in range(len(EXPERIMENTS)):
        batch = []
        for d in range(DATASET_ITEMS):
            n = e * DATASET_ITEMS + d
            batch.append(
                ItemRecord(
                    id=demo_id("item", n),
                    experiment_id=demo_id("experiment", e),
                    dataset_item_id=demo_id("dataset_item", d),
                    trace_id=demo_id("trace", n),
                    project_name=PROJECT,
                    project_id=None,
                )
            )
        batches.append(batch)
    return batches


def experiments() -> list[ExperimentRecord]:
    """The experiments the items belong to, each over the demo's dataset (made by its name)."""
    return [
        ExperimentRecord(
            id=demo_id("experiment", e),
            name=name,
            dataset_name=DATASET,
            project_id=None,
            project_name=PROJECT,
        )
        for e, name in enumerate(EXPERIMENTS)
    ]


async def load(path: Path) -> Loaded:
    """Writes the demo experiments, their dataset and their items into the database at `path`
    through the store, as the API does: every id the demo prints can be read back."""
    store = await open_store(path, readers=1)
    try:
        for record in experiments():
            # Loading twice keeps the experiment made the first time (its ids are fixed).
            with contextlib.suppress(Conflict):
                await store.create_experiment(DEFAULT_WORKSPACE, DEFAULT_USER, record)
        for batch in records():
            await store.upsert_items(DEFAULT_WORKSPACE, DEFAULT_USER, batch)
    finally:
        await store.close()
    return Loaded(
        workspace=DEFAULT_WORKSPACE,
        experiments={name: demo_id("experiment", e) for e, name in enumerate(EXPERIMENTS)},
        items=len(EXPERIMENTS) * DATASET_ITEMS,
        first_item=demo_id("item", 0),
    )
