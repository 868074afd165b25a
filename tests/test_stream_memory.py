"""Streaming a large experiment: the server's memory does not grow with the item count, nor
with the size of the items' traces (the probe's D2), on either engine."""

import sqlite3
import tempfile
from collections.abc import Iterable
from pathlib import Path

import httpx

from app import ids
from app.item_stream import chunks
from app.sqlite.connection import schema_path
from tests.command import run
from tests.conftest import NewDatabase
from tests.running import server_process

ITEMS = 200_000
PAGE = 2_000


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def peak_rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise AssertionError("no VmHWM")


def fill(db: Path | str) -> bytes:
    """An experiment named "large" with ITEMS items, written straight to the database."""
    return fill_experiment(db, ((ids.uuid7(), None) for _ in range(ITEMS)))


def fill_experiment(db: Path | str, items: Iterable[tuple[bytes, str | None]]) -> bytes:
    """An experiment named "large" with an item per (trace id, trace input), written straight
    to the file, or to a file then `migrate`d (COPY) into the PostgreSQL database at URL `db`;
    an input of None: no trace stored. Hundreds of thousands of rows in seconds, where the
    API's batches would take minutes."""
    if isinstance(db, Path):
        return _fill_file(db, items)
    with tempfile.TemporaryDirectory(prefix="experiment-items-fill-") as folder:
        experiment = _fill_file(Path(folder) / "fill.db", items)
        moved = run("migrate", "--from", str(Path(folder) / "fill.db"), "--to", db)
    assert moved.returncode == 0, moved.stderr
    return experiment


def _fill_file(db: Path, items: Iterable[tuple[bytes, str | None]]) -> bytes:
    experiment, dataset, project = ids.uuid7(), ids.uuid7(), ids.uuid7()
    with sqlite3.connect(db) as conn:
        conn.executescript(schema_path().read_text())
        conn.execute(
            "INSERT INTO datasets (id, workspace, name, name_key, created_at, created_by,"
            " last_updated_at, last_updated_by)"
            " VALUES (?, 'default', 'd', 'd', 0, 'admin', 0, 'admin')",
            (dataset,),
        )
        conn.execute(
            "INSERT INTO experiments (id, workspace, name, dataset_id, type, evaluation_method,"
            " created_at, created_by, last_updated_at, last_updated_by)"
            " VALUES (?, 'default', 'large', ?, 'regular', 'dataset', 0, 'admin', 0, 'admin')",
            (experiment, dataset),
        )
        for trace_id, text in items:
            conn.execute(
                "INSERT INTO experiment_items VALUES (?, 'default', ?, ?, ?, NULL, 1, 'admin', 1,"
                " 'admin')",
                (ids.uuid7(), experiment, ids.uuid7(), trace_id),
            )
            if text is not None:
                conn.execute(
                    "INSERT INTO traces (id, workspace, project_id, start_time, input,"
                    " created_at, created_by, last_updated_at, last_updated_by)"
                    " VALUES (?, 'default', ?, 0, ?, 0, 'admin', 0, 'admin')",
                    (trace_id, project, text),
                )
    return experiment


def test_streaming_200k_items_keeps_memory_flat(server_db: NewDatabase, tmp_path: Path) -> None:
    db = server_db("large")
    fill(db)
    seen, last, samples = 0, None, []
    log = tmp_path / "server.log"
    with (
        server_process(db, "--no-access-log", log=log) as (url, process),
        httpx.Client() as client,
    ):
        while True:
            query = {"experiment_name": "large", "limit": PAGE, "last_retrieved_id": last}
            with client.stream(
                "POST", f"{url}/v1/private/experiments/items/stream", json=query
            ) as r:
                assert r.status_code == 200
                lines = [line for line in r.iter_lines() if line]
            if not lines:
                break
            seen += len(lines)
            last = lines[-1][lines[-1].index('"id":"') + 6 :][:36]
            samples.append(rss_kib(process.pid))

    assert seen == ITEMS
    # After the first tenth of the items, the rest adds (almost) nothing: what a page needs
    # is freed before the next one.
    growth_kib = max(samples) - samples[len(samples) // 10]
    print(f"RSS after 10% {samples[len(samples) // 10]} KiB, peak {max(samples)} KiB")
    assert growth_kib < 8 * 1024, samples


def test_a_chunk_ends_at_its_item_count_or_its_trace_text() -> None:
    keys = [bytes([n]) * 16 for n in range(7)]
    mib = 1024 * 1024
    sizes = dict(zip(keys, [1, 5 * mib, 4 * mib, 9 * mib, 1, 1, 1], strict=True))

    assert list(chunks(keys, sizes)) == [keys[:2], keys[2:3], keys[3:4], keys[4:]]
    assert [len(c) for c in chunks([bytes([n % 256, n // 256]) * 8 for n in range(250)], {})] == [
        100,
        100,
        50,
    ]


def test_streaming_items_with_large_traces_holds_a_few_of_them_at_once(
    server_db: NewDatabase, tmp_path: Path
) -> None:
    db, items, chars = server_db("fat"), 30, 3_000_000
    text = '{"text":"' + "x" * (chars - 12) + '"}'
    fill_experiment(db, ((ids.uuid7(), text) for _ in range(items)))
    query = {"experiment_name": "large", "limit": 100}
    log = tmp_path / "server.log"

    with (
        server_process(db, "--no-access-log", log=log) as (url, process),
        httpx.Client() as client,
    ):
        before = peak_rss_kib(process.pid)
        with client.stream(
            "POST", f"{url}/v1/private/experiments/items/stream", json=query, timeout=60
        ) as r:
            received = sum(len(chunk) for chunk in r.iter_bytes())
        growth_mib = (peak_rss_kib(process.pid) - before) / 1024

    assert received > items * chars
    # 90 MB of text in all; a chunk of two or three items at a time (8 MiB), not all 30 at
    # once held three or four times over (about 400 MB when chunks were counted in items).
    print(f"peak RSS grew {growth_mib:.0f} MiB")
    assert growth_mib < 100
