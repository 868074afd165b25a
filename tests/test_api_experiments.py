"""Experiments over HTTP: create, read, delete with their items."""

import httpx
import pytest

from app import clock
from tests.conftest import Rows
from tests.factories import batch, item, new_id
from tests.test_api_items import JAN_15

pytestmark = pytest.mark.anyio

EXPERIMENTS = "/v1/private/experiments"
ITEMS = "/v1/private/experiments/items"


async def test_create_answers_201_with_the_location_of_the_new_experiment(
    client: httpx.AsyncClient,
) -> None:
    key = new_id()

    response = await client.post(
        f"/api{EXPERIMENTS}", json={"id": key, "dataset_name": "qa", "name": "run-1"}
    )

    assert response.status_code == 201
    assert response.content == b""
    assert response.headers["location"] == f"http://test/api{EXPERIMENTS}/{key}"


async def test_get_returns_the_stored_fields_with_dataset_and_project(
    client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(clock, "now_ns", lambda: JAN_15)
    key, optimization = new_id(), new_id()
    await client.post(
        EXPERIMENTS,
        json={
            "id": key,
            "dataset_name": "QA set",
            "name": "run-1",
            "project_name": "Bots",
            "metadata": {"model": "gpt", "temperature": 0.2},
            "tags": ["a", "b"],
            "type": "trial",
            "optimization_id": optimization,
            "status": "running",
            "experiment_scores": [{"name": "acc", "value": 0.9}],
            "unknown_field": 1,
        },
    )

    response = await client.get(f"{EXPERIMENTS}/{key}")

    assert response.status_code == 200
    body = response.json()
    dataset_id, project_id = body.pop("dataset_id"), body.pop("project_id")
    assert ids_are_v7(dataset_id, project_id)
    assert list(body) == [
        "id", "dataset_name", "project_name", "name", "metadata", "tags", "type",
        "evaluation_method", "optimization_id", "trace_count", "dataset_item_count",
        "created_at", "last_updated_at", "created_by", "last_updated_by", "status",
        "experiment_scores",
    ]  # fmt: skip
    assert body == {
        "id": key,
        "dataset_name": "QA set",
        "project_name": "Bots",
        "name": "run-1",
        "metadata": {"model": "gpt", "temperature": 0.2},
        "tags": ["a", "b"],
        "type": "trial",
        "evaluation_method": "dataset",
        "optimization_id": optimization,
        "trace_count": 0,
        "dataset_item_count": 0,
        "created_at": "2024-01-15T09:30:00.120Z",
        "last_updated_at": "2024-01-15T09:30:00.120Z",
        "created_by": "admin",
        "last_updated_by": "admin",
        "status": "running",
        "experiment_scores": [{"name": "acc", "value": 0.9}],
    }


def ids_are_v7(*values: str) -> bool:
    return all(len(v) == 36 and v[14] == "7" for v in values)


async def test_datasets_and_projects_are_found_by_name_whatever_its_case(
    client: httpx.AsyncClient,
) -> None:
    first, second = new_id(), new_id()
    await client.post(EXPERIMENTS, json={"id": first, "dataset_name": "QA", "project_name": "P"})
    await client.post(EXPERIMENTS, json={"id": second, "dataset_name": "qa", "project_name": "p"})

    one = (await client.get(f"{EXPERIMENTS}/{first}")).json()
    two = (await client.get(f"{EXPERIMENTS}/{second}")).json()

    assert one["dataset_id"] == two["dataset_id"]
    assert one["project_id"] == two["project_id"]
    assert two["dataset_name"] == "QA"


async def test_an_experiment_without_a_name_gets_one(client: httpx.AsyncClient) -> None:
    response = await client.post(EXPERIMENTS, json={"dataset_name": "qa"})

    read = await client.get(response.headers["location"].removeprefix("http://test"))

    assert read.status_code == 200
    assert read.json()["name"]


async def test_an_existing_id_is_409_in_any_workspace(client: httpx.AsyncClient) -> None:
    key = new_id()
    await client.post(EXPERIMENTS, json={"id": key, "dataset_name": "qa"})

    again = await client.post(EXPERIMENTS, json={"id": key, "dataset_name": "qa"})
    elsewhere = await client.post(
        EXPERIMENTS, json={"id": key, "dataset_name": "qa"}, headers={"Comet-Workspace": "x"}
    )

    assert again.status_code == elsewhere.status_code == 409
    assert again.json() == {"code": 409, "message": f"Already exists experiment with id '{key}'"}


async def test_missing_and_foreign_experiments_are_404(client: httpx.AsyncClient) -> None:
    key = new_id()
    await client.post(EXPERIMENTS, json={"id": key, "dataset_name": "qa"})

    foreign = await client.get(f"{EXPERIMENTS}/{key}", headers={"Comet-Workspace": "other"})
    missing = await client.get(f"{EXPERIMENTS}/{(other := new_id())}")
    bad = await client.get(f"{EXPERIMENTS}/nope")

    assert foreign.status_code == missing.status_code == bad.status_code == 404
    assert missing.content == (
        f'{{"code":404,"message":"Not found experiment with id \'{other}\'"}}'.encode()
    )
    assert foreign.json()["message"] == f"Not found experiment with id '{key}'"
    assert bad.content == b'{"code":404,"message":"HTTP 404 Not Found"}'


@pytest.mark.parametrize(
    ("payload", "status", "error"),
    [
        ({}, 422, {"errors": ["dataset_name must not be null"]}),
        ({"dataset_name": " "}, 422, {"errors": ["dataset_name must not be blank"]}),
        ({"dataset_name": "d", "tags": ["t"] * 51}, 422,
         {"errors": ["tags expected `array` of length <= 50"]}),
        ({"dataset_name": "d", "type": "weird"}, 422,
         {"errors": ["type invalid enum value 'weird'"]}),
        ({"dataset_name": "d", "id": "0190f5b4-7c1a-4000-8000-00000000000a"}, 400,
         {"code": 400, "message": "Invalid UUID for id",
          "details": "Experiment id must be a version 7 UUID"}),
        ({"dataset_name": "d", "project_id": "x"}, 422, {"errors": ["project_id must be a UUID"]}),
    ],
)  # fmt: skip
async def test_create_checks_its_body_and_stores_nothing_when_refused(
    client: httpx.AsyncClient, client_rows: Rows, payload: object, status: int, error: object
) -> None:
    response = await client.post(EXPERIMENTS, json=payload)

    assert response.status_code == status
    assert response.json() == error
    assert await count(client_rows, "experiments") == await count(client_rows, "datasets") == 0


async def count(rows: Rows, table: str) -> int:
    return int((await rows(f"SELECT count(*) FROM {table}"))[0][0])


async def test_delete_removes_experiments_with_their_items_in_the_callers_workspace_only(
    client: httpx.AsyncClient, client_rows: Rows
) -> None:
    gone, kept, foreign = new_id(), new_id(), new_id()
    for key in (gone, kept):
        await client.post(EXPERIMENTS, json={"id": key, "dataset_name": "qa"})
    await client.post(
        EXPERIMENTS, json={"id": foreign, "dataset_name": "qa"}, headers={"Comet-Workspace": "o"}
    )
    await client.post(ITEMS, json=batch(item(experiment_id=gone), item(experiment_id=kept)))

    response = await client.post(f"{EXPERIMENTS}/delete", json={"ids": [gone, foreign, new_id()]})

    assert response.status_code == 204
    assert (await client.get(f"{EXPERIMENTS}/{gone}")).status_code == 404
    assert (await client.get(f"{EXPERIMENTS}/{kept}")).status_code == 200
    assert (
        await client.get(f"{EXPERIMENTS}/{foreign}", headers={"Comet-Workspace": "o"})
    ).status_code == 200
    assert await count(client_rows, "experiment_items") == 1


async def test_items_for_an_experiment_of_another_workspace_are_409(
    client: httpx.AsyncClient, client_rows: Rows
) -> None:
    theirs = new_id()
    await client.post(
        EXPERIMENTS, json={"id": theirs, "dataset_name": "qa"}, headers={"Comet-Workspace": "o"}
    )

    response = await client.post(ITEMS, json=batch(item(experiment_id=theirs)))

    assert response.status_code == 409
    assert response.json()["message"] == f"Experiment '{theirs}' belongs to another workspace"
    assert await count(client_rows, "experiment_items") == 0
