"""Kept experiment summaries (app/sqlite/summaries.py): never served once what they were
computed from changed, whatever changed it, and equal to the aggregates computed afresh."""

import json
import random
import sqlite3
from collections.abc import AsyncIterator
from contextlib import closing
from pathlib import Path
from typing import Any

import httpx
import pytest

from app import ids
from app.config import Settings
from app.main import create_app
from app.sqlite import SqliteStore, summaries
from app.sqlite.connection import Database
from tests.factories import new_id

pytestmark = pytest.mark.anyio

EXPERIMENTS = "/v1/private/experiments"
TRACES = "/v1/private/traces"
SPANS = "/v1/private/spans"


@pytest.fixture
async def store(db: Database) -> AsyncIterator[SqliteStore]:
    opened = SqliteStore(db)
    yield opened
    await opened.summaries.close()


@pytest.fixture
async def api(store: SqliteStore, db_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(Settings(db=db_path), store=store)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
        yield c


def kept(db_path: Path) -> dict[str, bytes]:
    with closing(sqlite3.connect(db_path)) as conn:
        rows = conn.execute("SELECT hex(experiment_id), summary FROM experiment_summaries")
        return {key.lower(): summary for key, summary in rows}


def forget(db_path: Path) -> None:
    with closing(sqlite3.connect(db_path)) as conn, conn:
        conn.execute("DELETE FROM experiment_summaries")


def instant(second: int) -> str:
    return f"2024-01-15T09:{second // 60:02d}:{second % 60:02d}Z"


def ok(response: httpx.Response) -> None:
    assert response.status_code in (200, 201, 204), response.text


class Evaluation:
    """Two experiments and what a run of random writes put in them, through the API."""

    def __init__(self, api: httpx.AsyncClient, rng: random.Random) -> None:
        self.api, self.rng = api, rng
        self.experiments = [new_id(), new_id()]
        self.items: dict[str, tuple[str, str]] = {}  # item id: (experiment, trace)
        self.traces: list[str] = []
        self.scored: list[tuple[str, str]] = []
        self.spans: list[str] = []

    async def start(self) -> None:
        for key in self.experiments:
            body = {"id": key, "name": f"run {key[-4:]}", "dataset_name": "qa"}
            ok(await self.api.post(EXPERIMENTS, json=body))

    async def add_items(self, with_traces: bool) -> None:
        experiment = self.rng.choice(self.experiments)
        items = []
        for _ in range(self.rng.randint(1, 3)):
            item, trace = new_id(), new_id()
            self.items[item] = (experiment, trace)
            items.append(
                {"id": item, "experiment_id": experiment, "trace_id": trace,
                 "dataset_item_id": new_id()}
            )  # fmt: skip
            if with_traces:
                await self.add_trace(trace)
        ok(await self.api.post(f"{EXPERIMENTS}/items", json={"experiment_items": items}))

    async def add_trace(self, trace: str | None = None) -> None:
        # Late: a trace an item named before it was sent.
        if trace is None:
            named = {t for _, t in self.items.values()} - set(self.traces)
            if not named:
                return
            trace = sorted(named)[0]
        start = self.rng.randint(0, 100)
        body = {"id": trace, "name": "task", "start_time": instant(start),
                "end_time": instant(start + self.rng.randint(1, 50))}  # fmt: skip
        ok(await self.api.post(f"{TRACES}/batch", json={"traces": [body]}))
        self.traces.append(trace)

    async def end_trace_later(self) -> None:
        if self.traces:
            trace = self.rng.choice(self.traces)
            body = {"end_time": instant(self.rng.randint(101, 200))}
            ok(await self.api.patch(f"{TRACES}/{trace}", json=body))

    async def add_span(self) -> None:
        # A third of them send a span again with another cost, as @track does.
        if self.spans and self.rng.random() < 0.3:
            span = self.rng.choice(self.spans)
        elif self.traces:
            span = new_id()
            self.spans.append(span)
        else:
            return
        if self.traces:
            body = {
                "id": span, "trace_id": self.rng.choice(self.traces), "name": "llm",
                "type": "llm", "start_time": instant(0),
                "total_estimated_cost": self.rng.choice([0.25, 0.5, 1.5]),
                "usage": {"prompt_tokens": self.rng.randint(1, 99)},
            }  # fmt: skip
            ok(await self.api.post(f"{SPANS}/batch", json={"spans": [body]}))

    async def score(self) -> None:
        # Half of them replace a score already given.
        if self.scored and self.rng.random() < 0.5:
            trace, name = self.rng.choice(self.scored)
        elif self.traces:
            trace, name = self.rng.choice(self.traces), self.rng.choice(["accuracy", "f1"])
            self.scored.append((trace, name))
        else:
            return
        value = self.rng.choice([0, 0.25, 0.5, 1])
        body = {"id": trace, "source": "sdk", "name": name, "value": value}
        ok(await self.api.put(f"{TRACES}/feedback-scores", json={"scores": [body]}))

    async def delete_item(self) -> None:
        if self.items:
            item = self.rng.choice(sorted(self.items))
            del self.items[item]
            body = {"ids": [item]}
            ok(await self.api.post(f"{EXPERIMENTS}/items/delete", json=body))

    async def delete_trace(self) -> None:
        # Its spans and scores go with it; an item naming it stays, and may get it back later.
        if self.traces:
            trace = self.rng.choice(self.traces)
            self.traces.remove(trace)
            self.scored = [(t, name) for t, name in self.scored if t != trace]
            ok(await self.api.post(f"{TRACES}/delete", json={"ids": [trace]}))

    async def delete_score(self) -> None:
        if self.scored:
            trace, name = self.rng.choice(self.scored)
            self.scored.remove((trace, name))
            body = {"name": name}
            ok(await self.api.post(f"{TRACES}/{trace}/feedback-scores/delete", json=body))

    async def move_item(self) -> None:
        # The same item sent again, into another experiment.
        if self.items:
            item = self.rng.choice(sorted(self.items))
            experiment, trace = self.items[item]
            moved = next(key for key in self.experiments if key != experiment)
            self.items[item] = (moved, trace)
            body = {"id": item, "experiment_id": moved, "trace_id": trace,
                    "dataset_item_id": new_id()}  # fmt: skip
            ok(await self.api.post(f"{EXPERIMENTS}/items", json={"experiment_items": [body]}))

    async def step(self) -> None:
        choices = [
            lambda: self.add_items(with_traces=True),
            lambda: self.add_items(with_traces=False),
            self.add_trace,
            self.end_trace_later,
            self.add_span,
            self.score,
            self.delete_item,
            self.move_item,
            self.delete_trace,
            self.delete_score,
        ]
        await self.rng.choice(choices)()

    async def shown(self) -> list[Any]:
        found = []
        for key in self.experiments:
            response = await self.api.get(f"{EXPERIMENTS}/{key}")
            assert response.status_code == 200, response.text
            found.append(response.json())
        return found


async def test_a_kept_summary_is_never_served_after_a_write_changed_what_it_sums(
    api: httpx.AsyncClient, store: SqliteStore, db_path: Path
) -> None:
    evaluation = Evaluation(api, random.Random(7))
    await evaluation.start()
    for _ in range(60):
        await evaluation.shown()
        await store.summaries.idle()
        assert len(kept(db_path)) == 2  # what the next read is served from, if still valid

        await evaluation.step()
        first = await evaluation.shown()
        await store.summaries.idle()
        from_kept = await evaluation.shown()
        forget(db_path)
        afresh = await evaluation.shown()

        assert first == from_kept == afresh
    shown = await evaluation.shown()
    assert sum(e["trace_count"] for e in shown) == len(evaluation.items)


async def test_a_write_empties_the_summaries_of_the_experiments_it_touches_only(
    api: httpx.AsyncClient, store: SqliteStore, db_path: Path
) -> None:
    evaluation = Evaluation(api, random.Random(1))
    await evaluation.start()
    one, other = evaluation.experiments
    evaluation.experiments = [one]
    await evaluation.add_items(with_traces=True)
    evaluation.experiments = [one, other]
    await evaluation.shown()
    await store.summaries.idle()
    assert set(kept(db_path)) == {key.replace("-", "") for key in (one, other)}

    await evaluation.score()

    assert set(kept(db_path)) == {other.replace("-", "")}


async def test_a_trace_span_or_score_empties_the_summaries_whose_trace_range_holds_it(
    api: httpx.AsyncClient, store: SqliteStore, db_path: Path
) -> None:
    # The triggers find a summary by the least and greatest trace id of its items: a write at
    # either end of that range, or inside a range of one, must reach it; one outside must not.
    evaluation = Evaluation(api, random.Random(5))
    evaluation.experiments = [new_id(), new_id()]
    await evaluation.start()
    wide, single = evaluation.experiments
    first, middle, last, only = new_id(), new_id(), new_id(), new_id()
    items = [(wide, first), (wide, middle), (wide, last), (single, only)]
    body = [{"id": new_id(), "experiment_id": e, "trace_id": t, "dataset_item_id": new_id()}
            for e, t in items]  # fmt: skip
    ok(await api.post(f"{EXPERIMENTS}/items", json={"experiment_items": body}))

    async def kept_after(write: Any) -> set[str]:
        await evaluation.shown()
        await store.summaries.idle()
        assert len(kept(db_path)) == 2
        ok(await write)
        left = set(kept(db_path))
        return {key for key in (wide, single) if key.replace("-", "") not in left}

    def trace(key: str) -> Any:
        start = {"id": key, "name": "task", "start_time": instant(1), "end_time": instant(2)}
        return api.post(f"{TRACES}/batch", json={"traces": [start]})

    def span(key: str) -> Any:
        body = {"id": new_id(), "trace_id": key, "name": "llm", "start_time": instant(1),
                "total_estimated_cost": 0.5}  # fmt: skip
        return api.post(f"{SPANS}/batch", json={"spans": [body]})

    def score(key: str) -> Any:
        body = {"id": key, "source": "sdk", "name": "f1", "value": 1}
        return api.put(f"{TRACES}/feedback-scores", json={"scores": [body]})

    assert await kept_after(trace(first)) == {wide}
    assert await kept_after(trace(last)) == {wide}
    assert await kept_after(trace(only)) == {single}
    assert await kept_after(span(only)) == {single}
    assert await kept_after(score(only)) == {single}
    assert await kept_after(span(middle)) == {wide}
    assert await kept_after(trace(new_id())) == set()  # newer than every range
    assert await kept_after(api.patch(f"{TRACES}/{first}", json={"end_time": instant(9)})) == {wide}
    shown = {e["id"]: e for e in await evaluation.shown()}
    assert shown[wide]["trace_count"] == 3
    assert shown[single]["trace_count"] == 1
    assert shown[single]["total_estimated_cost"] == 0.5
    assert shown[single]["feedback_scores"] == [{"name": "f1", "value": 1}]


async def test_the_find_page_reads_kept_summaries_and_keeps_the_missing_ones(
    api: httpx.AsyncClient, store: SqliteStore, db_path: Path
) -> None:
    evaluation = Evaluation(api, random.Random(3))
    await evaluation.start()
    for _ in range(4):
        await evaluation.add_items(with_traces=True)
        await evaluation.score()

    first = (await api.get(EXPERIMENTS)).json()
    await store.summaries.idle()
    assert len(kept(db_path)) == 2
    again = (await api.get(EXPERIMENTS)).json()

    assert first == again
    assert sorted(e["id"] for e in again["content"]) == sorted(evaluation.experiments)


@pytest.mark.parametrize(
    ("removal", "left"),
    [
        ("DELETE FROM feedback_scores", 1),
        ("DELETE FROM spans", 1),
        ("DELETE FROM traces", 1),
        ("DELETE FROM experiments", 0),
    ],
)
async def test_removing_what_a_summary_sums_empties_it_whoever_removes_it(
    api: httpx.AsyncClient, store: SqliteStore, db_path: Path, removal: str, left: int
) -> None:
    # No route deletes traces, spans or scores yet; an import or a later route will, and the
    # schema's triggers hold for any writer.
    evaluation = Evaluation(api, random.Random(5))
    await evaluation.start()
    both = evaluation.experiments
    evaluation.experiments = both[:1]
    await evaluation.add_items(with_traces=True)
    await evaluation.add_span()
    await evaluation.score()
    evaluation.experiments = both
    await evaluation.shown()
    await store.summaries.idle()
    assert len(kept(db_path)) == 2

    with closing(sqlite3.connect(db_path)) as conn, conn:
        conn.execute(removal)

    assert len(kept(db_path)) == left


SORTED_BY = [
    "trace_count",
    "total_estimated_cost",
    "total_estimated_cost_avg",
    "feedback_scores.accuracy",
    "feedback_scores.Accuracy",
    "duration.p50",
    "duration.p90",
    "duration.p99",
]
SCORE_FILTERS = [
    {"field": "feedback_scores", "key": "ACCURACY", "operator": ">", "value": "0.4"},
    {"field": "feedback_scores", "key": "f1", "operator": "<=", "value": "0.5"},
    {"field": "feedback_scores", "key": "accuracy", "operator": "is_empty", "value": ""},
    {"field": "feedback_scores", "key": "f1", "operator": "is_not_empty", "value": ""},
]


async def test_find_sorts_and_filters_the_same_by_kept_summaries_as_by_live_ones(
    api: httpx.AsyncClient, store: SqliteStore, db_path: Path
) -> None:
    rng = random.Random(11)
    evaluation = Evaluation(api, rng)
    evaluation.experiments = []
    for _ in range(8):
        one = Evaluation(api, rng)
        one.experiments = one.experiments[:1]
        await one.start()
        for _ in range(rng.randint(0, 3)):
            await one.add_items(with_traces=rng.random() < 0.8)
            await one.add_span()
            await one.score()
        evaluation.experiments += one.experiments
    # A name in another case only: filters fold it into "accuracy", sorting does not.
    upper = Evaluation(api, rng)
    upper.experiments = upper.experiments[:1]
    await upper.start()
    await upper.add_items(with_traces=True)
    for trace in upper.traces:
        scores = [{"id": trace, "name": "Accuracy", "value": 0.75, "source": "sdk"}]
        ok(await api.put(f"{TRACES}/feedback-scores", json={"scores": scores}))
    evaluation.experiments += upper.experiments

    async def found(**params: str) -> list[str]:
        response = await api.get(EXPERIMENTS, params={"size": "100", **params})
        assert response.status_code == 200, response.text
        return [e["id"] for e in response.json()["content"]]

    queries = [
        {"sorting": f'[{{"field":"{field}","direction":"{direction}"}}]'}
        for field in SORTED_BY
        for direction in ("ASC", "DESC")
    ] + [{"filters": f"[{json.dumps(f)}]"} for f in SCORE_FILTERS]
    for query in queries:
        await store.summaries.idle()
        forget(db_path)
        live = await found(**query)
        await store.summaries.idle()
        assert len(kept(db_path)) == len(evaluation.experiments)
        assert await found(**query) == live, query
        await store.summaries.idle()
        with closing(sqlite3.connect(db_path)) as conn, conn:  # some kept, some not
            conn.execute(
                "DELETE FROM experiment_summaries WHERE experiment_id IN "
                "(SELECT experiment_id FROM experiment_summaries LIMIT 3)"
            )
        assert await found(**query) == live, query


async def test_histograms_are_kept_with_the_summary_and_emptied_with_it(
    store: SqliteStore, api: httpx.AsyncClient, db_path: Path
) -> None:
    experiment, trace = new_id(), new_id()
    item = {"dataset_item_id": new_id(), "trace": {"id": trace, "start_time": instant(0),
            "end_time": instant(2)}, "feedback_scores": [{"name": "q", "value": 0.25,
            "source": "sdk"}]}  # fmt: skip
    body = {"experiment_name": "h", "experiment_id": experiment, "dataset_name": "qa",
            "items": [item]}  # fmt: skip
    ok(await api.put("/v1/private/experiments/items/bulk", json=body))
    key = ids.parse(experiment)
    assert key is not None

    first = await store.histograms("default", [key])  # computed on the reader, then kept
    await store.summaries.idle()
    blob = kept(db_path)[key.hex()]
    score = {"id": trace, "name": "q", "value": 0.75, "source": "sdk"}
    ok(await api.put(f"{TRACES}/feedback-scores", json={"scores": [score]}))
    emptied = kept(db_path)
    after = await store.histograms("default", [key])

    assert first[key].scores["q"].total == 0.25
    assert summaries.decode(blob).histograms == first[key]
    duration = first[key].duration
    assert duration is not None
    assert duration.total == 2000.0
    assert key.hex() not in emptied  # the score changed what it counts
    assert after[key].scores["q"].total == 0.75
