"""Datasets, their items, prompt versions and the web UI's dataset reads at the Store, on both
engines (`engine` = sqlite | postgresql): one winner when two workspaces race for one id, one
dataset or prompt when two writes make one name, the UI's reads, and the same bytes for the
same writes."""

import asyncio
import itertools
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any, cast

import msgspec
import pytest

from app import clock, ids
from app.dataset_records import (
    DatasetItemRecord,
    DatasetItemsRecord,
    DatasetRecord,
    ItemFilter,
    PromptVersionRecord,
)
from app.records import Conflict, ExperimentRecord, ItemRecord
from app.store import CoreStore, Store
from tests.conftest import open_core_store
from tests.factories import counting_ids
from tests.inserts import Insert, inserter, trace

pytestmark = pytest.mark.anyio

JAN_15 = 1_705_311_000_120_000_000  # 2024-01-15T09:30:00.120Z
ROUNDS = 20


async def open_store(location: Path | str) -> Store:
    # cast: the PostgreSQL engine meets the whole Store only once its port is done.
    return cast(Store, await open_core_store(location))


@pytest.fixture
async def store(core_store: CoreStore) -> Store:
    return cast(Store, core_store)


@pytest.fixture
async def insert(location: Path | str) -> AsyncIterator[Insert]:
    into, close = await inserter(location)
    yield into
    await close()


def dataset(key: bytes, name: str) -> DatasetRecord:
    return DatasetRecord(key, name, None, None, "dataset", "private", None, None)


def items(name: str | None, *rows: DatasetItemRecord, dataset_id: bytes | None = None) -> Any:
    return DatasetItemsRecord(dataset_id, name, None, None, rows)


def sdk(key: bytes, data: str) -> DatasetItemRecord:
    return DatasetItemRecord(key, "sdk", data)


def prompt(name: str, template: str = "Hi {{n}}") -> PromptVersionRecord:
    return PromptVersionRecord(name, template, None, "mustache", None, None, "text")


def one_winner(outcomes: Sequence[object]) -> tuple[str, str, Conflict]:
    """Of the outcomes of two writes racing from workspaces a and b (asyncio.gather's, with
    return_exceptions): the winner's workspace, the loser's, and the loser's Conflict."""
    assert sorted(type(o).__name__ for o in outcomes) == ["Conflict", "NoneType"], outcomes
    winner, loser = ("a", "b") if outcomes[0] is None else ("b", "a")
    lost = outcomes[1] if winner == "a" else outcomes[0]
    assert isinstance(lost, Conflict)
    return winner, loser, lost


async def test_two_workspaces_racing_for_one_dataset_id_give_one_winner(
    location: Path | str,
) -> None:
    first, second = await open_store(location), await open_store(location)
    try:
        for n in range(ROUNDS):
            key = ids.uuid7()
            outcomes = await asyncio.gather(
                first.create_dataset("a", "ann", dataset(key, f"ann{n}")),
                second.create_dataset("b", "bob", dataset(key, f"bob{n}")),
                return_exceptions=True,
            )

            winner, loser, lost = one_winner(outcomes)
            assert str(lost) == f"Dataset '{ids.to_str(key)}' belongs to another workspace"
            stored = await first.get_dataset(winner, key)
            assert stored is not None
            assert stored.name == ("ann" if winner == "a" else "bob") + str(n)
            assert await first.get_dataset(loser, key) is None
            assert await first.find_dataset(loser, stored.name) is None
    finally:
        await first.close()
        await second.close()


async def test_two_workspaces_racing_for_one_dataset_item_id_give_one_winner(
    location: Path | str,
) -> None:
    first, second = await open_store(location), await open_store(location)
    try:
        for n in range(ROUNDS):
            key = ids.uuid7()
            outcomes = await asyncio.gather(
                first.upsert_dataset_items(
                    "a", "ann", items(f"d{n}", sdk(key, f'{{"by": "ann{n}"}}'))
                ),
                second.upsert_dataset_items(
                    "b", "bob", items(f"d{n}", sdk(key, f'{{"by": "bob{n}"}}'))
                ),
                return_exceptions=True,
            )

            winner, loser, lost = one_winner(outcomes)
            assert str(lost) == f"Dataset item '{ids.to_str(key)}' belongs to another workspace"
            (stored,) = await first.stream_dataset_items(winner, f"d{n}", None, 10)
            assert stored.id == ids.to_str(key)
            assert (
                bytes(stored.data) == f'{{"by": "{"ann" if winner == "a" else "bob"}{n}"}}'.encode()
            )
            assert await first.find_dataset(loser, f"d{n}") is None  # rolled back whole
    finally:
        await first.close()
        await second.close()


async def test_two_workspaces_racing_for_one_prompt_id_give_one_winner(
    location: Path | str,
) -> None:
    first, second = await open_store(location), await open_store(location)
    try:
        for n in range(ROUNDS):
            key = ids.uuid7()
            records = [
                msgspec.structs.replace(prompt(f"{who}{n}", f"{who} {{{{x}}}}"), prompt_id=key)
                for who in ("ann", "bob")
            ]
            outcomes = await asyncio.gather(
                first.create_prompt_version("a", "ann", records[0], True),
                second.create_prompt_version("b", "bob", records[1], True),
                return_exceptions=True,
            )

            names = sorted(type(o).__name__ for o in outcomes)
            assert names == ["Conflict", "PromptVersion"], outcomes
            won = 0 if not isinstance(outcomes[0], BaseException) else 1
            lost = outcomes[1 - won]
            assert str(lost) == f"Prompt '{ids.to_str(key)}' belongs to another workspace"
            winner, loser = ("a", "b")[won], ("a", "b")[1 - won]
            latest = await first.find_prompt_version(winner, records[won].name, None)
            assert latest is not None
            assert (latest.prompt_id, latest.template) == (ids.to_str(key), records[won].template)
            assert await first.find_prompt_version(loser, records[1 - won].name, None) is None
    finally:
        await first.close()
        await second.close()


async def test_writes_making_one_name_at_once_make_one_dataset_and_one_prompt(
    location: Path | str,
) -> None:
    first, second = await open_store(location), await open_store(location)
    try:
        for n in range(ROUNDS):
            keys = sorted(ids.uuid7() for _ in range(2))
            await asyncio.gather(
                first.upsert_dataset_items("a", "ann", items(f"D{n}", sdk(keys[0], '{"a": 1}'))),
                second.upsert_dataset_items("a", "bob", items(f"d{n}", sdk(keys[1], '{"a": 2}'))),
            )
            found = await first.find_dataset("a", f"d{n}")
            assert found is not None
            assert found.dataset_items_count == 2
            made = await asyncio.gather(
                first.create_dataset("a", "ann", dataset(ids.uuid7(), f"same{n}")),
                second.create_dataset("a", "bob", dataset(ids.uuid7(), f"SAME{n}")),
                return_exceptions=True,
            )
            assert sorted(type(o).__name__ for o in made) == ["Conflict", "NoneType"], made
            versions = await asyncio.gather(
                first.create_prompt_version("a", "ann", prompt(f"P{n}"), False),
                second.create_prompt_version("a", "bob", prompt(f"p{n}"), False),
            )
            assert versions[0].prompt_id == versions[1].prompt_id
            latest = await first.find_prompt_version("a", f"p{n}", None)
            assert latest is not None
            assert latest.id == max(v.id for v in versions)
    finally:
        await first.close()
        await second.close()


async def _comparison(store: Store, insert: Insert) -> tuple[bytes, list[bytes], list[bytes]]:
    """Dataset "used" of workspace w: six items d[0] < ... < d[5], run by two experiments,
    each cell with its trace's output and scores as the comments say."""
    d = sorted(ids.uuid7() for _ in range(6))
    rows = [sdk(key, f'{{"n": {n}}}') for n, key in enumerate(d)]
    rows[0] = sdk(d[0], '{"q": "a NEEDLE here", "w": "Ärger"}')
    await store.upsert_dataset_items("w", "ann", items("used", *rows))
    experiments = [ids.uuid7(), ids.uuid7()]
    for e in experiments:
        await store.create_experiment("w", "ann", ExperimentRecord(e, "run", "used", None, None))
    found = await store.find_dataset("w", "used")
    assert found is not None
    project = ids.uuid7()
    cells: list[tuple[int, int, dict[str, Any] | None]] = [
        (0, 0, {"output": '"same"', "scores": {"s": [1.0]}}),
        (0, 1, {"output": '"same"', "scores": {"s": [0.5, 1.5]}}),  # the same average
        (1, 0, {"output": '"A"'}),
        (1, 1, {"output": '"B has a needle"'}),  # outputs differ
        (2, 0, {"output": '"x"'}),  # the other experiment has no item
        (3, 0, {"output": '"x"', "scores": {"s": [0.5]}}),
        (3, 1, {"output": '"x"', "scores": {"s": [0.50001]}}),  # shown alike: 0.5
        (4, 0, {"output": '"x"', "scores": {"s": [0.5]}}),
        (4, 1, {"output": '"x"', "scores": {"s": [0.5001]}}),  # shown otherwise: 0.5001
        (5, 0, {}),  # a trace without output or scores...
        (5, 1, None),  # ...and one that is not stored
    ]
    written = []
    for n, run, told in cells:
        key = ids.uuid7()
        written.append(ItemRecord(ids.uuid7(), experiments[run], d[n], key, None, None))
        if told is not None:
            await trace(insert, "w", key, project, JAN_15, output=told.get("output"),
                        scores=told.get("scores"))  # fmt: skip
    await store.upsert_items("w", "ann", written)
    return ids.parse(found.id) or b"", experiments, d


async def test_the_ui_lists_workspaces_and_datasets_newest_experiment_first(
    store: Store,
) -> None:
    old, used, later = ids.uuid7(), ids.uuid7(), ids.uuid7()
    await store.create_dataset("w", "ann", dataset(old, "old"))
    await store.create_dataset("w", "ann", dataset(used, "used"))
    await store.create_dataset("w", "ann", dataset(later, "later"))
    await store.create_experiment(
        "w", "ann", ExperimentRecord(ids.uuid7(), "e", "used", None, None)
    )
    await store.create_experiment("v", "bob", ExperimentRecord(ids.uuid7(), "e", "V", None, None))

    shown = await store.list_datasets("w")

    assert [d.name for d in shown] == ["used", "later", "old"]
    assert [d.experiment_count for d in shown] == [1, 0, 0]
    assert [d.name for d in await store.list_datasets("v")] == ["V"]
    assert await store.list_datasets("nobody") == []
    assert await store.list_workspaces(10) == ["v", "w"]
    assert await store.list_workspaces(1) == ["v"]


async def test_the_ui_finds_the_items_that_hold_a_text_or_differ(
    store: Store, insert: Insert
) -> None:
    dataset_id, experiments, d = await _comparison(store, insert)

    async def matching(text: str | None, differences: bool, page: int = 1, size: int = 10) -> Any:
        return await store.matching_dataset_items("w", experiments, text, differences, page, size)

    assert await matching(None, False) == (d[::-1], 6)
    # ASCII letters match whatever their case, in the outputs or the dataset item; others as
    # they are (SQLite's lower()).
    assert await matching("needle", False) == ([d[1], d[0]], 2)
    assert await matching("ärger", False) == ([], 0)
    assert await matching("Ärger", False) == ([d[0]], 1)
    assert await matching(None, True) == ([d[5], d[4], d[2], d[1]], 4)
    assert await matching("NEEDLE", True) == ([d[1]], 1)
    assert await matching(None, True, page=2, size=3) == ([d[1]], 4)
    assert await matching(None, True, page=3, size=3) == ([], 4)
    assert await matching("nowhere", True, page=2) == ([], 0)
    assert await store.matching_dataset_items("w", [ids.uuid7()], None, False, 1, 10) == ([], 0)

    rows = await store.compare_rows("w", dataset_id, experiments, [d[1], d[0], d[2]], True)

    assert [row.id for row in rows] == [ids.to_str(k) for k in (d[1], d[0], d[2])]
    assert [len(row.experiment_items) for row in rows] == [2, 2, 1]
    outputs = [bytes(i.output) for i in rows[0].experiment_items]  # type: ignore[arg-type]
    assert sorted(outputs) == [b'"A"', b'"B has a needle"']
    assert bytes(rows[1].data) == '{"q": "a NEEDLE here", "w": "Ärger"}'.encode()
    assert await store.compare_rows("other", dataset_id, experiments, [d[0]], True) == [
        msgspec.structs.replace(rows[1], experiment_items=[], data=msgspec.Raw(b"{}"),
                                source=msgspec.UNSET, description=msgspec.UNSET,
                                tags=[], created_at=msgspec.UNSET, last_updated_at=msgspec.UNSET,
                                created_by=msgspec.UNSET, last_updated_by=msgspec.UNSET),
    ]  # fmt: skip


async def _answers(location: Path | str) -> list[bytes]:
    """What the store answers, encoded as the API encodes it, after one fixed set of writes."""
    store = await open_store(location)
    insert, close = await inserter(location)
    encode = msgspec.json.Encoder().encode
    try:
        await store.create_dataset("w", "ann", DatasetRecord(
            ids.uuid7(), "Made", None, "Proj", "evaluation_suite", "public", '["t", "u"]', "About",
        ))  # fmt: skip
        data = '{"q": "data:image/png;base64,iVBORw0KGgoAAAANSUhEUg==",  "n": [1, 2.50, 1e2]}'
        rows = [
            DatasetItemRecord(
                ids.uuid7(),
                "sdk",
                data,
                tags='["x"]',
                description="d",
                evaluators='[{"k": 1}]',
                execution_policy='{"runs_per_item": 2}',
            )
        ]
        rows += [sdk(ids.uuid7(), f'{{"n": {n}, "tag": "T{n % 2}"}}') for n in range(5)]
        await store.upsert_dataset_items("w", "ann", items("made", *rows))
        await store.upsert_dataset_items("w", "bob", items("Fresh", rows[1], rows[2]))
        fresh = await store.find_dataset("w", "fresh")
        assert fresh is not None
        fresh_id = ids.parse(fresh.id) or b""
        dataset_id, experiments, _ = await _comparison(store, insert)
        made = await store.find_dataset("w", "made")
        assert made is not None
        made_id = ids.parse(made.id) or b""
        await store.delete_dataset_items("w", [rows[3].id], None)
        tagged = (ItemFilter("data", "=", "tag", "T1"),)
        answers = [encode(await store.find_dataset("w", n)) for n in ("made", "fresh", "used")]
        answers += [encode(await store.get_dataset("w", k)) for k in (made_id, fresh_id)]
        for filters in ((), tagged, (ItemFilter("full_data", "contains", "", "2.50"),)):
            streamed = await store.stream_dataset_items("w", "made", None, 3, filters)
            streamed += await store.stream_dataset_items(
                "w", "made", ids.parse(streamed[-1].id), 10, filters
            )
            answers += [encode(i) for i in streamed]
            for truncate in (True, False):
                page, total = await store.page_dataset_items("w", made_id, 2, 2, truncate, filters)
                answers += [encode(i) for i in page] + [str(total).encode()]
        for truncate in (True, False):
            compared, total = await store.compare_dataset_items(
                "w", dataset_id, experiments, 1, 4, truncate
            )
            answers += [encode(row) for row in compared] + [str(total).encode()]
        await store.delete_dataset_items("w", [], made_id, tagged)
        answers.append(encode(await store.page_dataset_items("w", made_id, 1, 10, False)))
        await store.delete_dataset("w", fresh_id)
        answers.append(encode(await store.list_datasets("w")))
        first = await store.create_prompt_version("w", "ann", PromptVersionRecord(
            "Greeter", "Hi {{n}} {{#s}}{{m}}{{/s}}", '{"a": [1, 2.50]}', "mustache", "why",
            '["b", "a"]', "chat", prompt_id=ids.uuid7(), description="d", prompt_tags='["p"]',
        ), True)  # fmt: skip
        await store.create_prompt_version("w", "bob", prompt("greeter", "Yo"), False)
        answers.append(encode(first))
        answers.append(encode(await store.find_prompt_version("w", "GREETER", None)))
        answers.append(encode(await store.find_prompt_version("w", "greeter", first.commit)))
        answers.append(encode(await store.get_prompt_version("w", ids.parse(first.id) or b"")))
        return answers
    finally:
        await close()
        await store.close()


async def test_the_same_writes_give_the_same_bytes_on_both_engines(
    tmp_path: Path, pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(clock, "now_ns", itertools.count(JAN_15, 1_000).__next__)
    monkeypatch.setattr(ids, "uuid7", counting_ids())
    on_sqlite = await _answers(tmp_path / "items.db")
    monkeypatch.setattr(clock, "now_ns", itertools.count(JAN_15, 1_000).__next__)
    monkeypatch.setattr(ids, "uuid7", counting_ids())
    on_postgres = await _answers(pg_url)

    shown = b"\n".join(on_sqlite)
    for expected in (
        b'"[image]"',
        b"2.50, 1e2",
        b'"runs_per_item":2',
        b'"evaluation_suite"',
        b'"variables":["n","m"]',
        b'"feedback_scores"',
        b'"output":"x"',
    ):
        assert expected in shown, expected  # fmt: skip
    assert on_postgres == on_sqlite
