"""The benchmark's databases: built straight with sqlite3 from the repository's schema.sql,
cached outside the repository, with the ids the load generator requests."""

import hashlib
import json
import os
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
SCHEMA = REPO / "schema.sql"
# Bump when the generated rows change, so cached files are rebuilt.
GENERATOR_VERSION = 1
WORKSPACE = "default"
USER = "admin"
ITEMS_PER_EXPERIMENT = 1000
PROJECTS = 10
HOT_IDS = 100_000  # the GET ids are spread uniformly over this many items (the issue)
MISS_IDS = 100_000
CHUNK_ROWS = 200_000
# 2025-01-01T00:00:00Z; one item per millisecond after it, as one busy writer would make them.
BASE_MS = 1_735_689_600_000

INSERT_ITEM = """
INSERT INTO experiment_items (id, workspace, experiment_id, dataset_item_id, trace_id,
                              project_id, created_at, created_by, last_updated_at,
                              last_updated_by)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
"""
INSERT_PROJECT = """
INSERT INTO projects (id, workspace, name, name_key, created_at, created_by,
                      last_updated_at, last_updated_by)
VALUES (?, ?, ?, ?, ?, ?, ?, ?)
"""
SECONDARY_INDEX = "experiment_items_by_experiment"


@dataclass(frozen=True)
class Dataset:
    """One cached database file and the id lists that wrk rotates through."""

    items: int
    db: Path
    hit_ids: Path  # existing item ids, shuffled
    miss_ids: Path  # random version 7 ids that are not there
    build_seconds: float | None  # None when it came from the cache


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "experiment-items-bench"


def uuid7_keys(ms: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """16-byte UUID version 7 keys (RFC 9562, 5.7) as rows of a uint8 array, one per
    millisecond timestamp in `ms`: built vectorised, since 40 million ids one by one in
    Python would take minutes."""
    keys = rng.integers(0, 256, size=(len(ms), 16), dtype=np.uint8)
    stamp = ms.astype(">u8").view(np.uint8).reshape(-1, 8)[:, 2:]  # the low 48 bits
    keys[:, :6] = stamp
    keys[:, 6] = 0x70 | (keys[:, 6] & 0x0F)
    keys[:, 8] = 0x80 | (keys[:, 8] & 0x3F)
    return keys


def _blobs(keys: np.ndarray) -> list[bytes]:
    raw = keys.tobytes()
    return [raw[i : i + 16] for i in range(0, len(raw), 16)]


def _fingerprint(items: int, schema: Path) -> str:
    text = f"{GENERATOR_VERSION}:{items}:".encode() + schema.read_bytes()
    return hashlib.sha256(text).hexdigest()


def _insert_items(conn: sqlite3.Connection, items: int, projects: list[bytes]) -> list[bytes]:
    """Rows in primary-key order (appends only, no page splits); returns the hot ids."""
    rng = np.random.default_rng(items)
    stride = max(1, items // HOT_IDS)
    hot: list[bytes] = []
    # A dataset of ITEMS_PER_EXPERIMENT items that every experiment runs over, and each
    # experiment's id made just before its first item.
    dataset_ids = _blobs(uuid7_keys(np.full(ITEMS_PER_EXPERIMENT, BASE_MS - 1), rng))
    starts = np.arange(0, items, ITEMS_PER_EXPERIMENT, dtype=np.int64)
    experiment_ids = _blobs(uuid7_keys(BASE_MS + starts - 1, rng))
    for start in range(0, items, CHUNK_ROWS):
        count = min(CHUNK_ROWS, items - start)
        ms = BASE_MS + np.arange(start, start + count, dtype=np.int64)
        item_ids = _blobs(uuid7_keys(ms, rng))
        trace_ids = _blobs(uuid7_keys(ms, rng))
        # Microsecond timestamps, as the service stamps them (app/clock.py).
        micros = rng.integers(0, 1000, size=count, dtype=np.int64)
        created = ((ms * 1000 + micros) * 1000).tolist()
        rows = [
            (
                item_ids[k],
                WORKSPACE,
                experiment_ids[(start + k) // ITEMS_PER_EXPERIMENT],
                dataset_ids[(start + k) % ITEMS_PER_EXPERIMENT],
                trace_ids[k],
                projects[(start + k) // ITEMS_PER_EXPERIMENT % len(projects)],
                created[k],
                USER,
                created[k],
                USER,
            )
            for k in range(count)
        ]
        conn.executemany(INSERT_ITEM, rows)
        hot.extend(item_ids[(-start) % stride :: stride])
    return hot[:HOT_IDS]


def _build(path: Path, items: int, schema: Path) -> list[bytes]:
    tmp = path.with_suffix(".building")
    tmp.unlink(missing_ok=True)
    conn = sqlite3.connect(tmp, isolation_level=None)
    try:
        # A throwaway file until the rename below: no journal, no syncs, one big cache.
        for pragma in ("journal_mode = OFF", "synchronous = OFF", "cache_size = -524288"):
            conn.execute(f"PRAGMA {pragma}")
        conn.executescript(schema.read_text())
        # The secondary index is built after the rows: one sort instead of random inserts.
        conn.execute(f"DROP INDEX {SECONDARY_INDEX}")
        conn.execute("BEGIN")
        now = BASE_MS * 1_000_000
        projects = [
            bytes(uuid7_keys(np.array([BASE_MS - 2]), np.random.default_rng(p))[0])
            for p in range(PROJECTS)
        ]
        conn.executemany(
            INSERT_PROJECT,
            [
                (p, WORKSPACE, f"project-{n}", f"project-{n}", now, USER, now, USER)
                for n, p in enumerate(projects)
            ],
        )
        hot = _insert_items(conn, items, projects)
        conn.execute("COMMIT")
        conn.executescript(schema.read_text())  # IF NOT EXISTS: recreates only the index
        conn.execute("PRAGMA journal_mode = WAL")  # what the service runs in
    finally:
        conn.close()
    tmp.rename(path)
    return hot


def _write_ids(path: Path, keys: list[bytes], seed: int) -> None:
    order = np.random.default_rng(seed).permutation(len(keys))
    lines = []
    for position in order.tolist():
        h = keys[position].hex()
        lines.append(f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}\n")
    path.write_text("".join(lines))


def dataset(items: int, directory: Path | None = None, schema: Path = SCHEMA) -> Dataset:
    """The database of `items` items, from the cache when it is there and current. With the
    schema.sql of another revision (bench/ab.py), its own file beside this revision's: a
    server refuses a database of a newer schema version than its own."""
    directory = directory or cache_dir()
    directory.mkdir(parents=True, exist_ok=True)
    fingerprint = _fingerprint(items, schema)
    name = f"items-{items}" if schema == SCHEMA else f"items-{items}-{fingerprint[:12]}"
    db = directory / f"{name}.db"
    manifest = directory / f"{name}.json"
    hit_ids = directory / f"{name}.hit.txt"
    miss_ids = directory / f"{name}.miss.txt"
    current = manifest.is_file() and json.loads(manifest.read_text()) == {"fp": fingerprint}
    if current and db.is_file() and hit_ids.is_file() and miss_ids.is_file():
        return Dataset(items, db, hit_ids, miss_ids, None)
    manifest.unlink(missing_ok=True)
    for stale in (db, db.with_name(db.name + "-wal"), db.with_name(db.name + "-shm")):
        stale.unlink(missing_ok=True)
    started = time.perf_counter()
    hot = _build(db, items, schema)
    _write_ids(hit_ids, hot, seed=1)
    # Misses fall among the stored ids (same time span), so each costs a full descent.
    rng = np.random.default_rng(2)
    miss_ms = BASE_MS + rng.integers(0, items, size=MISS_IDS, dtype=np.int64)
    _write_ids(miss_ids, _blobs(uuid7_keys(miss_ms, rng)), seed=3)
    seconds = time.perf_counter() - started
    manifest.write_text(json.dumps({"fp": fingerprint}))
    return Dataset(items, db, hit_ids, miss_ids, seconds)


def storage(db: Path) -> dict[str, float]:
    """Bytes per item of the whole file, and of the items table and its indexes alone."""
    conn = sqlite3.connect(db, isolation_level=None)
    try:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        items = conn.execute("SELECT count(*) FROM experiment_items").fetchone()[0]
        indexes = {
            name
            for (name,) in conn.execute(
                "SELECT name FROM sqlite_schema WHERE type = 'index' AND tbl_name = ?",
                ("experiment_items",),
            )
        }
        sizes = dict(conn.execute("SELECT name, sum(pgsize) FROM dbstat GROUP BY name"))
    finally:
        conn.close()
    total = db.stat().st_size
    return {
        "items": items,
        "bytes": total,
        "bytes_per_item": total / items,
        "table_per_item": sizes.get("experiment_items", 0) / items,
        "index_per_item": sum(sizes.get(name, 0) for name in indexes) / items,
    }
