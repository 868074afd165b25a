"""A NUL character (U+0000) over HTTP: SQLite stores it in any text; PostgreSQL's text cannot
hold it, so there a name, a description or a template with one is a 400 that says so and
stores nothing (its transaction rolled back), and a JSON value keeps it escaped, on both."""

from typing import Any

import httpx
import pytest

from tests.conftest import Rows
from tests.factories import batch, item, new_id

pytestmark = pytest.mark.anyio
ENGINES = ("sqlite", "postgresql")

ITEMS = "/v1/private/experiments/items"
NUL_REFUSED = {
    "code": 400,
    "message": "A text value holds a NUL character (U+0000), which PostgreSQL cannot store: "
    "nothing was stored. Send the text without it",
}


def expect(engine: str, response: httpx.Response, stored: int) -> None:
    """SQLite stores it (`stored`: the write's status); PostgreSQL refuses it, saying why."""
    if engine == "sqlite":
        assert response.status_code == stored, response.text
    else:
        assert (response.status_code, response.json()) == (400, NUL_REFUSED)


async def count(rows: Rows, table: str) -> int:
    return int((await rows(f"SELECT count(*) FROM {table}"))[0][0])


async def test_a_batch_with_a_nul_in_one_project_name_is_stored_whole_or_not_at_all(
    client: httpx.AsyncClient, client_engine: str, client_rows: Rows
) -> None:
    # The project is made in the batch's transaction, before the item that names it: on
    # PostgreSQL the refusal rolls back the items and projects written before it too.
    written = [item(project_name="fine"), item(project_name="a\x00b")]

    response = await client.post(ITEMS, json=batch(*written))

    expect(client_engine, response, 204)
    found = [(await client.get(f"{ITEMS}/{i['id']}")).status_code for i in written]
    stored = client_engine == "sqlite"
    assert found == ([200, 200] if stored else [404, 404])
    assert await count(client_rows, "experiment_items") == (2 if stored else 0)
    assert await count(client_rows, "projects") == (2 if stored else 0)


@pytest.mark.parametrize(
    ("path", "body", "status", "tables"),
    [
        ("/v1/private/experiments", {"dataset_name": "qa", "name": "run\x00"}, 201,
         ("experiments", "datasets")),
        ("/v1/private/datasets", {"name": "qa", "description": "\x00"}, 201, ("datasets",)),
        ("/v1/private/prompts/versions", {"name": "p", "version": {"template": "Hi\x00"}}, 200,
         ("prompts", "prompt_versions")),
    ],
)  # fmt: skip
async def test_a_nul_in_a_name_description_or_template_is_refused_on_postgresql_only(
    client: httpx.AsyncClient,
    client_engine: str,
    client_rows: Rows,
    path: str,
    body: dict[str, Any],
    status: int,
    tables: tuple[str, ...],
) -> None:
    response = await client.post(path, json=body)

    expect(client_engine, response, status)
    counts = [await count(client_rows, table) for table in tables]
    assert counts == [1 if client_engine == "sqlite" else 0] * len(tables)


async def test_a_nul_in_a_json_value_round_trips_on_both_engines(
    client: httpx.AsyncClient,
) -> None:
    # JSON is stored as its text, where U+0000 stays the escape \u0000.
    trace = new_id()
    data = {"q": "a\x00b", "\x00key": ["\x00"]}
    written = await client.post(
        "/v1/private/traces/batch",
        json={"traces": [{"id": trace, "start_time": "2024-01-15T09:30:00Z", "input": data,
                          "metadata": data, "project_name": "nul"}]},
    )  # fmt: skip
    dataset_item = new_id()
    items = [{"id": dataset_item, "source": "sdk", "data": data}]
    put = await client.put(
        "/v1/private/datasets/items", json={"dataset_name": "nul", "items": items}
    )
    dataset = await client.post("/v1/private/datasets/retrieve", json={"dataset_name": "nul"})

    assert (written.status_code, put.status_code, dataset.status_code) == (204, 204, 200)
    read = (await client.get(f"/v1/private/traces/{trace}")).json()
    assert (read["input"], read["metadata"]) == (data, data)
    page = await client.get(f"/v1/private/datasets/{dataset.json()['id']}/items")
    assert [row["data"] for row in page.json()["content"]] == [data]
