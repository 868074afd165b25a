"""Feedback scores per author over HTTP: each (trace or span, name, author) its own score, read
back as the authors' average with `value_by_author` (opik-reference/datasets-traces.md §3.8),
and experiments averaging each trace's authors first (experiments.md §2.2)."""

import hashlib
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from app.auth import ApiKey
from app.config import Settings
from app.main import create_app
from app.store import Store
from tests.factories import new_id

pytestmark = pytest.mark.anyio

API = "/api/v1/private"
T0 = "2024-01-15T09:30:00Z"
Clients = tuple[httpx.AsyncClient, httpx.AsyncClient]


@pytest.fixture
async def ann_and_bob(client_store: tuple[Settings, Store]) -> AsyncIterator[Clients]:
    """Two users of one workspace, each with a key."""
    keys = tuple(
        ApiKey(hashlib.sha256(f"{user}-key".encode()).digest(), "lab", user)
        for user in ("ann", "bob")
    )
    settings, store = client_store
    app = create_app(settings, store=store, api_keys=keys)
    transport = httpx.ASGITransport(app=app)
    async with (
        httpx.AsyncClient(
            transport=transport, base_url="http://test", headers={"Authorization": "ann-key"}
        ) as ann,
        httpx.AsyncClient(
            transport=transport, base_url="http://test", headers={"Authorization": "bob-key"}
        ) as bob,
    ):
        yield ann, bob


async def ok(response: Any) -> Any:
    answer = await response
    assert answer.status_code in (200, 201, 204), answer.text
    return answer


def score(key: str, value: float, **fields: Any) -> dict[str, Any]:
    return {"id": key, "name": "acc", "value": value, "source": "sdk", **fields}


async def put_scores(client: httpx.AsyncClient, kind: str, *scores: dict[str, Any]) -> None:
    await ok(client.put(f"{API}/{kind}/feedback-scores", json={"scores": list(scores)}))


async def a_trace(client: httpx.AsyncClient, project: str = "Lab") -> str:
    key = new_id()
    body = {"traces": [{"id": key, "project_name": project, "start_time": T0}]}
    await ok(client.post(f"{API}/traces/batch", json=body))
    return key


async def test_each_author_keeps_a_score_and_reads_average_them(ann_and_bob: Clients) -> None:
    ann, bob = ann_and_bob
    key = await a_trace(ann)

    await put_scores(ann, "traces", score(key, 0.2, reason="meh"))
    await put_scores(bob, "traces", score(key, 0.6, category_name="good"))
    await put_scores(ann, "traces", score(key, 1.0, reason="fine"))  # replaces ann's only
    body = (await ok(ann.get(f"{API}/traces/{key}"))).json()

    [acc] = body["feedback_scores"]
    assert acc["value"] == pytest.approx(0.8)
    assert (acc["reason"], acc["category_name"], acc["source"]) == (
        "fine, <no reason>",
        "good",
        "sdk",
    )
    assert (acc["created_by"], acc["last_updated_by"]) == ("ann, bob", "ann, bob")
    by_author = acc["value_by_author"]
    assert list(by_author) == ["ann", "bob"]
    assert {k: v for k, v in by_author["ann"].items() if k != "last_updated_at"} == {
        "value": 1.0,
        "reason": "fine",
        "source": "sdk",
    }
    assert (by_author["bob"]["value"], by_author["bob"]["category_name"]) == (0.6, "good")
    assert list(acc) == [
        "name", "category_name", "value", "reason", "source", "created_at", "last_updated_at",
        "created_by", "last_updated_by", "value_by_author",
    ]  # fmt: skip


async def test_a_scores_author_field_names_its_author(client: httpx.AsyncClient) -> None:
    key = await a_trace(client)

    await put_scores(client, "traces", score(key, 1), score(key, 0, author="judge"))
    [acc] = (await ok(client.get(f"{API}/traces/{key}"))).json()["feedback_scores"]

    assert acc["value"] == 0.5
    assert sorted(acc["value_by_author"]) == ["admin", "judge"]
    assert "reason" not in acc
    assert "category_name" not in acc


async def test_a_single_author_reads_as_its_own_score(client: httpx.AsyncClient) -> None:
    key = await a_trace(client)

    await put_scores(client, "traces", score(key, 0.25, reason="r", category_name="c"))
    [acc] = (await ok(client.get(f"{API}/traces/{key}"))).json()["feedback_scores"]

    assert (acc["value"], acc["reason"], acc["category_name"]) == (0.25, "r", "c")
    assert (acc["created_by"], list(acc["value_by_author"])) == ("admin", ["admin"])


async def test_span_scores_are_kept_per_author_too(ann_and_bob: Clients) -> None:
    ann, bob = ann_and_bob
    trace_id, span_id = await a_trace(ann), new_id()
    span = {"id": span_id, "trace_id": trace_id, "project_name": "Lab", "start_time": T0}
    await ok(ann.post(f"{API}/spans/batch", json={"spans": [span]}))

    await put_scores(ann, "spans", score(span_id, 1))
    await put_scores(bob, "spans", score(span_id, 0))
    [acc] = (await ok(bob.get(f"{API}/spans/{span_id}"))).json()["feedback_scores"]

    assert acc["value"] == 0.5
    assert {a: v["value"] for a, v in acc["value_by_author"].items()} == {"ann": 1, "bob": 0}


async def test_the_search_filters_on_the_authors_average(ann_and_bob: Clients) -> None:
    ann, bob = ann_and_bob
    split, high = await a_trace(ann, "Search"), await a_trace(ann, "Search")
    await put_scores(ann, "traces", score(split, 1.0), score(high, 0.9))
    await put_scores(bob, "traces", score(split, 0.0))
    filters = [{"field": "feedback_scores", "operator": ">", "key": "acc", "value": "0.6"}]

    response = await ok(
        ann.post(f"{API}/traces/search", json={"project_name": "Search", "filters": filters})
    )

    assert [json.loads(line)["id"] for line in response.content.splitlines() if line] == [high]


async def an_experiment_of_two_traces(ann: httpx.AsyncClient, bob: httpx.AsyncClient) -> Any:
    """An experiment of two items: one's trace scored by ann and bob, the other's by ann
    alone; its answer, and the first item's dataset item id."""
    experiment, dataset_item, other_item = new_id(), new_id(), new_id()
    two_authors, one_author = await a_trace(ann), await a_trace(ann)
    await put_scores(ann, "traces", score(two_authors, 1.0), score(one_author, 1.0))
    await put_scores(bob, "traces", score(two_authors, 0.0))
    await ok(ann.post(f"{API}/experiments", json={"id": experiment, "dataset_name": "D"}))
    items = [
        {"experiment_id": experiment, "dataset_item_id": d, "trace_id": t}
        for d, t in ((dataset_item, two_authors), (other_item, one_author))
    ]
    await ok(ann.post(f"{API}/experiments/items", json={"experiment_items": items}))
    return (await ok(ann.get(f"{API}/experiments/{experiment}"))).json(), dataset_item


async def test_experiments_average_each_traces_authors_first(ann_and_bob: Clients) -> None:
    found, _ = await an_experiment_of_two_traces(*ann_and_bob)

    # (1.0 + 0.0) / 2 for the first trace, 1.0 for the second: 0.75, not the flat 2/3.
    assert found["feedback_scores"] == [{"name": "acc", "value": 0.75}]


async def test_the_compare_view_shows_each_traces_authors(ann_and_bob: Clients) -> None:
    ann, _ = ann_and_bob
    found, dataset_item = await an_experiment_of_two_traces(*ann_and_bob)

    compare = await ok(
        ann.get(
            f"{API}/datasets/{found['dataset_id']}/items/experiments/items",
            params={"experiment_ids": json.dumps([found["id"]])},
        )
    )

    rows = {row["id"]: row["experiment_items"][0] for row in compare.json()["content"]}
    [acc] = rows[dataset_item]["feedback_scores"]
    assert (acc["value"], sorted(acc["value_by_author"])) == (0.5, ["ann", "bob"])
