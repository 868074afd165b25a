"""Numbers the store sums are bounded at the door, so no valid write can break a later read
(reliability probe D1, D16)."""

from typing import Any

import httpx
import pytest

from tests.conftest import Rows
from tests.factories import new_id
from tests.test_api_bulk import BULK, counts
from tests.test_api_stream import stream

pytestmark = pytest.mark.anyio

INT32_MAX = 2**31 - 1


def span(**fields: Any) -> dict[str, Any]:
    return {"start_time": "2024-01-15T09:30:00Z", **fields}


def upload(name: str, *records: dict[str, Any]) -> dict[str, Any]:
    return {"experiment_name": name, "dataset_name": "d", "items": list(records)}


def traced(**record: Any) -> dict[str, Any]:
    return {"dataset_item_id": new_id(), "trace": {"start_time": "2024-01-15T09:30:00Z"}, **record}


async def test_usage_that_would_overflow_the_stream_sum_is_refused_and_the_stream_stays_whole(
    client: httpx.AsyncClient, client_rows: Rows
) -> None:
    honest = traced(spans=[span(usage={"t": 7})])
    await client.put(BULK, json=upload("ov", honest))
    before = await counts(client_rows)

    response = await client.put(
        BULK,
        json=upload("ov", traced(spans=[span(usage={"t": 2**63 - 1}), span(usage={"t": 1})])),
    )

    assert response.status_code == 422
    assert response.json() == {
        "errors": [f"items[0].spans[0].usage[...] expected `int` <= {INT32_MAX}"]
    }
    assert (await counts(client_rows)) == before
    lines = await stream(client, experiment_name="ov")
    assert [line["usage"] for line in lines] == [{"t": 7}]


@pytest.mark.parametrize(
    ("value", "rule"),
    [
        (1e300, f"expected `float` <= {float(INT32_MAX)}"),  # a "whole" float (D16)
        (-(2**63) - 1, f"expected `int` >= {-(2**31)}"),
        (INT32_MAX + 1, f"expected `int` <= {INT32_MAX}"),
    ],
)
async def test_usage_values_outside_32_bits_are_a_422(
    client: httpx.AsyncClient, value: float, rule: str
) -> None:
    body = upload("u", traced(spans=[span(usage={"t": value})]))

    response = await client.put(BULK, json=body)

    assert response.status_code == 422
    assert response.json() == {"errors": [f"items[0].spans[0].usage[...] {rule}"]}


async def test_usage_at_the_32_bit_bounds_is_stored_and_one_past_them_is_not(
    client: httpx.AsyncClient,
) -> None:
    past = await client.put(BULK, json=upload("edge", traced(spans=[span(usage={"hi": 2**31})])))
    spans = [span(usage={"hi": INT32_MAX, "lo": -(2**31)}) for _ in range(3)]
    response = await client.put(BULK, json=upload("edge", traced(spans=spans)))

    assert past.status_code == 422
    assert response.status_code == 204, response.text
    [line] = await stream(client, experiment_name="edge")
    assert line["usage"] == {"hi": 3 * INT32_MAX, "lo": -3 * 2**31}


async def test_a_cost_whose_sum_would_be_infinite_is_a_422_and_one_below_the_bound_is_kept(
    client: httpx.AsyncClient,
) -> None:
    huge = [span(total_estimated_cost=1.7e308), span(total_estimated_cost=1.7e308)]
    large = [span(total_estimated_cost=1e25), span(total_estimated_cost=1e25)]

    refused = await client.put(BULK, json=upload("cost", traced(spans=huge)))
    kept = await client.put(BULK, json=upload("cost", traced(spans=large)))

    assert refused.status_code == 422
    assert refused.json() == {
        "errors": ["items[0].spans[0].total_estimated_cost expected `float` < 1e+26"]
    }
    assert kept.status_code == 204, kept.text
    [line] = await stream(client, experiment_name="cost")
    assert line["total_estimated_cost"] == 2e25


@pytest.mark.parametrize("value", [1e300, -1.7e308, 1000000001])
async def test_feedback_scores_beyond_opiks_decimal_range_are_a_422(
    client: httpx.AsyncClient, value: float
) -> None:
    score = {"name": "s", "value": value, "source": "sdk"}

    response = await client.put(BULK, json=upload("s", traced(feedback_scores=[score])))

    assert response.status_code == 422
    [error] = response.json()["errors"]
    assert error.startswith("items[0].feedback_scores[0].value expected ")
