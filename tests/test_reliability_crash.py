"""Crash safety: writers race a SIGKILL of the whole server, again and again, writing and
deleting experiment items and dataset items, writing and patching traces, writing spans and
scoring traces.

After each kill and restart: every write answered 204 is there, a write that got no answer
is there whole or not at all, and SQLite's integrity check passes. A SIGKILL keeps the
page cache, so this proves atomicity and recovery, not the fsync a power cut needs (that is
synchronous=FULL's job, see README "Storage"). On PostgreSQL the same, and a crash of the
database itself (an immediate stop, every backend killed, then WAL replay) under the writers.
"""

import random
import threading
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from app import ids
from tests.conftest import NewDatabase
from tests.factories import new_id
from tests.postgres import Cluster
from tests.soak.harness import Location, Server, integrity_check, queries, report, scaled

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
    database_down: threading.Event = field(default_factory=threading.Event)
    stop: threading.Event = field(default_factory=threading.Event)  # writers end their turn

    def acked(self) -> None:
        with self.lock:
            self.acknowledged += 1
            if self.acknowledged >= self.target:
                self.enough.set()


def _writer(url: str, batches: list[Batch], tally: Tally, seed: int) -> None:
    rng = random.Random(seed)
    with httpx.Client(base_url=url, timeout=30) as client:
        while not tally.stop.is_set():
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
            if response.status_code == 503 and tally.database_down.is_set():
                # The database went away under it: the outcome is unknown (failures.py).
                batch.possible.add(mark)
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


# The mark of each record of a kind, as the database holds it; the record's key is first.
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
# The same on PostgreSQL: its JSON operators, and the keys as one array parameter.
OBSERVED_PG = {
    "item": "SELECT id, trace_id FROM experiment_items WHERE id = ANY($1)",
    "dataset": "SELECT id, data::json->>'v' FROM dataset_items WHERE id = ANY($1)",
    "trace": "SELECT id, CASE WHEN name = input::json->>'v' THEN name ELSE 'torn' END"
    " FROM traces WHERE id = ANY($1) AND partial = 0",
    "span": "SELECT id, CASE WHEN name = input::json->>'v' THEN name ELSE 'torn' END"
    " FROM spans WHERE id = ANY($1) AND partial = 0",
    "score": "SELECT trace_id, reason FROM feedback_scores WHERE trace_id = ANY($1)"
    " AND name = 'crash'",
}


def _observed(db: Location, batches: list[Batch]) -> list[str | None]:
    """What the database shows of each batch: its one mark, None, or MIXED."""
    statements: list[tuple[str, tuple[object, ...]]] = []
    for batch in batches:
        keys = [ids.parse(i) for i in batch.ids]
        if isinstance(db, Path):
            sql = OBSERVED[batch.kind].format(marks=", ".join("?" * len(keys)))
            statements.append((sql, tuple(keys)))
        else:
            statements.append((OBSERVED_PG[batch.kind], (keys,)))
    seen: list[str | None] = []
    for batch, rows in zip(batches, queries(db, statements), strict=True):
        marks = {ids.to_str(m) if isinstance(m, bytes) else m for _, m in rows}
        if not rows:
            seen.append(None)
        else:
            whole = len(rows) == len(batch.ids) and len(marks) == 1
            seen.append(marks.pop() if whole else MIXED)
    return seen


def _check(db: Location, shared: list[list[Batch]], cycle: int) -> None:
    if isinstance(db, Path):
        assert integrity_check(db) == "ok"
    batches = [b for mine in shared for b in mine]
    for batch, seen in zip(batches, _observed(db, batches), strict=True):
        assert seen in batch.possible, f"cycle {cycle}: {seen} not in {batch.possible}"


def _write_until_enough(
    url: str, shared: list[list[Batch]], tally: Tally, rng: random.Random
) -> list[threading.Thread]:
    """Starts the writers; returns them once `tally` has RNG-many more acknowledged writes."""
    tally.enough.clear()
    tally.target = tally.acknowledged + rng.randint(20, 80)
    threads = [
        threading.Thread(target=_writer, args=(url, mine, tally, rng.random())) for mine in shared
    ]
    for thread in threads:
        thread.start()
    assert tally.enough.wait(timeout=60), "writes stalled"
    return threads


def test_every_acknowledged_write_survives_sigkill_and_none_is_half_there(
    server_db: NewDatabase, server_engine: str, tmp_path: Path, pytestconfig: pytest.Config
) -> None:
    db = server_db("crash")
    rng = random.Random(tmp_path.name)
    shared: list[list[Batch]] = [[] for _ in range(WRITERS)]  # one list per writer: no races
    tally = Tally()
    for cycle in range(CYCLES):
        server = Server(db, "--workers", "2", "--no-access-log", log=tmp_path / "server.log")
        server.start()
        try:
            threads = _write_until_enough(server.url, shared, tally, rng)
            server.kill()
            for thread in threads:
                thread.join(timeout=60)
        finally:
            server.stop()

        assert tally.wrong == []
        _check(db, shared, cycle)

    assert set(KINDS) <= set(tally.kinds), tally.kinds  # each kind was written and checked
    # The recovered file serves again, and the figures for make soak.
    with Server(db, "--no-access-log", log=tmp_path / "server.log") as server:
        assert httpx.get(f"{server.url}/is-alive/ping").status_code == 200
    kinds = ", ".join(f"{n} {k}" for k, n in sorted(tally.kinds.items()))
    report(
        pytestconfig,
        f"crash ({server_engine}): {CYCLES} SIGKILL cycles survived, "
        f"{tally.acknowledged} writes acknowledged and kept ({kinds}), "
        f"{tally.unanswered} unanswered and found whole or absent",
    )


def test_a_half_written_batch_is_detected(server_db: NewDatabase, tmp_path: Path) -> None:
    # The check above must be able to fail: a batch with one item missing reads as mixed.
    db = server_db("half")
    with Server(db, "--no-access-log", log=tmp_path / "server.log") as server:
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

    assert _observed(db, [batch]) == [MIXED]
    # A trace whose name and input disagree is half written too.
    tear = "UPDATE traces SET input = '{}' WHERE id = " + ("?" if isinstance(db, Path) else "$1")
    queries(db, [(tear, (ids.parse(traces.ids[0]),))])
    assert _observed(db, [traces]) == [MIXED]


def test_every_acknowledged_write_survives_a_crash_of_postgresql(
    pg_cluster: Cluster, pg_url: str, tmp_path: Path
) -> None:
    # PostgreSQL's own crash under the writers, the server left running: every commit it
    # acknowledged is replayed from the WAL; what it could not answer is whole or absent; and
    # the server serves again once the database is back, without a restart.
    # (SQLite has no database process of its own to crash: the SIGKILL above is its crash.)
    db = pg_url
    rng = random.Random(tmp_path.name)
    shared: list[list[Batch]] = [[] for _ in range(WRITERS)]
    tally = Tally()
    with Server(db, "--workers", "2", "--no-access-log", log=tmp_path / "server.log") as server:
        threads = _write_until_enough(server.url, shared, tally, rng)
        tally.database_down.set()
        pg_cluster.crash_and_restart()
        tally.stop.set()
        for thread in threads:
            thread.join(timeout=60)
        assert tally.wrong == [], server.logs()
        assert tally.unanswered > 0  # the crash did come under the writers
        _check(db, shared, 0)
        crashed_at = tally.acknowledged
        # Served again, without a restart: what it acknowledges now is kept too.
        tally.database_down.clear()
        tally.stop.clear()
        threads = _write_until_enough(server.url, shared, tally, rng)
        tally.stop.set()
        for thread in threads:
            thread.join(timeout=60)
    assert tally.wrong == []
    assert tally.acknowledged > crashed_at
    _check(db, shared, 1)
