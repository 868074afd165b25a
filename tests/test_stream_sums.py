"""A stream never dies mid-answer because of one stored row: span usage that an import stored
as given, whose sum overflows 64 bits, still streams every item (the probe's D1)."""

import json
from pathlib import Path

import httpx
import pytest

from app import ids
from app.config import Settings
from app.main import create_app
from app.sqlite import SqliteStore
from tests.command import run

pytestmark = pytest.mark.anyio

BIG = 2**63 - 1  # each fits; their sum does not
NOW = "2025-01-15T09:30:00Z"


def _id() -> str:
    return ids.to_str(ids.uuid7())


def _audit() -> dict[str, str]:
    return {"created_at": NOW, "last_updated_at": NOW, "created_by": "a", "last_updated_by": "a"}


async def test_a_usage_sum_beyond_64_bits_does_not_cut_the_stream(tmp_path: Path) -> None:
    db = tmp_path / "items.db"
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
    source = tmp_path / "in.jsonl"
    source.write_text("".join(json.dumps(line) + "\n" for line in lines))
    imported = run("import", "--db", str(db), str(source))
    assert imported.returncode == 0, imported.stderr
    # The stream finds items by experiment name: name the experiment the items refer to.
    store = await SqliteStore.open(db)
    try:
        async with store.db.transaction() as conn:
            await conn.execute(
                "INSERT INTO datasets (id, workspace, name, name_key, created_at, created_by,"
                " last_updated_at, last_updated_by)"
                " VALUES (?, 'default', 'd', 'd', 0, 'a', 0, 'a')",
                (ids.parse(project),),
            )
            await conn.execute(
                "INSERT INTO experiments (id, workspace, name, dataset_id, type, "
                "evaluation_method, created_at, created_by, last_updated_at, last_updated_by) "
                "VALUES (?, 'default', 'x', ?, 'regular', 'dataset', 0, 'a', 0, 'a')",
                (ids.parse(experiment), ids.parse(project)),
            )
        app = create_app(Settings(db=db), store=store)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            answer = await client.post(
                "/v1/private/experiments/items/stream", json={"experiment_name": "x"}
            )
    finally:
        await store.close()

    found = [json.loads(line) for line in answer.text.splitlines()]
    assert answer.status_code == 200
    assert sorted(item["trace_id"] for item in found) == sorted([trace, other_trace])
    summed = next(item for item in found if item["trace_id"] == trace)
    assert summed["usage"]["total_tokens"] == float(2 * BIG)
