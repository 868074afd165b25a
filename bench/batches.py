"""Trace, span and dataset-item batches as the Opik SDK sends them (1000 records a request,
gzipped), beside a raw `executemany` of the same rows into the same schema: the ceiling no
HTTP service over SQLite can pass.

`python -m bench.batches KIND DB BATCHES` is the raw side, run by run.py pinned to the
server's core as bench.writes is; BATCHES holds the uncompressed bodies, one a line.
"""

import gzip
import json
import sqlite3
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

from bench.data import SCHEMA, uuid7_keys
from bench.writes import PRAGMAS, PROJECT_NAME, WriteRate, _canonical

BATCH_RECORDS = 1000
DATASET_NAME = "bench-items-dataset"
# The SDK gzips every JSON body of 256 bytes or more at zlib's default level
# (opik/httpx_client.py, DEFAULT_COMPRESSION_LEVEL and MIN_COMPRESSED_ENTITY_BYTES).
GZIP_LEVEL = 6
_VOCABULARY = (
    "the model answer question context retrieval document score agent tool call result "
    "user system prompt token latency cost dataset item experiment trace span metric "
    "evaluation reference output input summary paris france capital city river report "
    "quarterly revenue growth customer support ticket refund policy order shipping"
)


@dataclass(frozen=True)
class Kind:
    """One write row: the route, the JSON key of its records, and how the raw side makes and
    inserts the rows the service stores for them."""

    key: str
    label: str
    method: str
    path: str
    field: str
    status: int
    table: str
    columns: tuple[str, ...]


TRACES = Kind(
    "traces", "POST /traces/batch", "POST", "/v1/private/traces/batch", "traces", 204, "traces",
    ("id", "workspace", "project_id", "hidden", "name", "start_time", "end_time", "input",
     "output", "metadata", "tags", "error_info", "thread_id", "ttft", "source", "environment",
     "created_at", "created_by", "last_updated_at", "last_updated_by", "partial"),
)  # fmt: skip
SPANS = Kind(
    "spans", "POST /spans/batch", "POST", "/v1/private/spans/batch", "spans", 204, "spans",
    ("id", "workspace", "trace_id", "project_id", "parent_span_id", "name", "type",
     "start_time", "end_time", "input", "output", "metadata", "model", "provider", "tags",
     "usage", "error_info", "total_estimated_cost", "total_estimated_cost_version", "ttft",
     "source", "environment", "created_at", "created_by", "last_updated_at",
     "last_updated_by", "partial"),
)  # fmt: skip
DATASET_ITEMS = Kind(
    "dataset_items", "PUT /datasets/items", "PUT", "/v1/private/datasets/items", "items", 204,
    "dataset_items",
    ("id", "workspace", "dataset_id", "source", "trace_id", "span_id", "data", "description",
     "tags", "evaluators", "execution_policy", "created_at", "created_by", "last_updated_at",
     "last_updated_by"),
)  # fmt: skip
KINDS = {kind.key: kind for kind in (TRACES, SPANS, DATASET_ITEMS)}


@dataclass(frozen=True)
class Batch:
    """One request: its JSON text and the gzipped body the SDK would send."""

    text: bytes
    body: bytes
    records: int


class _Text:
    """Sentences of plausible words, deterministic per seed: bodies that gzip as real
    prompts and answers do, not as a repeated string."""

    def __init__(self, seed: int) -> None:
        self.rng = np.random.default_rng(seed)
        self.pool = self.rng.choice(_VOCABULARY.split(), size=1 << 16).tolist()

    def words(self, count: int) -> str:
        at = int(self.rng.integers(0, len(self.pool) - count))
        return " ".join(self.pool[at : at + count])


def _instant(ns: int) -> str:
    """An ISO 8601 instant with microseconds, as the SDK writes them."""
    seconds, rest = divmod(ns, 1_000_000_000)
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds))
    return f"{stamp}.{rest // 1000:06d}Z"


def _ids(count: int, ms: np.ndarray, rng: np.random.Generator) -> list[str]:
    raw = uuid7_keys(ms, rng).tobytes()
    return [_canonical(raw[k * 16 : k * 16 + 16]) for k in range(count)]


def _batches(records: list[dict[str, Any]], field: str, **extra: Any) -> list[Batch]:
    out = []
    for at in range(0, len(records), BATCH_RECORDS):
        chunk = records[at : at + BATCH_RECORDS]
        # json.dumps with its default separators, as the SDK serialises (opik/jsonable_encoder).
        text = json.dumps({**extra, field: chunk}).encode()
        out.append(Batch(text, gzip.compress(text, GZIP_LEVEL), len(chunk)))
    return out


def _trace_ids(count: int, seed: int) -> tuple[list[str], list[int]]:
    """Ids and start times of `count` traces made one per millisecond from now on."""
    now_ms = time.time_ns() // 1_000_000
    ms = now_ms + np.arange(count, dtype=np.int64)
    starts = (ms * 1_000_000 + np.random.default_rng(seed).integers(0, 999_000, count)).tolist()
    return _ids(count, ms, np.random.default_rng(seed + 1)), starts


def make_traces(count: int, seed: int = 11) -> list[Batch]:
    """Traces of an LLM app as `@track` logs them: chat messages in, an answer out, the
    call's metadata and tags, start and end times and the client's last_updated_at."""
    text = _Text(seed)
    ids, starts = _trace_ids(count, seed)
    records = []
    for k in range(count):
        end = starts[k] + 300_000_000 + k % 997 * 1_000_000
        question = text.words(30)
        records.append({
            "id": ids[k],
            "project_name": PROJECT_NAME,
            "name": "chat_pipeline",
            "start_time": _instant(starts[k]),
            "end_time": _instant(end),
            "input": {"messages": [
                {"role": "system", "content": "You answer from the context. " + text.words(12)},
                {"role": "user", "content": question},
            ]},
            "output": {"output": text.words(50)},
            "metadata": {"created_from": "openai", "model": "gpt-4o-mini", "temperature": 0.2,
                         "max_tokens": 512, "session": f"s-{k % 50}"},
            "tags": ["bench", "chat"],
            "last_updated_at": _instant(end + 20_000),
            "source": "sdk",
        })  # fmt: skip
    return _batches(records, TRACES.field)


def make_spans(count: int, seed: int = 12) -> list[Batch]:
    """Two spans per trace as `@track` and the OpenAI integration log them: the function's
    own (general) and, under it, the LLM call's with model, provider, usage and cost."""
    text = _Text(seed)
    traces, starts = _trace_ids(-(-count // 2), seed)
    ids, _ = _trace_ids(count, seed + 2)
    records = []
    for k in range(count):
        trace = k // 2
        start = starts[trace] + (k % 2) * 1_000_000
        end = start + 250_000_000 + k % 991 * 1_000_000
        span: dict[str, Any] = {
            "id": ids[k],
            "project_name": PROJECT_NAME,
            "trace_id": traces[trace],
            "name": "answer",
            "type": "general",
            "start_time": _instant(start),
            "end_time": _instant(end),
            "input": {"question": text.words(30)},
            "output": {"output": text.words(50)},
            "last_updated_at": _instant(end + 20_000),
            "source": "sdk",
        }
        if k % 2:
            prompt, completion = 200 + k % 300, 40 + k % 200
            span.update(
                parent_span_id=ids[k - 1],
                name="chat_completion_create",
                type="llm",
                input={"messages": [{"role": "user", "content": text.words(30)}]},
                output={"choices": [{"index": 0, "finish_reason": "stop", "message": {
                    "role": "assistant", "content": text.words(50)}}]},
                metadata={"created_from": "openai", "type": "openai_chat", "temperature": 0.2},
                model="gpt-4o-mini-2024-07-18",
                provider="openai",
                usage={
                    "completion_tokens": completion,
                    "prompt_tokens": prompt,
                    "total_tokens": prompt + completion,
                    "original_usage.completion_tokens": completion,
                    "original_usage.prompt_tokens": prompt,
                    "original_usage.total_tokens": prompt + completion,
                },
                total_estimated_cost=round(prompt * 1.5e-7 + completion * 6e-7, 9),
            )  # fmt: skip
        records.append(span)
    return _batches(records, SPANS.field)


def make_dataset_items(count: int, seed: int = 13) -> list[Batch]:
    """Dataset items as `Dataset.insert` sends them: new ids, source "sdk", a question with
    its context and expected answer, the SDK's explicit nulls."""
    text = _Text(seed)
    ids, _ = _trace_ids(count, seed)
    group = _ids(1, np.array([time.time_ns() // 1_000_000]), np.random.default_rng(seed))[0]
    records = [
        {
            "id": ids[k],
            "trace_id": None,
            "span_id": None,
            "source": "sdk",
            "data": {
                "input": {"question": text.words(25)},
                "context": [text.words(40), text.words(40)],
                "expected_output": text.words(20),
                "difficulty": ("easy", "medium", "hard")[k % 3],
            },
            "description": None,
            "evaluators": None,
            "execution_policy": None,
        }
        for k in range(count)
    ]
    return _batches(records, DATASET_ITEMS.field, dataset_name=DATASET_NAME, batch_group_id=group)


MAKERS: dict[str, Callable[[int], list[Batch]]] = {
    "traces": make_traces,
    "spans": make_spans,
    "dataset_items": make_dataset_items,
}


# --- The raw side ---------------------------------------------------------------------------


def _key(text: str | None) -> bytes | None:
    return None if text is None else bytes.fromhex(text.replace("-", ""))


def _ns(text: str | None) -> int | None:
    if text is None:
        return None
    stamp = datetime.fromisoformat(text)
    return int(stamp.timestamp()) * 1_000_000_000 + stamp.microsecond * 1000


def _json(value: Any) -> str | None:
    return None if value is None else json.dumps(value)


def _rows(kind: Kind, batch: dict[str, Any], fixed: dict[str, Any]) -> list[tuple[Any, ...]]:
    """The rows the service stores for one batch, column by column: ids as 16 bytes, instants
    as nanoseconds, JSON fields as text."""
    rows = []
    for record in batch[kind.field]:
        row = dict(fixed)
        for column in kind.columns:
            if column in row:
                continue
            value = record.get(column)
            if column in ("id", "trace_id", "parent_span_id", "span_id"):
                value = _key(value)
            elif column in ("start_time", "end_time"):
                value = _ns(value)
            elif column in ("input", "output", "metadata", "tags", "usage", "data", "error_info",
                            "evaluators", "execution_policy"):  # fmt: skip
                value = _json(value)
            row[column] = value
        if "last_updated_at" in record:
            row["last_updated_at"] = _ns(record["last_updated_at"])
        rows.append(tuple(row[c] for c in kind.columns))
    return rows


def raw_executemany(kind: Kind, db: Path, texts: list[bytes]) -> WriteRate:
    """The same rows straight into SQLite: one transaction per batch, synced at commit.
    Only the executemany and the commit are timed; the rows are made beforehand."""
    conn = sqlite3.connect(db, isolation_level=None)
    for pragma in PRAGMAS:
        conn.execute(f"PRAGMA {pragma}")
    if conn.execute("SELECT count(*) FROM sqlite_schema").fetchone()[0] == 0:
        conn.executescript(SCHEMA.read_text())  # a new file; later rounds add to it
    now_ns = time.time_ns() // 1000 * 1000
    owner = uuid7_keys(np.array([now_ns // 1_000_000]), np.random.default_rng(9))[0].tobytes()
    fixed = {
        "workspace": "default",
        "created_at": now_ns,
        "created_by": "admin",
        "last_updated_at": now_ns,
        "last_updated_by": "admin",
    }
    if kind is DATASET_ITEMS:
        fixed["dataset_id"] = owner
    else:
        fixed.update(project_id=owner, partial=0)
        if kind is TRACES:
            fixed["hidden"] = 0
    prepared = [_rows(kind, json.loads(text), fixed) for text in texts]
    marks = ", ".join("?" * len(kind.columns))
    insert = f"INSERT INTO {kind.table} ({', '.join(kind.columns)}) VALUES ({marks})"
    started = time.perf_counter()
    for rows in prepared:
        conn.execute("BEGIN IMMEDIATE")
        conn.executemany(insert, rows)
        conn.execute("COMMIT")
    seconds = time.perf_counter() - started
    conn.close()
    return WriteRate(sum(len(rows) for rows in prepared), seconds)


def main(argv: list[str]) -> None:
    kind, db, batches_file = KINDS[argv[0]], Path(argv[1]), Path(argv[2])
    rate = raw_executemany(kind, db, batches_file.read_bytes().splitlines())
    print(json.dumps({"items": rate.items, "seconds": rate.seconds}))


if __name__ == "__main__":
    main(sys.argv[1:])
