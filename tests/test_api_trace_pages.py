"""The span search and the trace and span pages over HTTP: Opik's searchSpans,
getTracesByProject and getSpansByProject (opik-reference/datasets-traces.md §3.6-3.7), newest
id first, with the trace search's cursor and filters."""

import json
from typing import Any

import httpx
import pytest

from tests.factories import new_id

pytestmark = pytest.mark.anyio

API = "/api/v1/private"
T0 = "2024-01-15T09:30:00Z"


async def ok(response: Any) -> httpx.Response:
    answer: httpx.Response = await response
    assert answer.status_code in (200, 204), answer.text
    return answer


async def traces_of(client: httpx.AsyncClient, project: str, count: int) -> list[str]:
    keys = sorted(new_id() for _ in range(count))
    body = {"traces": [{"id": k, "project_name": project, "start_time": T0} for k in keys]}
    await ok(client.post(f"{API}/traces/batch", json=body))
    return keys


async def spans_of(
    client: httpx.AsyncClient, trace_id: str, project: str, *kinds: str
) -> list[str]:
    keys = sorted(new_id() for _ in kinds)
    spans = [
        {"id": k, "trace_id": trace_id, "project_name": project, "start_time": T0,
         "type": kind, "name": f"{kind} step"}
        for k, kind in zip(keys, kinds, strict=True)
    ]  # fmt: skip
    await ok(client.post(f"{API}/spans/batch", json={"spans": spans}))
    return keys


def ids_of(response: httpx.Response) -> list[str]:
    return [json.loads(line)["id"] for line in response.content.split(b"\r\n") if line]


async def test_the_span_search_pages_newest_first_by_cursor(client: httpx.AsyncClient) -> None:
    [trace_id] = await traces_of(client, "Spans", 1)
    keys = await spans_of(client, trace_id, "Spans", "llm", "tool", "general")
    [other] = await traces_of(client, "Elsewhere", 1)
    await spans_of(client, other, "Elsewhere", "llm")
    search = f"{API}/spans/search"

    first = await ok(client.post(search, json={"project_name": "spans", "limit": 2}))
    cursor = ids_of(first)[-1]
    second = await ok(
        client.post(search, json={"project_name": "Spans", "limit": 2, "last_retrieved_id": cursor})
    )

    assert first.headers["content-type"] == "application/octet-stream"
    assert first.content.endswith(b"\r\n")
    assert ids_of(first) + ids_of(second) == keys[::-1]
    line = json.loads(first.content.split(b"\r\n")[0])
    assert (line["trace_id"], line["project_id"]) == (trace_id, line["project_id"])


async def test_the_span_search_takes_trace_type_and_filters(client: httpx.AsyncClient) -> None:
    one, two = await traces_of(client, "P", 2)
    llm, tool = await spans_of(client, one, "P", "llm", "tool")
    [elsewhere] = await spans_of(client, two, "P", "llm")
    scores = [
        {"id": llm, "name": "acc", "value": 0.9, "source": "sdk"},
        {"id": elsewhere, "name": "acc", "value": 0.1, "source": "sdk"},
    ]
    await ok(client.put(f"{API}/spans/feedback-scores", json={"scores": scores}))
    search = f"{API}/spans/search"
    by_score = [{"field": "feedback_scores", "operator": ">=", "key": "acc", "value": "0.5"}]
    by_name = [{"field": "name", "operator": "starts_with", "key": "", "value": "tool"}]

    of_trace = await ok(client.post(search, json={"project_name": "P", "trace_id": one}))
    of_type = await ok(client.post(search, json={"project_name": "P", "type": "llm"}))
    scored = await ok(client.post(search, json={"project_name": "P", "filters": by_score}))
    named = await ok(client.post(search, json={"project_name": "P", "filters": by_name}))

    assert sorted(ids_of(of_trace)) == sorted([llm, tool])
    assert sorted(ids_of(of_type)) == sorted([llm, elsewhere])
    assert ids_of(scored) == [llm]
    assert ids_of(named) == [tool]
    [line] = [json.loads(x) for x in scored.content.split(b"\r\n") if x]
    assert line["feedback_scores"][0]["value_by_author"]["admin"]["value"] == 0.9


async def test_the_span_search_needs_a_known_project(client: httpx.AsyncClient) -> None:
    search = f"{API}/spans/search"
    neither = await client.post(search, json={"limit": 2})
    unknown = await client.post(search, json={"project_name": "Ghost"})
    bad_type = await client.post(search, json={"project_name": "Ghost", "type": "robot"})

    assert (neither.status_code, neither.json()["code"]) == (400, 400)
    assert (unknown.status_code, unknown.content) == (
        404,
        b'{"code":404,"message":"Project name: Ghost not found"}',
    )
    assert bad_type.status_code == 422


async def test_the_trace_page_counts_all_and_pages_newest_first(
    client: httpx.AsyncClient,
) -> None:
    keys = await traces_of(client, "Paged", 5)
    await traces_of(client, "Other", 1)

    pages = [
        (
            await ok(
                client.get(f"{API}/traces", params={"project_name": "Paged", "page": n, "size": 2})
            )
        ).json()
        for n in (1, 2, 3, 4)
    ]

    assert [(p["page"], p["size"], p["total"]) for p in pages] == [
        (1, 2, 5), (2, 2, 5), (3, 1, 5), (4, 0, 5),
    ]  # fmt: skip
    assert [t["id"] for p in pages for t in p["content"]] == keys[::-1]
    assert list(pages[0]) == ["page", "size", "total", "content", "sortable_by"]
    assert "span_count" in pages[0]["content"][0]


async def test_the_trace_page_filters_and_refuses_bad_filters(client: httpx.AsyncClient) -> None:
    good, bad = await traces_of(client, "F", 2)
    scores = [
        {"id": good, "name": "acc", "value": 0.9, "source": "sdk"},
        {"id": bad, "name": "acc", "value": 0.1, "source": "sdk"},
    ]
    await ok(client.put(f"{API}/traces/feedback-scores", json={"scores": scores}))
    filters = [{"field": "feedback_scores", "operator": ">", "key": "acc", "value": "0.5"}]

    found = await ok(
        client.get(f"{API}/traces", params={"project_name": "F", "filters": json.dumps(filters)})
    )
    broken = await client.get(f"{API}/traces", params={"project_name": "F", "filters": "[{"})
    neither = await client.get(f"{API}/traces")
    unknown = await ok(client.get(f"{API}/traces", params={"project_name": "Ghost"}))

    assert ([t["id"] for t in found.json()["content"]], found.json()["total"]) == ([good], 1)
    assert (broken.status_code, broken.json()) == (
        400,
        {"code": 400, "message": "Invalid filters query parameter '[{'"},
    )
    assert neither.status_code == 400
    assert unknown.json() == {"page": 1, "size": 0, "total": 0, "content": [], "sortable_by": []}


async def test_the_span_page_is_of_a_trace_when_asked(client: httpx.AsyncClient) -> None:
    one, two = await traces_of(client, "S", 2)
    mine = await spans_of(client, one, "S", "llm", "general", "tool")
    await spans_of(client, two, "S", "llm")

    page = await ok(
        client.get(f"{API}/spans", params={"project_name": "S", "trace_id": one, "size": 2})
    )
    everything = await ok(client.get(f"{API}/spans", params={"project_name": "S"}))
    typed = await ok(client.get(f"{API}/spans", params={"project_name": "S", "type": "tool"}))
    huge = await ok(
        client.get(f"{API}/spans", params={"project_name": "S", "page": 2**62, "size": 2**62})
    )

    body = page.json()
    assert (body["size"], body["total"]) == (2, 3)
    assert [s["id"] for s in body["content"]] == mine[::-1][:2]
    assert everything.json()["total"] == 4
    assert [s["id"] for s in typed.json()["content"]] == [mine[2]]
    assert (huge.json()["content"], huge.json()["total"]) == ([], 4)
