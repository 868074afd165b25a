"""Crash safety: writers race a SIGKILL of the whole server, again and again, writing and
deleting experiment items and dataset items, writing and patching traces, writing spans and
scoring traces.

After each kill and restart: every write answered 204 is there, a write that got no answer
is there whole or not at all, and SQLite's integrity check passes. A SIGKILL keeps the
page cache, so this proves atomicity and recovery, not the fsync a power cut needs (that is
synchronous=FULL's job, see README "Storage").
"""

import random
import sqlite3
import threading
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from app import ids
from tests.factories import new_id
from tests.soak.harness import Server, integrity_check, report, scaled

ITEMS = "/v1/private/experiments/items"
DATASET_ITEMS = "/v1/private/datasets/items"
TRACES, SPANS = "/v1/private/traces", "/v1/private/spans/batch"
SCORES = "/v1/private/traces/feedback-scores"
START = "2024-01-15T09:30:00Z"
# What a batch holds, and how often a new batch is of each kind.
KINDS = {"item": 0.4, "dataset": 0.2, "trace": 0.15, "span": 0.15, "score": 0.1}
CYCLES = scaled(3, 25)
WRITERS = 4
MIXED = "mixed"


@dataclass
class Batch:
    """Records written together, all with one mark that changes at each rewrite (an item's
    trace id, a dataset item's data, a trace's or span's name and input, a score's reason):
    what the file may show for them is a set of marks, None meaning none of the records."""

    ids: list[str]
    experiment_id: str = field(default_factory=new_id)  # of items; of spans, their trace
    possible: set[str | None] = field(default_factory=lambda: {None})
    kind: str = "item"


def _new_batch(rng: random.Random) -> Batch:
    kind = rng.choices(list(KINDS), weights=list(KINDS.values()))[0]
    size = 1 if kind == "trace" and rng.random() < 0.5 else rng.randint(1, 60)  # 1: patched
    return Batch([new_id() for _ in range(size)], kind=kind)


def _request(batch: Batch, mark: str | None) -> tuple[str, str, object]:
    """The method, path and body that write `mark` on every record of the batch (None: that
    delete them, for the kinds that can be deleted)."""
    if mark is None:
        key = "item_ids" if batch.kind == "dataset" else "ids"
        return (
            "POST",
            f"{DATASET_ITEMS if batch.kind == 'dataset' else ITEMS}/delete",
            {key: batch.ids},
        )
    if batch.kind == "dataset":
        data = [{"id": i, "source": "sdk", "data": {"v": mark}} for i in batch.ids]
        return "PUT", DATASET_ITEMS, {"dataset_name": "crash", "items": data}
    if batch.kind == "trace" and len(batch.ids) == 1 and None not in batch.possible:
        # The trace is surely there: a PATCH, one request, replaces the two fields.
        return "PATCH", f"{TRACES}/{batch.ids[0]}", {"name": mark, "input": {"v": mark}}
    if batch.kind in ("trace", "span"):
        records = [
            {"id": i, "name": mark, "input": {"v": mark}, "start_time": START,
             "project_name": "crash", "trace_id": batch.experiment_id}
            for i in batch.ids
        ]  # fmt: skip
        if batch.kind == "trace":
            return "POST", f"{TRACES}/batch", {"traces": records}
        return "POST", SPANS, {"spans": records}
    if batch.kind == "score":
        scores = [
            {"id": i, "name": "crash", "value": 0.5, "source": "sdk", "reason": mark}
            for i in batch.ids
        ]
        return "PUT", SCORES, {"scores": scores}
    items = [
        {"id": i, "experiment_id": batch.experiment_id, "dataset_item_id": i,
         "trace_id": mark, "project_name": "crash"}
        for i in batch.ids
    ]  # fmt: skip
    return "POST", ITEMS, {"experiment_items": items}


@dataclass
class Tally:
    lock: threading.Lock = field(default_factory=threading.Lock)
    acknowledged: int = 0
    unanswered: int = 0
    wrong: list[str] = field(default_factory=list)
    kinds: dict[str, int] = field(default_factory=dict)  # acknowledged writes by kind
    enough: threading.Event = field(default_factory=threading.Event)
    target: int = 0

    def acked(self) -> None:
        with self.lock:
            self.acknowledged += 1
            if self.acknowledged >= self.target:
                self.enough.set()


def _writer(url: str, batches: list[Batch], tally: Tally, seed: int) -> None:
    rng = random.Random(seed)
    with httpx.Client(base_url=url, timeout=30) as client:
        while True:
            if not batches or rng.random() < 0.6:
                batches.append(_new_batch(rng))
            batch = rng.choice(batches)
            # A rewrite with a new mark, or now and then a delete of the whole batch.
            mark: str | None = new_id()
            deletable = batch.kind in ("item", "dataset")
            if deletable and batch.possible != {None} and rng.random() < 0.15:
                mark = None
            method, path, body = _request(batch, mark)
            try:
                response = client.request(method, path, json=body)
            except httpx.TransportError:
                batch.possible.add(mark)  # no answer: it may or may not have happened
                with tally.lock:
                    tally.unanswered += 1
                return
            if response.status_code != 204:
                with tally.lock:
                    tally.wrong.append(f"{method} {path}: {response.status_code} {response.text}")
                return
            batch.possible = {mark}
            with tally.lock:
                kind = "trace patch" if method == "PATCH" else batch.kind
                tally.kinds[kind] = tally.kinds.get(kind, 0) + 1
            tally.acked()


# The mark of each record of a kind, as the file holds it; the record's key is first.
OBSERVED = {
    "item": "SELECT id, trace_id FROM experiment_items WHERE id IN ({marks})",
    "dataset": "SELECT id, json_extract(data, '$.v') FROM dataset_items WHERE id IN ({marks})",
    # The name and the input are written together: a record with one but not the other is
    # half written.
    "trace": "SELECT id, iif(name = json_extract(input, '$.v'), name, 'torn') FROM traces"
    " WHERE id IN ({marks}) AND partial = 0",
    "span": "SELECT id, iif(name = json_extract(input, '$.v'), name, 'torn') FROM spans"
    " WHERE id IN ({marks}) AND partial = 0",
    "score": "SELECT trace_id, reason FROM feedback_scores WHERE trace_id IN ({marks})"
    " AND name = 'crash'",
}


def _observed(conn: sqlite3.Connection, batch: Batch) -> str | None:
    keys = [ids.parse(i) for i in batch.ids]
    sql = OBSERVED[batch.kind].format(marks=", ".join("?" * len(keys)))
    rows = conn.execute(sql, keys).fetchall()
    if not rows:
        return None
    marks = {ids.to_str(m) if isinstance(m, bytes) else m for _, m in rows}
    return marks.pop() if len(rows) == len(keys) and len(marks) == 1 else MIXED


def test_every_acknowledged_write_survives_sigkill_and_none_is_half_there(
    tmp_path: Path, pytestconfig: pytest.Config
) -> None:
    db = tmp_path / "crash.db"
    rng = random.Random(tmp_path.name)
    shared: list[list[Batch]] = [[] for _ in range(WRITERS)]  # one list per writer: no races
    tally = Tally()
    for cycle in range(CYCLES):
        server = Server(db, "--workers", "2", "--no-access-log").start()
        try:
            tally.enough.clear()
            tally.target = tally.acknowledged + rng.randint(20, 80)
            threads = [
                threading.Thread(target=_writer, args=(server.url, mine, tally, rng.random()))
                for mine in shared
            ]
            for thread in threads:
                thread.start()
            assert tally.enough.wait(timeout=60), f"cycle {cycle}: writes stalled"
            server.kill()
            for thread in threads:
                thread.join(timeout=60)
        finally:
            server.stop()

        assert tally.wrong == []
        assert integrity_check(db) == "ok"
        with sqlite3.connect(db) as conn:
            for batch in (b for mine in shared for b in mine):
                seen = _observed(conn, batch)
                assert seen in batch.possible, f"cycle {cycle}: {seen} not in {batch.possible}"

    assert set(KINDS) <= set(tally.kinds), tally.kinds  # each kind was written and checked
    # The recovered file serves again, and the figures for make soak.
    with Server(db, "--no-access-log") as server:
        assert httpx.get(f"{server.url}/is-alive/ping").status_code == 200
    report(
        pytestconfig,
        f"crash: {CYCLES} SIGKILL cycles survived, {tally.acknowledged} writes acknowledged "
        f"and kept ({', '.join(f'{n} {k}' for k, n in sorted(tally.kinds.items()))}), "
        f"{tally.unanswered} unanswered and found whole or absent",
    )


def test_a_half_written_batch_is_detected(tmp_path: Path) -> None:
    # The check above must be able to fail: a batch with one item missing reads as mixed.
    db = tmp_path / "half.db"
    with Server(db, "--no-access-log") as server:
        batch = Batch([new_id(), new_id()])
        trace = new_id()
        items = [
            {"id": i, "experiment_id": batch.experiment_id, "dataset_item_id": i, "trace_id": trace}
            for i in batch.ids
        ]
        assert (
            httpx.post(f"{server.url}{ITEMS}", json={"experiment_items": items[:1]}).status_code
            == 204
        )

        traces = Batch([new_id(), new_id()], kind="trace")
        method, path, body = _request(traces, new_id())
        assert httpx.request(method, server.url + path, json=body).status_code == 204

    with sqlite3.connect(db) as conn:
        assert _observed(conn, batch) == MIXED
        # A trace whose name and input disagree is half written too.
        conn.execute("UPDATE traces SET input = '{}' WHERE id = ?", (ids.parse(traces.ids[0]),))
        assert _observed(conn, traces) == MIXED
