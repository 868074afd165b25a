"""Experiment items over HTTP: the contract's bodies, byte for byte where it gives them."""

import gzip
import json
import sqlite3
from pathlib import Path

import httpx
import pytest

from app import clock
from app.auth import ApiKey
from app.config import Settings
from app.main import create_app
from app.sqlite import SqliteStore
from app.sqlite import items as sqlite_items
from app.sqlite.connection import Database
from tests.conftest import Rows
from tests.factories import batch, item, new_id, sha

pytestmark = pytest.mark.anyio

ITEMS = "/v1/private/experiments/items"
API_ITEMS = "/api/v1/private/experiments/items"
JAN_15 = 1_705_311_000_120_000_000  # 2024-01-15T09:30:00.120Z


def stored_rows(path: Path) -> int:
    with sqlite3.connect(path) as conn:
        return int(conn.execute("SELECT count(*) FROM experiment_items").fetchone()[0])


@pytest.fixture
def frozen_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(clock, "now_ns", lambda: JAN_15)


async def test_get_returns_the_public_fields_in_contract_order(
    client: httpx.AsyncClient, frozen_clock: None
) -> None:
    body = item(project_id="0190f5b4-7c1a-7000-8000-00000000000e")
    assert (await client.post(ITEMS, json=batch(body))).status_code == 204

    response = await client.get(f"{ITEMS}/{body['id']}")

    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    expected = (
        f'{{"experiment_id":"{body["experiment_id"]}","dataset_item_id":"{body["dataset_item_id"]}",'
        f'"trace_id":"{body["trace_id"]}","id":"{body["id"]}",'
        f'"project_id":"0190f5b4-7c1a-7000-8000-00000000000e",'
        f'"created_at":"2024-01-15T09:30:00.120Z","last_updated_at":"2024-01-15T09:30:00.120Z",'
        f'"created_by":"admin","last_updated_by":"admin","trace_visibility_mode":"default"}}'
    )
    assert response.content == expected.encode()


async def test_reads_stay_right_past_the_cache_of_shared_id_texts(
    client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sqlite_items, "_SHARED_KEPT", 3)  # emptied every third new id
    shared = new_id()
    bodies = [item(experiment_id=shared if n % 2 else new_id()) for n in range(10)]
    await client.post(ITEMS, json=batch(*bodies))

    for body in bodies * 2:
        got = (await client.get(f"{ITEMS}/{body['id']}")).json()
        assert (got["experiment_id"], got["dataset_item_id"]) == (
            body["experiment_id"],
            body["dataset_item_id"],
        )


async def test_head_answers_the_get_headers_without_a_body(client: httpx.AsyncClient) -> None:
    body = item()
    await client.post(ITEMS, json=batch(body))
    got = await client.get(f"{ITEMS}/{body['id']}")

    head = await client.head(f"{ITEMS}/{body['id']}")
    missing = await client.head(f"{ITEMS}/{new_id()}")

    assert head.status_code == 200
    assert head.content == b""
    assert head.headers["content-length"] == str(len(got.content))
    assert head.headers["content-type"] == "application/json"
    assert missing.status_code == 404


async def test_get_leaves_out_an_unknown_project_id(client: httpx.AsyncClient) -> None:
    body = item()
    await client.post(ITEMS, json=batch(body))

    fields = list((await client.get(f"{ITEMS}/{body['id']}")).json())

    assert fields == [
        "experiment_id", "dataset_item_id", "trace_id", "id", "created_at",
        "last_updated_at", "created_by", "last_updated_by", "trace_visibility_mode",
    ]  # fmt: skip


async def test_uppercase_ids_are_read_and_answered_in_lowercase(
    client: httpx.AsyncClient,
) -> None:
    body = item()
    await client.post(ITEMS, json=batch({**body, "id": body["id"].upper()}))

    response = await client.get(f"{ITEMS}/{body['id'].upper()}")

    assert response.status_code == 200
    assert response.json()["id"] == body["id"]


async def test_every_route_is_served_under_both_prefixes(client: httpx.AsyncClient) -> None:
    body = item()
    assert (await client.post(API_ITEMS, json=batch(body))).status_code == 204
    assert (await client.get(f"{ITEMS}/{body['id']}")).status_code == 200
    assert (await client.get(f"{API_ITEMS}/{body['id']}")).status_code == 200
    deleted = await client.post(f"{API_ITEMS}/delete", json={"ids": [body["id"]]})
    assert deleted.status_code == 204
    assert (await client.get(f"{ITEMS}/{body['id']}")).status_code == 404


async def test_missing_item_is_404_with_its_id(client: httpx.AsyncClient) -> None:
    missing = new_id()

    response = await client.get(f"{ITEMS}/{missing}")

    assert response.status_code == 404
    assert response.content == (
        f'{{"code":404,"message":"Not found experiment item with id \'{missing}\'"}}'.encode()
    )


@pytest.mark.parametrize(
    "bad", ["nope", "0190f5b4-7c1a-7000-8000-00000000000", "0190f5b47c1a700080000000000000aa"]
)
async def test_id_that_is_not_a_uuid_is_a_bare_404(client: httpx.AsyncClient, bad: str) -> None:
    response = await client.get(f"{ITEMS}/{bad}")

    assert response.status_code == 404
    assert response.content == b'{"code":404,"message":"HTTP 404 Not Found"}'


async def test_item_without_id_gets_a_version_7_id(
    client: httpx.AsyncClient, client_rows: Rows
) -> None:
    await client.post(ITEMS, json=batch(item(id=...)))

    [(key,)] = await client_rows("SELECT id FROM experiment_items")
    assert key[6] >> 4 == 7
    assert (
        await client.get(
            f"{ITEMS}/{key.hex()[:8]}-{key.hex()[8:12]}-{key.hex()[12:16]}-"
            f"{key.hex()[16:20]}-{key.hex()[20:]}"
        )
    ).status_code == 200


@pytest.mark.parametrize("field", ["id", "experiment_id", "dataset_item_id", "trace_id"])
@pytest.mark.parametrize(
    "value",
    ["0190f5b4-7c1a-4000-8000-00000000000a", "not-a-uuid", "0190f5b4-7c1a-7000-c000-00000000000a"],
)
async def test_ids_must_be_version_7(
    client: httpx.AsyncClient, db_path: Path, field: str, value: str
) -> None:
    response = await client.post(ITEMS, json=batch(item(**{field: value})))

    assert response.status_code == 400
    assert response.content == (
        f'{{"code":400,"message":"Invalid UUID for {field}",'
        f'"details":"Experiment Item {field} must be a version 7 UUID"}}'.encode()
    )
    assert stored_rows(db_path) == 0


async def test_update_keeps_creation_and_changes_the_last_update(
    db: Database, db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    keys = (
        ApiKey(bytes.fromhex(sha("alice-key")), "team", "alice"),
        ApiKey(bytes.fromhex(sha("bob-key")), "team", "bob"),
    )
    app = create_app(Settings(db=db_path), store=SqliteStore(db), api_keys=keys)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://t") as c:
        body = item()
        monkeypatch.setattr(clock, "now_ns", lambda: JAN_15)
        await c.post(ITEMS, json=batch(body), headers={"Authorization": "alice-key"})
        monkeypatch.setattr(clock, "now_ns", lambda: JAN_15 + 1_000)
        moved = {**body, "trace_id": new_id()}
        await c.post(ITEMS, json=batch(moved), headers={"Authorization": "bob-key"})

        read = (await c.get(f"{ITEMS}/{body['id']}", headers={"Authorization": "bob-key"})).json()

    assert read["trace_id"] == moved["trace_id"]
    assert (read["created_at"], read["created_by"]) == ("2024-01-15T09:30:00.120Z", "alice")
    assert (read["last_updated_at"], read["last_updated_by"]) == (
        "2024-01-15T09:30:00.120001Z",
        "bob",
    )


async def test_project_name_makes_one_project_per_name_whatever_its_case(
    client: httpx.AsyncClient,
) -> None:
    first, second, third = item(project_name="Demo"), item(project_name="DEMO"), item()
    await client.post(ITEMS, json=batch(first))
    await client.post(ITEMS, json=batch(second, {**third, "project_name": " demo "}))

    read = [(await client.get(f"{ITEMS}/{i['id']}")).json() for i in (first, second, third)]

    assert read[0]["project_id"] == read[1]["project_id"] == read[2]["project_id"]


async def test_project_name_wins_over_a_sent_project_id(client: httpx.AsyncClient) -> None:
    sent = new_id()
    named, given = item(project_name="p", project_id=sent), item(project_id=sent)
    await client.post(ITEMS, json=batch(named, given))

    assert (await client.get(f"{ITEMS}/{named['id']}")).json()["project_id"] != sent
    assert (await client.get(f"{ITEMS}/{given['id']}")).json()["project_id"] == sent


async def test_unknown_fields_are_ignored(client: httpx.AsyncClient) -> None:
    body = item(input={"q": 1}, status="completed", feedback_scores=[])

    response = await client.post(ITEMS, json={**batch(body), "extra": True})

    assert response.status_code == 204
    assert "input" not in (await client.get(f"{ITEMS}/{body['id']}")).json()


async def test_a_bad_item_in_a_batch_of_1000_stores_none(
    client: httpx.AsyncClient, db_path: Path
) -> None:
    items = [item() for _ in range(999)] + [item(trace_id="0190f5b4-7c1a-4000-8000-00000000000a")]

    response = await client.post(ITEMS, json=batch(*items))

    assert response.status_code == 400
    assert stored_rows(db_path) == 0


async def test_a_batch_of_1000_is_stored_whole(
    client: httpx.AsyncClient, client_rows: Rows
) -> None:
    response = await client.post(ITEMS, json=batch(*[item() for _ in range(1000)]))

    assert response.status_code == 204
    assert await client_rows("SELECT count(*) FROM experiment_items") == [(1000,)]


@pytest.mark.parametrize(
    ("payload", "error"),
    [
        ({"experiment_items": []}, "experiment_items expected `array` of length >= 1"),
        (
            batch(*[item() for _ in range(1001)]),
            "experiment_items expected `array` of length <= 1000",
        ),
        (batch(item(trace_id=...)), "experiment_items[0].trace_id must not be null"),
        (batch(item(trace_id=None)), "experiment_items[0].trace_id must not be null"),
        (batch(item(trace_id=7)), "experiment_items[0].trace_id expected `str`, got `int`"),
        ({}, "experiment_items must not be null"),
        ([], "body expected `object`, got `array`"),
    ],
)
async def test_a_body_that_breaks_a_rule_is_422(
    client: httpx.AsyncClient, db_path: Path, payload: object, error: str
) -> None:
    response = await client.post(ITEMS, json=payload)

    assert response.status_code == 422
    assert response.json() == {"errors": [error]}
    assert stored_rows(db_path) == 0


async def test_ids_repeated_in_a_batch_are_422(client: httpx.AsyncClient, db_path: Path) -> None:
    body = item()

    response = await client.post(ITEMS, json=batch(body, {**body, "trace_id": new_id()}))

    assert response.status_code == 422
    assert (
        response.content == b'{"errors":["experiment_items ids must be unique within the batch"]}'
    )
    assert stored_rows(db_path) == 0


@pytest.mark.parametrize("content", [b"{", b"not json", b"", b'{"experiment_items":[]} x', b"\xff"])
async def test_a_body_that_is_not_json_is_400(client: httpx.AsyncClient, content: bytes) -> None:
    response = await client.post(
        ITEMS, content=content, headers={"Content-Type": "application/json"}
    )

    assert response.status_code == 400
    assert response.json()["code"] == 400
    assert response.json()["message"].startswith("Unable to process JSON. ")


async def test_gzip_bodies_are_accepted(client: httpx.AsyncClient) -> None:
    body = item()
    compressed = gzip.compress(json.dumps(batch(body)).encode())

    response = await client.post(
        ITEMS,
        content=compressed,
        headers={"Content-Encoding": "gzip", "Content-Type": "application/json;charset=utf-8"},
    )

    assert response.status_code == 204
    assert (await client.get(f"{ITEMS}/{body['id']}")).status_code == 200


async def test_a_body_over_4_mib_is_413(client: httpx.AsyncClient, db_path: Path) -> None:
    padded = batch(item(padding="x" * (4 * 1024 * 1024)))

    response = await client.post(ITEMS, json=padded)

    assert response.status_code == 413
    assert response.json()["code"] == 413
    assert stored_rows(db_path) == 0


async def test_a_gzip_body_over_4_mib_once_inflated_is_413(
    client: httpx.AsyncClient, db_path: Path
) -> None:
    bomb = gzip.compress(json.dumps(batch(item(padding=" " * (5 * 1024 * 1024)))).encode())
    assert len(bomb) < 64 * 1024

    response = await client.post(ITEMS, content=bomb, headers={"Content-Encoding": "gzip"})

    assert response.status_code == 413
    assert stored_rows(db_path) == 0


async def test_a_broken_gzip_body_is_400(client: httpx.AsyncClient) -> None:
    broken = gzip.compress(json.dumps(batch(item())).encode())[:-10]

    response = await client.post(ITEMS, content=broken, headers={"Content-Encoding": "gzip"})

    assert response.status_code == 400
    assert response.json()["message"].startswith("Unable to process JSON. ")


async def test_a_body_that_is_not_json_by_type_is_415(client: httpx.AsyncClient) -> None:
    response = await client.post(
        ITEMS, content=json.dumps(batch(item())), headers={"Content-Type": "text/plain"}
    )

    assert response.status_code == 415
    assert response.content == b'{"code":415,"message":"HTTP 415 Unsupported Media Type"}'


async def test_delete_removes_the_items_and_ignores_unknown_ids(
    client: httpx.AsyncClient,
) -> None:
    kept, gone = item(), item()
    await client.post(ITEMS, json=batch(kept, gone))

    response = await client.post(f"{ITEMS}/delete", json={"ids": [gone["id"], new_id()]})

    assert response.status_code == 204
    assert response.content == b""
    assert (await client.get(f"{ITEMS}/{gone['id']}")).status_code == 404
    assert (await client.get(f"{ITEMS}/{kept['id']}")).status_code == 200


@pytest.mark.parametrize(
    ("payload", "error"),
    [
        ({"ids": []}, "ids expected `array` of length >= 1"),
        ({"ids": [new_id()] * 1001}, "ids expected `array` of length <= 1000"),
        ({"ids": ["x"]}, "ids[0] must be a UUID"),
        ({}, "ids must not be null"),
    ],
)
async def test_delete_checks_its_body(
    client: httpx.AsyncClient, payload: object, error: str
) -> None:
    response = await client.post(f"{ITEMS}/delete", json=payload)

    assert response.status_code == 422
    assert response.json() == {"errors": [error]}


async def test_unknown_route_and_wrong_method_answer_json(client: httpx.AsyncClient) -> None:
    unknown = await client.get("/v1/private/nothing")
    wrong = await client.delete(f"{ITEMS}/{new_id()}")

    assert unknown.status_code == 404
    assert unknown.content == b'{"code":404,"message":"HTTP 404 Not Found"}'
    assert wrong.status_code == 405
    assert wrong.content == b'{"code":405,"message":"HTTP 405 Method Not Allowed"}'
    assert set(wrong.headers["allow"].split(", ")) == {"GET", "HEAD"}


async def test_an_unexpected_failure_is_a_json_500_without_traceback(
    db_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    closed = await Database.open(db_path)
    await closed.close()
    app = create_app(Settings(db=db_path), store=SqliteStore(closed))
    # Starlette answers, then re-raises for the server to log: the transport must not.
    transport = httpx.ASGITransport(app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
        response = await c.get(f"{ITEMS}/{new_id()}")

    assert response.status_code == 500
    message = response.json()["message"]
    assert message.startswith("Unexpected server error (request id ")
    assert "Traceback" not in response.text
    request_id = message.rsplit(" ", 1)[1].rstrip(")")
    assert any(request_id in record.getMessage() for record in caplog.records)


@pytest.mark.parametrize(
    ("content", "why"),
    [
        (b'{"experiment_items":[{"id":"\xff"}]}', "Invalid UTF-8"),
        (b'{"experiment_items":[{"experiment_id":"a","x":' + b"[" * 5000 + b"]" * 5000 + b"}]}",
         "JSON is nested too deeply"),
        (b'{"experiment_items":' + b"[" * 5000 + b"]" * 5000 + b"}", "JSON is nested too deeply"),
    ],
)  # fmt: skip
async def test_bad_utf8_and_deep_nesting_are_400_not_500(
    client: httpx.AsyncClient, db_path: Path, content: bytes, why: str
) -> None:
    response = await client.post(
        ITEMS, content=content, headers={"Content-Type": "application/json"}
    )

    assert response.status_code == 400
    assert response.json() == {"code": 400, "message": f"Unable to process JSON. {why}"}
    assert stored_rows(db_path) == 0
