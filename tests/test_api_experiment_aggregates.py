"""Every experiment answer's aggregates over HTTP, checked against figures computed here from
what the test sent, while the data changes: items added late, traces that arrive after their
items or never, scores replaced, spans added, items deleted; and another workspace sees none
of it."""

import math
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from tests.factories import new_id

pytestmark = pytest.mark.anyio

PRIVATE = "/v1/private"
EXPERIMENTS = f"{PRIVATE}/experiments"
OTHER = {"Comet-Workspace": "other"}
PROJECT = "Aggregates"
CARRIER = "carrier"  # the experiment whose bulk runs write the traces, spans and scores


def at(ms: int) -> str:
    return f"2024-01-15T09:{ms // 60000:02d}:{ms // 1000 % 60:02d}.{ms % 1000:03d}Z"


def percentile(values: list[float], q: float) -> float:
    """Linear interpolation at index q * (n - 1), as Opik's quantiles."""
    ordered = sorted(values)
    index = q * (len(ordered) - 1)
    low = math.floor(index)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (index - low)


@dataclass
class Sent:
    """What the test has sent for one experiment, and the aggregates it implies
    (opik-reference/experiments.md §2.2)."""

    key: str
    items: dict[str, tuple[str, str]] = field(default_factory=dict)  # id: (dataset item, trace)
    durations: dict[str, int] = field(default_factory=dict)  # stored traces' milliseconds
    scores: dict[str, dict[str, float]] = field(default_factory=dict)  # trace: name: value
    costs: dict[str, list[float]] = field(default_factory=dict)  # trace: its spans' costs

    def expected(self) -> dict[str, Any]:
        traces = [trace for _, trace in self.items.values()]
        stored = [t for t in traces if t in self.durations]  # one per item, as in Opik
        figures: dict[str, Any] = {
            "trace_count": len(set(traces)),
            "dataset_item_count": len({d for d, _ in self.items.values()}),
        }
        names = sorted({n for t in stored for n in self.scores.get(t, {})})
        if names:
            figures["feedback_scores"] = [
                {
                    "name": n,
                    "value": pytest.approx(
                        sum(self.scores[t][n] for t in stored if n in self.scores.get(t, {}))
                        / sum(1 for t in stored if n in self.scores.get(t, {}))
                    ),
                }
                for n in names
            ]
        if stored:
            ms = [float(self.durations[t]) for t in stored]
            figures["duration"] = {
                f"p{p}": pytest.approx(percentile(ms, p / 100)) for p in (50, 90, 99)
            }
        per_item = [sum(self.costs.get(t, [])) for t in traces]
        if sum(per_item) > 0:
            figures["total_estimated_cost"] = pytest.approx(sum(per_item))
            figures["total_estimated_cost_avg"] = pytest.approx(sum(per_item) / len(per_item))
        return figures


SHOWN = (
    "trace_count",
    "dataset_item_count",
    "feedback_scores",
    "duration",
    "total_estimated_cost",
    "total_estimated_cost_avg",
)


async def check(client: httpx.AsyncClient, sent: Sent) -> None:
    got = (await client.get(f"{EXPERIMENTS}/{sent.key}")).json()
    page = (await client.get(EXPERIMENTS, params={"experiment_ids": f'["{sent.key}"]'})).json()
    streamed = await client.post(f"{EXPERIMENTS}/stream", json={"name": got["name"]})

    assert {k: got[k] for k in SHOWN if k in got} == sent.expected()
    assert page["content"] == [got]
    assert streamed.content == httpx.Response(200, json=got).content + b"\r\n"


async def add_items(client: httpx.AsyncClient, sent: Sent, *pairs: tuple[str, str]) -> None:
    items = []
    for dataset_item, trace in pairs:
        key = new_id()
        sent.items[key] = (dataset_item, trace)
        items.append(
            {
                "id": key,
                "experiment_id": sent.key,
                "dataset_item_id": dataset_item,
                "trace_id": trace,
            }
        )
    response = await client.post(f"{EXPERIMENTS}/items", json={"experiment_items": items})
    assert response.status_code == 204, response.text


async def carry(client: httpx.AsyncClient, sent: Sent, runs: dict[str, dict[str, Any]]) -> None:
    """Writes the traces of `runs` (as sent so far) with their spans and scores through one
    bulk run of another experiment, whose items leave the tested one's figures alone."""
    items = [
        {
            "dataset_item_id": new_id(),
            "trace": {
                "id": t,
                "project_name": PROJECT,
                "start_time": at(0),
                "end_time": at(sent.durations[t]),
            },
            **run,
        }
        for t, run in runs.items()
    ]
    body = {"experiment_name": CARRIER, "dataset_name": CARRIER, "items": items}
    response = await client.put(f"{EXPERIMENTS}/items/bulk", json=body)
    assert response.status_code == 204, response.text


async def add_traces(client: httpx.AsyncClient, sent: Sent, durations: dict[str, int]) -> None:
    sent.durations.update(durations)
    await carry(client, sent, {t: {} for t in durations})


async def score(client: httpx.AsyncClient, sent: Sent, name: str, values: dict[str, float]) -> None:
    runs = {t: {"feedback_scores": [{"name": name, "value": v, "source": "sdk"}]}
            for t, v in values.items()}  # fmt: skip
    await carry(client, sent, runs)
    for t, v in values.items():
        sent.scores.setdefault(t, {})[name] = v


async def add_spans(client: httpx.AsyncClient, sent: Sent, costs: dict[str, float]) -> None:
    runs = {
        t: {"spans": [{"id": new_id(), "start_time": at(0), "total_estimated_cost": cost}]}
        for t, cost in costs.items()
    }
    await carry(client, sent, runs)
    for t, cost in costs.items():
        sent.costs.setdefault(t, []).append(cost)


async def test_aggregates_stay_exact_as_items_traces_scores_and_spans_change(
    client: httpx.AsyncClient,
) -> None:
    key = new_id()
    body = {"id": key, "name": "evolving", "dataset_name": "qa", "project_name": PROJECT}
    assert (await client.post(EXPERIMENTS, json=body)).status_code == 201
    sent = Sent(key)
    await check(client, sent)  # no items: only the counts, 0

    # Six items over six traces; one trace never arrives (deleted, or not sent yet).
    traces = [new_id() for _ in range(6)]
    dataset_items = [new_id() for _ in range(5)]  # two items of one dataset item
    await add_items(client, sent, *zip([*dataset_items, dataset_items[0]], traces, strict=True))
    await check(client, sent)  # traces count though none is stored
    await add_traces(client, sent, dict(zip(traces[:5], [1200, 800, 3000, 450, 2000], strict=True)))
    await score(client, sent, "accuracy", dict(zip(traces[:5], [1, 0.5, 0, 1, 0.25], strict=True)))
    await score(client, sent, "f1", {traces[0]: 0.75})
    await add_spans(client, sent, {traces[0]: 0.5, traces[1]: 0.125})
    await check(client, sent)

    # Scores replaced, a second span, a late item re-using a trace, the missing trace at last.
    await score(client, sent, "accuracy", {traces[2]: 1, traces[3]: 0.5})
    await add_spans(client, sent, {traces[0]: 0.25})
    late = new_id()
    await add_items(client, sent, (new_id(), traces[1]), (new_id(), late))
    await check(client, sent)
    await add_traces(client, sent, {traces[5]: 5000, late: 100})
    await score(client, sent, "accuracy", {late: 0})
    await check(client, sent)

    # Items deleted: their traces leave the figures (unless another item keeps them).
    gone = [k for k, (_, t) in sent.items.items() if t in (traces[0], traces[1])][:2]
    response = await client.post(f"{EXPERIMENTS}/items/delete", json={"ids": gone})
    assert response.status_code == 204
    for k in gone:
        del sent.items[k]
    await check(client, sent)


async def test_another_workspace_sees_no_experiment_nor_its_figures(
    client: httpx.AsyncClient,
) -> None:
    key = new_id()
    body = {"id": key, "name": "private-run", "dataset_name": "qa", "project_name": PROJECT}
    assert (await client.post(EXPERIMENTS, json=body)).status_code == 201
    sent = Sent(key)
    trace = new_id()
    await add_items(client, sent, (new_id(), trace))
    await add_traces(client, sent, {trace: 1000})
    await score(client, sent, "accuracy", {trace: 1})
    groups = {"groups": '[{"field":"dataset_id"}]'}

    got = await client.get(f"{EXPERIMENTS}/{key}", headers=OTHER)
    page = (await client.get(EXPERIMENTS, headers=OTHER)).json()
    streamed = await client.post(f"{EXPERIMENTS}/stream", json={"name": "private"}, headers=OTHER)
    aggregated = await client.get(
        f"{EXPERIMENTS}/groups/aggregations", params=groups, headers=OTHER
    )
    names = await client.get(f"{EXPERIMENTS}/feedback-scores/names", headers=OTHER)
    theirs = await client.post(
        f"{EXPERIMENTS}/items",
        json={
            "experiment_items": [
                {
                    "id": new_id(),
                    "experiment_id": key,
                    "dataset_item_id": new_id(),
                    "trace_id": new_id(),
                }
            ]
        },
        headers=OTHER,
    )
    their_score = await client.put(
        f"{EXPERIMENTS}/items/bulk",
        json={
            "experiment_name": CARRIER,
            "dataset_name": CARRIER,
            "items": [
                {
                    "dataset_item_id": new_id(),
                    "trace": {"id": trace, "start_time": at(0)},
                    "feedback_scores": [{"name": "accuracy", "value": 0, "source": "sdk"}],
                }
            ],
        },
        headers=OTHER,
    )

    assert got.status_code == 404
    assert (page["total"], page["content"]) == (0, [])
    assert streamed.content == b""
    assert aggregated.json() == {"content": {}}
    assert names.json() == {"scores": []}
    assert theirs.status_code == 409
    assert their_score.status_code == 409
    await check(client, sent)  # unchanged by what the other workspace tried
