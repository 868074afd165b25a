"""Traces, spans and feedback scores on both engines: the same bytes for the same writes, one
winner when two workspaces (on two servers) write one id at once, and the experiment summaries
that a trace, span or score write drops (the schema's triggers)."""

import asyncio
import contextlib
import itertools
import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, cast

import asyncpg
import httpx
import msgspec
import pytest

from app import clock, ids
from app.config import Settings
from app.main import create_app
from app.store import Store
from app.trace_queries import SPAN_SORTABLE_BY, TRACE_SORTABLE_BY
from tests.conftest import Rows, open_core_store
from tests.factories import new_id

pytestmark = pytest.mark.anyio

API = "/api/v1/private"
T0 = "2024-01-15T09:30:00Z"
JAN_15 = 1_705_311_000_120_000_000  # 2024-01-15T09:30:00.120Z
MS = JAN_15 // 1_000_000


def key(n: int) -> str:
    """The nth of some UUID v7 ids, in order, the same in every run."""
    value = (MS + n) << 80 | (0x7000 + n) << 64 | 0x8000_0000_0000_0000 + n
    return ids.to_str(value.to_bytes(16, "big"))


def _counting_ids() -> Callable[[], bytes]:
    counter = itertools.count(1)
    return lambda: b"\x01\x90" + next(counter).to_bytes(14, "big")


@asynccontextmanager
async def served(store: Store, location: Path | str) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(Settings(db=location), store=store)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
        yield c


async def ok(response: Any) -> httpx.Response:
    answer: httpx.Response = await response
    assert answer.status_code in (200, 201, 204), answer.text
    return answer


IMAGE = "data:image/png;base64,iVBORw0KGgoAAAANSUhEUg=="
ERROR = {"exception_type": "E", "traceback": "tb"}


async def _write(c: httpx.AsyncClient) -> None:
    """One fixed set of traces, spans and scores, with what makes their answers differ."""
    names = ["alpha", "Beta", None, "alphabet", "", "gamma"]
    traces = [
        {"id": key(n), "project_name": "Bytes", "start_time": T0,
         "end_time": f"2024-01-15T09:30:0{n}.5Z", "input": {"q": IMAGE, "n": n},
         "output": {"a": n / 3}, "metadata": {"m": [n, 2.5]}, "tags": [f"t{n % 2}", "x"],
         "thread_id": f"th{n % 3}", "ttft": n * 0.1, "error_info": ERROR if n else None}
        | ({} if names[n] is None else {"name": names[n]})
        for n in range(6)
    ]  # fmt: skip
    older = {**traces[0], "name": "old", "last_updated_at": "2020-01-01T00:00:00Z"}
    await ok(c.patch(f"{API}/traces/{key(5)}", json={"project_name": "Bytes", "tags": ["p"]}))
    await ok(c.post(f"{API}/traces/batch", json={"traces": [*traces, older]}))
    await ok(c.patch(f"{API}/traces/{key(1)}", json={"tags_to_add": ["y"], "output": {"b": 1}}))
    await ok(c.post(f"{API}/traces/batch", json={"traces": [{**traces[2], "name": None}]}))
    kinds = ["llm", "tool", "general", None, "llm", "guardrail"]
    spans = [
        {"id": key(20 + n), "trace_id": key(n % 3), "project_name": "Bytes", "start_time": T0,
         "end_time": f"2024-01-15T09:30:0{5 - n}Z", "name": f"step {n}", "input": {"i": IMAGE},
         "usage": {"z_tokens": n, "a_tokens": 10 - n, f"k{n % 2}": 3},
         "total_estimated_cost": [0.1, 0.2, 0.7, 0.3, None, 1e-9][n],
         "provider": ["openai", "anthropic", None, "openai", "cohere", None][n],
         "model": f"m{n % 3}", "parent_span_id": key(20) if n else None}
        | ({} if kinds[n] is None else {"type": kinds[n]})
        for n in range(6)
    ]  # fmt: skip
    await ok(c.patch(f"{API}/spans/{key(25)}", json={"trace_id": key(2), "output": {"o": 1}}))
    await ok(c.post(f"{API}/spans/batch", json={"spans": spans}))
    await ok(c.patch(f"{API}/spans/{key(21)}", json={"trace_id": key(1), "model": "m9"}))
    scores = [
        {"id": key(n % 4), "name": name, "value": value, "source": "sdk", "author": author,
         "reason": "r" if author else None, "category_name": "c" if value > 0.5 else None}
        for n, (name, value, author) in enumerate(
            [("acc", 0.5, None), ("acc", 0.25, "judge"), ("f1", 1 / 3, None), ("acc", 0.9, None),
             ("acc", 0.1, "judge"), ("f1", 0.7, "other")]
        )
    ]  # fmt: skip
    again = {**scores[0], "value": 0.75, "reason": "again"}  # replaces the batch's first
    await ok(c.put(f"{API}/traces/feedback-scores", json={"scores": [*scores, again]}))
    span_scores = [{**s, "id": key(20 + n)} for n, s in enumerate(scores)]
    await ok(c.put(f"{API}/spans/feedback-scores", json={"scores": span_scores}))
    await ok(c.post(f"{API}/traces/{key(0)}/feedback-scores/delete", json={"name": "f1"}))
    await ok(
        c.post(f"{API}/spans/{key(24)}/feedback-scores/delete", json={"name": "acc", "author": "x"})
    )


def _sortings(sortable: list[str]) -> list[str]:
    fields = [f.replace("feedback_scores.*", "feedback_scores.acc") for f in sortable]
    fields = [f.replace("usage.*", "usage.a_tokens") for f in fields]
    return [json.dumps([{"field": f, "direction": d}]) for f in fields for d in ("ASC", "DESC")] + [
        json.dumps([{"field": "usage.k1"}])
    ]


FILTERS = [
    {"field": "name", "operator": operator, "value": value}
    for operator in ("=", "!=", "contains", "not_contains", "starts_with", "ends_with")
    for value in ("alpha", "", "BET", "a")
] + [
    {"field": "feedback_scores", "operator": operator, "key": "acc", "value": "0.375"}
    for operator in ("=", "!=", ">", ">=", "<", "<=")
]


async def _answers(store: Store, location: Path | str) -> list[bytes]:
    """What the app answers after `_write`, every read of traces, spans and projects."""
    async with served(store, location) as c:
        await _write(c)
        got = [await c.get(f"{API}/traces/{key(n)}") for n in range(7)]
        got += [await c.get(f"{API}/spans/{key(20 + n)}") for n in range(7)]
        project = got[0].json()["project_id"]
        got += [
            await c.get(f"{API}/projects/{project}"),
            await c.post(f"{API}/projects/retrieve", json={"name": " bytes"}),
        ]
        for path in ("traces", "spans"):
            for body in (
                {"truncate": True},
                {"limit": 2, "last_retrieved_id": key(21 if path == "spans" else 4)},
                {"trace_id": key(1), "type": "llm"} if path == "spans" else {"limit": 3},
                {"from_time": "2024-01-15T09:30:00.121Z", "to_time": "2024-01-15T09:30:00.124Z"},
                *({"filters": [f]} for f in FILTERS),
            ):
                search = {"project_name": "Bytes", **body}
                got.append(await c.post(f"{API}/{path}/search", json=search))
            sortable = TRACE_SORTABLE_BY if path == "traces" else SPAN_SORTABLE_BY
            for params in (
                *({"sorting": s, "size": "4", "page": "2"} for s in _sortings(sortable)),
                *({"search": text} for text in ("ALPHA", "x", key(1)[20:], "tool", "m1")),
                *({"filters": json.dumps([f])} for f in FILTERS),
                {"truncate": "true", "exclude": '["input", "feedback_scores"]'},
            ):
                page = {"project_id": project, **params}
                got.append(await c.get(f"{API}/{path}", params=page))
    answers = [r.content for r in got]
    for n in range(4):
        shown = await store.trace_spans("default", ids.parse(key(n)) or b"")
        answers.append(msgspec.json.encode(shown))
    return answers


async def test_the_same_writes_give_the_same_bytes_on_both_engines(
    tmp_path: Path, pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    answers = []
    for location in (tmp_path / "items.db", pg_url):
        monkeypatch.setattr(clock, "now_ns", itertools.count(JAN_15, 1_000).__next__)
        monkeypatch.setattr(ids, "uuid7", _counting_ids())
        store = cast(Store, await open_core_store(location))
        try:
            answers.append(await _answers(store, location))
        finally:
            await store.close()
    on_sqlite, on_postgres = answers

    joined = b"".join(on_sqlite)
    for shown in (b'"[image]"', IMAGE.encode(), b'"value_by_author"', b'"providers"'):
        assert shown in joined, shown
    assert sum(b'"total":0' in a for a in on_sqlite) < len(on_sqlite) // 4
    assert on_postgres == on_sqlite


ROUNDS = 20
Clients = dict[str, httpx.AsyncClient]


def as_(workspace: str) -> dict[str, str]:
    return {"Comet-Workspace": workspace}


async def race(clients: Clients, method: str, path: str, bodies: dict[str, Any]) -> str:
    """Each workspace's client sends its body at once: exactly one 204, the other a 409 for
    the id another workspace holds; the winner's workspace."""
    answers = await asyncio.gather(
        *(
            c.request(method, f"{API}/{path}", json=bodies[w], headers=as_(w))
            for w, c in clients.items()
        )
    )
    codes = {w: r.status_code for w, r in zip(clients, answers, strict=True)}
    assert sorted(codes.values()) == [204, 409], [r.text for r in answers]
    won = "a" if codes["a"] == 204 else "b"
    lost = answers[1 if won == "a" else 0].json()["message"]
    assert lost.endswith("belongs to another workspace"), lost
    return won


async def test_two_workspaces_writing_one_id_at_once_give_one_winner_and_one_409(
    location: Path | str,
) -> None:
    # Two stores on one database, as two servers, one workspace each: every round both
    # write the same new id at once, by each verb that stores one: a create, a PATCH (its
    # partial row), a score (its own name: only the id is shared). What is stored is the
    # winner's, and the loser's id is then the winner's.
    stores = [cast(Store, await open_core_store(location)) for _ in range(2)]
    try:
        async with served(stores[0], location) as a, served(stores[1], location) as b:
            clients = {"a": a, "b": b}
            for kind, _ in itertools.product(("traces", "spans"), range(ROUNDS)):
                created, patched, scored = new_id(), new_id(), new_id()
                records = {
                    w: {kind: [{"id": created, "trace_id": new_id(), "name": w, "start_time": T0}]}
                    for w in clients
                }
                won = await race(clients, "POST", f"{kind}/batch", records)
                stored = await a.get(f"{API}/{kind}/{created}", headers=as_(won))
                assert stored.json()["name"] == won
                lost = "b" if won == "a" else "a"
                assert (
                    await a.get(f"{API}/{kind}/{created}", headers=as_(lost))
                ).status_code == 404

                patches = {w: {"name": w, "trace_id": patched} for w in clients}
                won = await race(clients, "PATCH", f"{kind}/{patched}", patches)
                lost = "b" if won == "a" else "a"
                score = {"id": patched, "name": "q", "value": 1, "source": "sdk"}
                again = await a.put(
                    f"{API}/{kind}/feedback-scores", json={"scores": [score]}, headers=as_(lost)
                )
                assert again.status_code == 409

                scores = {
                    w: {"scores": [{"id": scored, "name": w, "value": 1, "source": "sdk"}]}
                    for w in clients
                }
                won = await race(clients, "PUT", f"{kind}/feedback-scores", scores)
                record = {"id": scored, "trace_id": scored, "start_time": T0}
                await ok(a.post(f"{API}/{kind}/batch", json={kind: [record]}, headers=as_(won)))
                found = (await a.get(f"{API}/{kind}/{scored}", headers=as_(won))).json()
                assert [s["name"] for s in found["feedback_scores"]] == [won]
    finally:
        for store in stores:
            await store.close()


async def test_batches_sharing_ids_written_at_once_in_opposite_orders_both_succeed(
    location: Path | str,
) -> None:
    # Each batch locks its ids in one order, whatever the order sent: two such batches wait
    # for each other rather than deadlock (on PostgreSQL, one of them a 503).
    stores = [cast(Store, await open_core_store(location)) for _ in range(2)]
    try:
        for _ in range(5):
            traces = [{"id": new_id(), "start_time": T0} for _ in range(500)]
            spans = [{"id": new_id(), "trace_id": t["id"], "start_time": T0} for t in traces]
            async with served(stores[0], location) as a, served(stores[1], location) as b:
                answers = await asyncio.gather(
                    a.post(f"{API}/traces/batch", json={"traces": traces}),
                    b.post(f"{API}/traces/batch", json={"traces": traces[::-1]}),
                    a.post(f"{API}/spans/batch", json={"spans": spans}),
                    b.post(f"{API}/spans/batch", json={"spans": spans[::-1]}),
                )
                assert [r.status_code for r in answers] == [204] * 4, [r.text for r in answers]
    finally:
        for store in stores:
            await store.close()


async def _fill_lock_table(conn: asyncpg.Connection) -> None:
    """Takes advisory locks in `conn`'s open transaction until PostgreSQL's lock table holds
    no more: chunks, each in a savepoint, smaller each time one does not fit."""
    taken, chunk = 0, 4096
    while chunk:
        try:
            async with conn.transaction():
                await conn.execute(
                    "SELECT pg_advisory_xact_lock(99, k) FROM generate_series($1::int4, $2) k",
                    taken,
                    taken + chunk - 1,
                )
            taken += chunk
        except asyncpg.OutOfMemoryError:
            chunk //= 2


async def test_a_full_lock_table_is_a_503_to_send_again_and_nothing_is_stored(
    pg_url: str,
) -> None:
    store = cast(Store, await open_core_store(pg_url))
    conn = await asyncpg.connect(pg_url)
    trace = {"id": new_id(), "start_time": T0}
    try:
        async with served(store, pg_url) as c:
            hog = conn.transaction()
            await hog.start()
            await _fill_lock_table(conn)
            answer = await c.post(f"{API}/traces/batch", json={"traces": [trace]})
            assert answer.status_code == 503, answer.text
            assert answer.headers["retry-after"] == "1"
            assert answer.json()["message"].startswith("The database is out of shared memory")
            await hog.rollback()
            assert (await c.get(f"{API}/traces/{trace['id']}")).status_code == 404
            again = await c.post(f"{API}/traces/batch", json={"traces": [trace]})
            assert again.status_code == 204
    finally:
        await conn.close()
        await store.close()


# A trace that a writer taking no id lock (a bulk run, an import) stores, not yet committed,
# with one of the batch's new ids: the batch's COPY of its new rows waits for it.
_HELD = """
INSERT INTO traces (id, workspace, project_id, name, start_time, created_at, created_by,
                    last_updated_at, last_updated_by)
VALUES ($1, $2, $3, 'held', 1, 1, 'held', 1, 'held')
"""


BIG_BATCHES = 30


async def test_many_big_batches_at_once_do_not_fill_postgresqls_lock_table(pg_url: str) -> None:
    # The test cluster's lock table holds about 64 locks x 200 connections, with some slack.
    # 30 batches of 1,000 ids, each kept waiting in its transaction (on a row of its own that
    # another one holds), would overflow it with a lock per id and fail ("out of shared
    # memory"), as 7 would at PostgreSQL's default of 100 connections.
    stores = [cast(Store, await open_core_store(pg_url)) for _ in range(10)]  # 3 connections each
    held = [new_id() for _ in range(BIG_BATCHES)]
    bodies = [
        {"traces": [{"id": t, "start_time": T0} for t in [key, *(new_id() for _ in range(999))]]}
        for key in held
    ]
    conn = await asyncpg.connect(pg_url)
    try:
        async with contextlib.AsyncExitStack() as stack:
            clients = [await stack.enter_async_context(served(s, pg_url)) for s in stores]
            writer = conn.transaction()
            await writer.start()
            for key in held:
                await conn.execute(_HELD, ids.parse(key), "default", ids.uuid7())
            sent = [
                asyncio.create_task(clients[n % len(clients)].post(f"{API}/traces/batch", json=b))
                for n, b in enumerate(bodies)
            ]
            await asyncio.sleep(2)
            await writer.commit()
            answers = await asyncio.gather(*sent)
            assert [r.status_code for r in answers] == [204] * BIG_BATCHES, {
                r.text for r in answers
            }
            for key in held:
                found = (await clients[0].get(f"{API}/traces/{key}")).json()
                assert "name" not in found  # the batch's (no name) over the held one's
    finally:
        await conn.close()
        for store in stores:
            await store.close()


async def test_a_batch_meeting_an_id_stored_meanwhile_without_the_lock_keeps_its_rules(
    pg_url: str,
) -> None:
    # On PostgreSQL a batch copies the rows of ids it found unstored. When an id among them
    # is committed meanwhile, the batch still succeeds over an older row of its workspace
    # (newest wins) and is a 409, with nothing of it stored, over another workspace's.
    store = cast(Store, await open_core_store(pg_url))
    try:
        async with served(store, pg_url) as c:
            for workspace, status in (("default", 204), ("other", 409)):
                mine, held = new_id(), new_id()
                traces = [{"id": t, "name": "batch", "start_time": T0} for t in (mine, held)]
                conn = await asyncpg.connect(pg_url)
                try:
                    writer = conn.transaction()
                    await writer.start()
                    await conn.execute(_HELD, ids.parse(held), workspace, ids.uuid7())
                    batch = asyncio.create_task(
                        c.post(f"{API}/traces/batch", json={"traces": traces})
                    )
                    await asyncio.sleep(0.5)
                    assert not batch.done()  # its COPY waits for the held id
                    await writer.commit()
                    answer = await batch
                finally:
                    await conn.close()
                assert answer.status_code == status, answer.text
                got = [(await c.get(f"{API}/traces/{t}")).status_code for t in (mine, held)]
                if status == 204:
                    assert got == [200, 200]
                    assert (await c.get(f"{API}/traces/{held}")).json()["name"] == "batch"
                else:
                    assert got == [404, 404]
                    assert answer.json()["message"].endswith("belongs to another workspace")
    finally:
        await store.close()


# A summary as the SQLite engine keeps one, of each experiment: the range of its items'
# trace ids. SQL both engines read.
SUMMARY = """
INSERT INTO experiment_summaries (experiment_id, workspace, summary, trace_count, cost,
    cost_avg, p50, p90, p99, scores, folded_scores, first_trace, last_trace)
SELECT e.id, e.workspace, e.id, 0, 0, 0, 0, 0, 0, '{}', '{}',
    (SELECT i.trace_id FROM experiment_items AS i WHERE i.experiment_id = e.id
     ORDER BY i.trace_id LIMIT 1),
    (SELECT i.trace_id FROM experiment_items AS i WHERE i.experiment_id = e.id
     ORDER BY i.trace_id DESC LIMIT 1)
FROM experiments AS e
"""


async def test_a_write_of_a_trace_span_or_score_in_an_experiments_range_drops_its_summary(
    client: httpx.AsyncClient, client_rows: Rows
) -> None:
    first, inside, last, outside = sorted(new_id() for _ in range(4))
    experiment = new_id()
    await ok(client.post(f"{API}/experiments", json={"id": experiment, "dataset_name": "D"}))
    items = [{"experiment_id": experiment, "dataset_item_id": new_id(), "trace_id": t}
             for t in (first, last)]  # fmt: skip
    await ok(client.post(f"{API}/experiments/items", json={"experiment_items": items}))
    span = new_id()

    async def kept_after(write: Any) -> bool:
        await client_rows("DELETE FROM experiment_summaries")
        await client_rows(SUMMARY)
        assert await client_rows("SELECT count(*) FROM experiment_summaries") == [(1,)]
        await ok(write)
        return await client_rows("SELECT count(*) FROM experiment_summaries") == [(1,)]

    def trace(key: str) -> Any:
        body = {"traces": [{"id": key, "start_time": T0}]}
        return client.post(f"{API}/traces/batch", json=body)

    def score(key: str) -> Any:
        body = {"scores": [{"id": key, "name": "q", "value": 1, "source": "sdk"}]}
        return client.put(f"{API}/traces/feedback-scores", json=body)

    assert not await kept_after(trace(first))
    assert await kept_after(trace(outside))
    assert not await kept_after(trace(inside))  # within the range, of no item
    assert not await kept_after(client.patch(f"{API}/traces/{last}", json={"name": "n"}))
    spans = {"spans": [{"id": span, "trace_id": inside, "start_time": T0}]}
    assert not await kept_after(client.post(f"{API}/spans/batch", json=spans))
    assert not await kept_after(client.patch(f"{API}/spans/{span}", json={"trace_id": inside}))
    assert not await kept_after(score(last))
    assert await kept_after(score(outside))
    assert not await kept_after(
        client.post(f"{API}/traces/{last}/feedback-scores/delete", json={"name": "q"})
    )
    assert not await kept_after(client.post(f"{API}/traces/delete", json={"ids": [inside]}))
    assert await kept_after(client.post(f"{API}/traces/delete", json={"ids": [outside]}))
