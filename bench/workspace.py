"""The experiments workspace of the find-page benchmark: EXPERIMENTS experiments over one
dataset, each of its items with a trace, two spans with usage and cost and two feedback
scores; built straight with sqlite3 from the checkout's schema.sql, rows only (whatever the
server derives from them, a summary table say, it fills itself), cached as data.py's files,
with every experiment's expected aggregates to check the server's answers against."""

import hashlib
import json
import math
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from bench.data import BASE_MS, SCHEMA, uuid7_keys

# Bump when the generated rows change, so cached files are rebuilt.
GENERATOR_VERSION = 1
SCORES = ("equals_metric", "relevance")
USAGE_KEYS = ("completion_tokens", "prompt_tokens", "total_tokens")
PROJECT = "bench-find-project"
DATASET = "bench-find-dataset"
# The page the find benchmark reads: the first 100 experiments, newest first.
PAGE_SIZE = 100

INSERT_PROJECT = """
INSERT INTO projects (id, workspace, name, name_key, created_at, created_by, last_updated_at,
                      last_updated_by)
VALUES (?, 'default', ?, ?, ?, 'admin', ?, 'admin')
"""
INSERT_DATASET = """
INSERT INTO datasets (id, workspace, name, name_key, created_at, created_by, last_updated_at,
                      last_updated_by, project_id)
VALUES (?, 'default', ?, ?, ?, 'admin', ?, 'admin', ?)
"""
INSERT_DATASET_ITEM = """
INSERT INTO dataset_items (id, workspace, dataset_id, source, data, created_at, created_by,
                           last_updated_at, last_updated_by)
VALUES (?, 'default', ?, 'sdk', ?, ?, 'admin', ?, 'admin')
"""
INSERT_EXPERIMENT = """
INSERT INTO experiments (id, workspace, name, dataset_id, project_id, metadata, type,
                         evaluation_method, status, created_at, created_by, last_updated_at,
                         last_updated_by)
VALUES (?, 'default', ?, ?, ?, '{"model": "gpt-4o-mini"}', 'regular', 'dataset', 'completed',
        ?, 'admin', ?, 'admin')
"""
INSERT_ITEM = """
INSERT INTO experiment_items (id, workspace, experiment_id, dataset_item_id, trace_id,
                              project_id, created_at, created_by, last_updated_at,
                              last_updated_by)
VALUES (?, 'default', ?, ?, ?, ?, ?, 'admin', ?, 'admin')
"""
INSERT_TRACE = """
INSERT INTO traces (id, workspace, project_id, name, start_time, end_time, input, output,
                    source, created_at, created_by, last_updated_at, last_updated_by)
VALUES (?, 'default', ?, 'evaluation_task', ?, ?, ?, ?, 'experiment', ?, 'admin', ?, 'admin')
"""
INSERT_SPAN = """
INSERT INTO spans (id, workspace, trace_id, project_id, parent_span_id, name, type,
                   start_time, end_time, model, provider, usage, total_estimated_cost,
                   source, created_at, created_by, last_updated_at, last_updated_by)
VALUES (?, 'default', ?, ?, ?, ?, ?, ?, ?, 'gpt-4o-mini', 'openai', ?, ?, 'experiment', ?,
        'admin', ?, 'admin')
"""
INSERT_SCORE = """
INSERT INTO feedback_scores (trace_id, name, author, workspace, value, source, created_at,
                             created_by, last_updated_at, last_updated_by)
VALUES (?, ?, 'admin', 'default', ?, 'sdk', ?, 'admin', ?, 'admin')
"""


@dataclass(frozen=True)
class Workspace:
    """One cached database and what its first page must show, by experiment id."""

    experiments: int
    items: int
    db: Path
    expected: dict[str, dict[str, Any]]
    build_seconds: float | None  # None when it came from the cache


def _blobs(keys: np.ndarray) -> list[bytes]:
    raw = keys.tobytes()
    return [raw[i : i + 16] for i in range(0, len(raw), 16)]


def _canonical(key: bytes) -> str:
    h = key.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def _experiment(
    conn: sqlite3.Connection,
    n: int,
    items: int,
    project: bytes,
    dataset: bytes,
    dataset_items: list[bytes],
    rng: np.random.Generator,
) -> dict[str, Any]:
    """One experiment's rows; returns its aggregates as the API must show them."""
    first_ms = BASE_MS + n * items
    ms = first_ms + np.arange(items, dtype=np.int64)
    experiment = _blobs(uuid7_keys(np.array([first_ms - 1]), rng))[0]
    item_ids, trace_ids = _blobs(uuid7_keys(ms, rng)), _blobs(uuid7_keys(ms, rng))
    span_ids = _blobs(uuid7_keys(np.repeat(ms, 2), rng))
    created = first_ms * 1_000_000
    conn.execute(INSERT_EXPERIMENT, (experiment, f"bench-find-{n}", dataset, project,
                                     created, created))  # fmt: skip
    # Microsecond instants, as the service stores them; traces last 50 ms to 2 s.
    starts = ms * 1_000_000 + rng.integers(0, 1000, items) * 1000
    ends = starts + rng.integers(50_000, 2_000_000, items) * 1000
    prompt = rng.integers(50, 2000, (items, 2))
    completion = rng.integers(10, 500, (items, 2))
    cost = np.round(prompt * 1.5e-7 + completion * 6e-7, 9)
    equals = rng.integers(0, 2, items).astype(float)
    relevance = np.round(rng.random(items), 3)
    stamps = (ms * 1_000_000).tolist()
    conn.executemany(
        INSERT_ITEM,
        [
            (item_ids[k], experiment, dataset_items[k % len(dataset_items)], trace_ids[k],
             project, stamps[k], stamps[k])
            for k in range(items)
        ],
    )  # fmt: skip
    starts_l, ends_l = starts.tolist(), ends.tolist()
    conn.executemany(
        INSERT_TRACE,
        [
            (trace_ids[k], project, starts_l[k], ends_l[k],
             f'{{"question": "What is {k} plus {k}?"}}', f'{{"output": "{2 * k}"}}',
             stamps[k], stamps[k])
            for k in range(items)
        ],
    )  # fmt: skip
    p, c, cost_l = prompt.tolist(), completion.tolist(), cost.tolist()
    spans = []
    for k in range(items):
        for s in range(2):
            usage = (f'{{"completion_tokens": {c[k][s]}, "prompt_tokens": {p[k][s]}, '
                     f'"total_tokens": {c[k][s] + p[k][s]}}}')  # fmt: skip
            parent = span_ids[2 * k] if s else None
            name, kind = ("chat_completion_create", "llm") if s else ("task", "general")
            row = (span_ids[2 * k + s], trace_ids[k], project, parent, name, kind, starts_l[k],
                   ends_l[k], usage, cost_l[k][s], stamps[k], stamps[k])  # fmt: skip
            spans.append(row)
    conn.executemany(INSERT_SPAN, spans)
    equals_l, relevance_l = equals.tolist(), relevance.tolist()
    conn.executemany(
        INSERT_SCORE,
        [
            row
            for k in range(items)
            for row in (
                (trace_ids[k], SCORES[0], equals_l[k], stamps[k], stamps[k]),
                (trace_ids[k], SCORES[1], relevance_l[k], stamps[k], stamps[k]),
            )
        ],
    )
    per_trace = {
        "completion_tokens": completion.sum(axis=1),
        "prompt_tokens": prompt.sum(axis=1),
        "total_tokens": (prompt + completion).sum(axis=1),
    }
    return {
        "id": _canonical(experiment),
        "trace_count": items,
        "dataset_item_count": min(items, len(dataset_items)),
        "feedback_scores": {SCORES[0]: float(equals.mean()), SCORES[1]: float(relevance.mean())},
        "total_estimated_cost": float(cost.sum()),
        "usage": {key: float(values.mean()) for key, values in per_trace.items()},
    }


def _build(path: Path, experiments: int, items: int) -> dict[str, dict[str, Any]]:
    tmp = path.with_suffix(".building")
    tmp.unlink(missing_ok=True)
    conn = sqlite3.connect(tmp, isolation_level=None)
    rng = np.random.default_rng(experiments * 7 + items)
    expected: dict[str, dict[str, Any]] = {}
    try:
        # A throwaway file until the rename below: no journal, no syncs, one big cache.
        for pragma in ("journal_mode = OFF", "synchronous = OFF", "cache_size = -524288"):
            conn.execute(f"PRAGMA {pragma}")
        conn.executescript(SCHEMA.read_text())
        conn.execute("BEGIN")
        now = (BASE_MS - 10) * 1_000_000
        project, dataset = _blobs(uuid7_keys(np.array([BASE_MS - 10, BASE_MS - 9]), rng))
        conn.execute(INSERT_PROJECT, (project, PROJECT, PROJECT.casefold(), now, now))
        conn.execute(INSERT_DATASET, (dataset, DATASET, DATASET.casefold(), now, now, project))
        dataset_items = _blobs(uuid7_keys(np.full(items, BASE_MS - 8), rng))
        conn.executemany(
            INSERT_DATASET_ITEM,
            [
                (key, dataset, f'{{"question": "What is {k} plus {k}?", "expected": "{2 * k}"}}',
                 now, now)
                for k, key in enumerate(dataset_items)
            ],
        )  # fmt: skip
        for n in range(experiments):
            found = _experiment(conn, n, items, project, dataset, dataset_items, rng)
            expected[found["id"]] = found
        conn.execute("COMMIT")
        conn.execute("PRAGMA journal_mode = WAL")  # what the service runs in
    finally:
        conn.close()
    tmp.rename(path)
    return expected


def workspace(experiments: int, items: int, directory: Path) -> Workspace:
    """The workspace of `experiments` x `items`, from the cache when it is there and current
    (the same schema.sql and generator)."""
    directory.mkdir(parents=True, exist_ok=True)
    name = f"find-{experiments}x{items}"
    db, manifest = directory / f"{name}.db", directory / f"{name}.json"
    text = f"{GENERATOR_VERSION}:{experiments}:{items}:".encode() + SCHEMA.read_bytes()
    fingerprint = hashlib.sha256(text).hexdigest()
    if manifest.is_file() and db.is_file():
        stored = json.loads(manifest.read_text())
        if stored.get("fp") == fingerprint:
            return Workspace(experiments, items, db, stored["expected"], None)
    manifest.unlink(missing_ok=True)
    for stale in (db, db.with_name(db.name + "-wal"), db.with_name(db.name + "-shm")):
        stale.unlink(missing_ok=True)
    started = time.perf_counter()
    expected = _build(db, experiments, items)
    seconds = time.perf_counter() - started
    manifest.write_text(json.dumps({"fp": fingerprint, "expected": expected}))
    return Workspace(experiments, items, db, expected, seconds)


def _close(a: float | None, b: float) -> bool:
    return a is not None and math.isclose(a, b, rel_tol=1e-6, abs_tol=1e-9)


def check_page(page: dict[str, Any], ws: Workspace) -> list[str]:
    """What the first page shows wrongly: experiments missing or out of order, or aggregates
    that differ from what the rows make. Empty when it is right."""
    newest = sorted(ws.expected, reverse=True)[:PAGE_SIZE]
    shown = [e.get("id") for e in page.get("content", [])]
    if shown != newest:
        return [f"page holds {len(shown)} experiments, not the {len(newest)} newest in order"]
    wrong = []
    for e in page["content"]:
        want = ws.expected[e["id"]]
        scores = {s["name"]: s["value"] for s in e.get("feedback_scores") or []}
        checks = [
            e.get("trace_count") == want["trace_count"],
            e.get("dataset_item_count") == want["dataset_item_count"],
            scores.keys() == want["feedback_scores"].keys(),
            all(_close(scores.get(k), v) for k, v in want["feedback_scores"].items()),
            _close(e.get("total_estimated_cost"), want["total_estimated_cost"]),
            all(_close((e.get("usage") or {}).get(k), v) for k, v in want["usage"].items()),
            "duration" in e,
        ]
        if not all(checks):
            shown_fields = {k: e.get(k) for k in ("trace_count", "feedback_scores",
                                                  "total_estimated_cost", "usage")}  # fmt: skip
            wrong.append(f"{e['id']}: shows {shown_fields}, expected {want}")
    if page.get("total") != ws.experiments:
        wrong.append(f"total {page.get('total')}, expected {ws.experiments}")
    return wrong
