"""Write throughput: `POST /items` in batches of 1000 beside a raw `executemany` of the same
rows with the same durability, the ceiling no HTTP service over SQLite can pass.

`python -m bench.writes DB BATCHES` is the raw side: run by run.py pinned to the server's
core, so both sides get the same CPU.
"""

import json
import sqlite3
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bench.data import SCHEMA, uuid7_keys
from bench.servers import request

ITEMS_PATH = "/v1/private/experiments/items"
BATCH_ITEMS = 1000
CLIENTS = 4  # enough requests in flight that the server never waits for the client
PROJECT_NAME = "bench-project"

# The service's own durability (app/sqlite/connection.py): WAL, synced at every commit.
PRAGMAS = ("journal_mode = WAL", "synchronous = FULL", "temp_store = MEMORY")
INSERT = """
INSERT INTO experiment_items (id, workspace, experiment_id, dataset_item_id, trace_id,
                              project_id, created_at, created_by, last_updated_at,
                              last_updated_by)
VALUES (?, 'default', ?, ?, ?, ?, ?, 'admin', ?, 'admin')
"""


@dataclass(frozen=True)
class WriteRate:
    items: int
    seconds: float

    @property
    def items_per_second(self) -> float:
        return self.items / self.seconds


def _canonical(key: bytes) -> str:
    h = key.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def new_id() -> str:
    """A UUID version 7 made now, as a client would send it."""
    now_ms = np.array([time.time_ns() // 1_000_000])
    return _canonical(uuid7_keys(now_ms, np.random.default_rng()).tobytes())


def make_batches(items: int, experiment_id: str) -> list[bytes]:
    """JSON bodies of BATCH_ITEMS new items each, ids version 7 in the order an SDK makes
    them, spread over a 1000-item dataset, as one evaluation run writes them."""
    rng = np.random.default_rng(7)
    now_ms = time.time_ns() // 1_000_000
    ms = now_ms + np.arange(items, dtype=np.int64) // 8
    item_ids = uuid7_keys(ms, rng).tobytes()
    trace_ids = uuid7_keys(ms, rng).tobytes()
    dataset_ids = uuid7_keys(np.full(BATCH_ITEMS, now_ms - 1), rng).tobytes()
    batches = []
    for start in range(0, items, BATCH_ITEMS):
        rows = [
            {
                "id": _canonical(item_ids[k * 16 : k * 16 + 16]),
                "experiment_id": experiment_id,
                "dataset_item_id": _canonical(
                    dataset_ids[k % BATCH_ITEMS * 16 : k % BATCH_ITEMS * 16 + 16]
                ),
                "trace_id": _canonical(trace_ids[k * 16 : k * 16 + 16]),
                "project_name": PROJECT_NAME,
            }
            for k in range(start, min(items, start + BATCH_ITEMS))
        ]
        batches.append(json.dumps({"experiment_items": rows}).encode())
    return batches


def post_batches(
    port: int,
    batches: list[bytes],
    headers: dict[str, str],
    *,
    path: str = ITEMS_PATH,
    method: str = "POST",
    records: list[int] | None = None,
) -> WriteRate:
    """Every batch through the API, CLIENTS at a time; each must answer 204. `records`:
    how many records each batch holds (by default, items counted by their trace_id)."""
    counts = records or [body.count(b'"trace_id"') for body in batches]
    pending: Iterator[tuple[bytes, int]] = iter(zip(batches, counts, strict=True))
    lock = threading.Lock()
    failures: list[str] = []
    sent = {"items": 0}
    sent_headers = {**headers, "Content-Type": "application/json"}

    def client() -> None:
        while True:
            with lock:
                body, count = next(pending, (b"", 0))
            if not body or failures:
                return
            reply = request(port, path, method, body, sent_headers)
            if reply.status != 204:
                failures.append(f"{reply.status} {reply.body[:300]!r}")
            with lock:
                sent["items"] += count

    threads = [threading.Thread(target=client) for _ in range(CLIENTS)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    seconds = time.perf_counter() - started
    if failures:
        raise RuntimeError(f"{method} {path} failed: {failures[0]}")
    return WriteRate(sent["items"], seconds)


def _rows(batch: bytes, project_id: bytes, now_ns: int) -> list[tuple[object, ...]]:
    def key(text: str) -> bytes:
        return bytes.fromhex(text.replace("-", ""))

    return [
        (
            key(i["id"]),
            key(i["experiment_id"]),
            key(i["dataset_item_id"]),
            key(i["trace_id"]),
            project_id,
            now_ns,
            now_ns,
        )
        for i in json.loads(batch)["experiment_items"]
    ]


def raw_executemany(db: Path, batches: list[bytes]) -> WriteRate:
    """The same rows straight into SQLite: one transaction per batch, synced at commit.
    Only the executemany and the commit are timed; the rows are made beforehand."""
    conn = sqlite3.connect(db, isolation_level=None)
    for pragma in PRAGMAS:
        conn.execute(f"PRAGMA {pragma}")
    if conn.execute("SELECT count(*) FROM sqlite_schema").fetchone()[0] == 0:
        conn.executescript(SCHEMA.read_text())  # a new file; later rounds add to it
    now_ns = time.time_ns() // 1000 * 1000
    project_id = uuid7_keys(np.array([now_ns // 1_000_000]), np.random.default_rng(9))[0]
    prepared = [_rows(batch, project_id.tobytes(), now_ns) for batch in batches]
    started = time.perf_counter()
    for rows in prepared:
        conn.execute("BEGIN IMMEDIATE")
        conn.executemany(INSERT, rows)
        conn.execute("COMMIT")
    seconds = time.perf_counter() - started
    conn.close()
    return WriteRate(sum(len(rows) for rows in prepared), seconds)


def main(argv: list[str]) -> None:
    db, batches_file = Path(argv[0]), Path(argv[1])
    batches = batches_file.read_bytes().splitlines()
    rate = raw_executemany(db, batches)
    print(json.dumps({"items": rate.items, "seconds": rate.seconds}))


if __name__ == "__main__":
    main(sys.argv[1:])
