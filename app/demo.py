"""The demo data set: three experiments over one small dataset, as an Opik evaluation writes:
the dataset's items, and for each experiment item its trace with a span and two feedback
scores, so that the web UI has something to show."""

import contextlib
import json
from dataclasses import dataclass
from pathlib import Path

from app.auth import DEFAULT_USER, DEFAULT_WORKSPACE
from app.dataset_records import DatasetItemRecord, DatasetItemsRecord
from app.records import (
    Conflict,
    ExperimentRecord,
    ItemRecord,
    ScoreRecord,
    ScoreUpsert,
    SpanRecord,
    SpanUpsert,
    TraceRecord,
    TraceUpsert,
)
from app.store import open_store

PROJECT = "support-bot"
DATASET = "support-questions"
EXPERIMENTS = ("gpt-4o-mini baseline", "gpt-4o-mini + retrieval", "claude-haiku + retrieval")
DATASET_ITEMS = 20

# Fixed ids, so loading twice updates the same items rather than adding more. They are valid
# UUIDs version 7 (RFC 9562, section 5.7) stamped 2025-01-15T09:30:00Z; the low bits say what
# each one is, which keeps them readable in the demo's output.
_STAMP_MS = 1_736_933_400_000
_KIND = {"experiment": 1, "dataset_item": 2, "trace": 3, "item": 4, "span": 5}
_STAMP_NS = _STAMP_MS * 1_000_000
TOPICS = ("password", "invoice", "refund", "shipping", "account")
# Per experiment: how often it answers right (of 4), its model, its latency and cost per call.
_RUNS = ((2, "gpt-4o-mini", 800, 0.0002), (3, "gpt-4o-mini", 1100, 0.0003),
         (3, "claude-3-haiku", 950, 0.00025))  # fmt: skip


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


def _question(d: int) -> str:
    return f"How do I change my {TOPICS[d % len(TOPICS)]} settings (case {d + 1})?"


def dataset_items() -> DatasetItemsRecord:
    """The dataset's items: a question and the answer expected."""
    return DatasetItemsRecord(
        dataset_id=None,
        dataset_name=DATASET,
        project_id=None,
        project_name=None,
        items=tuple(
            DatasetItemRecord(
                id=demo_id("dataset_item", d),
                source="sdk",
                data=json.dumps(
                    {"question": _question(d), "expected": f"Settings > {TOPICS[d % 5]}"}
                ),
            )
            for d in range(DATASET_ITEMS)
        ),
    )


def traces() -> tuple[list[TraceUpsert], list[SpanUpsert], list[ScoreUpsert]]:
    """Each experiment item's trace, its one LLM span, and its scores `correct` and
    `relevance`, with reasons."""
    found: tuple[list[TraceUpsert], list[SpanUpsert], list[ScoreUpsert]] = ([], [], [])
    for e, (right, model, latency_ms, cost) in enumerate(_RUNS):
        for d in range(DATASET_ITEMS):
            n = e * DATASET_ITEMS + d
            trace_id = demo_id("trace", n)
            correct = (d + e) % 4 < right
            topic = TOPICS[d % len(TOPICS)]
            answer = f"Open Settings > {topic}." if correct else "Please contact support."
            start = _STAMP_NS + n * 10_000_000_000
            end = start + (latency_ms + 37 * ((d * 7 + e) % 11)) * 1_000_000
            found[0].append(TraceUpsert(TraceRecord(
                id=trace_id, project_name=PROJECT, start_time=start, end_time=end,
                name="support-answer", input=json.dumps({"question": _question(d)}),
                output=json.dumps({"answer": answer}),
            ), last_updated_at=start))  # fmt: skip
            usage = {"prompt_tokens": 120 + 3 * d, "completion_tokens": 12 + 2 * e}
            found[1].append(SpanUpsert(SpanRecord(
                id=demo_id("span", n), parent_span_id=None, start_time=start, end_time=end,
                name="llm", type="llm", model=model, usage=json.dumps(usage),
                total_estimated_cost=cost,
            ), trace_id=trace_id, project_name=PROJECT, last_updated_at=start))  # fmt: skip
            relevance = round(min(1.0, 0.55 + 0.1 * e + 0.03 * (d % 5) + 0.2 * correct), 2)
            scores = (
                ScoreRecord("correct", 1.0 if correct else 0.0, "sdk", reason=(
                    f"names Settings > {topic}" if correct else "does not say where")),
                ScoreRecord("relevance", relevance, "sdk", reason="judged by the demo"),
            )  # fmt: skip
            found[2].extend(ScoreUpsert(trace_id, PROJECT, score) for score in scores)
    return found


async def load(path: Path | str) -> Loaded:
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
        await store.upsert_dataset_items(DEFAULT_WORKSPACE, DEFAULT_USER, dataset_items())
        trace_rows, spans, scores = traces()
        await store.upsert_traces(DEFAULT_WORKSPACE, DEFAULT_USER, trace_rows)
        await store.upsert_spans(DEFAULT_WORKSPACE, DEFAULT_USER, spans)
        await store.score_traces(DEFAULT_WORKSPACE, DEFAULT_USER, scores)
    finally:
        await store.close()
    return Loaded(
        workspace=DEFAULT_WORKSPACE,
        experiments={name: demo_id("experiment", e) for e, name in enumerate(EXPERIMENTS)},
        items=len(EXPERIMENTS) * DATASET_ITEMS,
        first_item=demo_id("item", 0),
    )
