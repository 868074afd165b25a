"""Two servers on one PostgreSQL database, as on two hosts: each `serve` process with two
workers, started together on an empty database, many writers spread across them.

Every write one server acknowledges is read back whole through the other; nothing is lost or
stored twice, no answer is a 5xx; and two workspaces racing for one id through the two
servers get one success and one 409, never two.
"""

import json
import random
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field

import httpx
import pytest

from app import ids
from tests.factories import new_id
from tests.postgres import Cluster
from tests.soak.harness import Server, query, report, scaled

ITEMS, EXPERIMENTS = "/v1/private/experiments/items", "/v1/private/experiments"
TRACES, DATASET_ITEMS = "/v1/private/traces", "/v1/private/datasets/items"
START = "2024-01-15T09:30:00Z"
WRITERS = 64
WRITES = scaled(2, 20)  # per writer
RACES = scaled(4, 50)  # per kind of id
KINDS = ("item", "experiment", "trace", "dataset item")
# Shared names, so that the writers also race to make the same dataset or project by name.
DATASETS, PROJECTS = ("two-a", "two-b"), ("two-a", "two-b")
# As tests/test_reliability_concurrency.py: clients let an idle connection go before uvicorn.
CLIENT_LIMITS = httpx.Limits(keepalive_expiry=2)


@pytest.fixture(scope="module")
def pg_url(pg_cluster: Cluster) -> Iterator[str]:
    """The module's one database (the writers' in workspace `default`, the races' in one and
    two), dropped after it."""
    yield pg_cluster.create_database("two_servers")
    pg_cluster.drop_database("two_servers")


@pytest.fixture(scope="module")
def servers(
    pg_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Server, Server]]:
    logs = tmp_path_factory.mktemp("two-servers")
    pair = [
        Server(pg_url, "--workers", "2", "--no-access-log", log=logs / f"{n}.log") for n in range(2)
    ]
    # Started together on an empty database: both migrate it, one after the other.
    starting = [threading.Thread(target=server.start) for server in pair]
    for thread in starting:
        thread.start()
    for thread in starting:
        thread.join()
    try:
        for server in pair:
            assert server.process is not None, server.logs()
            assert httpx.get(f"{server.url}/is-alive/ping").status_code == 200, server.logs()
        yield pair[0], pair[1]
    finally:
        for server in pair:
            server.stop()
    for server in pair:
        assert "Traceback" not in server.logs()


@dataclass
class Written:
    lock: threading.Lock = field(default_factory=threading.Lock)
    ids: dict[str, list[str]] = field(default_factory=lambda: {kind: [] for kind in KINDS})
    failures: list[str] = field(default_factory=list)

    def add(self, kind: str, keys: list[str]) -> None:
        with self.lock:
            self.ids[kind] += keys

    def fail(self, what: str) -> None:
        with self.lock:
            self.failures.append(what)


def _stream(client: httpx.Client, dataset: str) -> dict[str, object]:
    """Every item of a dataset by the stream: id to data."""
    answer = client.post(f"{DATASET_ITEMS}/stream", json={"dataset_name": dataset})
    assert answer.status_code == 200, answer.text
    lines = [json.loads(line) for line in answer.text.splitlines() if line]
    return {line["id"]: line["data"] for line in lines}


def _write(
    kind: str, rng: random.Random, writer: httpx.Client, reader: httpx.Client
) -> tuple[str, list[str]]:
    """One write through `writer`, read back through `reader`: what went wrong (or ''), and
    the ids it wrote."""
    if kind == "item":
        keys = [new_id() for _ in range(rng.randint(1, 8))]
        trace = new_id()
        items = [
            {"id": k, "experiment_id": k, "dataset_item_id": k, "trace_id": trace,
             "project_name": rng.choice(PROJECTS)}
            for k in keys
        ]  # fmt: skip
        written = writer.post(ITEMS, json={"experiment_items": items})
        if written.status_code != 204:
            return f"{kind}: {written.status_code} {written.text}", []
        for key in keys:
            read = reader.get(f"{ITEMS}/{key}")
            if read.status_code != 200 or read.json()["trace_id"] != trace:
                return f"{kind} read back: {read.status_code} {read.text}", []
        return "", keys
    if kind == "experiment":
        key, name = new_id(), f"run-{rng.random()}"
        keys = [key]
        body = {"id": key, "name": name, "dataset_name": rng.choice(DATASETS)}
        written = writer.post(EXPERIMENTS, json=body)
        if written.status_code != 201:
            return f"{kind}: {written.status_code} {written.text}", []
        read = reader.get(f"{EXPERIMENTS}/{key}")
        if read.status_code != 200 or read.json()["name"] != name:
            return f"{kind} read back: {read.status_code} {read.text}", []
        return "", keys
    if kind == "trace":
        keys = [new_id() for _ in range(rng.randint(1, 8))]
        project, mark = rng.choice(PROJECTS), new_id()
        traces = [
            {"id": k, "name": mark, "input": {"v": mark}, "start_time": START,
             "project_name": project}
            for k in keys
        ]  # fmt: skip
        written = writer.post(f"{TRACES}/batch", json={"traces": traces})
        if written.status_code != 204:
            return f"{kind}: {written.status_code} {written.text}", []
        for key in keys:
            read = reader.get(f"{TRACES}/{key}")
            if read.status_code != 200 or read.json()["input"] != {"v": mark}:
                return f"{kind} read back: {read.status_code} {read.text}", []
        return "", keys
    dataset, mark = rng.choice(DATASETS), new_id()
    keys = [new_id() for _ in range(rng.randint(1, 8))]
    records = [{"id": k, "source": "sdk", "data": {"v": mark}} for k in keys]
    written = writer.put(DATASET_ITEMS, json={"dataset_name": dataset, "items": records})
    if written.status_code != 204:
        return f"{kind}: {written.status_code} {written.text}", []
    stored = _stream(reader, dataset)
    if any(stored.get(k) != {"v": mark} for k in keys):
        return f"{kind} read back: {[stored.get(k) for k in keys]}", []
    return "", keys


def _writer(n: int, pair: tuple[Server, Server], written: Written) -> None:
    rng = random.Random(n)
    kind = KINDS[n % len(KINDS)]
    mine, other = pair[n % 2], pair[1 - n % 2]
    with (
        httpx.Client(base_url=mine.url, timeout=60, limits=CLIENT_LIMITS) as writer,
        httpx.Client(base_url=other.url, timeout=60, limits=CLIENT_LIMITS) as reader,
    ):
        for _ in range(WRITES):
            wrong, keys = _write(kind, rng, writer, reader)
            if wrong:
                written.fail(wrong)
                return
            written.add(kind, keys)


def test_many_writers_on_two_servers_lose_nothing_and_each_reads_the_others_writes(
    servers: tuple[Server, Server], pg_url: str, pytestconfig: pytest.Config
) -> None:
    written = Written()
    threads = [threading.Thread(target=_writer, args=(n, servers, written)) for n in range(WRITERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert written.failures == []
    # Nothing lost or stored twice: exactly the ids acknowledged, each once (an id is each
    # table's primary key: a write applied twice would show as a second created_at).
    tables = {"item": "experiment_items", "experiment": "experiments", "trace": "traces",
              "dataset item": "dataset_items"}  # fmt: skip
    for kind, table in tables.items():
        rows = query(
            pg_url,
            f"SELECT id, created_at = last_updated_at FROM {table} WHERE workspace = 'default'",
        )
        assert sorted(ids.to_str(key) for key, _ in rows) == sorted(written.ids[kind]), kind
        assert all(once for _, once in rows), kind
    assert all(written.ids.values())
    # The names made by many writers at once through both servers, each made once.
    made = "SELECT name FROM {} WHERE workspace = 'default' ORDER BY name"
    assert query(pg_url, made.format("datasets")) == [(n,) for n in DATASETS]
    assert query(pg_url, made.format("projects")) == [(n,) for n in PROJECTS]
    report(
        pytestconfig,
        f"two servers: {WRITERS} writers, "
        + ", ".join(f"{len(v)} {k}s" for k, v in written.ids.items())
        + " acknowledged by one server, each read back through the other",
    )


def _race(kind: str, pair: tuple[Server, Server]) -> tuple[list[int], list[int]]:
    """Workspace one through the first server and two through the second write one new id
    of `kind` at the same moment: their statuses, and then each workspace's read of it."""
    key = new_id()
    if kind == "item":
        item = {"id": key, "experiment_id": new_id(), "dataset_item_id": new_id(), "trace_id": key}
        body: object = {"experiment_items": [item]}
        method, path, read = "POST", ITEMS, f"{ITEMS}/{key}"
    elif kind == "experiment":
        body = {"id": key, "dataset_name": "race"}
        method, path, read = "POST", EXPERIMENTS, f"{EXPERIMENTS}/{key}"
    elif kind == "trace":
        body = {"traces": [{"id": key, "start_time": START, "project_name": "race"}]}
        method, path, read = "POST", f"{TRACES}/batch", f"{TRACES}/{key}"
    else:
        body = {"dataset_name": "race", "items": [{"id": key, "source": "sdk", "data": {"q": 1}}]}
        method, path, read = "PUT", DATASET_ITEMS, ""
    go = threading.Barrier(2)
    statuses = [0, 0]

    def send(n: int) -> None:
        with httpx.Client(base_url=pair[n].url, timeout=60) as client:
            headers = {"Comet-Workspace": ("one", "two")[n]}
            client.get("/is-alive/ping")  # connected before the start
            go.wait()
            statuses[n] = client.request(method, path, json=body, headers=headers).status_code

    racers = [threading.Thread(target=send, args=(n,)) for n in range(2)]
    for thread in racers:
        thread.start()
    for thread in racers:
        thread.join()
    reads = [
        httpx.get(
            f"{pair[1 - n].url}{read}", headers={"Comet-Workspace": ("one", "two")[n]}
        ).status_code
        for n in range(2)
        if read
    ]
    return statuses, reads


@pytest.mark.parametrize("kind", KINDS)
def test_two_workspaces_racing_for_one_id_through_two_servers_get_one_success_one_409(
    servers: tuple[Server, Server], kind: str
) -> None:
    ok = 201 if kind == "experiment" else 204
    for _ in range(RACES):
        statuses, reads = _race(kind, servers)

        assert sorted(statuses) == sorted([ok, 409]), statuses
        # The winner owns it, read through the other server; the loser finds nothing.
        if reads:
            assert reads == [200 if s == ok else 404 for s in statuses]
