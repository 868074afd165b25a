"""The stream of an experiment's items: NDJSON lines, newest id first, paged by id."""

import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import Rows
from tests.factories import batch, item, new_id
from tests.running import running_server

pytestmark = pytest.mark.anyio

EXPERIMENTS = "/v1/private/experiments"
ITEMS = "/v1/private/experiments/items"
STREAM = "/v1/private/experiments/items/stream"
BULK = "/v1/private/experiments/items/bulk"


async def make_experiment(
    client: httpx.AsyncClient, name: str, workspace: str = "default", items: int = 0
) -> tuple[str, list[str]]:
    """An experiment named `name` with `items` items; their ids, oldest first."""
    key = new_id()
    headers = {"Comet-Workspace": workspace}
    await client.post(
        EXPERIMENTS, json={"id": key, "name": name, "dataset_name": "d"}, headers=headers
    )
    made = []
    for start in range(0, items, 1000):
        bodies = [item(experiment_id=key) for _ in range(min(1000, items - start))]
        response = await client.post(ITEMS, json=batch(*bodies), headers=headers)
        assert response.status_code == 204
        made += [b["id"] for b in bodies]
    return key, made


async def stream(client: httpx.AsyncClient, workspace: str = "default", **query: Any) -> list[Any]:
    response = await client.post(STREAM, json=query, headers={"Comet-Workspace": workspace})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/octet-stream"
    if not response.content:
        return []
    assert response.content.endswith(b"\r\n")
    lines = response.content.split(b"\r\n")[:-1]
    return [json.loads(line) for line in lines]


async def test_paging_returns_every_item_once_newest_first(client: httpx.AsyncClient) -> None:
    _, made = await make_experiment(client, "paged", items=5000)

    seen: list[str] = []
    last = None
    while True:
        page = await stream(client, experiment_name="paged", limit=700, last_retrieved_id=last)
        if not page:
            break
        assert len(page) <= 700
        seen += [line["id"] for line in page]
        last = page[-1]["id"]

    assert seen == sorted(made, reverse=True)


async def test_limit_defaults_to_500(client: httpx.AsyncClient) -> None:
    await make_experiment(client, "big", items=600)

    assert len(await stream(client, experiment_name="big")) == 500
    assert len(await stream(client, experiment_name="big", limit=None, truncate=None)) == 500


async def test_experiments_of_one_name_stream_together(client: httpx.AsyncClient) -> None:
    _, first = await make_experiment(client, "twin", items=3)
    _, second = await make_experiment(client, "twin", items=3)
    await make_experiment(client, "other", items=2)

    lines = await stream(client, experiment_name="twin")

    assert [line["id"] for line in lines] == sorted(first + second, reverse=True)


async def test_another_workspaces_experiment_of_the_same_name_never_appears(
    client: httpx.AsyncClient,
) -> None:
    _, mine = await make_experiment(client, "shared", items=2)
    await make_experiment(client, "shared", workspace="elsewhere", items=2)

    lines = await stream(client, experiment_name="shared")

    assert [line["id"] for line in lines] == sorted(mine, reverse=True)


async def test_an_unknown_name_gives_an_empty_body(client: httpx.AsyncClient) -> None:
    response = await client.post(STREAM, json={"experiment_name": "nothing"})

    assert response.status_code == 200
    assert response.content == b""


async def test_a_line_without_a_known_trace_has_the_public_fields(
    client: httpx.AsyncClient,
) -> None:
    key, made = await make_experiment(client, "plain", items=1)

    (line,) = await stream(client, experiment_name="plain")

    public = (await client.get(f"{ITEMS}/{made[0]}")).json()
    assert line == public
    assert line["experiment_id"] == key


async def test_project_name_filters_the_items(client: httpx.AsyncClient) -> None:
    key = new_id()
    await client.post(EXPERIMENTS, json={"id": key, "name": "mixed", "dataset_name": "d"})
    inside, outside = item(experiment_id=key, project_name="A"), item(experiment_id=key)
    await client.post(ITEMS, json=batch(inside, outside))

    lines = await stream(client, experiment_name="mixed", project_name="a")
    none = await stream(client, experiment_name="mixed", project_name="nope")

    assert [line["id"] for line in lines] == [inside["id"]]
    assert none == []


@pytest.mark.parametrize(
    ("query", "error"),
    [
        ({}, "experiment_name must not be null"),
        ({"experiment_name": " "}, "experiment_name must not be blank"),
        ({"experiment_name": "x", "limit": 0}, "limit expected `int` >= 1"),
        ({"experiment_name": "x", "limit": 2001}, "limit expected `int` <= 2000"),
        ({"experiment_name": "x", "last_retrieved_id": "x"}, "last_retrieved_id must be a UUID"),
        ({"experiment_name": "x", "limit": 1.5}, "limit expected `float` that's a multiple of 1.0"),
        ({"experiment_name": "x", "limit": 0.0}, "limit expected `float` >= 1.0"),
        ({"experiment_name": "x", "limit": 2001.0}, "limit expected `float` <= 2000.0"),
        ({"experiment_name": "x", "limit": "5"}, "limit expected `int | float | null`, got `str`"),
    ],
)
async def test_a_bad_query_is_422(client: httpx.AsyncClient, query: object, error: str) -> None:
    response = await client.post(STREAM, json=query)

    assert response.status_code == 422
    assert response.json() == {"errors": [error]}


async def test_a_whole_float_limit_counts_as_the_integer(client: httpx.AsyncClient) -> None:
    # The document says "integer", which in JSON Schema takes 2.0, as Opik's Jackson does.
    _, made = await make_experiment(client, "whole", items=3)

    for limit in (b"2.0", b"2e0", b"2.000"):
        body = b'{"experiment_name":"whole","limit":' + limit + b"}"
        response = await client.post(
            STREAM, content=body, headers={"Content-Type": "application/json"}
        )

        assert response.status_code == 200, response.text
        lines = response.content.split(b"\r\n")[:-1]
        assert [json.loads(line)["id"] for line in lines] == sorted(made, reverse=True)[:2]


def test_a_whole_float_limit_counts_as_the_integer_on_a_real_server(tmp_path: Path) -> None:
    with running_server(tmp_path / "items.db") as url:
        response = httpx.post(url + STREAM, json={"experiment_name": "none", "limit": 500.0})
        refused = httpx.post(url + STREAM, json={"experiment_name": "none", "limit": 1.5})

    assert (response.status_code, response.content) == (200, b"")
    assert refused.status_code == 422
    assert refused.json() == {"errors": ["limit expected `float` that's a multiple of 1.0"]}


async def test_whole_float_token_counts_are_stored_as_integers(
    client: httpx.AsyncClient, client_rows: Rows
) -> None:
    span = {"start_time": "2024-01-15T09:30:00Z", "usage": {"prompt_tokens": 3.0, "total": 4}}
    record = {"dataset_item_id": new_id(), "evaluate_task_result": {}, "spans": [span]}
    upload = {"experiment_name": "tokens", "dataset_name": "d", "items": [record]}

    response = await client.put(BULK, json=upload)
    (line,) = await stream(client, experiment_name="tokens")
    [(stored,)] = await client_rows("SELECT usage FROM spans")

    assert response.status_code == 204, response.text
    assert stored == '{"prompt_tokens":3,"total":4}'
    assert json.dumps(line["usage"]) == '{"prompt_tokens": 3, "total": 4}'


async def test_a_fractional_token_count_is_422(client: httpx.AsyncClient) -> None:
    span = {"start_time": "2024-01-15T09:30:00Z", "usage": {"prompt_tokens": 2.5}}
    record = {"dataset_item_id": new_id(), "evaluate_task_result": {}, "spans": [span]}
    upload = {"experiment_name": "tokens", "dataset_name": "d", "items": [record]}

    response = await client.put(BULK, json=upload)

    assert response.status_code == 422
    assert response.json() == {
        "errors": ["items[0].spans[0].usage[...] expected `float` that's a multiple of 1.0"]
    }
