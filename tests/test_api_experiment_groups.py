"""GET /v1/private/experiments/groups/aggregations over HTTP: the groups of /groups, each with
the aggregates of its experiments, checked against values computed here from what was sent."""

import json
from statistics import mean
from typing import Any

import httpx
import pytest

from tests.factories import new_id

pytestmark = pytest.mark.anyio

EXPERIMENTS = "/v1/private/experiments"
AGGREGATIONS = f"{EXPERIMENTS}/groups/aggregations"
OTHER = {"Comet-Workspace": "other"}
BY_DATASET_AND_MODEL = json.dumps([{"field": "dataset_id"}, {"field": "metadata", "key": "model"}])


def run(ms: int, score: float, cost: float | None) -> dict[str, Any]:
    """A bulk item: a trace of `ms` milliseconds scored `accuracy`, with one span of `cost`."""
    end = f"2024-01-15T09:30:{ms // 1000:02d}.{ms % 1000:03d}Z"
    spans = (
        []
        if cost is None
        else [{"start_time": "2024-01-15T09:30:00Z", "total_estimated_cost": cost}]
    )
    return {
        "dataset_item_id": new_id(),
        "trace": {"id": new_id(), "start_time": "2024-01-15T09:30:00Z", "end_time": end},
        "spans": spans,
        "feedback_scores": [{"name": "accuracy", "value": score, "source": "sdk"}],
    }


async def record(
    client: httpx.AsyncClient,
    dataset: str,
    metadata: dict[str, Any],
    runs: list[Any],
    **fields: Any,
) -> str:
    key = new_id()
    body = {"id": key, "name": f"exp-{key[-4:]}", "dataset_name": dataset, "metadata": metadata}
    assert (await client.post(EXPERIMENTS, json={**body, **fields})).status_code == 201
    if runs:
        upload = {"experiment_id": key, "experiment_name": body["name"], "dataset_name": dataset}
        response = await client.put(f"{EXPERIMENTS}/items/bulk", json={**upload, "items": runs})
        assert response.status_code == 204, response.text
    return key


def percentile(values: list[float], q: float) -> float:
    """Linear interpolation at index q * (n - 1), as Opik's quantiles."""
    ordered = sorted(values)
    index = q * (len(ordered) - 1)
    low = int(index)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (index - low)


def durations(ms: list[float]) -> dict[str, float]:
    return {f"p{p}": percentile(ms, p / 100) for p in (50, 90, 99)}


async def test_each_group_has_the_aggregates_of_its_experiments(client: httpx.AsyncClient) -> None:
    # qa: A (gpt) two runs, B (claude) one run, D (gpt) no items but its own score;
    # math: C (gpt) no items, its own score.
    a_runs = [(1000, 1.0, 0.5), (3000, 0.5, None)]
    b_runs = [(2000, 0.0, 0.25)]
    await record(client, "qa", {"model": "gpt"}, [run(*r) for r in a_runs])
    await record(client, "qa", {"model": "claude"}, [run(*r) for r in b_runs])
    await record(
        client, "math", {"model": "gpt"}, [], experiment_scores=[{"name": "f1", "value": 0.5}]
    )
    await record(client, "qa", {"model": "gpt"}, [], experiment_scores=[{"name": "f1", "value": 1}])

    response = await client.get(AGGREGATIONS, params={"groups": BY_DATASET_AND_MODEL})

    assert response.status_code == 200, response.text
    body = response.json()
    assert list(body) == ["content"]
    by_label = {node["label"]: node for node in body["content"].values()}
    assert set(by_label) == {"qa", "math"}
    qa, math = by_label["qa"], by_label["math"]
    a_duration, a_accuracy = durations([r[0] for r in a_runs]), mean(r[1] for r in a_runs)
    a_cost, a_cost_avg = 0.5, 0.5 / 2
    b_duration, b_accuracy, b_cost, b_cost_avg = durations([2000]), 0.0, 0.25, 0.25

    gpt = qa["groups"]["gpt"]
    assert gpt["label"] == "gpt"
    assert gpt["groups"] == {}
    assert gpt["aggregations"] == {
        "experiment_count": 2,
        "trace_count": 2,
        "total_estimated_cost": pytest.approx(a_cost),
        "total_estimated_cost_avg": pytest.approx((a_cost_avg + 0) / 2),
        "duration": pytest.approx(a_duration),
        "feedback_scores": [{"name": "accuracy", "value": pytest.approx(a_accuracy)}],
        "experiment_scores": [{"name": "f1", "value": 1}],
    }
    assert qa["groups"]["claude"]["aggregations"] == {
        "experiment_count": 1,
        "trace_count": 1,
        "total_estimated_cost": pytest.approx(b_cost),
        "total_estimated_cost_avg": pytest.approx(b_cost_avg),
        "duration": pytest.approx(b_duration),
        "feedback_scores": [{"name": "accuracy", "value": 0}],
    }
    assert qa["aggregations"] == {
        "experiment_count": 3,
        "trace_count": 3,
        "total_estimated_cost": pytest.approx(a_cost + b_cost),
        "total_estimated_cost_avg": pytest.approx((a_cost_avg + b_cost_avg + 0) / 3),
        "duration": pytest.approx(
            {p: (a_duration[p] + b_duration[p]) / 2 for p in ("p50", "p90", "p99")}
        ),
        "feedback_scores": [
            {"name": "accuracy", "value": pytest.approx((a_accuracy + b_accuracy) / 2)}
        ],
        "experiment_scores": [{"name": "f1", "value": 1}],
    }
    # A group of experiments without items: a last level leaves out what it has none of; a
    # level above says 0 and empty lists.
    assert math["groups"]["gpt"]["aggregations"] == {
        "experiment_count": 1,
        "trace_count": 0,
        "experiment_scores": [{"name": "f1", "value": 0.5}],
    }
    assert math["aggregations"] == {
        "experiment_count": 1,
        "trace_count": 0,
        "total_estimated_cost": 0,
        "feedback_scores": [],
        "experiment_scores": [{"name": "f1", "value": 0.5}],
    }


async def test_an_experiment_under_two_tags_counts_once_in_each_and_labels_are_values(
    client: httpx.AsyncClient,
) -> None:
    await record(client, "qa", {}, [run(1000, 1, None)], tags=["x", "y"])
    await record(client, "qa", {}, [run(3000, 0, None)])

    body = (await client.get(AGGREGATIONS, params={"groups": '[{"field":"tags"}]'})).json()

    assert {value: node["label"] for value, node in body["content"].items()} == {
        "x": "x",
        "y": "y",
        "": "",
    }
    for tag, score in (("x", 1), ("y", 1), ("", 0)):
        aggregations = body["content"][tag]["aggregations"]
        assert (aggregations["experiment_count"], aggregations["trace_count"]) == (1, 1)
        assert aggregations["feedback_scores"] == [{"name": "accuracy", "value": score}]


async def test_aggregations_follow_the_find_filters_and_stay_in_their_workspace(
    client: httpx.AsyncClient,
) -> None:
    await record(client, "qa", {"model": "gpt"}, [run(1000, 1, None)], tags=["prod"])
    await record(client, "qa", {"model": "claude"}, [run(1000, 0, None)])
    prod = json.dumps([{"field": "tags", "operator": "=", "value": "prod"}])

    filtered = await client.get(
        AGGREGATIONS, params={"groups": BY_DATASET_AND_MODEL, "filters": prod}
    )
    named = await client.get(AGGREGATIONS, params={"groups": BY_DATASET_AND_MODEL, "name": "nope"})
    elsewhere = await client.get(
        AGGREGATIONS, params={"groups": BY_DATASET_AND_MODEL}, headers=OTHER
    )

    (qa,) = filtered.json()["content"].values()
    assert list(qa["groups"]) == ["gpt"]
    assert qa["aggregations"]["experiment_count"] == 1
    assert named.json() == {"content": {}}
    assert elsewhere.json() == {"content": {}}


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({}, "Required query parameter 'groups' is missing"),
        ({"groups": " "}, "Required query parameter 'groups' is missing"),
        ({"groups": "[{"}, "Invalid grouping query parameter '[{'"),
        ({"groups": "[]"}, "At least one grouping field must be specified"),
        (
            {"groups": '[{"field":"name"}]'},
            "Invalid grouping field: name. Supported fields are: [metadata, dataset_id, tags, "
            "project_id]",
        ),
        ({"groups": '[{"field":"metadata"}]'}, "Key must be specified for json field 'metadata'"),
        (
            {"groups": '[{"field":"dataset_id","type":"list"}]'},
            "Invalid field type 'LIST' for field 'dataset_id'",
        ),
        (
            {"groups": '[{"field":"tags"}]', "filters": "[{"},
            "Invalid filters query parameter '[{'",
        ),
    ],
)
async def test_aggregations_refuse_a_missing_or_bad_grouping(
    client: httpx.AsyncClient, params: dict[str, str], message: str
) -> None:
    response = await client.get(AGGREGATIONS, params=params)

    assert response.status_code == 400
    assert response.json() == {"code": 400, "message": message}


async def test_a_metadata_number_past_a_doubles_range_is_a_group_not_a_500(
    client: httpx.AsyncClient,
) -> None:
    body = b'{"name": "huge", "dataset_name": "d", "metadata": {"model": 1e999, "n": 0.1}}'
    created = await client.post(
        EXPERIMENTS, content=body, headers={"content-type": "application/json"}
    )
    assert created.status_code == 201, created.text
    by_model = json.dumps([{"field": "metadata", "key": "model"}])

    for path in (f"{EXPERIMENTS}/groups", AGGREGATIONS):
        response = await client.get(path, params={"groups": by_model})

        assert response.status_code == 200, response.text
        assert list(response.json()["content"]) == ["inf"]
