"""The experiment-items core on both engines (`engine` = sqlite | postgresql): the same
answers over HTTP, the same 409s, one winner when two workspaces race for one id, and the
same bytes for the same writes."""

import asyncio
import itertools
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, cast

import asyncpg
import httpx
import msgspec
import pytest
import uvicorn

from app import clock, ids
from app.config import Settings
from app.main import create_app
from app.postgres import PostgresStore
from app.protocol import HttpProtocol
from app.records import Conflict, ExperimentChange, ExperimentRecord, ItemRecord, StreamQuery
from app.store import CoreStore, Store
from tests.conftest import open_core_store
from tests.factories import batch, counting_ids, item, new_id
from tests.inserts import Insert, inserter
from tests.postgres import Cluster
from tests.running import free_port

pytestmark = pytest.mark.anyio

ITEMS = "/v1/private/experiments/items"
EXPERIMENTS = "/v1/private/experiments"
JAN_15 = 1_705_311_000_120_000_000  # 2024-01-15T09:30:00.120Z


def app_client(store: CoreStore, location: Path | str) -> httpx.AsyncClient:
    # The app takes a whole Store; the routes these tests call use only CoreStore's verbs.
    app = create_app(Settings(db=location), store=cast(Store, store))
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test")


@pytest.fixture
async def client(core_store: CoreStore, location: Path | str) -> AsyncIterator[httpx.AsyncClient]:
    async with app_client(core_store, location) as c:
        yield c


@pytest.fixture
def frozen_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(clock, "now_ns", lambda: JAN_15)


def lines(body: bytes) -> list[dict[str, Any]]:
    return [json.loads(line) for line in body.split(b"\r\n") if line]


async def test_an_item_written_is_read_back_updated_and_deleted(
    client: httpx.AsyncClient, frozen_clock: None
) -> None:
    body = item(project_name="Demo")
    assert (await client.post(ITEMS, json=batch(body))).status_code == 204

    got = await client.get(f"{ITEMS}/{body['id']}")

    assert got.status_code == 200
    shown = got.json()
    assert list(shown) == [
        "experiment_id", "dataset_item_id", "trace_id", "id", "project_id", "created_at",
        "last_updated_at", "created_by", "last_updated_by", "trace_visibility_mode",
    ]  # fmt: skip
    assert shown["created_at"] == "2024-01-15T09:30:00.120Z"
    assert (shown["id"], shown["trace_visibility_mode"]) == (body["id"], "default")

    moved = {**body, "trace_id": new_id(), "project_name": None}
    assert (await client.post(ITEMS, json=batch(moved))).status_code == 204
    again = (await client.get(f"{ITEMS}/{body['id']}")).json()
    assert again["trace_id"] == moved["trace_id"]
    assert again["project_id"] == shown["project_id"]  # kept: the write named none

    deleted = await client.post(f"{ITEMS}/delete", json={"ids": [body["id"], new_id()]})
    assert deleted.status_code == 204
    missing = await client.get(f"{ITEMS}/{body['id']}")
    assert missing.status_code == 404
    assert missing.json() == {
        "code": 404,
        "message": f"Not found experiment item with id '{body['id']}'",
    }


async def test_the_stream_gives_an_experiments_items_newest_first_in_pages(
    client: httpx.AsyncClient,
) -> None:
    experiment = new_id()
    created = await client.post(
        EXPERIMENTS, json={"id": experiment, "name": "run", "dataset_name": "ds"}
    )
    assert created.status_code == 201
    written = [item(experiment_id=experiment) for _ in range(5)]
    assert (await client.post(ITEMS, json=batch(*written))).status_code == 204
    newest_first = sorted((i["id"] for i in written), reverse=True)

    first = await client.post(f"{ITEMS}/stream", json={"experiment_name": "run", "limit": 3})
    assert first.status_code == 200
    assert first.headers["content-type"] == "application/octet-stream"
    assert first.content.endswith(b"\r\n")
    page = [line["id"] for line in lines(first.content)]
    rest = await client.post(
        f"{ITEMS}/stream", json={"experiment_name": "run", "last_retrieved_id": page[-1]}
    )
    unknown = await client.post(f"{ITEMS}/stream", json={"experiment_name": "none"})

    assert page == newest_first[:3]
    assert [line["id"] for line in lines(rest.content)] == newest_first[3:]
    assert unknown.content == b""


async def test_an_item_id_of_another_workspace_is_409_and_the_batch_stores_nothing(
    client: httpx.AsyncClient,
) -> None:
    theirs = item()
    assert (await client.post(ITEMS, json=batch(theirs))).status_code == 204
    ours = item()

    refused = await client.post(
        ITEMS, json=batch(ours, {**theirs, "trace_id": new_id()}), headers={"Comet-Workspace": "b"}
    )

    assert refused.status_code == 409
    assert refused.json() == {
        "code": 409,
        "message": f"Experiment item '{theirs['id']}' belongs to another workspace",
    }
    mine = await client.get(f"{ITEMS}/{ours['id']}", headers={"Comet-Workspace": "b"})
    assert mine.status_code == 404
    kept = (await client.get(f"{ITEMS}/{theirs['id']}")).json()
    assert kept["trace_id"] == theirs["trace_id"]
    hidden = await client.get(f"{ITEMS}/{theirs['id']}", headers={"Comet-Workspace": "b"})
    assert hidden.status_code == 404


async def test_an_experiment_is_created_once_read_and_deleted_with_its_items(
    client: httpx.AsyncClient,
) -> None:
    experiment = new_id()
    body = {"id": experiment, "name": "run", "dataset_name": "ds", "project_name": "P"}
    created = await client.post(EXPERIMENTS, json=body)
    assert created.status_code == 201
    assert created.headers["location"].endswith(f"/v1/private/experiments/{experiment}")
    again = await client.post(EXPERIMENTS, json=body, headers={"Comet-Workspace": "b"})
    assert again.status_code == 409
    assert again.json()["message"] == f"Already exists experiment with id '{experiment}'"
    one = item(experiment_id=experiment)
    assert (await client.post(ITEMS, json=batch(one))).status_code == 204

    shown = (await client.get(f"{EXPERIMENTS}/{experiment}")).json()
    assert (shown["name"], shown["dataset_name"], shown["trace_count"]) == ("run", "ds", 1)
    assert shown["status"] == "completed"
    deleted = await client.post(f"{EXPERIMENTS}/delete", json={"ids": [experiment]})
    assert deleted.status_code == 204

    gone = await client.get(f"{EXPERIMENTS}/{experiment}")
    assert gone.status_code == 404
    assert gone.json()["message"] == f"Not found experiment with id '{experiment}'"
    assert (await client.get(f"{ITEMS}/{one['id']}")).status_code == 404


ROUNDS = 40


async def test_two_workspaces_racing_for_one_id_give_one_winner_and_one_conflict(
    location: Path | str,
) -> None:
    # Two stores on one database, as two servers: each round both write the same new id, in
    # their own workspace, at once. Exactly one 204, the other's Conflict, every round, and
    # the stored item is the winner's.
    first, second = await open_core_store(location), await open_core_store(location)
    try:
        for _ in range(ROUNDS):
            key = ids.uuid7()

            def record(trace: bytes, key: bytes = key) -> list[ItemRecord]:
                return [ItemRecord(key, ids.uuid7(), ids.uuid7(), trace, None, None)]

            traces = {"a": ids.uuid7(), "b": ids.uuid7()}
            outcomes = await asyncio.gather(
                first.upsert_items("a", "ann", record(traces["a"])),
                second.upsert_items("b", "bob", record(traces["b"])),
                return_exceptions=True,
            )

            won = [w for w, o in zip("ab", outcomes, strict=True) if o is None]
            lost = [o for o in outcomes if o is not None]
            assert len(won) == 1, outcomes
            assert len(lost) == 1
            assert isinstance(lost[0], Conflict), lost
            assert (
                str(lost[0]) == f"Experiment item '{ids.to_str(key)}' belongs to another workspace"
            )
            stored = await first.get_item(won[0], key)
            assert stored is not None
            assert stored.trace_id == ids.to_str(traces[won[0]])
            assert await first.get_item("b" if won[0] == "a" else "a", key) is None
    finally:
        await first.close()
        await second.close()


async def _traces(insert: Insert, traces: list[bytes], project: bytes) -> None:
    """The last three items' traces (the first hidden), with spans and two authors' scores."""
    audit = {"created_at": JAN_15, "created_by": "ann", "last_updated_at": JAN_15,
             "last_updated_by": "ann"}  # fmt: skip
    image = '{"q": "data:image/png;base64,iVBORw0KGgoAAAANSUhEUg==", "n": [1, 2.50]}'
    for n, trace in enumerate(traces[-3:]):
        await insert("traces", {
            "id": trace, "workspace": "w", "project_id": project, "hidden": int(n == 0),
            "name": f"t{n}", "start_time": JAN_15, "end_time": JAN_15 + (n + 1) * 1_234_567,
            "input": image, "output": '{"a": 0.1}', **audit,
        })  # fmt: skip
        for s in range(2):
            await insert("spans", {
                "id": bytes([n, s]) * 8, "workspace": "w", "trace_id": trace,
                "project_id": project, "start_time": JAN_15, "usage": '{"tokens": 7, "x": "y"}',
                "total_estimated_cost": 0.1 * (s + 1), **audit,
            })  # fmt: skip
        for author, value in (("ann", 0.5), ("bob", 1 / 3)):
            await insert("feedback_scores", {
                "trace_id": trace, "name": "quality", "author": author, "workspace": "w",
                "value": value + n, "reason": None if author == "ann" else "why",
                "source": "sdk", **audit,
            })  # fmt: skip


async def _answers(location: Path | str) -> list[bytes]:
    """What the store answers, encoded as the API encodes it, after one fixed set of writes."""
    store = await open_core_store(location)
    insert, close = await inserter(location)
    encode = msgspec.json.Encoder().encode
    experiment, other = b"\x01\x90" + b"\xee" * 14, b"\x01\x90" + b"\xef" * 14
    try:
        await store.create_experiment(
            "w", "ann", ExperimentRecord(experiment, "run", "Data", None, "Proj", tags='["x"]')
        )
        await store.create_experiment(
            "w", "ann", ExperimentRecord(other, "run", "data", None, None)
        )
        records = [
            ItemRecord(ids.uuid7(), experiment if n % 2 else other, ids.uuid7(), ids.uuid7(),
                       "proj" if n % 3 == 0 else None, None)
            for n in range(12)
        ]  # fmt: skip
        await store.upsert_items("w", "ann", records)
        await store.upsert_items("w", "bob", records[:4])
        await store.delete_items("w", [records[5].id])
        await _traces(insert, [r.trace_id for r in records if r.experiment_id == experiment], other)
        change = ExperimentChange(metadata='{"k": [1, 2.0]}', tags_to_add=("y",), status="running")
        await store.update_experiments("w", "bob", [experiment, other, b"\x00" * 16], change)
        await store.finish_experiments("w", "bob", [other])
        answers = [encode(await store.get_item("w", r.id)) for r in records]
        for truncate in (True, False):
            query = StreamQuery("run", limit=8, before=None, project_name=None, truncate=truncate)
            async for chunk in store.stream_items("w", query):
                answers += [encode(full) for full in chunk]
        answers += [encode(await store.get_experiment("w", key)) for key in (experiment, other)]
        return answers
    finally:
        await close()
        await store.close()


async def test_the_same_writes_give_the_same_bytes_on_both_engines(
    tmp_path: Path, pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(clock, "now_ns", itertools.count(JAN_15, 1_000).__next__)
    monkeypatch.setattr(ids, "uuid7", counting_ids())
    on_sqlite = await _answers(tmp_path / "items.db")
    monkeypatch.setattr(clock, "now_ns", itertools.count(JAN_15, 1_000).__next__)
    monkeypatch.setattr(ids, "uuid7", counting_ids())
    on_postgres = await _answers(pg_url)

    assert len(on_sqlite) == 12 + 2 * 8 + 2
    assert on_sqlite.count(b"null") == 1  # the deleted item
    streamed = b"".join(on_sqlite[12:28])
    for shown in (b'"[image]"', b'"hidden"', b'"value_by_author"', b'"usage":{"tokens":14,"x":0}'):
        assert shown in streamed, shown
    assert b'"duration":{"p50":' in on_sqlite[-2]
    assert b'"tags":["x","y"]' in on_sqlite[-2]
    assert b'"status":"running"' in on_sqlite[-2]
    assert b'"status":"completed"' in on_sqlite[-1]
    assert on_postgres == on_sqlite


async def test_batches_sharing_ids_written_at_once_in_opposite_orders_both_succeed(
    location: Path | str,
) -> None:
    # On PostgreSQL each batch locks its rows as it writes them: in the order sent, two such
    # batches would deadlock (one of them a 500).
    first, second = await open_core_store(location), await open_core_store(location)
    try:
        for _ in range(10):
            records = [
                ItemRecord(ids.uuid7(), ids.uuid7(), ids.uuid7(), ids.uuid7(), None, None)
                for _ in range(1000)
            ]
            await asyncio.gather(
                first.upsert_items("a", "ann", records),
                second.upsert_items("a", "bob", records[::-1]),
            )
            stored = await first.get_item("a", records[0].id)
            assert stored is not None
            assert stored.last_updated_by in ("ann", "bob")
    finally:
        await first.close()
        await second.close()


async def test_a_real_uvicorn_server_on_the_store_answers_over_http(
    core_store: CoreStore, location: Path | str
) -> None:
    # In this process, on this event loop, so that it serves the store the test opened: the
    # one way to serve PostgreSQL before open_store lets `serve` do it.
    app = create_app(Settings(db=location), store=cast(Store, core_store))
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, http=HttpProtocol, log_level="warning")
    )
    serving = asyncio.create_task(server.serve())
    try:
        while not server.started:
            assert not serving.done(), serving.exception()
            await asyncio.sleep(0.01)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}/api") as c:
            written = [item() for _ in range(3)]
            ping = await c.get("/is-alive/ping")
            post = await c.post(ITEMS, json=batch(*written))
            got = [await c.get(f"{ITEMS}/{i['id']}") for i in written]
            conflict = await c.post(ITEMS, json=batch(written[0]), headers={"Comet-Workspace": "b"})

        assert (ping.status_code, ping.json()["healthy"]) == (200, True)
        assert post.status_code == 204
        assert [r.json()["id"] for r in got] == [i["id"] for i in written]
        assert conflict.status_code == 409
    finally:
        server.should_exit = True
        await serving


async def test_project_names_and_ids_keep_the_workspace_rule(client: httpx.AsyncClient) -> None:
    named = [item(project_name="Proj"), item(project_name="  proj "), item(project_name="PROJ")]
    assert (await client.post(ITEMS, json=batch(*named))).status_code == 204
    projects = {(await client.get(f"{ITEMS}/{i['id']}")).json()["project_id"] for i in named}
    assert len(projects) == 1  # one project, whatever the name's case
    experiment = new_id()
    made = await client.post(EXPERIMENTS, json={"id": experiment, "name": "e", "dataset_name": "d"})
    assert made.status_code == 201

    other = {"Comet-Workspace": "b"}
    foreign_project = await client.post(
        ITEMS, json=batch(item(project_id=projects.pop())), headers=other
    )
    foreign_experiment = await client.post(
        ITEMS, json=batch(item(experiment_id=experiment)), headers=other
    )
    not_theirs = await client.post(
        f"{EXPERIMENTS}/delete", json={"ids": [experiment]}, headers=other
    )

    assert foreign_project.status_code == 409
    assert foreign_project.json()["message"].startswith("Project '")
    assert foreign_experiment.json() == {
        "code": 409,
        "message": f"Experiment '{experiment}' belongs to another workspace",
    }
    assert not_theirs.status_code == 204
    assert (await client.get(f"{EXPERIMENTS}/{experiment}")).status_code == 200


async def test_the_stream_keeps_to_a_project_when_it_names_one(client: httpx.AsyncClient) -> None:
    experiment = new_id()
    body = {"id": experiment, "name": "run", "dataset_name": "ds"}
    assert (await client.post(EXPERIMENTS, json=body)).status_code == 201
    inside = item(experiment_id=experiment, project_name="A")
    outside = item(experiment_id=experiment, project_name="B")
    assert (await client.post(ITEMS, json=batch(inside, outside))).status_code == 204

    stream = f"{ITEMS}/stream"
    in_a = await client.post(stream, json={"experiment_name": "run", "project_name": "a"})
    in_none = await client.post(stream, json={"experiment_name": "run", "project_name": "C"})

    assert [line["id"] for line in lines(in_a.content)] == [inside["id"]]
    assert in_none.content == b""


async def test_the_store_opens_through_the_clusters_unix_socket(pg_cluster: Cluster) -> None:
    name = "through_socket"
    pg_cluster.create_database(name)
    try:
        store = await PostgresStore.open(pg_cluster.socket_url(name))
        await store.ping()
        await store.close()
    finally:
        pg_cluster.drop_database(name)


async def test_two_creates_racing_for_one_experiment_id_give_one_experiment(
    location: Path | str,
) -> None:
    first, second = await open_core_store(location), await open_core_store(location)
    try:
        for n in range(ROUNDS // 2):
            key = ids.uuid7()
            outcomes = await asyncio.gather(
                first.create_experiment("a", "ann", ExperimentRecord(key, "e", "d", None, None)),
                second.create_experiment("b", "bob", ExperimentRecord(key, "e", "d", None, None)),
                return_exceptions=True,
            )

            assert sorted(type(o).__name__ for o in outcomes) == ["Conflict", "NoneType"], n
            winner = "a" if outcomes[0] is None else "b"
            assert await first.get_experiment(winner, key) is not None
            assert await first.get_experiment("b" if winner == "a" else "a", key) is None
    finally:
        await first.close()
        await second.close()


async def test_writes_making_one_project_name_at_once_make_one_project(
    location: Path | str,
) -> None:
    first, second = await open_core_store(location), await open_core_store(location)
    try:
        for n in range(ROUNDS // 2):
            records = [
                ItemRecord(ids.uuid7(), ids.uuid7(), ids.uuid7(), ids.uuid7(), f"P{n}", None)
                for _ in range(2)
            ]
            await asyncio.gather(
                first.upsert_items("a", "ann", records[:1]),
                second.upsert_items("a", "bob", records[1:]),
            )
            found = [await first.get_item("a", r.id) for r in records]
            assert found[0] is not None
            assert found[1] is not None
            assert found[0].project_id == found[1].project_id
    finally:
        await first.close()
        await second.close()


async def test_an_experiment_is_updated_and_finished(client: httpx.AsyncClient) -> None:
    experiment, unknown = new_id(), new_id()
    body = {"id": experiment, "name": "run", "dataset_name": "ds", "tags": ["a", "b"],
            "status": "running"}  # fmt: skip
    assert (await client.post(EXPERIMENTS, json=body)).status_code == 201

    patched = await client.patch(
        f"{EXPERIMENTS}/{experiment}",
        json={
            "name": "renamed",
            "metadata": {"k": 1},
            "tags_to_add": ["c"],
            "tags_to_remove": ["a"],
        },
    )
    missing = await client.patch(f"{EXPERIMENTS}/{unknown}", json={"name": "x"})
    too_many = await client.patch(
        f"{EXPERIMENTS}/batch",
        json={"ids": [experiment], "update": {"tags": [f"t{n}" for n in range(50)]},
              "merge_tags": True},
    )  # fmt: skip
    running = (await client.get(f"{EXPERIMENTS}/{experiment}")).json()
    finished = await client.post(f"{EXPERIMENTS}/finish", json={"ids": [experiment, unknown]})
    done = (await client.get(f"{EXPERIMENTS}/{experiment}")).json()

    assert patched.status_code == 204
    assert missing.status_code == 404
    assert missing.json()["message"] == f"Experiment not found: '{unknown}'"
    assert too_many.status_code == 422
    assert (running["name"], running["tags"], running["metadata"]) == (
        "renamed",
        ["b", "c"],
        {"k": 1},
    )
    assert running["status"] == "running"
    assert finished.status_code == 204
    assert done["status"] == "completed"


async def test_64_writers_across_two_stores_lose_nothing_and_each_reads_the_others_writes(
    location: Path | str,
) -> None:
    stores = [await open_core_store(location), await open_core_store(location)]
    try:
        written: list[list[bytes]] = [[] for _ in range(64)]

        async def writer(n: int) -> None:
            store = stores[n % 2]
            for _ in range(5):
                records = [
                    ItemRecord(ids.uuid7(), ids.uuid7(), ids.uuid7(), ids.uuid7(), None, None)
                    for _ in range(10)
                ]
                await store.upsert_items(f"w{n % 4}", "ann", records)
                written[n] += [r.id for r in records]

        await asyncio.gather(*(writer(n) for n in range(64)))

        for n, keys in enumerate(written):
            other = stores[(n + 1) % 2]
            found = await asyncio.gather(*(other.get_item(f"w{n % 4}", k) for k in keys))
            assert all(found), n
    finally:
        for store in stores:
            await store.close()


async def test_a_postgres_database_that_is_gone_answers_503_in_the_error_shape(
    pg_cluster: Cluster,
) -> None:
    name = "dropped_under_the_server"
    url = pg_cluster.create_database(name)
    store = await PostgresStore.open(url)
    try:
        async with app_client(store, url) as c:
            written = item()
            assert (await c.post(ITEMS, json=batch(written))).status_code == 204
            pg_cluster.drop_database(name)  # WITH (FORCE): its connections are closed

            read = await c.get(f"{ITEMS}/{written['id']}")
            write = await c.post(ITEMS, json=batch(item()))

        for answer in (read, write):
            assert answer.status_code == 503
            assert answer.headers["retry-after"] == "1"
            assert answer.json()["code"] == 503
            assert answer.json()["message"].startswith("The database cannot be reached")
    finally:
        store.db.pool.terminate()


def test_postgres_failures_are_said_as_sqlites_are() -> None:
    from app.postgres import failures

    full = failures.describe(asyncpg.DiskFullError("no space"))
    standby = failures.describe(asyncpg.ReadOnlySQLTransactionError("read-only"))

    assert full is not None
    assert full[0] == 507
    assert full[1].startswith("The disk that holds the database is full: nothing was stored")
    assert standby is not None
    assert standby[0] == 503
    assert failures.describe(ValueError("ours")) is None
