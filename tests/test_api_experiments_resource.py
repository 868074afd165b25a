"""The experiments resource over HTTP: stream, find, update, batch update, finish, execute,
and the aggregates every experiment answer carries."""

import json
from typing import Any

import httpx
import pytest

from tests.factories import new_id

pytestmark = pytest.mark.anyio

EXPERIMENTS = "/v1/private/experiments"
OTHER = {"Comet-Workspace": "other"}


async def create(client: httpx.AsyncClient, name: str, **fields: Any) -> str:
    key = new_id()
    body = {"id": key, "dataset_name": "qa", "name": name, **fields}
    response = await client.post(EXPERIMENTS, json=body)
    assert response.status_code == 201, response.text
    return key


def lines(response: httpx.Response) -> list[dict[str, Any]]:
    assert response.headers["content-type"] == "application/octet-stream"
    if not response.content:
        return []
    assert response.content.endswith(b"\r\n")
    parts = response.content.split(b"\r\n")
    assert parts[-1] == b""
    return [json.loads(part) for part in parts[:-1]]


async def stream(client: httpx.AsyncClient, **body: Any) -> list[dict[str, Any]]:
    response = await client.post(f"{EXPERIMENTS}/stream", json=body)
    assert response.status_code == 200, response.text
    return lines(response)


# --- Stream --------------------------------------------------------------------------------


async def test_stream_pages_through_partial_case_insensitive_matches_newest_first(
    client: httpx.AsyncClient,
) -> None:
    first = await create(client, "Nightly-A")
    second = await create(client, "nightly-b")
    third = await create(client, "the NIGHTLY run")
    await create(client, "weekly")

    page_one = await stream(client, name="nightly", limit=2)
    page_two = await stream(client, name="nightly", limit=2, last_retrieved_id=page_one[-1]["id"])
    page_three = await stream(client, name="nightly", limit=2, last_retrieved_id=first)

    assert [e["id"] for e in page_one] == [third, second]
    assert [e["id"] for e in page_two] == [first]
    assert page_three == []
    assert page_one[0]["name"] == "the NIGHTLY run"
    assert page_one[0]["trace_count"] == 0
    assert page_one[0]["status"] == "completed"


async def test_stream_of_an_unknown_project_or_name_is_empty(client: httpx.AsyncClient) -> None:
    await create(client, "run", project_name="Bots")

    assert await stream(client, name="run", project_name="nobody") == []
    assert await stream(client, name="nothing") == []
    assert len(await stream(client, name="run", project_name="bots")) == 1


@pytest.mark.parametrize(
    ("body", "error"),
    [
        ({"name": "  "}, "name must not be blank"),
        ({}, "name must not be null"),
        ({"name": "x", "limit": 0}, "limit expected `int` >= 1"),
        ({"name": "x", "limit": 2001}, "limit expected `int` <= 2000"),
    ],
)
async def test_stream_refuses_a_blank_name_or_a_limit_out_of_bounds(
    client: httpx.AsyncClient, body: dict[str, Any], error: str
) -> None:
    response = await client.post(f"{EXPERIMENTS}/stream", json=body)

    assert response.status_code == 422
    assert error in response.json()["errors"][0]


# --- Finish and execute --------------------------------------------------------------------


async def test_finish_completes_running_experiments_and_ignores_unknown_ids(
    client: httpx.AsyncClient,
) -> None:
    running = await create(client, "r", status="running")
    cancelled = await create(client, "c", status="cancelled")

    response = await client.post(
        f"{EXPERIMENTS}/finish", json={"ids": [running, cancelled, new_id()]}
    )

    assert (response.status_code, response.content) == (204, b"")
    assert (await client.get(f"{EXPERIMENTS}/{running}")).json()["status"] == "completed"
    assert (await client.get(f"{EXPERIMENTS}/{cancelled}")).json()["status"] == "cancelled"
    assert (await client.post(f"{EXPERIMENTS}/finish", json={"ids": []})).status_code == 422


async def test_execute_is_not_offered(client: httpx.AsyncClient) -> None:
    response = await client.post(f"/api{EXPERIMENTS}/execute", json={"dataset_name": "qa"})

    assert response.status_code == 501
    assert response.content == (
        b'{"code":501,"message":"Running experiments on the server needs an LLM provider; '
        b"record them with the SDK's evaluate() instead\"}"
    )


# --- Update --------------------------------------------------------------------------------


async def test_patch_replaces_name_metadata_tags_and_scores(client: httpx.AsyncClient) -> None:
    key = await create(client, "old", metadata={"a": 1, "b": 2}, tags=["x"])
    before = (await client.get(f"{EXPERIMENTS}/{key}")).json()

    response = await client.patch(
        f"{EXPERIMENTS}/{key}",
        json={
            "name": "new",
            "metadata": {"c": 3},
            "tags": ["b", "a", "b"],
            "experiment_scores": [{"name": "f1", "value": 0.5}],
            "status": "running",
        },
    )
    after = (await client.get(f"{EXPERIMENTS}/{key}")).json()

    assert (response.status_code, response.content) == (204, b"")
    assert after["name"] == "new"
    assert after["metadata"] == {"c": 3}
    assert after["tags"] == ["b", "a"]
    assert after["experiment_scores"] == [{"name": "f1", "value": 0.5}]
    assert after["status"] == "running"
    assert after["created_at"] == before["created_at"]


async def test_patch_with_empty_lists_clears_tags_and_scores(client: httpx.AsyncClient) -> None:
    key = await create(client, "e", tags=["x"], experiment_scores=[{"name": "f", "value": 1}])

    await client.patch(f"{EXPERIMENTS}/{key}", json={"tags": [], "experiment_scores": []})
    after = (await client.get(f"{EXPERIMENTS}/{key}")).json()

    assert "tags" not in after
    assert "experiment_scores" not in after


async def test_patch_of_nothing_changes_only_the_audit_fields(client: httpx.AsyncClient) -> None:
    key = await create(client, "same", metadata={"a": 1})
    before = (await client.get(f"{EXPERIMENTS}/{key}")).json()

    response = await client.patch(f"{EXPERIMENTS}/{key}", json={"metadata": None})
    after = (await client.get(f"{EXPERIMENTS}/{key}")).json()

    assert response.status_code == 204
    assert {k: v for k, v in after.items() if k != "last_updated_at"} == {
        k: v for k, v in before.items() if k != "last_updated_at"
    }


async def test_patch_of_a_missing_or_foreign_experiment_is_404(client: httpx.AsyncClient) -> None:
    key = await create(client, "mine")
    missing = new_id()

    foreign = await client.patch(f"{EXPERIMENTS}/{key}", json={"name": "x"}, headers=OTHER)
    unknown = await client.patch(f"{EXPERIMENTS}/{missing}", json={"name": "x"})
    bad = await client.patch(f"{EXPERIMENTS}/not-a-uuid", json={"name": "x"})

    assert foreign.status_code == 404
    assert foreign.json() == {"code": 404, "message": f"Experiment not found: '{key}'"}
    assert unknown.json() == {"code": 404, "message": f"Experiment not found: '{missing}'"}
    assert bad.json() == {"code": 404, "message": "HTTP 404 Not Found"}
    assert (await client.get(f"{EXPERIMENTS}/{key}")).json()["name"] == "mine"


@pytest.mark.parametrize(
    ("body", "error"),
    [
        ({"name": "   "}, "name must not be blank"),
        ({"tags": ["t"] * 51}, "tags expected `array` of length <= 50"),
        ({"tags": ["x" * 101]}, "tags[0] expected `str` of length <= 100"),
        ({"experiment_scores": [{"name": "", "value": 1}]}, "experiment_scores[0].name"),
        ({"experiment_scores": [{"name": "f"}]}, "experiment_scores[0].value must not be null"),
    ],
)
async def test_patch_refuses_what_breaks_a_rule(
    client: httpx.AsyncClient, body: dict[str, Any], error: str
) -> None:
    key = await create(client, "e")

    response = await client.patch(f"{EXPERIMENTS}/{key}", json=body)

    assert response.status_code == 422
    assert error in response.json()["errors"][0]


async def test_batch_update_merges_adds_and_removes_tags(client: httpx.AsyncClient) -> None:
    one = await create(client, "one", tags=["a", "b"])
    two = await create(client, "two", tags=["c"])
    theirs = (
        (
            await client.post(
                EXPERIMENTS, json={"dataset_name": "qa", "name": "t", "tags": ["z"]}, headers=OTHER
            )
        )
        .headers["location"]
        .rsplit("/", 1)[1]
    )

    merged = await client.patch(
        f"{EXPERIMENTS}/batch",
        json={"ids": [one, two, theirs, new_id()], "update": {"tags": ["d"]}, "merge_tags": True},
    )
    added = await client.patch(
        f"{EXPERIMENTS}/batch",
        json={
            "ids": [one],
            "update": {"tags": ["q"], "tags_to_add": ["e"], "tags_to_remove": ["a"]},
        },
    )

    assert (merged.status_code, added.status_code) == (204, 204)
    assert (await client.get(f"{EXPERIMENTS}/{one}")).json()["tags"] == ["b", "d", "e"]
    assert (await client.get(f"{EXPERIMENTS}/{two}")).json()["tags"] == ["c", "d"]
    other = await client.get(f"{EXPERIMENTS}/{theirs}", headers=OTHER)
    assert other.json()["tags"] == ["z"]


async def test_an_update_past_50_tags_is_422_and_changes_nothing(
    client: httpx.AsyncClient,
) -> None:
    key = await create(client, "many", tags=[f"t{n}" for n in range(45)])

    response = await client.patch(
        f"{EXPERIMENTS}/batch",
        json={"ids": [key], "update": {"tags_to_add": [f"n{n}" for n in range(6)]}},
    )

    assert response.status_code == 422
    assert response.json() == {"errors": ["Tag limit exceeded: maximum 50 tags per item"]}
    assert len((await client.get(f"{EXPERIMENTS}/{key}")).json()["tags"]) == 45


# --- Find ----------------------------------------------------------------------------------

SORTABLE_BY = [
    "id", "name", "created_at", "last_updated_at", "created_by", "last_updated_by", "tags",
    "trace_count", "total_estimated_cost", "total_estimated_cost_avg", "feedback_scores.*",
    "experiment_scores.*", "duration.*", "pass_rate",
]  # fmt: skip


async def test_find_pages_newest_first_with_the_count_and_sortable_fields(
    client: httpx.AsyncClient,
) -> None:
    keys = [await create(client, f"run-{n}") for n in range(3)]

    first = (await client.get(EXPERIMENTS, params={"page": 1, "size": 2})).json()
    second = (await client.get(EXPERIMENTS, params={"page": 2, "size": 2})).json()

    assert list(first) == ["page", "size", "total", "content", "sortable_by"]
    assert (first["page"], first["size"], first["total"]) == (1, 2, 3)
    assert [e["id"] for e in first["content"]] == [keys[2], keys[1]]
    assert (second["page"], second["size"], second["total"]) == (2, 1, 3)
    assert [e["id"] for e in second["content"]] == [keys[0]]
    assert first["sortable_by"] == SORTABLE_BY


async def test_find_filters_by_name_dataset_type_and_ids(client: httpx.AsyncClient) -> None:
    a = await create(client, "Alpha-One", type="trial")
    b = await create(client, "alpha-two", dataset_name="other")
    c = await create(client, "beta")
    dataset = (await client.get(f"{EXPERIMENTS}/{b}")).json()["dataset_id"]

    async def found(**params: Any) -> list[str]:
        response = await client.get(EXPERIMENTS, params=params)
        assert response.status_code == 200, response.text
        return [e["id"] for e in response.json()["content"]]

    assert await found(name="ALPHA") == [b, a]
    assert await found(datasetId=dataset) == [b]
    assert await found(types='["trial"]') == [a]
    assert await found(experiment_ids=json.dumps([a, c])) == [c, a]
    assert await found(name="pha-t", types='["regular"]') == [b]


async def test_find_sorts_by_the_first_sorting_entry(client: httpx.AsyncClient) -> None:
    b = await create(client, "b", experiment_scores=[{"name": "f1", "value": 0.2}])
    a = await create(client, "a", experiment_scores=[{"name": "f1", "value": 0.9}])
    c = await create(client, "c")

    async def order(sorting: Any) -> list[str]:
        params = {"sorting": json.dumps(sorting)}
        return [e["id"] for e in (await client.get(EXPERIMENTS, params=params)).json()["content"]]

    assert await order([{"field": "name", "direction": "ASC"}]) == [a, b, c]
    assert await order([{"field": "name", "direction": "DESC"}, {"field": "id"}]) == [c, b, a]
    assert await order([{"field": "experiment_scores.f1", "direction": "DESC"}]) == [a, b, c]
    assert await order([{"field": "unknown"}]) == [c, a, b]


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"sorting": "[{"}, "Invalid sorting query parameter '[{'"),
        ({"sorting": '[{"field":"name","direction":"desc"}]'}, "Invalid sorting query parameter"),
        ({"types": '["nope"]'}, "Invalid query param types '[\"nope\"]'"),
        ({"experiment_ids": '["x"]'}, "Invalid query param ids '[\"x\"]'"),
    ],
)
async def test_find_refuses_query_parameters_that_are_not_their_json(
    client: httpx.AsyncClient, params: dict[str, str], message: str
) -> None:
    response = await client.get(EXPERIMENTS, params=params)

    assert response.status_code == 400
    assert response.json()["message"].startswith(message)


async def test_find_and_stream_see_only_their_workspace(client: httpx.AsyncClient) -> None:
    await create(client, "shared-name")

    page = (await client.get(EXPERIMENTS, headers=OTHER)).json()
    streamed = await client.post(f"{EXPERIMENTS}/stream", json={"name": "shared"}, headers=OTHER)

    grouped = await client.get(
        f"{EXPERIMENTS}/groups", params={"groups": '[{"field":"dataset_id"}]'}, headers=OTHER
    )

    assert page == {"page": 1, "size": 0, "total": 0, "content": [], "sortable_by": SORTABLE_BY}
    assert grouped.json() == {"content": {}, "details": {"groups_details": [{"group_sorting": []}]}}
    assert streamed.content == b""


# --- Aggregates ----------------------------------------------------------------------------


def run(ms: int, scores: dict[str, float], spans: list[tuple[float, dict[str, int]]]) -> Any:
    end = f"2024-01-15T09:30:{ms // 1000:02d}.{ms % 1000:03d}Z"
    return {
        "dataset_item_id": new_id(),
        "trace": {"id": new_id(), "start_time": "2024-01-15T09:30:00Z", "end_time": end},
        "spans": [
            {"start_time": "2024-01-15T09:30:00Z", "total_estimated_cost": cost, "usage": usage}
            for cost, usage in spans
        ],
        "feedback_scores": [
            {"name": name, "value": value, "source": "sdk"} for name, value in scores.items()
        ],
    }


async def test_every_answer_carries_the_aggregates_of_the_items(
    client: httpx.AsyncClient,
) -> None:
    key = new_id()
    items = [
        run(1000, {"accuracy": 1}, [(0.5, {"prompt": 10, "total": 15}), (0.25, {"prompt": 20})]),
        run(2000, {"accuracy": 0.5, "f1": 0.25}, [(0.25, {"prompt": 10})]),
        run(4000, {"accuracy": 0}, []),
    ]
    upload = {"experiment_name": "scored", "dataset_name": "qa", "experiment_id": key}
    response = await client.put(f"{EXPERIMENTS}/items/bulk", json={**upload, "items": items})
    assert response.status_code == 204, response.text

    got = (await client.get(f"{EXPERIMENTS}/{key}")).json()
    found = (await client.get(EXPERIMENTS, params={"name": "scored"})).json()["content"]
    streamed = await stream(client, name="scored")

    # accuracy (1 + 0.5 + 0) / 3; durations 1000, 2000, 4000 ms at indexes 1, 1.8, 1.98;
    # cost 0.75 + 0.25 + 0, averaged over three items; usage per key over the traces having it.
    assert got["feedback_scores"] == [
        {"name": "accuracy", "value": 0.5},
        {"name": "f1", "value": 0.25},
    ]
    assert got["trace_count"] == got["dataset_item_count"] == 3
    assert got["duration"] == {"p50": 2000, "p90": 3600, "p99": 3960}
    assert got["total_estimated_cost"] == 1
    assert got["total_estimated_cost_avg"] == 1 / 3
    assert got["usage"] == {"prompt": 20, "total": 15}
    assert got["project_name"] == "Default Project"
    assert found == [got]
    assert streamed == [got]
    raw = (await client.get(f"{EXPERIMENTS}/{key}")).content
    assert b'"total_estimated_cost":1,' in raw
    assert b'"p50":2000,' in raw


async def test_an_experiment_without_items_leaves_the_aggregates_out(
    client: httpx.AsyncClient,
) -> None:
    key = await create(client, "empty")

    got = (await client.get(f"{EXPERIMENTS}/{key}")).json()

    for absent in ("feedback_scores", "duration", "usage", "total_estimated_cost"):
        assert absent not in got
    assert "total_estimated_cost_avg" not in got
    assert (got["trace_count"], got["dataset_item_count"]) == (0, 0)
    assert (got["status"], got["type"]) == ("completed", "regular")


# --- Score names ---------------------------------------------------------------------------


async def test_score_names_list_trace_scores_and_with_ids_the_experiments_own(
    client: httpx.AsyncClient,
) -> None:
    key = new_id()
    upload = {"experiment_name": "named", "dataset_name": "qa", "experiment_id": key}
    items = [run(1000, {"accuracy": 1, "f1": 0.5}, [])]
    await client.put(f"{EXPERIMENTS}/items/bulk", json={**upload, "items": items})
    other = new_id()
    items = [run(1000, {"recall": 1}, [])]
    await client.put(
        f"{EXPERIMENTS}/items/bulk",
        json={"experiment_name": "o", "dataset_name": "qa", "experiment_id": other, "items": items},
    )
    await client.patch(
        f"{EXPERIMENTS}/{key}", json={"experiment_scores": [{"name": "f1", "value": 1}]}
    )
    names = f"{EXPERIMENTS}/feedback-scores/names"

    everything = (await client.get(names)).json()
    of_one = (await client.get(names, params={"experiment_ids": json.dumps([key])})).json()
    blank = await client.get(names, params={"experiment_ids": ""})
    elsewhere = (await client.get(names, headers=OTHER)).json()

    assert everything == {
        "scores": [
            {"name": "accuracy", "type": "feedback_scores"},
            {"name": "f1", "type": "feedback_scores"},
            {"name": "recall", "type": "feedback_scores"},
        ]
    }
    assert of_one == {
        "scores": [
            {"name": "accuracy", "type": "feedback_scores"},
            {"name": "f1", "type": "feedback_scores"},
            {"name": "f1", "type": "experiment_scores"},
        ]
    }
    assert blank.status_code == 400
    assert blank.json() == {"code": 400, "message": "Invalid query param ids ''"}
    assert elsewhere == {"scores": []}


async def test_find_filters_on_metadata_tags_and_score_averages(
    client: httpx.AsyncClient,
) -> None:
    gpt = await create(client, "g", metadata={"model": "GPT-4o", "t": 0.7}, tags=["prod"])
    claude = await create(client, "c", metadata={"model": "claude"}, tags=["dev", "prod-2"])
    scored = new_id()
    items = [run(1000, {"accuracy": 1}, []), run(1000, {"accuracy": 0.5}, [])]
    await client.put(
        f"{EXPERIMENTS}/items/bulk",
        json={
            "experiment_name": "s",
            "dataset_name": "qa",
            "experiment_id": scored,
            "items": items,
        },
    )

    async def found(*filters: dict[str, str]) -> list[str]:
        params = {"filters": json.dumps(list(filters))}
        response = await client.get(EXPERIMENTS, params=params)
        assert response.status_code == 200, response.text
        return [e["id"] for e in response.json()["content"]]

    assert await found(
        {"field": "metadata", "key": "model", "operator": "=", "value": "gpt-4o"}
    ) == [gpt]
    assert await found(
        {"field": "metadata", "key": "model", "operator": "contains", "value": "LAU"}
    ) == [claude]
    assert await found({"field": "metadata", "key": "t", "operator": ">", "value": "0.5"}) == [gpt]
    assert await found(
        {"field": "metadata", "key": "model", "operator": "is_empty", "value": ""}
    ) == [scored]
    assert await found({"field": "tags", "operator": "=", "value": "prod"}) == [gpt]
    assert await found({"field": "tags", "operator": "contains", "value": "PROD"}) == [claude, gpt]
    assert await found(
        {"field": "feedback_scores", "key": "accuracy", "operator": ">=", "value": "0.75"}
    ) == [scored]
    assert (
        await found(
            {"field": "feedback_scores", "key": "accuracy", "operator": ">", "value": "0.75"}
        )
        == []
    )
    assert await found(
        {"field": "feedback_scores", "key": "Accuracy", "operator": "is_not_empty", "value": ""}
    ) == [scored]
    bad = await client.get(
        EXPERIMENTS, params={"filters": '[{"field":"tags","operator":">","value":"a"}]'}
    )
    assert bad.status_code == 400
    assert bad.json()["message"] == "Invalid operator '>' for field 'tags' of type 'LIST'"


async def test_find_sorts_by_trace_count_and_duration_percentiles(
    client: httpx.AsyncClient,
) -> None:
    slow, fast = new_id(), new_id()
    for key, runs in ((slow, [run(4000, {}, [])]), (fast, [run(1000, {}, []), run(2000, {}, [])])):
        upload = {"experiment_name": "timed", "dataset_name": "qa", "experiment_id": key}
        await client.put(f"{EXPERIMENTS}/items/bulk", json={**upload, "items": runs})
    empty = await create(client, "timed-empty")

    async def order(field: str, direction: str) -> list[str]:
        params = {"sorting": json.dumps([{"field": field, "direction": direction}])}
        return [e["id"] for e in (await client.get(EXPERIMENTS, params=params)).json()["content"]]

    assert await order("duration.p50", "DESC") == [slow, fast, empty]
    assert await order("duration.p99", "ASC") == [empty, fast, slow]
    assert await order("trace_count", "DESC") == [fast, slow, empty]


# --- Groups --------------------------------------------------------------------------------


async def test_groups_nest_datasets_and_metadata_values_newest_first(
    client: httpx.AsyncClient,
) -> None:
    await create(client, "a", dataset_name="qa", metadata={"model": "gpt"})
    await create(client, "b", dataset_name="qa", metadata={"other": 1})
    await create(client, "c", dataset_name="math", metadata={"model": "claude"}, tags=["x", "y"])
    groups = json.dumps([{"field": "dataset_id"}, {"field": "metadata", "key": "model"}])

    response = await client.get(f"{EXPERIMENTS}/groups", params={"groups": groups})
    by_tag = await client.get(f"{EXPERIMENTS}/groups", params={"groups": '[{"field":"tags"}]'})

    assert response.status_code == 200, response.text
    body = response.json()
    labels = {node["label"]: node["groups"] for node in body["content"].values()}
    assert labels == {
        "qa": {"gpt": {"groups": {}}, "": {"groups": {}}},
        "math": {"claude": {"groups": {}}},
    }
    assert body["details"]["groups_details"] == [
        {"group_sorting": ["math", "qa"]},
        {"group_sorting": ["claude", "", "gpt"]},
    ]
    assert by_tag.json()["content"] == {
        "x": {"groups": {}},
        "y": {"groups": {}},
        "": {"groups": {}},
    }


@pytest.mark.parametrize(
    ("groups", "message"),
    [
        (None, "Required query parameter 'groups' is missing"),
        ("[", "Invalid grouping query parameter '['"),
        ("[]", "At least one grouping field must be specified"),
        (
            '[{"field":"name"}]',
            "Invalid grouping field: name. Supported fields are: [metadata, dataset_id, tags, "
            "project_id]",
        ),
        ('[{"field":"metadata"}]', "Key must be specified for json field 'metadata'"),
        ('[{"field":"tags","type":"string"}]', "Invalid field type 'STRING' for field 'tags'"),
    ],
)
async def test_groups_refuse_a_missing_or_bad_grouping(
    client: httpx.AsyncClient, groups: str | None, message: str
) -> None:
    params = {} if groups is None else {"groups": groups}

    response = await client.get(f"{EXPERIMENTS}/groups", params=params)

    assert response.status_code == 400
    assert response.json() == {"code": 400, "message": message}


# --- Literal paths -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("GET", "stream", {"POST"}),
        ("PATCH", "stream", {"POST"}),
        ("GET", "finish", {"POST"}),
        ("PATCH", "finish", {"POST"}),
        ("GET", "execute", {"POST"}),
        ("GET", "batch", {"PATCH"}),
        ("GET", "delete", {"POST"}),
        ("PATCH", "delete", {"POST"}),
        ("PATCH", "groups", {"GET", "HEAD"}),
        ("POST", "groups", {"GET", "HEAD"}),
        ("PATCH", "groups/aggregations", {"GET", "HEAD"}),
        ("POST", "feedback-scores/names", {"GET", "HEAD"}),
        ("GET", "items", {"POST"}),
        ("GET", "items/stream", {"POST"}),
        ("GET", "items/delete", {"POST"}),
        ("GET", "items/bulk", {"PUT"}),
    ],
)
async def test_a_literal_path_with_a_method_it_does_not_serve_is_405(
    client: httpx.AsyncClient, method: str, path: str, allowed: set[str]
) -> None:
    for prefix in ("", "/api"):
        response = await client.request(method, f"{prefix}{EXPERIMENTS}/{path}", json={})

        assert response.status_code == 405, (method, path, response.text)
        assert response.json() == {"code": 405, "message": "HTTP 405 Method Not Allowed"}
        assert set(response.headers["allow"].split(", ")) == allowed


async def test_an_id_path_still_answers_for_ids_and_other_names(
    client: httpx.AsyncClient,
) -> None:
    key = await create(client, "shadowed")

    assert (await client.get(f"{EXPERIMENTS}/{key}")).status_code == 200
    assert (await client.get(f"{EXPERIMENTS}/streams")).status_code == 404
    assert (await client.patch(f"{EXPERIMENTS}/{key}", json={})).status_code == 204


# --- Find by deleted project (by prompt: tests/test_api_prompts.py) -----------------------


async def test_find_with_project_deleted_keeps_experiments_in_no_stored_project(
    client: httpx.AsyncClient,
) -> None:
    empty = await create(client, "no-items", project_name="Bots")
    traced = new_id()
    upload = {"experiment_name": "traced", "dataset_name": "qa", "experiment_id": traced}
    items = [run(1000, {}, [])]
    response = await client.put(f"{EXPERIMENTS}/items/bulk", json={**upload, "items": items})
    assert response.status_code == 204, response.text
    lost = await create(client, "lost-trace")
    item = {
        "id": new_id(),
        "experiment_id": lost,
        "dataset_item_id": new_id(),
        "trace_id": new_id(),
    }
    await client.post(f"{EXPERIMENTS}/items", json={"experiment_items": [item]})

    page = (await client.get(EXPERIMENTS, params={"project_deleted": "true"})).json()
    everything = (await client.get(EXPERIMENTS, params={"project_deleted": "false"})).json()

    assert [e["id"] for e in page["content"]] == [lost, empty]
    assert page["total"] == 2
    assert everything["total"] == 3


# --- The rest of the reference's checklist (opik-reference/experiments.md §14) -------------


async def test_find_by_a_lower_cased_inner_part_of_the_name_pages_newest_first(
    client: httpx.AsyncClient,
) -> None:
    keys = [await create(client, f"Eval-Nightly-{n}") for n in range(5)]
    await create(client, "weekly")

    first = (await client.get(EXPERIMENTS, params={"name": "l-night", "size": 3})).json()
    second = (
        await client.get(EXPERIMENTS, params={"name": "l-night", "size": 3, "page": 2})
    ).json()

    assert (first["page"], first["size"], first["total"]) == (1, 3, 5)
    assert [e["id"] for e in first["content"]] == keys[::-1][:3]
    assert (second["page"], second["size"], second["total"]) == (2, 2, 5)
    assert [e["id"] for e in second["content"]] == keys[::-1][3:]


async def test_stream_pages_by_three_then_the_rest_then_nothing(client: httpx.AsyncClient) -> None:
    keys = [await create(client, f"batch-{n}") for n in range(5)]

    one = await stream(client, name="batch", limit=3)
    two = await stream(client, name="batch", limit=3, last_retrieved_id=one[-1]["id"])
    three = await stream(client, name="batch", limit=3, last_retrieved_id=two[-1]["id"])

    assert [e["id"] for e in one + two] == keys[::-1]
    assert (len(one), len(two), three) == (3, 2, [])


async def test_an_empty_patch_is_204_and_changes_only_last_updated(
    client: httpx.AsyncClient,
) -> None:
    key = await create(client, "untouched", metadata={"a": 1}, tags=["t"])
    before = (await client.get(f"{EXPERIMENTS}/{key}")).json()

    response = await client.patch(f"{EXPERIMENTS}/{key}", json={})
    after = (await client.get(f"{EXPERIMENTS}/{key}")).json()

    assert (response.status_code, response.content) == (204, b"")
    assert after["last_updated_at"] > before["last_updated_at"]
    assert after["last_updated_by"] == "admin"
    audit = ("last_updated_at", "last_updated_by")
    assert {k: v for k, v in after.items() if k not in audit} == {
        k: v for k, v in before.items() if k not in audit
    }


@pytest.mark.parametrize(
    ("body", "error"),
    [
        ({"type": "nope"}, "type invalid enum value 'nope'"),
        ({"status": "nope"}, "status invalid enum value 'nope'"),
        ({"tags_to_add": ["  "]}, "tags_to_add[0] must not be blank"),
    ],
)
async def test_patch_refuses_an_unknown_type_or_status(
    client: httpx.AsyncClient, body: dict[str, Any], error: str
) -> None:
    key = await create(client, "e")

    response = await client.patch(f"{EXPERIMENTS}/{key}", json=body)

    assert response.status_code == 422
    assert response.json() == {"errors": [error]}


@pytest.mark.parametrize("route", ["finish", "batch"])
@pytest.mark.parametrize(
    ("ids", "error"),
    [
        ([], "ids expected `array` of length >= 1"),
        ([new_id()] * 1001, "ids expected `array` of length <= 1000"),
        (["x"], "ids[0] must be a UUID"),
        (None, "ids must not be null"),
    ],
)
async def test_finish_and_batch_update_check_their_ids(
    client: httpx.AsyncClient, route: str, ids: list[str] | None, error: str
) -> None:
    body: dict[str, Any] = {} if ids is None else {"ids": ids}
    if route == "batch":
        body["update"] = {"name": "renamed"}
    send = client.patch if route == "batch" else client.post

    response = await send(f"{EXPERIMENTS}/{route}", json=body)

    assert response.status_code == 422
    assert response.json() == {"errors": [error]}


async def test_a_batch_update_without_its_update_is_422(client: httpx.AsyncClient) -> None:
    key = await create(client, "kept")

    response = await client.patch(f"{EXPERIMENTS}/batch", json={"ids": [key]})

    assert response.status_code == 422
    assert response.json() == {"errors": ["update must not be null"]}
    assert (await client.get(f"{EXPERIMENTS}/{key}")).json()["name"] == "kept"


async def test_a_batch_update_renames_every_experiment_it_names(client: httpx.AsyncClient) -> None:
    one, two, three = [await create(client, n) for n in ("one", "two", "three")]

    response = await client.patch(
        f"{EXPERIMENTS}/batch", json={"ids": [one, two], "update": {"name": "same"}}
    )

    assert response.status_code == 204
    names = [(await client.get(f"{EXPERIMENTS}/{k}")).json()["name"] for k in (one, two, three)]
    assert names == ["same", "same", "three"]


async def test_an_experiment_without_items_leaves_out_what_opik_leaves_out(
    client: httpx.AsyncClient,
) -> None:
    key = await create(client, "bare")

    got = (await client.get(f"{EXPERIMENTS}/{key}")).json()

    for absent in ("comments", "pass_rate", "passed_count", "total_count", "assertion_scores"):
        assert absent not in got
    assert "usage" not in got


@pytest.mark.parametrize(
    ("params", "error"),
    [
        ({"page": "0"}, "page expected `int` >= 1"),
        ({"size": "0"}, "size expected `int` >= 1"),
        ({"datasetId": "nope"}, "datasetId must be a UUID"),
        ({"prompt_id": "nope"}, "prompt_id must be a UUID"),
        ({"project_deleted": "yes"}, "project_deleted expected `bool`, got `str`"),
    ],
)
async def test_find_refuses_a_page_or_id_that_is_not_one(
    client: httpx.AsyncClient, params: dict[str, str], error: str
) -> None:
    response = await client.get(EXPERIMENTS, params=params)

    assert response.status_code == 422
    assert response.json() == {"errors": [error]}


@pytest.mark.parametrize(
    ("filters", "message"),
    [
        ('[{"field":"name","operator":"=","value":"a"}]', "Invalid filters query parameter"),
        ('[{"field":"tags","operator":"="}]', "Invalid filters query parameter"),
        (
            '[{"field":"feedback_scores","key":"a","operator":">","value":"x"}]',
            "Invalid value 'x' or key 'a' for field 'feedback_scores' of type "
            "'FEEDBACK_SCORES_NUMBER'",
        ),
        (
            '[{"field":"metadata","key":"m","operator":">=","value":"1"}]',
            "Invalid operator '>=' for field 'metadata' of type 'DICTIONARY'",
        ),
        (
            '[{"field":"metadata","key":"a\\u0000b","operator":"=","value":"1"}]',
            "Invalid value '1' or key 'a\x00b' for field 'metadata' of type 'DICTIONARY'",
        ),
    ],
)
async def test_find_refuses_filters_it_cannot_apply(
    client: httpx.AsyncClient, filters: str, message: str
) -> None:
    response = await client.get(EXPERIMENTS, params={"filters": filters})

    assert response.status_code == 400
    assert response.json()["message"].startswith(message)
