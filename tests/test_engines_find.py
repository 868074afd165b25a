"""Find, score names, groups, histograms and the item stream on both engines at once: the
same writes, then byte-identical answers to many queries, their filters and sorting on the
aggregates too (the SQLite engine reads its kept summaries, the PostgreSQL engine computes
them when read), and sums of floats whose last bit depends on the order they are added in."""

import itertools
import json
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any, cast

import httpx
import pytest

from app import clock, ids
from app.config import Settings
from app.main import create_app
from app.postgres import PostgresStore
from app.sqlite import SqliteStore
from app.store import Store
from tests.factories import new_id

pytestmark = pytest.mark.anyio

EXPERIMENTS = "/v1/private/experiments"
BULK = f"{EXPERIMENTS}/items/bulk"
START = 1_705_311_000_000_000_000  # 2024-01-15T09:30:00Z
Clients = dict[str, tuple[httpx.AsyncClient, Store]]


@pytest.fixture
async def clients(tmp_path: Path, pg_url: str) -> AsyncIterator[Clients]:
    """A client of each engine, over a new database each, and its store."""
    sqlite = await SqliteStore.open(tmp_path / "items.db")
    # cast: the engine meets the whole Store only once its port is done (app/store.py).
    postgres = cast(Store, await PostgresStore.open(pg_url))
    found: Clients = {}
    for name, store, location in (
        ("sqlite", sqlite, tmp_path / "items.db"),
        ("pg", postgres, pg_url),
    ):
        app = create_app(Settings(db=location), store=store)
        client = httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://t")
        found[name] = (client, cast(Store, store))
    yield found
    for client, _ in found.values():
        await client.aclose()
    await sqlite.close()
    await postgres.close()


def at(ms: int) -> str:
    return f"2024-01-15T09:30:{ms // 1000:02d}.{ms % 1000:03d}Z"


def run(trace: str, ms: int, scores: dict[str, float], costs: list[float]) -> dict[str, Any]:
    """A bulk item: a trace of `ms` milliseconds with its scores and one span per cost."""
    spans = [
        {"id": span, "start_time": at(0), "total_estimated_cost": cost,
         "usage": {"prompt_tokens": 10, "completion_tokens": n}}
        for n, (span, cost) in enumerate(zip(SPANS, costs, strict=False))
    ]  # fmt: skip
    return {
        "dataset_item_id": DATASET_ITEMS[len(trace) % 3],
        "trace": {"id": trace, "start_time": at(0), "end_time": at(ms), "project_name": "P"},
        "spans": spans,
        "feedback_scores": [{"name": k, "value": v, "source": "sdk"} for k, v in scores.items()],
    }


# Ids made once, so that both engines are given the same ones.
KEYS = [new_id() for _ in range(10)]
BINARY_KEYS = [bytes.fromhex(k.replace("-", "")) for k in KEYS]
TRACES = [new_id() for _ in range(40)]
SPANS = [new_id() for _ in range(3)]
DATASET_ITEMS = [new_id() for _ in range(3)]
EXPERIMENTS_SENT: list[dict[str, Any]] = [
    {"name": "Nightly-A", "dataset_name": "qa", "project_name": "P",
     "metadata": {"model": "gpt", "temp": 0.5, "ok": True, "n": 3, "deep": {"k": "v"}},
     "tags": ["nightly", "Big"]},
    {"name": "nightly-b", "dataset_name": "qa", "metadata": {"model": "GPT-4", "temp": 1.5},
     "tags": ["nightly"]},
    {"name": "ÉTÉ run", "dataset_name": "QA", "metadata": {"model": "claude", "note": "été"}},
    {"name": "été weekly", "dataset_name": "other", "metadata": {"model": "", "n": 10},
     "tags": []},
    {"name": "empty", "dataset_name": "other", "metadata": {"model": None}},
    {"name": "plain", "dataset_name": "qa", "project_name": "Q"},
    {"name": "tie-1", "dataset_name": "qa", "metadata": {"model": "gpt"}},
    {"name": "tie-2", "dataset_name": "qa", "metadata": {"model": "gpt"}},
    {"name": "sums", "dataset_name": "qa", "metadata": {"model": "sums"}},
]  # fmt: skip
# Floats whose sum depends on the order they are added in (0.1 + 0.2 + 0.3 is not 0.3 + 0.2 +
# 0.1): each engine must add them in the same order.
ORDERED_SCORES = [0.1, 0.2, 0.3, 0.7, 0.6, 0.3]
ORDERED_COSTS = [0.3, 0.2, 0.1]  # by descending span id
# Per experiment: the runs recorded (trace index, ms, scores, costs).
RUNS = {
    0: [(0, 1200, {"accuracy": 1, "F1": 0.5}, [0.5, 0.25]), (1, 800, {"accuracy": 0.5}, [0.125])],
    1: [(2, 3000, {"accuracy": 0.25, "Accuracy": 1}, []), (3, 450, {"f1": 0.75}, [1.0])],
    2: [(4, 100, {"accuracy": 0.75}, [0.1, 0.2, 0.3])],
    3: [(5, 5000, {"accuracy": 0.75, "recall": 0.1}, [2.5]), (6, 10, {}, [])],
    6: [(7, 1000, {"accuracy": 0.5}, [0.5])],
    7: [(8, 1000, {"accuracy": 0.5}, [0.5])],
}
SCORED: dict[int, list[tuple[str, float]]] = {
    0: [("f1", 0.5), ("pass", 1)], 1: [("f1", 0.25)], 3: [("F1", 2)]
}  # fmt: skip


async def populate(client: httpx.AsyncClient, moment: list[int]) -> None:
    """The same writes on either engine, each at its own moment."""
    for n, (key, body) in enumerate(
        zip(KEYS[: len(EXPERIMENTS_SENT)], EXPERIMENTS_SENT, strict=True)
    ):
        moment[0] = START + n * 1_000_000
        response = await client.post(EXPERIMENTS, json={"id": key, **body})
        assert response.status_code == 201, response.text
    for n, runs in RUNS.items():
        moment[0] += 1_000_000
        items = [run(TRACES[t], ms, scores, costs[: len(SPANS)]) for t, ms, scores, costs in runs]
        for item, (t, *_) in zip(items, runs, strict=True):
            for span, s in zip(item["spans"], SPANS, strict=False):
                span["id"] = SPAN_IDS[(t, s)]
        body = {"experiment_id": KEYS[n], "experiment_name": "x", "dataset_name":
                EXPERIMENTS_SENT[n]["dataset_name"], "items": items}  # fmt: skip
        response = await client.put(BULK, json=body)
        assert response.status_code == 204, response.text
    moment[0] += 1_000_000
    # Numbers past a double's range, sent as text: json.dumps cannot write them.
    raw = (
        f'{{"id": "{KEYS[9]}", "name": "huge", "dataset_name": "qa", "metadata": '
        '{"big": 1e400, "tiny": 1e-400, "neg": -1e400, "model": 12.50, "x1": 0.30000000000000004,'
        ' "x2": 1E20, "x3": 1e5, "x4": 9223372036854775808, "x5": -0, "x6": 2.0, "x7": 1.5e-7,'
        ' "obj": {"a": [1, 2.50, "x y"], "b" : true}, "list": [ "p q" ,3 ]}}'
    )
    # In a workspace of its own: groups reads metadata with msgspec, which refuses them.
    headers = {"Content-Type": "application/json", **HUGE}
    assert (await client.post(EXPERIMENTS, content=raw, headers=headers)).status_code == 201
    moment[0] += 1_000_000
    sums = [
        {
            "dataset_item_id": DATASET_ITEMS[0],
            "trace": {"id": TRACES[20 + n], "start_time": at(0), "end_time": at(10 * n + 1)},
            "spans": [
                {
                    "id": span,
                    "start_time": at(0),
                    "total_estimated_cost": cost,
                    "usage": {"tokens": 1},
                }
                for span, cost in zip(SUM_SPANS[n], ORDERED_COSTS, strict=True)
            ],
            "feedback_scores": [{"name": "accuracy", "value": value, "source": "sdk"}],
        }
        for n, value in enumerate(ORDERED_SCORES)
    ]
    body = {"experiment_id": KEYS[8], "experiment_name": "x", "dataset_name": "qa", "items": sums}
    assert (await client.put(BULK, json=body)).status_code == 204
    for n, scores in SCORED.items():
        moment[0] += 1_000_000
        update = {"experiment_scores": [{"name": k, "value": v} for k, v in scores]}
        response = await client.patch(f"{EXPERIMENTS}/{KEYS[n]}", json=update)
        assert response.status_code == 204, response.text


SUM_SPANS = [sorted((new_id() for _ in ORDERED_COSTS), reverse=True) for _ in ORDERED_SCORES]
SPAN_IDS = {(t, s): new_id() for t in range(40) for s in SPANS}

SORTED = [
    "id", "name", "created_at", "last_updated_at", "created_by", "last_updated_by", "tags",
    "trace_count", "total_estimated_cost", "total_estimated_cost_avg", "feedback_scores.accuracy",
    "feedback_scores.F1", "feedback_scores.none", "experiment_scores.f1", "experiment_scores.F1",
    "duration.p50", "duration.p90", "duration.p99",
]  # fmt: skip


def _filters(*entries: tuple[str, str, str, str]) -> dict[str, str]:
    return {"filters": json.dumps([dict(zip(("field", "operator", "key", "value"), e, strict=True))
                                   for e in entries])}  # fmt: skip


FILTERS = [
    *[_filters(("metadata", op, "model", v)) for op in
      ("contains", "not_contains", "starts_with", "ends_with", "=", "!=", ">", "<")
      for v in ("gpt", "GPT", "", "t")],
    *[_filters(("metadata", op, key, "")) for op in ("is_empty", "is_not_empty")
      for key in ("model", "n", "deep", "missing", "ok")],
    *[_filters(("metadata", op, key, v)) for op, key, v in
      (("=", "ok", "1"), ("=", "ok", "true"), (">", "temp", "1"), ("<", "n", "5"),
       (">", "model", "a"), ("=", "deep.k", "v"), ("contains", "note", "ÉT"),
       ("contains", "note", "été"), ("=", "temp", "0.5"), ("=", "n", "3"))],
    *[_filters(("tags", op, "", v)) for op in ("contains", "not_contains", "=", "!=")
      for v in ("nightly", "big", "Big")],
    *[_filters(("tags", op, "", "")) for op in ("is_empty", "is_not_empty")],
    *[_filters(("feedback_scores", op, name, v)) for op in ("=", "!=", ">", ">=", "<", "<=")
      for name, v in (("accuracy", "0.5"), ("ACCURACY", "0.75"), ("f1", "0.5"))],
    *[_filters(("feedback_scores", op, name, "")) for op in ("is_empty", "is_not_empty")
      for name in ("accuracy", "F1", "recall")],
    *[_filters(("experiment_scores", op, name, v)) for op in ("=", "!=", ">", "<")
      for name, v in (("f1", "0.25"), ("F1", "1"), ("pass", "1"))],
    *[_filters(("experiment_scores", op, "f1", "")) for op in ("is_empty", "is_not_empty")],
    _filters(("metadata", "=", "model", "gpt"), ("feedback_scores", ">", "accuracy", "0.4")),
    _filters(("project_id", "=", "", "x")),
]  # fmt: skip
HUGE = {"Comet-Workspace": "huge"}
HUGE_FILTERS = [
    *[_filters(("metadata", op, key, v)) for op in (">", "<") for key, v in
      (("big", "5"), ("tiny", "0"), ("tiny", "1e-300"), ("neg", "0"), ("model", "12"))],
    *[_filters(("metadata", op, key, "")) for op in ("is_empty", "is_not_empty")
      for key in ("big", "tiny")],
    *[_filters(("metadata", op, key, v)) for op, key, v in
      (("=", "model", "12.5"), ("=", "model", "12.50"), ("=", "x1", "0.3"),
       ("contains", "x2", "0e+2"), ("=", "x3", "100000.0"), ("starts_with", "x4", "9.22337"),
       ("=", "x5", "0"), ("=", "big", "Inf"), ("=", "neg", "-Inf"), ("ends_with", "x6", ".0"),
       ("=", "x7", "1.5e-07"), ("=", "tiny", "0.0"), ("=", "obj", '{"a":[1,2.50,"x y"],"b":true}'),
       ("contains", "obj", '"x y"'), ("contains", "obj", ", "), ("=", "list", '["p q",3]'))],
]  # fmt: skip


def queries() -> list[dict[str, str]]:
    found: list[dict[str, str]] = [{}, {"size": "3"}, {"page": "2", "size": "3"}]
    found += [{"name": n} for n in ("nightly", "NIGHTLY", "été", "ÉTÉ", "t", "nothing")]
    found += [{"sorting": json.dumps([{"field": f, "direction": d}])}
              for f in SORTED for d in ("ASC", "DESC")]  # fmt: skip
    found += FILTERS
    found += [{**f, "sorting": json.dumps([{"field": "feedback_scores.accuracy"}]), "size": "2"}
              for f in FILTERS[::7]]  # fmt: skip
    found += [{"experiment_ids": json.dumps(KEYS[1:4])}, {"types": '["regular"]'}]
    found += [{"dataset_deleted": "true"}, {"project_deleted": "true"}]
    return found


async def answers(client: httpx.AsyncClient, moment: list[int]) -> list[tuple[int, bytes]]:
    moment[0] = START + 10**12  # reads at one later moment on both
    got = []
    for params in queries():
        response = await client.get(EXPERIMENTS, params=params)
        got.append((response.status_code, response.content))
    for grouping in ('[{"field":"dataset_id"},{"field":"metadata","key":"model"}]',
                     '[{"field":"tags"}]', '[{"field":"project_id"}]'):  # fmt: skip
        for path in ("groups", "groups/aggregations"):
            response = await client.get(f"{EXPERIMENTS}/{path}", params={"groups": grouping})
            got.append((response.status_code, response.content))
    for params in (
        {},
        {"experiment_ids": json.dumps(KEYS)},
        {"experiment_ids": json.dumps(KEYS[:2])},
    ):
        response = await client.get(f"{EXPERIMENTS}/feedback-scores/names", params=params)
        got.append((response.status_code, response.content))
    for params in HUGE_FILTERS:
        response = await client.get(EXPERIMENTS, params=params, headers=HUGE)
        got.append((response.status_code, response.content))
    for sent in EXPERIMENTS_SENT:
        body = {"experiment_name": sent["name"], "limit": 100}
        response = await client.post(f"{EXPERIMENTS}/items/stream", json=body)
        got.append((response.status_code, response.content))
    return got


def counting_ids() -> Callable[[], bytes]:
    """Ids made in the same order on both engines: the same ids."""
    counter = itertools.count(1)
    return lambda: b"\x01\x90" + next(counter).to_bytes(14, "big")


async def test_both_engines_answer_every_find_byte_for_byte(
    clients: Clients, monkeypatch: pytest.MonkeyPatch
) -> None:
    moment = [START]
    monkeypatch.setattr(clock, "now_ns", lambda: moment[0])
    got: dict[str, list[tuple[int, bytes]]] = {}
    charts = {}
    for name, (client, store) in clients.items():
        monkeypatch.setattr(ids, "uuid7", counting_ids())
        await populate(client, moment)
        got[name] = await answers(client, moment)
        got[name] += await answers(client, moment)  # SQLite's second read: kept summaries
        charts[name] = await store.histograms("default", BINARY_KEYS)

    assert len(got["pg"]) == len(got["sqlite"])
    for n, (ours, theirs) in enumerate(zip(got["sqlite"], got["pg"], strict=True)):
        assert theirs == ours, n
    assert charts["pg"] == charts["sqlite"]
    assert charts["sqlite"][BINARY_KEYS[0]].scores["accuracy"].values == 2
    assert sum(b'"id"' in content for _, content in got["sqlite"]) > 100  # they found things
