"""A stream never dies mid-answer because of one stored row: span usage that an import stored
as given, whose sum overflows 64 bits, still streams every item (the probe's D1)."""

import json

import httpx
import pytest

from app import ids, importer
from app.config import Settings
from app.progress import Progress
from app.store import Store

pytestmark = pytest.mark.anyio

BIG = 2**63 - 1  # each fits; their sum does not
NOW = "2025-01-15T09:30:00Z"


def _id() -> str:
    return ids.to_str(ids.uuid7())


def _audit() -> dict[str, str]:
    return {"created_at": NOW, "last_updated_at": NOW, "created_by": "a", "last_updated_by": "a"}


async def test_a_usage_sum_beyond_64_bits_does_not_cut_the_stream(
    client: httpx.AsyncClient, client_store: tuple[Settings, Store]
) -> None:
    project, trace, other_trace, experiment = _id(), _id(), _id(), _id()
    spans = [
        {"span": {"id": _id(), "trace_id": trace, "project_id": project, "start_time": NOW,
                  "usage": {"total_tokens": BIG}, **_audit()}}
        for _ in range(2)
    ]  # fmt: skip
    lines = [
        {"project": {"id": project, "name": "p", **_audit()}},
        {"trace": {"id": trace, "project_id": project, "start_time": NOW, **_audit()}},
        {"trace": {"id": other_trace, "project_id": project, "start_time": NOW, **_audit()}},
        *spans,
        *(
            {"experiment_item": {"id": _id(), "experiment_id": experiment, "trace_id": t,
                                 "dataset_item_id": _id()}}
            for t in (trace, other_trace)
        ),
    ]  # fmt: skip
    source = [json.dumps(line).encode() + b"\n" for line in lines]
    # What `import` stores, on either engine (its report: every line stored).
    report = await importer._import(client_store[1], source, "default", 100, Progress())
    assert (report.stored, report.rejected) == (len(lines), 0)
    # The stream finds items by experiment name: name the experiment the items refer to.
    named = await client.post(
        "/v1/private/experiments", json={"id": experiment, "name": "x", "dataset_name": "d"}
    )
    assert named.status_code == 201
    answer = await client.post(
        "/v1/private/experiments/items/stream", json={"experiment_name": "x"}
    )

    found = [json.loads(line) for line in answer.text.splitlines()]
    assert answer.status_code == 200
    assert sorted(item["trace_id"] for item in found) == sorted([trace, other_trace])
    summed = next(item for item in found if item["trace_id"] == trace)
    assert summed["usage"]["total_tokens"] == float(2 * BIG)
