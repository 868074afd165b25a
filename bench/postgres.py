"""PostgreSQL beside SQLite (issue 13): a throwaway cluster (tests/postgres.py's), the SQLite
benchmark file's rows copied into it with COPY, its processes pinned to the server's core,
and the raw side of its write rows: a COPY of
the same rows the service stores, one transaction per batch, committed as the service commits
(synchronous_commit on: the WAL flushed). COPY, not executemany: PostgreSQL's fastest way
in, where an executemany of single-row INSERTs is slower than the service's one statement
per batch, so no ceiling.

`python -m bench.postgres KIND URL BATCHES` is the raw side (KIND: `items`, or one of
bench.batches.KINDS), run by run.py pinned to the server's core as bench.writes is.
"""

import asyncio
import json
import os
import sqlite3
import sys
import time
from pathlib import Path
from typing import Any

import asyncpg
import numpy as np

from app.postgres.connection import upgrade
from bench import batches, machine, writes
from bench.data import uuid7_keys
from tests.postgres import Cluster, Unavailable

__all__ = ["Cluster", "Unavailable", "copy_from_sqlite", "raw_copy", "serve_on"]

COPY_ROWS = 50_000  # rows read from SQLite per COPY


def serve_on(cluster: Cluster, core: int) -> list[int]:
    """Pins the cluster's processes to `core`, the server's, and counts their CPU as the
    server side's rather than other sessions': PostgreSQL does the work SQLite does inside
    the server process, so both get the same core. Backends forked later inherit the
    postmaster's affinity. Returns the pids pinned."""
    postmaster = int((cluster.data / "postmaster.pid").read_text().split()[0])
    machine.SERVING_PARENTS.add(postmaster)
    pinned = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        pid = int(stat.parent.name)
        try:
            if (
                pid != postmaster
                and int(stat.read_text().rsplit(")", 1)[1].split()[1]) != postmaster
            ):
                continue
            os.sched_setaffinity(pid, {core})
        except (OSError, ValueError):  # it ended meanwhile
            continue
        pinned.append(pid)
    return pinned


def _copy_sync(source: Path, url: str) -> dict[str, int]:
    readonly = f"{source.resolve().as_uri()}?mode=ro"

    async def copy() -> dict[str, int]:
        conn = await asyncpg.connect(url)
        try:
            await upgrade(conn)  # the schema the service makes, as `serve` would
            copied = {}
            with sqlite3.connect(readonly, uri=True) as lite:
                tables = [
                    name
                    for (name,) in lite.execute(
                        "SELECT name FROM sqlite_schema WHERE type = 'table' "
                        "AND name NOT LIKE 'sqlite%'"
                    )
                ]
                for table in tables:
                    if await conn.fetchval("SELECT to_regclass($1)", table) is None:
                        continue  # SQLite's own bookkeeping (its schema version, say)
                    cursor = lite.execute(f"SELECT * FROM {table}")
                    columns = [d[0] for d in cursor.description]
                    count = 0
                    while rows := cursor.fetchmany(COPY_ROWS):
                        await conn.copy_records_to_table(table, records=rows, columns=columns)
                        count += len(rows)
                    if count:
                        copied[table] = count
            await conn.execute("ANALYZE")
            return copied
        finally:
            await conn.close()

    return asyncio.run(copy())


def copy_from_sqlite(source: Path, url: str) -> tuple[dict[str, int], float]:
    """Every row of the SQLite file `source` into the new database at `url`, table by table
    (the two schemas name the same columns); the rows per table, and the seconds it took."""
    started = time.perf_counter()
    copied = _copy_sync(source, url)
    return copied, time.perf_counter() - started


# bench.writes' rows, then the constants its INSERT names.
ITEM_COLUMNS = (
    "id", "experiment_id", "dataset_item_id", "trace_id", "project_id", "created_at",
    "last_updated_at", "workspace", "created_by", "last_updated_by",
)  # fmt: skip
Prepared = tuple[str, tuple[str, ...], list[list[tuple[Any, ...]]]]


def _item_rows(texts: list[bytes]) -> Prepared:
    now_ns = time.time_ns() // 1000 * 1000
    project = uuid7_keys(np.array([now_ns // 1_000_000]), np.random.default_rng(9))[0]
    constants = ("default", "admin", "admin")
    rows = [
        [(*row, *constants) for row in writes._rows(text, project.tobytes(), now_ns)]
        for text in texts
    ]
    return "experiment_items", ITEM_COLUMNS, rows


def _batch_rows(kind: batches.Kind, texts: list[bytes]) -> Prepared:
    now_ns = time.time_ns() // 1000 * 1000
    owner = uuid7_keys(np.array([now_ns // 1_000_000]), np.random.default_rng(9))[0].tobytes()
    fixed: dict[str, Any] = {
        "workspace": "default",
        "created_at": now_ns,
        "created_by": "admin",
        "last_updated_at": now_ns,
        "last_updated_by": "admin",
    }
    if kind is batches.DATASET_ITEMS:
        fixed["dataset_id"] = owner
    else:
        fixed.update(project_id=owner, partial=0)
        if kind is batches.TRACES:
            fixed["hidden"] = 0
    return kind.table, kind.columns, [batches._rows(kind, json.loads(t), fixed) for t in texts]


def raw_copy(kind: str, url: str, texts: list[bytes]) -> writes.WriteRate:
    """The rows of `texts` (bodies of `kind`) straight into PostgreSQL with COPY: one
    transaction per batch. Only the COPY and the commit are timed; the rows are made
    beforehand."""
    table, columns, prepared = (
        _item_rows(texts) if kind == "items" else _batch_rows(batches.KINDS[kind], texts)
    )

    async def write() -> float:
        conn = await asyncpg.connect(url)
        try:
            await upgrade(conn)  # a new database; later rounds add to it
            started = time.perf_counter()
            for rows in prepared:
                async with conn.transaction():
                    await conn.copy_records_to_table(table, records=rows, columns=columns)
            return time.perf_counter() - started
        finally:
            await conn.close()

    seconds = asyncio.run(write())
    return writes.WriteRate(sum(len(rows) for rows in prepared), seconds)


def main(argv: list[str]) -> None:
    kind, url, batches_file = argv[0], argv[1], Path(argv[2])
    rate = raw_copy(kind, url, batches_file.read_bytes().splitlines())
    print(json.dumps({"items": rate.items, "seconds": rate.seconds}))


if __name__ == "__main__":
    main(sys.argv[1:])
