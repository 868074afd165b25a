"""Traces, spans, feedback scores and projects over HTTP: the reference's checklist, items
10 to 14 and 17 (opik-reference/datasets-traces.md, section 8)."""

import gzip
import hashlib
import json
from typing import Any

import httpx
import pytest

from app.auth import ApiKey
from app.config import Settings
from app.main import create_app
from app.store import Store
from tests.factories import new_id

pytestmark = pytest.mark.anyio

TRACES = "/v1/private/traces"
SPANS = "/v1/private/spans"
T0 = "2024-01-15T09:30:00Z"
T1 = "2024-01-15T09:30:01Z"
T2 = "2024-01-15T09:30:02Z"


def trace(**fields: Any) -> dict[str, Any]:
    return {"id": new_id(), "project_name": "Bots", "name": "t", "start_time": T0, **fields}


async def post_traces(client: httpx.AsyncClient, *traces: dict[str, Any]) -> None:
    response = await client.post(f"{TRACES}/batch", json={"traces": list(traces)})
    assert response.status_code == 204, response.text


async def get(client: httpx.AsyncClient, path: str) -> dict[str, Any]:
    response = await client.get(path)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


@pytest.mark.parametrize("order", ["older first", "newer first"])
async def test_the_newest_last_updated_at_wins_whatever_the_arrival_order(
    client: httpx.AsyncClient, order: str
) -> None:
    key = new_id()
    older = trace(id=key, input={"v": 1}, last_updated_at=T1)
    newer = trace(id=key, input={"v": 2}, output={"o": 2}, last_updated_at=T2)
    first, second = (older, newer) if order == "older first" else (newer, older)

    await post_traces(client, first)
    await post_traces(client, second)

    body = await get(client, f"{TRACES}/{key}")
    assert (body["input"], body["output"]) == ({"v": 2}, {"o": 2})
    assert body["last_updated_at"] == T2


async def test_the_same_id_twice_in_a_batch_keeps_the_newer(client: httpx.AsyncClient) -> None:
    key = new_id()
    await post_traces(
        client,
        trace(id=key, name="new", last_updated_at=T2),
        trace(id=key, name="old", last_updated_at=T1),
    )

    assert (await get(client, f"{TRACES}/{key}"))["name"] == "new"


async def test_a_trace_reads_in_opiks_order_with_its_span_sums_and_scores(
    client: httpx.AsyncClient,
) -> None:
    key = new_id()
    await post_traces(client, trace(id=key, end_time=T1, input={"q": 1}, tags=["a"]))
    spans = [
        {"id": new_id(), "trace_id": key, "project_name": "Bots", "start_time": T0,
         "type": kind, "usage": {"tokens": 3}, "total_estimated_cost": 0.5, "provider": "openai"}
        for kind in ("llm", "tool", "general")
    ]  # fmt: skip
    assert (await client.post(f"{SPANS}/batch", json={"spans": spans})).status_code == 204
    score = {"id": key, "name": "acc", "value": 0.5, "source": "sdk", "reason": None,
             "category_name": None, "project_name": "Bots"}  # fmt: skip
    assert (
        await client.put(f"{TRACES}/feedback-scores", json={"scores": [score]})
    ).status_code == 204

    body = await get(client, f"/api{TRACES}/{key}")

    assert list(body) == [
        "id", "project_id", "name", "start_time", "end_time", "input", "tags", "usage",
        "created_at", "last_updated_at", "created_by", "last_updated_by", "feedback_scores",
        "total_estimated_cost", "span_count", "duration", "visibility_mode", "llm_span_count",
        "has_tool_spans", "providers",
    ]  # fmt: skip
    assert body["usage"] == {"tokens": 9}
    assert body["total_estimated_cost"] == 1.5
    assert (body["span_count"], body["llm_span_count"], body["has_tool_spans"]) == (3, 1, True)
    assert body["duration"] == 1000.0
    assert body["providers"] == ["openai"]
    assert [(s["name"], s["value"]) for s in body["feedback_scores"]] == [("acc", 0.5)]
    project = await get(client, f"/v1/private/projects/{body['project_id']}")
    assert list(project) == [
        "id", "name", "visibility", "created_at", "created_by", "last_updated_at",
        "last_updated_by",
    ]  # fmt: skip
    assert (project["name"], project["visibility"]) == ("Bots", "private")
    span = await get(client, f"{SPANS}/{spans[0]['id']}")
    assert (span["trace_id"], span["type"], span["usage"]) == (key, "llm", {"tokens": 3})


async def test_a_trace_without_spans_still_has_its_counts(client: httpx.AsyncClient) -> None:
    key = new_id()
    await post_traces(client, trace(id=key, project_name=None))

    body = await get(client, f"{TRACES}/{key}")

    assert (body["span_count"], body["llm_span_count"], body["has_tool_spans"]) == (0, 0, False)
    project = await get(client, f"/v1/private/projects/{body['project_id']}")
    assert project["name"] == "Default Project"


async def test_a_patch_first_is_kept_and_merged_into_the_create(client: httpx.AsyncClient) -> None:
    key = new_id()
    patched = await client.patch(
        f"{TRACES}/{key}", json={"project_name": "Bots", "end_time": T2, "output": {"a": 1}}
    )
    assert patched.status_code == 204
    partial = await client.get(f"{TRACES}/{key}")  # only the PATCH so far: not readable

    await post_traces(client, trace(id=key, name="late", input={"q": 1}, last_updated_at=T0))

    assert partial.status_code == 404
    body = await get(client, f"{TRACES}/{key}")
    assert (body["name"], body["input"], body["output"]) == ("late", {"q": 1}, {"a": 1})
    assert (body["start_time"], body["end_time"]) == (T0, T2)


async def test_a_patch_replaces_the_given_fields_and_edits_tags(client: httpx.AsyncClient) -> None:
    key = new_id()
    await post_traces(client, trace(id=key, input={"q": 1}, output={"a": 0}, tags=["x", "y"]))

    response = await client.patch(
        f"{TRACES}/{key}", json={"output": {"a": 1}, "tags_to_add": ["z"], "tags_to_remove": ["x"]}
    )

    assert response.status_code == 204
    body = await get(client, f"{TRACES}/{key}")
    assert (body["input"], body["output"], body["tags"]) == ({"q": 1}, {"a": 1}, ["y", "z"])


async def test_a_span_patch_first_is_merged_and_needs_its_trace_id(
    client: httpx.AsyncClient,
) -> None:
    key, trace_id = new_id(), new_id()
    missing = await client.patch(f"{SPANS}/{key}", json={"end_time": T1})
    patched = await client.patch(
        f"{SPANS}/{key}", json={"trace_id": trace_id, "end_time": T1, "output": {"o": 1}}
    )
    span = {"id": key, "trace_id": trace_id, "name": "s", "start_time": T0, "input": {"i": 1}}
    created = await client.post(f"{SPANS}/batch", json={"spans": [span]})

    assert missing.status_code == 422
    assert missing.json() == {"errors": ["trace_id must not be null"]}
    assert (patched.status_code, created.status_code) == (204, 204)
    body = await get(client, f"{SPANS}/{key}")
    assert (body["name"], body["input"], body["output"], body["end_time"]) == (
        "s", {"i": 1}, {"o": 1}, T1,
    )  # fmt: skip


async def test_scores_replace_by_name_and_need_no_trace(client: httpx.AsyncClient) -> None:
    key = new_id()
    scores = f"{TRACES}/feedback-scores"
    first = {"id": key, "name": "acc", "value": 0.1, "source": "sdk", "reason": None}
    assert (await client.put(scores, json={"scores": [first]})).status_code == 204
    again = {**first, "value": 0.9, "reason": "better", "category_name": "c"}
    assert (await client.put(scores, json={"scores": [again]})).status_code == 204
    await post_traces(client, trace(id=key))

    body = await get(client, f"{TRACES}/{key}")

    assert [(s["value"], s["reason"], s["category_name"]) for s in body["feedback_scores"]] == [
        (0.9, "better", "c")
    ]


@pytest.mark.parametrize(
    ("score", "error"),
    [
        ({"name": "acc", "source": "sdk"}, "scores[0].value must not be null"),
        ({"name": "acc", "value": 1}, "scores[0].source must not be null"),
        ({"name": "acc", "value": 2e9, "source": "sdk"}, "scores[0].value"),
        ({"name": "acc", "value": 1, "source": "robot"}, "scores[0].source"),
        ({"name": " ", "value": 1, "source": "sdk"}, "scores[0].name"),
    ],
)
async def test_a_bad_score_is_a_422_naming_it(
    client: httpx.AsyncClient, score: dict[str, Any], error: str
) -> None:
    response = await client.put(
        f"{TRACES}/feedback-scores", json={"scores": [{"id": new_id(), **score}]}
    )

    assert response.status_code == 422
    assert response.json()["errors"][0].startswith(error)


async def test_a_nan_score_is_a_422_and_nan_in_free_json_is_null(
    client: httpx.AsyncClient,
) -> None:
    key = new_id()
    body = json.dumps({"traces": [trace(id=key, metadata={"m": float("nan")})]})
    score = json.dumps(
        {"scores": [{"id": key, "name": "a", "value": float("inf"), "source": "sdk"}]}
    )
    headers = {"Content-Type": "application/json"}

    stored = await client.post(f"{TRACES}/batch", content=body, headers=headers)
    scored = await client.put(f"{TRACES}/feedback-scores", content=score, headers=headers)

    assert stored.status_code == 204
    assert (await get(client, f"{TRACES}/{key}"))["metadata"] == {"m": None}
    assert scored.status_code == 422
    assert "scores[0].value" in scored.json()["errors"][0]


async def test_missing_reads_answer_opiks_404_bodies(client: httpx.AsyncClient) -> None:
    key = new_id()

    responses = [
        await client.get(f"{TRACES}/{key}"),
        await client.get(f"{SPANS}/{key}"),
        await client.get(f"/v1/private/projects/{key}"),
        await client.post("/v1/private/projects/retrieve", json={"name": "nope"}),
        await client.get(f"{TRACES}/not-a-uuid"),
    ]

    assert [(r.status_code, r.content) for r in responses] == [
        (404, b'{"code":404,"message":"Trace id: %s not found"}' % key.encode()),
        (404, b'{"code":404,"message":"Span id: %s not found"}' % key.encode()),
        (404, b'{"errors":["Project not found"]}'),
        (404, b'{"errors":["Project not found"]}'),
        (404, b'{"code":404,"message":"HTTP 404 Not Found"}'),
    ]


async def test_projects_are_retrieved_by_name_case_insensitively(
    client: httpx.AsyncClient,
) -> None:
    await post_traces(client, trace(project_name="My Bots"))

    found = await client.post("/v1/private/projects/retrieve", json={"name": "my bots"})
    blank = await client.post("/v1/private/projects/retrieve", json={"name": " "})

    assert (found.status_code, found.json()["name"]) == (200, "My Bots")
    assert blank.status_code == 422


async def test_the_search_pages_newest_first_in_one_project(client: httpx.AsyncClient) -> None:
    keys = sorted(new_id() for _ in range(3))
    await post_traces(client, *[trace(id=key, project_name="Paged") for key in keys])
    await post_traces(client, trace(project_name="Other"))
    search = f"{TRACES}/search"

    first = await client.post(search, json={"project_name": "paged", "limit": 2})
    last_id = first.content.split(b"\r\n")[-2]
    cursor = json.loads(last_id)["id"]
    second = await client.post(
        search, json={"project_name": "Paged", "limit": 2, "last_retrieved_id": cursor}
    )

    assert first.headers["content-type"] == "application/octet-stream"
    assert first.content.endswith(b"\r\n")
    lines = [json.loads(line) for line in (first.content + second.content).split(b"\r\n") if line]
    assert [line["id"] for line in lines] == keys[::-1]


async def test_the_search_applies_name_and_score_filters(client: httpx.AsyncClient) -> None:
    good, bad = trace(name="alpha run", project_name="F"), trace(name="beta", project_name="F")
    await post_traces(client, good, bad)
    scores = [
        {"id": good["id"], "name": "acc", "value": 0.9, "source": "sdk"},
        {"id": bad["id"], "name": "acc", "value": 0.1, "source": "sdk"},
    ]
    await client.put(f"{TRACES}/feedback-scores", json={"scores": scores})
    by_score = [{"field": "feedback_scores", "operator": ">", "key": "acc", "value": "0.5",
                 "type": "feedback_scores_number"}]  # fmt: skip
    by_name = [{"field": "name", "operator": "contains", "key": "", "value": "ALPHA"}]

    for filters in (by_score, by_name):
        response = await client.post(
            f"{TRACES}/search", json={"project_name": "F", "filters": filters}
        )
        found = [json.loads(line)["id"] for line in response.content.split(b"\r\n") if line]
        assert found == [good["id"]], filters


async def test_the_search_needs_a_known_project(client: httpx.AsyncClient) -> None:
    neither = await client.post(f"{TRACES}/search", json={"limit": 2})
    unknown = await client.post(f"{TRACES}/search", json={"project_name": "Ghost"})
    too_many = await client.post(f"{TRACES}/search", json={"project_name": "x", "limit": 2001})

    assert (neither.status_code, neither.content) == (
        400,
        b'{"code":400,"message":"Either \'project_name\' or \'project_id\' query params must '
        b'be provided"}',
    )
    assert (unknown.status_code, unknown.content) == (
        404,
        b'{"code":404,"message":"Project name: Ghost not found"}',
    )
    assert too_many.status_code == 422


async def test_creates_refuse_bad_ids_and_missing_start_times(client: httpx.AsyncClient) -> None:
    v4 = "0b7a2f5e-1c3d-4e5f-8a9b-0c1d2e3f4a5b"

    no_start = await client.post(f"{TRACES}/batch", json={"traces": [{"id": new_id()}]})
    not_v7 = await client.post(f"{TRACES}/batch", json={"traces": [trace(id=v4)]})
    empty = await client.post(f"{TRACES}/batch", json={"traces": []})
    span_no_trace = await client.post(f"{SPANS}/batch", json={"spans": [{"start_time": T0}]})

    assert no_start.status_code == 422
    assert no_start.json() == {"errors": ["traces[0].start_time must not be null"]}
    assert (not_v7.status_code, not_v7.json()) == (
        400,
        {
            "code": 400,
            "message": "Invalid UUID for traces[0].id",
            "details": "Trace id must be a version 7 UUID",
        },
    )
    assert empty.status_code == 422
    assert span_no_trace.status_code == 422


async def test_single_creates_answer_201_with_their_location(client: httpx.AsyncClient) -> None:
    created = await client.post(f"/api{TRACES}", json={"start_time": T0, "name": "one"})
    key = created.headers["location"].rsplit("/", 1)[1]
    span = await client.post(SPANS, json={"trace_id": key, "start_time": T0})

    assert created.status_code == 201
    assert created.headers["location"] == f"http://test/api{TRACES}/{key}"
    assert (await get(client, f"{TRACES}/{key}"))["name"] == "one"
    assert span.status_code == 201
    assert (await get(client, span.headers["location"].removeprefix("http://test")))[
        "trace_id"
    ] == key


async def test_gzip_and_charset_bodies_are_accepted(client: httpx.AsyncClient) -> None:
    big = trace(input={"text": "x" * 6_000_000})
    body = gzip.compress(json.dumps({"traces": [big]}).encode())
    headers = {"Content-Encoding": "gzip", "Content-Type": "application/json;charset=utf-8"}

    response = await client.post(f"{TRACES}/batch", content=body, headers=headers)

    assert response.status_code == 204
    assert len((await get(client, f"{TRACES}/{big['id']}"))["input"]["text"]) == 6_000_000


async def test_auth_answers_for_the_requests_workspace(client: httpx.AsyncClient) -> None:
    checked = await client.post("/v1/private/auth", json={})
    named = await client.get("/api/v1/private/auth/workspace", headers={"Comet-Workspace": "w1"})

    assert checked.status_code == 204
    assert named.json() == {"workspace_name": "w1"}


async def test_an_id_of_another_workspace_is_a_409_and_changes_nothing(
    client_store: tuple[Settings, Store],
) -> None:
    keys = (
        ApiKey(hashlib.sha256(b"ann-key").digest(), "one", "ann"),
        ApiKey(hashlib.sha256(b"ben-key").digest(), "two", "ben"),
    )
    settings, store = client_store
    app = create_app(settings, store=store, api_keys=keys)
    transport = httpx.ASGITransport(app=app)
    base, as_ann, as_ben = "http://test", {"Authorization": "ann-key"}, {"Authorization": "ben-key"}
    async with (
        httpx.AsyncClient(transport=transport, base_url=base, headers=as_ann) as ann,
        httpx.AsyncClient(transport=transport, base_url=base, headers=as_ben) as ben,
    ):
        key, span_id = new_id(), new_id()
        await post_traces(ann, trace(id=key, name="ann's"))
        span = {"id": span_id, "trace_id": key, "start_time": T0}
        assert (await ann.post(f"{SPANS}/batch", json={"spans": [span]})).status_code == 204

        answers = [
            await ben.post(f"{TRACES}/batch", json={"traces": [trace(id=key), trace()]}),
            await ben.patch(f"{TRACES}/{key}", json={"name": "ben's"}),
            await ben.post(f"{SPANS}/batch", json={"spans": [span]}),
            await ben.patch(f"{SPANS}/{span_id}", json={"trace_id": key, "name": "x"}),
            await ben.put(
                f"{TRACES}/feedback-scores",
                json={"scores": [{"id": key, "name": "a", "value": 1, "source": "sdk"}]},
            ),
        ]
        read = await ben.get(f"{TRACES}/{key}")
        search = await ben.post(f"{TRACES}/search", json={"project_name": "Bots"})

        assert [a.status_code for a in answers] == [409] * 5
        assert answers[0].json()["message"] == f"Trace '{key}' belongs to another workspace"
        assert read.status_code == 404
        assert search.status_code == 404  # Ben's batch was refused whole: no project either
        body = await get(ann, f"{TRACES}/{key}")
        assert (body["name"], body["span_count"]) == ("ann's", 1)
        assert "feedback_scores" not in body


async def test_non_finite_numbers_are_null_in_a_trace_and_a_422_as_a_score(
    client: httpx.AsyncClient,
) -> None:
    # What json.dumps(allow_nan=True), the SDK's serializer, writes for a metric's NaN: the
    # body parses only once the bare tokens are read as null (contract, "Datasets, ...").
    key = new_id()
    body = (
        f'{{"traces": [{{"id": "{key}", "start_time": "{T0}", "output": {{"score": NaN, '
        '"range": [-Infinity, Infinity], "text": "NaN stays text"}}]}'
    ).encode()
    json_type = {"Content-Type": "application/json"}
    sent = await client.post(f"{TRACES}/batch", content=body, headers=json_type)
    score = f'{{"scores": [{{"id": "{key}", "name": "m", "value": NaN, "source": "sdk"}}]}}'
    scored = await client.put(f"{TRACES}/feedback-scores", content=score, headers=json_type)

    assert sent.status_code == 204, sent.text
    assert (await get(client, f"{TRACES}/{key}"))["output"] == {
        "score": None, "range": [None, None], "text": "NaN stays text"
    }  # fmt: skip
    assert scored.status_code == 422
    assert scored.json()["errors"] == ["scores[0].value must not be null"]
