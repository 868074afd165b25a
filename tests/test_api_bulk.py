"""Recording a whole evaluation run at once: experiment, traces, spans, scores, items."""

import asyncio
from typing import Any

import asyncpg
import httpx
import pytest

from app import ids
from app.postgres import PostgresStore
from app.records import (
    BulkRecord,
    Conflict,
    RunRecord,
    ScoreRecord,
    SpanRecord,
    TraceRecord,
)
from tests.conftest import Rows
from tests.factories import batch, item, new_id
from tests.test_api_stream import stream

pytestmark = pytest.mark.anyio

BULK = "/v1/private/experiments/items/bulk"
EXPERIMENTS = "/v1/private/experiments"
ITEMS = "/v1/private/experiments/items"
TABLES = ("experiments", "datasets", "traces", "spans", "feedback_scores", "experiment_items")
PNG = (
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5Er"
    "kJggg=="
)


async def counts(rows: Rows) -> dict[str, int]:
    """The rows of each table, on either engine."""
    return {t: (await rows(f"SELECT count(*) FROM {t}"))[0][0] for t in TABLES}


def record(n: int) -> dict[str, Any]:
    """An evaluated dataset item with a trace of two spans and two scores."""
    trace_id = new_id()
    return {
        "dataset_item_id": new_id(),
        "trace": {
            "id": trace_id,
            "name": f"task-{n}",
            "start_time": "2024-01-15T09:30:00.000100Z",
            "end_time": "2024-01-15T09:30:01.250300Z",
            "input": {"question": f"q{n}", "nested": {"list": [1, 2.5, None, "s"]}},
            "output": {"answer": f"a{n}"},
            "metadata": {"k": n},
            "tags": ["eval"],
        },
        "spans": [
            {
                "id": new_id(),
                "name": "llm",
                "type": "llm",
                "start_time": "2024-01-15T09:30:00.1Z",
                "end_time": "2024-01-15T09:30:01Z",
                "usage": {"prompt_tokens": 10 + n, "completion_tokens": 5},
                "total_estimated_cost": 0.25,
                "model": "m",
            },
            {
                "name": "tool",
                "type": "tool",
                "start_time": "2024-01-15T09:30:00.2Z",
                "usage": {"prompt_tokens": 1},
                "total_estimated_cost": 0.5,
            },
        ],
        "feedback_scores": [
            {"name": "accuracy", "value": n / 1000, "source": "sdk", "reason": "checked"},
            {"name": "relevance", "value": 1, "source": "sdk", "category_name": "good"},
        ],
    }


async def test_a_bulk_of_1000_round_trips_through_the_stream_intact(
    client: httpx.AsyncClient, client_rows: Rows
) -> None:
    records = [record(n) for n in range(1000)]
    response = await client.put(
        BULK,
        json={
            "experiment_name": "run",
            "dataset_name": "qa",
            "project_name": "proj",
            "items": records,
        },
    )
    assert response.status_code == 204, response.text
    assert (await counts(client_rows)) == {
        "experiments": 1, "datasets": 1, "traces": 1000, "spans": 2000,
        "feedback_scores": 2000, "experiment_items": 1000,
    }  # fmt: skip

    lines = await stream(client, experiment_name="run", limit=2000)

    assert len(lines) == 1000
    by_trace = {line["trace_id"]: line for line in lines}
    for n, sent in enumerate(records):
        line = by_trace[sent["trace"]["id"]]
        assert line["dataset_item_id"] == sent["dataset_item_id"]
        assert line["input"] == sent["trace"]["input"]
        assert line["output"] == sent["trace"]["output"]
        assert line["duration"] == 1250.2
        assert line["total_estimated_cost"] == 0.75
        assert line["usage"] == {"prompt_tokens": 11 + n, "completion_tokens": 5}
        assert [(s["name"], s["value"], s["source"]) for s in line["feedback_scores"]] == [
            ("accuracy", n / 1000, "sdk"),
            ("relevance", 1.0, "sdk"),
        ]
        assert line["feedback_scores"][0]["reason"] == "checked"
        assert line["feedback_scores"][1]["category_name"] == "good"
        assert line["trace_visibility_mode"] == "default"
        assert "project_id" in line
    assert list(lines[0]) == [
        "experiment_id", "dataset_item_id", "trace_id", "id", "project_id", "input", "output",
        "feedback_scores", "total_estimated_cost", "duration", "usage", "created_at",
        "last_updated_at", "created_by", "last_updated_by", "trace_visibility_mode",
    ]  # fmt: skip


@pytest.mark.parametrize("result", [{"answer": 1}, None])
async def test_trace_and_task_result_together_reject_the_whole_request(
    client: httpx.AsyncClient, client_rows: Rows, result: object
) -> None:
    both = {"dataset_item_id": new_id(), "trace": None, "evaluate_task_result": result}
    items = [record(0), both]

    response = await client.put(
        BULK, json={"experiment_name": "run", "dataset_name": "qa", "items": items}
    )

    assert response.status_code == 422
    assert response.json() == {
        "errors": ["items[1] must have either trace or evaluate_task_result, not both"]
    }
    assert set((await counts(client_rows)).values()) == {0}


async def test_an_experiment_id_with_another_dataset_is_409_and_stores_nothing(
    client: httpx.AsyncClient, client_rows: Rows
) -> None:
    key = new_id()
    await client.post(EXPERIMENTS, json={"id": key, "name": "run", "dataset_name": "first"})
    before = await counts(client_rows)

    response = await client.put(
        BULK,
        json={"experiment_name": "run", "dataset_name": "second", "experiment_id": key,
              "items": [record(0)]},
    )  # fmt: skip

    assert response.status_code == 409
    assert response.json() == {"code": 409, "message": "Experiment dataset mismatch"}
    assert (await counts(client_rows)) == before


async def test_an_existing_experiment_id_of_the_same_dataset_gets_the_items(
    client: httpx.AsyncClient, client_rows: Rows
) -> None:
    key = new_id()
    await client.post(EXPERIMENTS, json={"id": key, "name": "run", "dataset_name": "QA"})

    response = await client.put(
        BULK,
        json={"experiment_name": "ignored", "dataset_name": "qa", "experiment_id": key,
              "items": [record(0), record(1)]},
    )  # fmt: skip

    assert response.status_code == 204
    assert (await counts(client_rows))["experiments"] == 1
    assert {line["experiment_id"] for line in await stream(client, experiment_name="run")} == {key}


async def test_an_unknown_experiment_id_creates_the_experiment_with_that_id(
    client: httpx.AsyncClient,
) -> None:
    key = new_id()

    await client.put(
        BULK,
        json={"experiment_name": "fresh", "dataset_name": "qa", "experiment_id": key,
              "items": [record(0)]},
    )  # fmt: skip

    experiment = (await client.get(f"{EXPERIMENTS}/{key}")).json()
    assert (experiment["name"], experiment["dataset_name"]) == ("fresh", "qa")


async def test_a_task_result_becomes_the_output_of_a_new_trace(client: httpx.AsyncClient) -> None:
    result = {"dataset_item_id": new_id(), "evaluate_task_result": {"output": "42"}}

    await client.put(BULK, json={"experiment_name": "e", "dataset_name": "d", "items": [result]})

    (line,) = await stream(client, experiment_name="e")
    assert line["output"] == {"output": "42"}
    assert "input" not in line
    assert line["duration"] == 0.0


async def test_items_pick_up_the_project_and_visibility_of_a_trace_recorded_later(
    client: httpx.AsyncClient,
) -> None:
    trace_id = new_id()
    early = item(trace_id=trace_id)
    await client.post(ITEMS, json=batch(early))
    assert "project_id" not in (await client.get(f"{ITEMS}/{early['id']}")).json()

    traced = {
        "dataset_item_id": new_id(),
        "trace": {"id": trace_id, "start_time": "2024-01-15T09:30:00Z", "project_name": "Later",
                  "visibility_mode": "hidden"},
    }  # fmt: skip
    await client.put(BULK, json={"experiment_name": "e", "dataset_name": "d", "items": [traced]})

    read = (await client.get(f"{ITEMS}/{early['id']}")).json()
    (line,) = await stream(client, experiment_name="e")
    assert read["project_id"] == line["project_id"]
    assert read["trace_visibility_mode"] == line["trace_visibility_mode"] == "hidden"


async def test_truncate_replaces_embedded_images_unless_turned_off(
    client: httpx.AsyncClient,
) -> None:
    image_input = {"image": f"data:image/png;base64,{PNG}", "raw": PNG, "text": "Qk is short"}
    traced = {
        "dataset_item_id": new_id(),
        "trace": {"start_time": "2024-01-15T09:30:00Z", "input": image_input},
    }
    await client.put(BULK, json={"experiment_name": "img", "dataset_name": "d", "items": [traced]})

    (truncated,) = await stream(client, experiment_name="img")
    (full,) = await stream(client, experiment_name="img", truncate=False)

    assert truncated["input"] == {"image": "[image]", "raw": "[image]", "text": "Qk is short"}
    assert full["input"] == image_input


@pytest.mark.parametrize(
    ("change", "status", "error"),
    [
        ({"experiment_name": ""}, 422,
         {"errors": ["experiment_name expected `str` of length >= 1"]}),
        ({"dataset_name": " "}, 422, {"errors": ["dataset_name must not be blank"]}),
        ({"items": []}, 422, {"errors": ["items expected `array` of length >= 1"]}),
        ({"experiment_id": "0190f5b4-7c1a-4000-8000-00000000000a"}, 400,
         {"code": 400, "message": "Invalid UUID for experiment_id",
          "details": "Experiment experiment_id must be a version 7 UUID"}),
        ({"items": [{**record(0), "dataset_item_id": "nope"}]}, 400,
         {"code": 400, "message": "Invalid UUID for items[0].dataset_item_id",
          "details": "Experiment Item dataset_item_id must be a version 7 UUID"}),
        ({"items": [{**record(0), "spans": [record(0)["spans"][0]] * 101}]}, 422,
         {"errors": ["items[0].spans expected `array` of length <= 100"]}),
        ({"items": [{**record(0), "trace": {"input": {}}}]}, 422,
         {"errors": ["items[0].trace.start_time must not be null"]}),
    ],
)  # fmt: skip
async def test_a_bad_upload_is_refused_whole(
    client: httpx.AsyncClient, client_rows: Rows, change: dict[str, Any], status: int, error: object
) -> None:
    body = {"experiment_name": "run", "dataset_name": "qa", "items": [record(0)], **change}

    response = await client.put(BULK, json=body)

    assert response.status_code == status
    assert response.json() == error
    assert set((await counts(client_rows)).values()) == {0}


async def test_a_trace_id_of_another_workspace_is_409(
    client: httpx.AsyncClient, client_rows: Rows
) -> None:
    theirs = record(0)
    await client.put(
        BULK,
        json={"experiment_name": "r", "dataset_name": "d", "items": [theirs]},
        headers={"Comet-Workspace": "other"},
    )
    before = await counts(client_rows)

    response = await client.put(
        BULK, json={"experiment_name": "r", "dataset_name": "d", "items": [theirs]}
    )

    assert response.status_code == 409
    assert (await counts(client_rows)) == before


@pytest.mark.parametrize(
    ("where", "value"),
    [("trace", "7238-03-22T09:53:17-11:28"), ("trace", "0001-01-01T00:00:00+02:00"),
     ("span", "1600-01-01T00:00:00Z")],
)  # fmt: skip
async def test_a_time_the_store_cannot_hold_is_422(
    client: httpx.AsyncClient, client_rows: Rows, where: str, value: str
) -> None:
    sent = record(0)
    if where == "trace":
        sent["trace"]["start_time"] = value
        path = "items[0].trace.start_time"
    else:
        sent["spans"][0]["end_time"] = value
        path = "items[0].spans[0].end_time"

    response = await client.put(
        BULK, json={"experiment_name": "r", "dataset_name": "d", "items": [sent]}
    )

    assert response.status_code == 422
    assert response.json() == {"errors": [f"{path} must be between the years 1677 and 2262"]}
    assert set((await counts(client_rows)).values()) == {0}


RACE_ROUNDS = 20
WORKSPACE_TABLES = (*TABLES, "projects")


def bulk_of(experiment: bytes, trace: bytes) -> BulkRecord:
    """A run of one dataset item: its trace with a span and a score."""
    run = RunRecord(
        dataset_item_id=ids.uuid7(),
        trace=TraceRecord(id=trace, project_name="race", start_time=1_700_000_000_000_000_000),
        spans=(SpanRecord(id=ids.uuid7(), parent_span_id=None, start_time=1_700_000_000_000),),
        scores=(ScoreRecord(name="accuracy", value=1.0, source="sdk"),),
    )
    return BulkRecord(experiment, "race", "qa", None, (run,))


async def test_two_workspaces_racing_bulk_runs_for_one_id_give_one_winner_and_nothing_of_the_loser(
    pg_url: str,
) -> None:
    # Two stores on one PostgreSQL database, as two servers: each round both record a run at
    # once in their own workspace with the same trace id (and, every other round, the same
    # experiment id). One run is stored; the other is a Conflict that leaves nothing behind.
    first, second = await PostgresStore.open(pg_url), await PostgresStore.open(pg_url)
    conn = await asyncpg.connect(pg_url)
    try:
        for n in range(RACE_ROUNDS):
            trace, shared = ids.uuid7(), ids.uuid7()
            experiments = {w: shared if n % 2 else ids.uuid7() for w in "ab"}
            outcomes = await asyncio.gather(
                first.record_bulk("a", "ann", bulk_of(experiments["a"], trace)),
                second.record_bulk("b", "bob", bulk_of(experiments["b"], trace)),
                return_exceptions=True,
            )

            won = [w for w, o in zip("ab", outcomes, strict=True) if o is None]
            lost = [o for o in outcomes if o is not None]
            assert len(won) == 1, outcomes
            assert len(lost) == 1
            assert isinstance(lost[0], Conflict), lost
            assert "belongs to another workspace" in str(lost[0])
            loser = "b" if won[0] == "a" else "a"
            winner = await first.get_experiment(won[0], experiments[won[0]])
            assert winner is not None
            assert winner.trace_count == 1
            for table in WORKSPACE_TABLES:
                sql = f"SELECT count(*) FROM {table} WHERE workspace = $1"
                assert await conn.fetchval(sql, loser) == 0, table
            for table in WORKSPACE_TABLES:  # the next round starts afresh
                await conn.execute(f"DELETE FROM {table}")
    finally:
        await conn.close()
        await first.close()
        await second.close()
