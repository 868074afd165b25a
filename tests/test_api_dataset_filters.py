"""Dataset item filters on the stream and the page over HTTP: Opik's DatasetItemField with the
operators FilterQueryBuilder gives its type, as the SDK's OQL `for_dataset_items` sends them;
any other field or operator is a 400 (opik-reference/datasets-traces.md §3.4.2-3.4.3)."""

import json
from typing import Any

import httpx
import pytest

from tests.factories import new_id

pytestmark = pytest.mark.anyio

API = "/api/v1/private"


def where(field: str, operator: str, value: str, key: str = "") -> dict[str, str]:
    # As the SDK's OQL writes each condition, `type` included (the server ignores it).
    return {"field": field, "key": key, "type": "string", "operator": operator, "value": value}


async def three_items(client: httpx.AsyncClient) -> tuple[str, list[str]]:
    keys = sorted(new_id() for _ in range(3))
    items = [
        {"id": keys[0], "source": "sdk", "data": {"category": "Math", "n": 1}, "tags": ["easy"]},
        {"id": keys[1], "source": "manual", "data": {"category": "history", "n": 2}},
        {"id": keys[2], "source": "sdk", "data": {"category": "mathematics", "q": "2+2?"},
         "tags": ["hard", "Exam"]},
    ]  # fmt: skip
    answer = await client.put(f"{API}/datasets/items", json={"dataset_name": "F", "items": items})
    assert answer.status_code == 204, answer.text
    found = await client.post(f"{API}/datasets/retrieve", json={"dataset_name": "F"})
    return found.json()["id"], keys


async def streamed(client: httpx.AsyncClient, *filters: dict[str, str]) -> list[str]:
    body = {"dataset_name": "F", "filters": json.dumps(list(filters))}
    answer = await client.post(f"{API}/datasets/items/stream", json=body)
    assert answer.status_code == 200, answer.text
    return [json.loads(line)["id"] for line in answer.content.split(b"\r\n") if line]


async def paged(client: httpx.AsyncClient, dataset: str, *filters: Any) -> httpx.Response:
    params: dict[str, str | int] = {"filters": json.dumps(list(filters)), "size": 2}
    return await client.get(f"{API}/datasets/{dataset}/items", params=params)


async def test_the_stream_keeps_the_items_that_meet_every_filter(
    client: httpx.AsyncClient,
) -> None:
    _, (math, history, mathematics) = await three_items(client)

    assert await streamed(client, where("data", "=", "math", "category")) == [math]
    assert await streamed(client, where("data", "starts_with", "MATH", "category")) == [
        mathematics,
        math,
    ]
    # A number compares as its text; a missing key as the empty text, as in Opik.
    assert await streamed(client, where("data", "!=", "2", "n")) == [mathematics, math]
    assert await streamed(client, where("source", "=", "SDK"), where("tags", "contains", "ex")) == [
        mathematics
    ]
    assert await streamed(client, where("tags", "!=", "easy")) == [mathematics, history]
    assert await streamed(client, where("full_data", "contains", "2+2")) == [mathematics]
    assert await streamed(client, where("id", "=", math.upper())) == [math]
    assert await streamed(client, where("trace_id", "not_contains", "a")) == [
        mathematics,
        history,
        math,
    ]
    assert await streamed(client, where("created_by", "ends_with", "MIN")) == [
        mathematics,
        history,
        math,
    ]
    assert await streamed(client, where("created_at", "<", "2000-01-01T00:00:00Z")) == []
    # A time that is no instant matches nothing, as ClickHouse's OrNull parse would.
    assert await streamed(client, where("created_at", "!=", "yesterday")) == []
    assert len(await streamed(client, where("last_updated_at", ">=", "2000-01-01T00:00:00Z"))) == 3


async def test_the_page_counts_only_the_items_that_meet_the_filters(
    client: httpx.AsyncClient,
) -> None:
    dataset, (math, _, mathematics) = await three_items(client)

    page = await paged(client, dataset, where("data", "contains", "MATH", "category"))
    empty = await paged(client, dataset)

    body = page.json()
    assert (body["total"], body["size"]) == (2, 2)
    assert [item["id"] for item in body["content"]] == [mathematics, math]
    assert empty.json()["total"] == 3


@pytest.mark.parametrize(
    ("filters", "message"),
    [
        ("[{", "Invalid filters query parameter '[{'"),
        ('{"field": "id"}', 'Invalid filters query parameter \'{"field": "id"}\''),
        (
            json.dumps([where("input", "=", "x")]),
            'Invalid filters query parameter \'[{"field": "input"',
        ),
        (
            json.dumps([where("tags", "starts_with", "x")]),
            "Invalid operator 'starts_with' for field 'tags' of type 'LIST'",
        ),
        (
            json.dumps([where("id", "is_empty", "")]),
            "Invalid operator 'is_empty' for field 'id' of type 'STRING'",
        ),
        (
            json.dumps([where("data", "=", "x")]),
            "Invalid value 'x' or key '' for field 'data'",
        ),
    ],
)
async def test_an_unknown_field_or_operator_is_a_400_on_both_routes(
    client: httpx.AsyncClient, filters: str, message: str
) -> None:
    dataset, _ = await three_items(client)

    stream = await client.post(
        f"{API}/datasets/items/stream", json={"dataset_name": "F", "filters": filters}
    )
    page = await client.get(f"{API}/datasets/{dataset}/items", params={"filters": filters})

    for answer in (stream, page):
        assert answer.status_code == 400, answer.text
        assert answer.json()["code"] == 400
        assert answer.json()["message"].startswith(message)


async def test_null_blank_and_empty_filters_keep_every_item(client: httpx.AsyncClient) -> None:
    dataset, keys = await three_items(client)

    for filters in ("[]", " ", "null"):
        body = {"dataset_name": "F", "filters": filters}
        answer = await client.post(f"{API}/datasets/items/stream", json=body)
        assert answer.content.count(b"\r\n") == 3, filters
    page = await client.get(f"{API}/datasets/{dataset}/items", params={"filters": "[]"})
    assert page.json()["total"] == len(keys)


async def test_a_delete_by_dataset_takes_the_same_filters(client: httpx.AsyncClient) -> None:
    dataset, (_, history, mathematics) = await three_items(client)
    delete = f"{API}/datasets/items/delete"

    by_tag = await client.post(
        delete, json={"dataset_id": dataset, "filters": [where("tags", "=", "easy")]}
    )
    bad = await client.post(
        delete, json={"dataset_id": dataset, "filters": [where("tags", "ends_with", "y")]}
    )

    assert (by_tag.status_code, bad.status_code) == (204, 400)
    assert await streamed(client) == [mathematics, history]


async def test_a_data_value_compares_as_its_text_whatever_its_json_type(
    client: httpx.AsyncClient,
) -> None:
    keys = sorted(new_id() for _ in range(2))
    first, second = keys
    # Text, not a dict: the numbers as written (json.dumps would write 1e2 as 100.0).
    body = (
        '{"dataset_name": "F", "items": [{"id": "FIRST", "source": "sdk", "data": {"flag": true, '
        '"real": 1e2, "long": 0.30000000000000004, "obj": {"a": [1, 2], "b": "x y"}, '
        '"nul": "a\\u0000b"}}, {"id": "SECOND", "source": "sdk", "data": {"flag": false, '
        '"real": 2.50, "tiny": 1E-7, "big": 12345678901234567890}}]}'
    )
    body = body.replace("FIRST", first).replace("SECOND", second)
    answer = await client.put(
        f"{API}/datasets/items", content=body, headers={"Content-Type": "application/json"}
    )
    assert answer.status_code == 204, answer.text

    # As SQLite's json_extract gives each value as text: true as 1, a real to 15 digits with
    # ".0" at least, an object without the spaces between its tokens.
    assert await streamed(client, where("data", "=", "1", "flag")) == [first]
    assert await streamed(client, where("data", "=", "0", "flag")) == [second]
    assert await streamed(client, where("data", "=", "100.0", "real")) == [first]
    assert await streamed(client, where("data", "=", "2.5", "real")) == [second]
    assert await streamed(client, where("data", "=", "0.3", "long")) == [first]
    assert await streamed(client, where("data", "=", "1.0e-07", "tiny")) == [second]
    assert await streamed(client, where("data", "=", "1.23456789012346e+19", "big")) == [second]
    assert await streamed(client, where("data", "=", '{"a":[1,2],"b":"x y"}', "obj")) == [first]
    assert await streamed(client, where("data", "starts_with", "a", "nul")) == [first]
    # A NUL to look for is no failure on either engine (PostgreSQL's text cannot hold one),
    # and a key's NULs are left out, as its double quotes are.
    for field, key in (("full_data", ""), ("data", "nul"), ("tags", "")):
        await streamed(client, where(field, "contains", "\x00", key))
    assert await streamed(client, where("data", "=", "1", 'f"l\x00ag')) == [first]
