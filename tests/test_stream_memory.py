"""Streaming a large experiment: the server's memory does not grow with the item count."""

import sqlite3
from pathlib import Path

import httpx

from app import ids
from app.sqlite.connection import schema_path
from tests.running import server_process

ITEMS = 200_000
PAGE = 2_000


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def fill(db: Path) -> bytes:
    """An experiment named "large" with ITEMS items, written straight to the file."""
    experiment, dataset = ids.uuid7(), ids.uuid7()
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
        conn.executemany(
            "INSERT INTO experiment_items VALUES (?, 'default', ?, ?, ?, NULL, 1, 'admin', 1,"
            " 'admin')",
            ((ids.uuid7(), experiment, ids.uuid7(), ids.uuid7()) for _ in range(ITEMS)),
        )
    return experiment


def test_streaming_200k_items_keeps_memory_flat(tmp_path: Path) -> None:
    db = tmp_path / "large.db"
    fill(db)
    seen, last, samples = 0, None, []
    with server_process(db, "--no-access-log") as (url, process), httpx.Client() as client:
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
