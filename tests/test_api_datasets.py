"""Datasets and their items over HTTP: create, retrieve, page, stream, delete, versions and
the compare view (opik-reference/datasets-traces.md §8, items 2-9 and 15)."""

import gzip
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from app import clock, ids
from tests.factories import new_id
from tests.inserts import Insert, inserter, trace
from tests.test_api_items import JAN_15

pytestmark = pytest.mark.anyio

API = "/api/v1/private"


async def create(client: httpx.AsyncClient, name: str = "qa", **fields: object) -> str:
    key = new_id()
    answer = await client.post(f"{API}/datasets", json={"id": key, "name": name, **fields})
    assert answer.status_code == 201, answer.text
    return key


async def put_items(client: httpx.AsyncClient, body: dict[str, object]) -> httpx.Response:
    return await client.put(f"{API}/datasets/items", json=body)


def sdk_item(key: str, question: str) -> dict[str, object]:
    """An item as the SDK sends it: explicit nulls included (reference §2.3)."""
    return {
        "id": key, "trace_id": None, "span_id": None, "source": "sdk",
        "data": {"input": {"q": question}, "expected_output": question.upper()},
        "description": None, "evaluators": None, "execution_policy": None,
    }  # fmt: skip


async def test_a_created_dataset_reads_back_by_id_and_by_name_with_its_counts(
    client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(clock, "now_ns", lambda: JAN_15)
    key = await create(
        client, "QA set", project_name="Bots", description=None, tags=["b", "a", "b"]
    )

    by_id = await client.get(f"{API}/datasets/{key}")
    by_name = await client.post(
        f"{API}/datasets/retrieve", json={"dataset_name": "qa SET", "project_name": None}
    )

    assert by_id.status_code == by_name.status_code == 200
    assert by_id.content == by_name.content
    body = by_id.json()
    project = body.pop("project_id")
    assert body == {
        "id": key, "name": "QA set", "type": "dataset", "visibility": "private",
        "tags": ["b", "a"], "created_at": "2024-01-15T09:30:00.120Z", "created_by": "admin",
        "last_updated_at": "2024-01-15T09:30:00.120Z", "last_updated_by": "admin",
        "experiment_count": 0, "dataset_items_count": 0, "optimization_count": 0,
    }  # fmt: skip
    assert list(by_id.json()) == [
        "id", "name", "project_id", "type", "visibility", "tags", "created_at", "created_by",
        "last_updated_at", "last_updated_by", "experiment_count", "dataset_items_count",
        "optimization_count",
    ]  # fmt: skip
    assert len(project) == 36


async def test_names_are_unique_in_the_workspace_whatever_the_project(
    client: httpx.AsyncClient,
) -> None:
    await create(client, "qa", project_name="A")

    again = await client.post(f"{API}/datasets", json={"name": "QA", "project_name": "B"})
    found = await client.post(
        f"{API}/datasets/retrieve", json={"dataset_name": "qa", "project_name": "elsewhere"}
    )
    missing = await client.post(f"{API}/datasets/retrieve", json={"dataset_name": "nope"})

    assert again.status_code == 409
    assert again.content == b"""{"errors":["Dataset already exists with name 'QA'"]}"""
    assert found.status_code == 200
    assert "x-opik-deprecation" not in found.headers
    assert missing.status_code == 404
    assert missing.content == b'{"errors":["Dataset not found"]}'


async def test_bad_datasets_are_refused(client: httpx.AsyncClient) -> None:
    blank = await client.post(f"{API}/datasets", json={"name": "  "})
    not_v7 = await client.post(
        f"{API}/datasets", json={"name": "x", "id": "00000000-0000-4000-8000-000000000000"}
    )
    unknown = await client.get(f"{API}/datasets/{new_id()}")
    not_uuid = await client.get(f"{API}/datasets/nope")

    assert blank.status_code == 422
    assert not_v7.status_code == 400
    assert unknown.status_code == 404
    assert unknown.content == b'{"errors":["Dataset not found"]}'
    assert not_uuid.content == b'{"code":404,"message":"HTTP 404 Not Found"}'


async def test_items_upsert_by_id_and_page_newest_first(client: httpx.AsyncClient) -> None:
    key = await create(client)
    ids = sorted(new_id() for _ in range(5))
    body = {"dataset_name": "qa", "project_name": None, "batch_group_id": new_id(),
            "items": [sdk_item(k, f"q{n}") for n, k in enumerate(ids)]}  # fmt: skip
    compressed = gzip.compress(json.dumps(body).encode())
    headers = {"Content-Encoding": "gzip", "Content-Type": "application/json;charset=utf-8"}

    put = await client.put(f"{API}/datasets/items", content=compressed, headers=headers)
    replaced = await put_items(client, {"dataset_id": key, "items": [
        {"id": ids[0], "source": "manual", "data": {"input": "new"}}]})  # fmt: skip
    first = await client.get(f"{API}/datasets/{key}/items", params={"page": 1, "size": 2})
    third = await client.get(f"{API}/datasets/{key}/items", params={"page": 3, "size": 2})
    dataset = await client.get(f"{API}/datasets/{key}")

    assert put.status_code == replaced.status_code == 204
    page = first.json()
    assert (page["page"], page["size"], page["total"]) == (1, 2, 5)
    assert [i["id"] for i in page["content"]] == [ids[4], ids[3]]
    item = page["content"][0]
    assert list(item) == [
        "id", "dataset_item_id", "source", "data", "tags", "dataset_id", "created_at",
        "last_updated_at", "created_by", "last_updated_by",
    ]  # fmt: skip
    assert item["data"] == {"input": {"q": "q4"}, "expected_output": "Q4"}
    assert item["dataset_item_id"] == item["id"]
    assert [i["data"] for i in third.json()["content"]] == [{"input": "new"}]
    assert third.json()["size"] == 1
    assert dataset.json()["dataset_items_count"] == 5


async def test_an_unknown_dataset_name_is_created_by_an_item_upload(
    client: httpx.AsyncClient,
) -> None:
    put = await put_items(client, {"dataset_name": "fresh", "items": [
        {"source": "sdk", "data": {"a": 1}}]})  # fmt: skip
    found = await client.post(f"{API}/datasets/retrieve", json={"dataset_name": "fresh"})
    unknown_id = await put_items(client, {"dataset_id": new_id(), "items": [
        {"source": "sdk", "data": {"a": 1}}]})  # fmt: skip

    assert put.status_code == 204
    assert found.json()["dataset_items_count"] == 1
    assert unknown_id.status_code == 404
    assert unknown_id.content == b'{"errors":["Dataset not found"]}'


@pytest.mark.parametrize(
    ("body", "error"),
    [
        ({"dataset_name": "qa", "items": []}, "items"),
        ({"items": [{"source": "sdk", "data": {"a": 1}}]}, "dataset_name or a dataset_id"),
        (
            {"dataset_name": "qa", "items": [{"source": "sdk", "trace_id": None, "data": {}}]},
            "data",
        ),
        ({"dataset_name": "qa", "items": [{"source": "sdk", "data": [1]}]}, "data"),
        (
            {
                "dataset_name": "qa",
                "items": [
                    {
                        "source": "sdk",
                        "trace_id": "0190f5b4-7c1a-7000-8000-00000000000a",
                        "data": {"a": 1},
                    }
                ],
            },
            "when it is sdk, trace_id must be null",
        ),
        (
            {"dataset_name": "qa", "items": [{"source": "trace", "data": {"a": 1}}]},
            "when it is trace, trace_id must not be null",
        ),
        ({"dataset_name": "qa", "items": [{"data": {"a": 1}}]}, "source"),
    ],
)
async def test_bad_items_are_422_and_store_nothing(
    client: httpx.AsyncClient, body: dict[str, object], error: str
) -> None:
    answer = await put_items(client, body)

    assert answer.status_code == 422, answer.text
    assert error in answer.json()["errors"][0]
    assert (
        await client.post(f"{API}/datasets/retrieve", json={"dataset_name": "qa"})
    ).status_code == 404


async def test_the_stream_pages_by_cursor_newest_first_with_crlf(client: httpx.AsyncClient) -> None:
    await create(client)
    ids = sorted(new_id() for _ in range(5))
    await put_items(client, {"dataset_name": "qa", "items": [sdk_item(k, "q") for k in ids]})

    pages: list[list[str]] = []
    cursor = None
    while True:
        answer = await client.post(f"{API}/datasets/items/stream", json={
            "dataset_name": "qa", "last_retrieved_id": cursor, "steam_limit": 2,
            "dataset_version": None, "project_name": None, "filters": None})  # fmt: skip
        assert answer.headers["content-type"] == "application/octet-stream"
        lines = answer.content.split(b"\r\n")
        assert lines[-1] == b""
        pages.append([json.loads(line)["id"] for line in lines[:-1]])
        if len(pages[-1]) < 2:
            break
        cursor = pages[-1][-1]
    unknown = await client.post(f"{API}/datasets/items/stream", json={"dataset_name": "none"})
    too_many = await client.post(
        f"{API}/datasets/items/stream", json={"dataset_name": "qa", "steam_limit": 2001}
    )

    assert pages == [[ids[4], ids[3]], [ids[2], ids[1]], [ids[0]]]
    assert (unknown.status_code, unknown.content) == (200, b"")
    assert too_many.status_code == 422


async def test_versions_answer_as_opik_with_versioning_off(client: httpx.AsyncClient) -> None:
    key = await create(client)

    answer = await client.get(f"{API}/datasets/{key}/versions", params={"page": 1, "size": 1})

    assert answer.status_code == 403
    assert answer.content == b'{"code":403,"message":"Dataset versioning feature is not enabled"}'


async def test_items_delete_by_id_or_whole_dataset(client: httpx.AsyncClient) -> None:
    key = await create(client)
    ids = [new_id() for _ in range(3)]
    await put_items(client, {"dataset_id": key, "items": [sdk_item(k, "q") for k in ids]})

    by_ids = {"item_ids": [ids[0], new_id()], "batch_group_id": new_id()}
    one = await client.post(f"{API}/datasets/items/delete", json=by_ids)
    both = await client.post(f"{API}/datasets/items/delete",
                             json={"item_ids": [ids[1]], "dataset_id": key})  # fmt: skip
    neither = await client.post(f"{API}/datasets/items/delete", json={})
    left = (await client.get(f"{API}/datasets/{key}")).json()["dataset_items_count"]
    everything = await client.post(f"{API}/datasets/items/delete", json={"dataset_id": key})
    after = (await client.get(f"{API}/datasets/{key}")).json()["dataset_items_count"]

    assert one.status_code == everything.status_code == 204
    assert both.status_code == neither.status_code == 422
    assert (left, after) == (2, 0)


async def test_deleting_by_name_keeps_the_items_and_a_second_time_is_404(
    client: httpx.AsyncClient,
) -> None:
    key = await create(client)
    item = new_id()
    await put_items(client, {"dataset_id": key, "items": [sdk_item(item, "q")]})

    first = await client.post(f"{API}/datasets/delete", json={"dataset_name": "QA"})
    second = await client.post(f"{API}/datasets/delete", json={"dataset_name": "qa"})
    by_id = await client.delete(f"{API}/datasets/{new_id()}")

    assert first.status_code == by_id.status_code == 204
    assert second.status_code == 404
    assert (await client.get(f"{API}/datasets/{key}")).status_code == 404


async def test_the_compare_view_lists_dataset_items_with_their_experiment_items(
    client: httpx.AsyncClient,
) -> None:
    key = await create(client)
    asked, unasked, gone = sorted(new_id() for _ in range(3))
    await put_items(client, {"dataset_id": key, "items": [
        sdk_item(asked, "a"), sdk_item(unasked, "b")]})  # fmt: skip
    experiment = new_id()
    upload = {
        "experiment_name": "run", "dataset_name": "qa", "experiment_id": experiment,
        "items": [
            {"dataset_item_id": asked, "evaluate_task_result": {"output": "A"},
             "feedback_scores": [{"name": "equals", "value": 1, "source": "sdk"}]},
            {"dataset_item_id": gone, "evaluate_task_result": {"output": "?"}},
        ],
    }  # fmt: skip
    assert (await client.put(f"{API}/experiments/items/bulk", json=upload)).status_code == 204

    answer = await client.get(
        f"{API}/datasets/{key}/items/experiments/items",
        params={"experiment_ids": json.dumps([experiment]), "page": 1, "size": 2000,
                "truncate": "false"},
    )  # fmt: skip
    empty = await client.get(
        f"{API}/datasets/{key}/items/experiments/items", params={"experiment_ids": "[]"}
    )
    bad = await client.get(
        f"{API}/datasets/{key}/items/experiments/items", params={"experiment_ids": "[x"}
    )

    page = answer.json()
    assert (page["total"], page["size"]) == (2, 2)
    rows = {row["id"]: row for row in page["content"]}
    assert [row["id"] for row in page["content"]] == [gone, asked]  # newest dataset item first
    assert rows[gone]["data"] == {}
    assert rows[asked]["data"] == {"input": {"q": "a"}, "expected_output": "A"}
    (entry,) = rows[asked]["experiment_items"]
    assert entry["experiment_id"] == experiment
    assert entry["dataset_item_id"] == asked
    assert entry["output"] == {"output": "A"}
    assert [(s["name"], s["value"]) for s in entry["feedback_scores"]] == [("equals", 1.0)]
    assert empty.status_code == bad.status_code == 400
    assert empty.content == b'{"code":400,"message":"experiment_ids cannot be empty"}'


@pytest.fixture
async def insert(
    client_engine: str, request: pytest.FixtureRequest, db_path: Path
) -> AsyncIterator[Insert]:
    """Rows written straight into the `client` fixture's database."""
    location = str(request.getfixturevalue("pg_url")) if client_engine == "postgresql" else db_path
    into, close = await inserter(location)
    yield into
    await close()


async def test_the_compare_view_joins_each_experiments_items_with_their_traces(
    client: httpx.AsyncClient, insert: Insert
) -> None:
    key = await create(client)
    asked, unasked, gone = sorted(new_id() for _ in range(3))
    await put_items(client, {"dataset_id": key, "items": [
        sdk_item(asked, "a"), sdk_item(unasked, "b")]})  # fmt: skip
    first, second, elsewhere = new_id(), new_id(), new_id()
    for experiment in (first, second, elsewhere):
        made = await client.post(
            f"{API}/experiments", json={"id": experiment, "name": "run", "dataset_name": "qa"}
        )
        assert made.status_code == 201
    traces = [ids.uuid7() for _ in range(4)]
    items = [
        {"id": new_id(), "experiment_id": first, "dataset_item_id": asked,
         "trace_id": ids.to_str(traces[0])},
        {"id": new_id(), "experiment_id": second, "dataset_item_id": asked,
         "trace_id": ids.to_str(traces[1])},
        {"id": new_id(), "experiment_id": first, "dataset_item_id": gone,
         "trace_id": ids.to_str(traces[2])},
        {"id": new_id(), "experiment_id": elsewhere, "dataset_item_id": unasked,
         "trace_id": ids.to_str(traces[3])},
    ]  # fmt: skip
    put = await client.post(f"{API}/experiments/items", json={"experiment_items": items})
    assert put.status_code == 204
    project = ids.uuid7()
    image = '{"q": "data:image/png;base64,iVBORw0KGgoAAAANSUhEUg=="}'
    await trace(insert, "default", traces[0], project, JAN_15, input=image,
                output='{"output": "A"}', scores={"equals": [1, 0.5]}, cost=0.25)  # fmt: skip
    await trace(insert, "default", traces[1], project, JAN_15, output='{"output": "B"}')
    # traces[2] is not stored: its item comes without what a trace would tell.

    async def compared(*experiments: str, **params: str | int) -> dict[str, Any]:
        answer = await client.get(
            f"{API}/datasets/{key}/items/experiments/items",
            params={"experiment_ids": json.dumps(list(experiments)), **params},
        )
        assert answer.status_code == 200, answer.text
        return dict(answer.json())

    page = await compared(first, second, truncate="false")
    truncated = await compared(first, second, truncate="true")
    second_page = await compared(first, second, page=2, size=1)

    assert (page["total"], page["size"]) == (2, 2)
    rows = {row["id"]: row for row in page["content"]}
    assert [row["id"] for row in page["content"]] == [gone, asked]
    assert rows[gone]["data"] == {}
    assert rows[asked]["data"] == {"input": {"q": "a"}, "expected_output": "A"}
    one, two = rows[asked]["experiment_items"]
    assert (one["id"], two["id"]) == tuple(sorted((items[0]["id"], items[1]["id"])))
    by_experiment = {entry["experiment_id"]: entry for entry in (one, two)}
    scored = by_experiment[first]
    assert scored["input"] == json.loads(image)
    assert scored["output"] == {"output": "A"}
    assert scored["total_estimated_cost"] == 0.25
    assert scored["duration"] == 1.5
    (score,) = scored["feedback_scores"]
    assert (score["name"], score["value"]) == ("equals", 0.75)
    assert by_experiment[second]["output"] == {"output": "B"}
    assert "feedback_scores" not in by_experiment[second]
    (unstored,) = rows[gone]["experiment_items"]
    assert "output" not in unstored
    assert "duration" not in unstored
    shown = {e["experiment_id"]: e for e in truncated["content"][1]["experiment_items"]}
    assert shown[first]["input"] == {"q": "[image]"}
    assert [row["id"] for row in second_page["content"]] == [asked]
    assert (second_page["total"], second_page["size"]) == (2, 1)


async def test_nothing_of_a_dataset_crosses_workspaces(client: httpx.AsyncClient) -> None:
    key = await create(client)
    item = new_id()
    await put_items(client, {"dataset_id": key, "items": [sdk_item(item, "q")]})
    other = {"Comet-Workspace": "other"}

    by_id = await client.get(f"{API}/datasets/{key}", headers=other)
    by_name = await client.post(f"{API}/datasets/retrieve", json={"dataset_name": "qa"},
                                headers=other)  # fmt: skip
    page = await client.get(f"{API}/datasets/{key}/items", headers=other)
    steal = await client.put(f"{API}/datasets/items", headers=other, json={
        "dataset_name": "mine", "items": [sdk_item(item, "stolen")]})  # fmt: skip
    delete = await client.post(f"{API}/datasets/items/delete", json={"item_ids": [item]},
                               headers=other)  # fmt: skip
    mine = (await client.get(f"{API}/datasets/{key}/items")).json()

    assert by_id.status_code == by_name.status_code == 404
    assert page.json()["total"] == 0
    assert steal.status_code == 409
    assert delete.status_code == 204
    assert [i["data"]["input"] for i in mine["content"]] == [{"q": "q"}]


async def test_non_finite_numbers_in_item_data_are_stored_as_null(
    client: httpx.AsyncClient,
) -> None:
    # What json.dumps(allow_nan=True), the SDK's serializer, writes for a float('nan').
    body = (
        b'{"dataset_name": "qa", "items": [{"source": "sdk", "data": {"score": NaN, '
        b'"range": [-Infinity, Infinity], "text": "NaN stays text"}}]}'
    )

    put = await client.put(
        f"{API}/datasets/items", content=body, headers={"Content-Type": "application/json"}
    )
    found = await client.post(f"{API}/datasets/retrieve", json={"dataset_name": "qa"})
    page = await client.get(f"{API}/datasets/{found.json()['id']}/items")

    assert put.status_code == 204
    assert page.json()["content"][0]["data"] == {
        "score": None, "range": [None, None], "text": "NaN stays text"
    }  # fmt: skip


async def test_a_batch_group_id_that_is_no_uuid_is_a_422(client: httpx.AsyncClient) -> None:
    # Ignored (versioning is off), but the document says it is a UUID.
    put = await put_items(
        client, {"dataset_name": "g", "batch_group_id": "x", "items": [sdk_item(new_id(), "q")]}
    )
    delete = await client.post(
        f"{API}/datasets/items/delete", json={"item_ids": [new_id()], "batch_group_id": "x"}
    )

    assert (put.status_code, delete.status_code) == (422, 422)
    assert put.json() == {"errors": ["batch_group_id must be a UUID"]}


async def test_item_data_reads_back_byte_for_byte_as_sent(client: httpx.AsyncClient) -> None:
    # The SDK hashes an item's data to know it again: spacing, key order, escapes and numbers
    # come back as they were sent, by the page and by the stream.
    data = '{"z":  1.50, "a": "\\u00e9\\n\\"q\\"", "é": [1e2, {"b": null}], "z2":-0}'
    body = '{"dataset_name": "raw", "items": [{"source": "sdk", "data": ' + data + "}]}"
    put = await client.put(
        f"{API}/datasets/items", content=body, headers={"Content-Type": "application/json"}
    )
    found = await client.post(f"{API}/datasets/retrieve", json={"dataset_name": "raw"})
    page = await client.get(f"{API}/datasets/{found.json()['id']}/items")
    stream = await client.post(f"{API}/datasets/items/stream", json={"dataset_name": "raw"})

    assert put.status_code == 204, put.text
    assert f'"data":{data},'.encode() in page.content
    assert f'"data":{data},'.encode() in stream.content
