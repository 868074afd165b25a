"""Workspaces and API keys over HTTP: nothing crosses a workspace, ever."""

from collections.abc import AsyncIterator

import httpx
import pytest

from app.auth import ApiKey
from app.config import Settings
from app.main import create_app
from app.store import Store
from tests.factories import batch, item, new_id, sha

pytestmark = pytest.mark.anyio

ITEMS = "/v1/private/experiments/items"
ANN = {"Authorization": "ann-key"}
BEN = {"Authorization": "Bearer ben-key"}


@pytest.fixture
async def keyed(client_store: tuple[Settings, Store]) -> AsyncIterator[httpx.AsyncClient]:
    """A client of a server with API keys, on each engine."""
    keys = (
        ApiKey(bytes.fromhex(sha("ann-key")), "one", "ann"),
        ApiKey(bytes.fromhex(sha("ben-key")), "two", "ben"),
    )
    settings, store = client_store
    app = create_app(settings, store=store, api_keys=keys)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://t") as c:
        yield c


async def test_an_item_of_another_workspace_is_not_found(client: httpx.AsyncClient) -> None:
    body = item()
    await client.post(ITEMS, json=batch(body), headers={"Comet-Workspace": "one"})

    other = await client.get(f"{ITEMS}/{body['id']}", headers={"Comet-Workspace": "two"})
    default = await client.get(f"{ITEMS}/{body['id']}")
    own = await client.get(f"{ITEMS}/{body['id']}", params={"workspace_name": "one"})

    assert other.status_code == default.status_code == 404
    assert other.json()["message"] == f"Not found experiment item with id '{body['id']}'"
    assert own.status_code == 200


async def test_an_empty_workspace_means_default(client: httpx.AsyncClient) -> None:
    body = item()
    await client.post(ITEMS, json=batch(body), headers={"Comet-Workspace": ""})

    response = await client.get(f"{ITEMS}/{body['id']}", params={"workspace_name": "default"})

    assert response.status_code == 200


async def test_writing_an_id_of_another_workspace_is_409_and_changes_nothing(
    client: httpx.AsyncClient,
) -> None:
    theirs = item()
    await client.post(ITEMS, json=batch(theirs), headers={"Comet-Workspace": "one"})
    before = (await client.get(f"{ITEMS}/{theirs['id']}?workspace_name=one")).content
    fresh = item()

    response = await client.post(
        ITEMS,
        json=batch(fresh, {**theirs, "trace_id": new_id()}),
        headers={"Comet-Workspace": "two"},
    )

    assert response.status_code == 409
    assert response.json() == {
        "code": 409,
        "message": f"Experiment item '{theirs['id']}' belongs to another workspace",
    }
    assert (await client.get(f"{ITEMS}/{theirs['id']}?workspace_name=one")).content == before
    missing = await client.get(f"{ITEMS}/{fresh['id']}", headers={"Comet-Workspace": "two"})
    assert missing.status_code == 404


async def test_delete_touches_only_the_callers_workspace(client: httpx.AsyncClient) -> None:
    body = item()
    await client.post(ITEMS, json=batch(body), headers={"Comet-Workspace": "one"})

    await client.post(f"{ITEMS}/delete", json={"ids": [body["id"]]})

    assert (await client.get(f"{ITEMS}/{body['id']}?workspace_name=one")).status_code == 200


async def test_projects_of_one_name_are_separate_per_workspace(
    client: httpx.AsyncClient,
) -> None:
    first, second = item(project_name="shared"), item(project_name="shared")
    await client.post(ITEMS, json=batch(first), headers={"Comet-Workspace": "one"})
    await client.post(ITEMS, json=batch(second), headers={"Comet-Workspace": "two"})

    one = await client.get(f"{ITEMS}/{first['id']}", headers={"Comet-Workspace": "one"})
    two = await client.get(f"{ITEMS}/{second['id']}", headers={"Comet-Workspace": "two"})

    assert one.json()["project_id"] != two.json()["project_id"]


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "wrong"}, {"Authorization": "Bearer wrong"}, {"Authorization": ""}],
)
async def test_without_a_known_key_every_route_is_401(
    keyed: httpx.AsyncClient, headers: dict[str, str]
) -> None:
    answers = [
        await keyed.get(f"{ITEMS}/{new_id()}", headers=headers),
        await keyed.post(ITEMS, json=batch(item()), headers=headers),
        await keyed.post(f"{ITEMS}/delete", json={"ids": [new_id()]}, headers=headers),
    ]

    for response in answers:
        assert response.status_code == 401
        assert response.content == b'{"code":401,"message":"API key is missing or unknown"}'


async def test_a_key_used_with_another_workspace_is_403(keyed: httpx.AsyncClient) -> None:
    response = await keyed.get(f"{ITEMS}/{new_id()}", headers={**ANN, "Comet-Workspace": "two"})

    assert response.status_code == 403
    assert response.content == (
        b'{"code":403,"message":"API key has no access to workspace \'two\'"}'
    )


async def test_a_key_works_in_its_workspace_raw_or_bearer_and_names_the_user(
    keyed: httpx.AsyncClient,
) -> None:
    mine, theirs = item(), item()
    await keyed.post(ITEMS, json=batch(mine), headers={**ANN, "Comet-Workspace": "one"})
    await keyed.post(ITEMS, json=batch(theirs), headers=BEN)

    read = await keyed.get(f"{ITEMS}/{mine['id']}", headers=ANN)
    crossed = await keyed.get(f"{ITEMS}/{theirs['id']}", headers=ANN)

    assert read.status_code == 200
    assert (read.json()["created_by"], read.json()["last_updated_by"]) == ("ann", "ann")
    assert crossed.status_code == 404
    assert (await keyed.get(f"{ITEMS}/{theirs['id']}", headers=BEN)).json()["created_by"] == "ben"


async def test_health_routes_need_no_key(keyed: httpx.AsyncClient) -> None:
    assert (await keyed.get("/is-alive/ping")).status_code == 200
    assert (await keyed.get("/api/is-alive/ver")).status_code == 200


async def test_a_project_id_of_another_workspace_is_refused_and_its_name_never_shown(
    keyed: httpx.AsyncClient,
) -> None:
    # The probe's D3: ann named ben's project by id and read its name back.
    created = await keyed.post(
        "/v1/private/experiments",
        json={"dataset_name": "d", "project_name": "Ben's secret project"},
        headers=BEN,
    )
    ben_experiment = created.headers["location"].rsplit("/", 1)[1]
    project_id = (await keyed.get(f"/v1/private/experiments/{ben_experiment}", headers=BEN)).json()[
        "project_id"
    ]

    experiment = await keyed.post(
        "/v1/private/experiments", json={"dataset_name": "d", "project_id": project_id}, headers=ANN
    )
    items = await keyed.post(ITEMS, json=batch(item(project_id=project_id)), headers=ANN)

    message = f"Project '{project_id}' belongs to another workspace"
    assert (experiment.status_code, experiment.json()["message"]) == (409, message)
    assert (items.status_code, items.json()["message"]) == (409, message)
    listed = await keyed.post(f"{ITEMS}/stream", json={"experiment_name": "x"}, headers=ANN)
    assert listed.content == b""
