"""A workspace is the same by header and by query parameter, whatever its letters
(reliability probe D17)."""

import hashlib
from collections.abc import AsyncIterator

import httpx
import pytest

from app.auth import ApiKey
from app.config import Settings
from app.main import create_app
from app.store import Store
from tests.factories import batch, item

pytestmark = pytest.mark.anyio

ITEMS = "/v1/private/experiments/items"
WORKSPACE = "équipe"


async def test_a_utf8_workspace_header_names_the_query_parameters_workspace(
    client: httpx.AsyncClient,
) -> None:
    written = batch(item())
    item_id = written["experiment_items"][0]["id"]
    stored = await client.post(ITEMS, json=written, params={"workspace_name": WORKSPACE})

    by_header = await client.get(
        f"{ITEMS}/{item_id}", headers={b"Comet-Workspace": WORKSPACE.encode()}
    )

    assert stored.status_code == 204
    assert by_header.status_code == 200
    assert by_header.json()["id"] == item_id


@pytest.fixture
async def keyed(client_store: tuple[Settings, Store]) -> AsyncIterator[httpx.AsyncClient]:
    key = ApiKey(hashlib.sha256("clé-1".encode()).digest(), WORKSPACE, "ann")
    settings, store = client_store
    app = create_app(settings, store=store, api_keys=(key,))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
        yield c


async def test_a_utf8_key_and_workspace_by_header_are_the_keys(
    keyed: httpx.AsyncClient,
) -> None:
    headers = {b"Authorization": "clé-1".encode(), b"Comet-Workspace": WORKSPACE.encode()}

    response = await keyed.post(ITEMS, json=batch(item()), headers=headers)

    assert response.status_code == 204, response.text
