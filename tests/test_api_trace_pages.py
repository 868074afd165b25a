"""The span search and the trace and span pages over HTTP: Opik's searchSpans,
getTracesByProject and getSpansByProject (opik-reference/datasets-traces.md §3.6-3.7), newest
id first, with the trace search's cursor and filters."""

import json
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from app import ids
from app.trace_queries import SPAN_SORTABLE_BY, TRACE_SORTABLE_BY
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
    # Opik's TracePage.empty lists the sortable fields too.
    assert unknown.json() == {
        "page": 1, "size": 0, "total": 0, "content": [], "sortable_by": TRACE_SORTABLE_BY
    }  # fmt: skip


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


# --- Time ranges, exclude, sorting and search (issue 11's remaining gaps) ------------------

MS_2024 = 1_705_311_000_000  # 2024-01-15T09:30:00Z in milliseconds


def id_at(ms: int) -> str:
    """A UUID v7 made at `ms`: Opik bounds `from_time`/`to_time` by the id's instant."""
    rest = int.from_bytes(ids.uuid7(), "big") & (2**80 - 1)
    return ids.to_str((ms << 80 | rest).to_bytes(16, "big"))


def at(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="milliseconds")


async def traces_at(client: httpx.AsyncClient, project: str, *times_ms: int) -> list[str]:
    keys = [id_at(ms) for ms in times_ms]
    body = {"traces": [{"id": k, "project_name": project, "start_time": T0} for k in keys]}
    await ok(client.post(f"{API}/traces/batch", json=body))
    return keys


async def test_the_searches_and_pages_keep_what_was_made_from_from_time_to_to_time(
    client: httpx.AsyncClient,
) -> None:
    start, end = MS_2024, MS_2024 + 1000
    before, first, inside, last, after = await traces_at(
        client, "Times", start - 1, start, start + 500, end, end + 1
    )
    spans = [
        {"id": id_at(ms), "trace_id": first, "project_name": "Times", "start_time": T0}
        for ms in (start - 1, start, end, end + 1)
    ]
    await ok(client.post(f"{API}/spans/batch", json={"spans": spans}))
    bounds = {"from_time": at(start), "to_time": at(end)}

    searched = await ok(
        client.post(f"{API}/traces/search", json={"project_name": "Times", **bounds})
    )
    spans_found = await ok(
        client.post(f"{API}/spans/search", json={"project_name": "Times", **bounds})
    )
    page = await ok(client.get(f"{API}/traces", params={"project_name": "Times", **bounds}))
    span_page = await ok(client.get(f"{API}/spans", params={"project_name": "Times", **bounds}))
    only_from = await ok(
        client.get(f"{API}/traces", params={"project_name": "Times", "from_time": at(end)})
    )

    assert ids_of(searched) == [last, inside, first]  # both bounds included, at the millisecond
    assert ids_of(spans_found) == [spans[2]["id"], spans[1]["id"]]
    assert ([t["id"] for t in page.json()["content"]], page.json()["total"]) == (
        [last, inside, first],
        3,
    )
    assert [s["id"] for s in span_page.json()["content"]] == [spans[2]["id"], spans[1]["id"]]
    assert [t["id"] for t in only_from.json()["content"]] == [after, last]
    assert before not in ids_of(searched)


@pytest.mark.parametrize("path", ["traces", "spans"])
async def test_a_time_range_not_forward_or_not_of_instants_is_a_400(
    client: httpx.AsyncClient, path: str
) -> None:
    await traces_at(client, "Times", MS_2024)
    same = {"from_time": at(MS_2024), "to_time": at(MS_2024)}
    backwards = {"from_time": at(MS_2024 + 1), "to_time": at(MS_2024)}
    expected = {"code": 400, "message": "Parameter 'from_time' must be before 'to_time'"}

    for times in (same, backwards):
        searched = await client.post(
            f"{API}/{path}/search", json={"project_name": "Times", **times}
        )
        paged = await client.get(f"{API}/{path}", params={"project_name": "Times", **times})
        assert (searched.status_code, searched.json()) == (400, expected)
        assert (paged.status_code, paged.json()) == (400, expected)
    # The range is checked before the project is looked for, as Opik's resources do.
    ghost = await client.post(f"{API}/{path}/search", json={"project_name": "Ghost", **same})
    malformed = await client.post(
        f"{API}/{path}/search", json={"project_name": "Times", "from_time": "yesterday"}
    )
    malformed_page = await client.get(
        f"{API}/{path}", params={"project_name": "Times", "to_time": "2024-13-01T00:00:00Z"}
    )

    assert (ghost.status_code, ghost.json()) == (400, expected)
    assert malformed.status_code == 400
    assert malformed.json() == {
        "code": 400,
        "message": "Unable to process JSON. from_time is not an instant: 'yesterday'",
    }
    assert (malformed_page.status_code, malformed_page.json()) == (
        400,
        {"code": 400, "message": "Invalid query param to_time '2024-13-01T00:00:00Z'"},
    )


async def test_exclude_leaves_fields_out_of_each_record_and_refuses_unknown_names(
    client: httpx.AsyncClient,
) -> None:
    [trace] = await traces_of(client, "Ex", 1)
    await spans_of(client, trace, "Ex", "llm")
    score = {"id": trace, "name": "acc", "value": 1, "source": "sdk"}
    await ok(client.put(f"{API}/traces/feedback-scores", json={"scores": [score]}))
    left_out = ["name", "start_time", "feedback_scores", "span_count", "comments"]

    searched = await ok(
        client.post(
            f"{API}/traces/search",
            json={"project_name": "Ex", "exclude": left_out, "strip_attachments": True},
        )
    )
    paged = await ok(
        client.get(
            f"{API}/traces",
            params={
                "project_name": "Ex",
                "exclude": json.dumps(left_out),
                "strip_attachments": "true",
            },
        )
    )
    span_line = await ok(
        client.post(f"{API}/spans/search", json={"project_name": "Ex", "exclude": ["type", "name"]})
    )
    unknown = await client.post(
        f"{API}/traces/search", json={"project_name": "Ex", "exclude": ["nope"]}
    )
    unknown_page = await client.get(
        f"{API}/spans", params={"project_name": "Ex", "exclude": '["span_count"]'}
    )
    not_json = await client.get(f"{API}/traces", params={"project_name": "Ex", "exclude": "name"})

    [line] = [json.loads(raw) for raw in searched.content.split(b"\r\n") if raw]
    [record] = paged.json()["content"]
    for shown in (line, record):
        assert not {"name", "start_time", "feedback_scores"} & set(shown)
        # Opik's Trace keeps its counts as Java primitives: an excluded one reads 0.
        assert (shown["span_count"], shown["llm_span_count"], shown["id"]) == (0, 1, trace)
    [span] = [json.loads(raw) for raw in span_line.content.split(b"\r\n") if raw]
    assert not {"type", "name"} & set(span)
    assert span["trace_id"] == trace
    assert unknown.status_code == 400
    assert unknown.json()["message"].startswith(
        "Unable to process JSON. Cannot deserialize value of type"
    )
    assert (unknown_page.status_code, unknown_page.json()) == (
        400,
        {"code": 400, "message": """Invalid query param exclude '["span_count"]'"""},
    )
    assert not_json.json() == {"code": 400, "message": "Invalid query param exclude 'name'"}


async def test_a_page_keeps_the_field_it_sorts_by_even_when_excluded(
    client: httpx.AsyncClient,
) -> None:
    [trace] = await traces_of(client, "Kept", 1)
    score = {"id": trace, "name": "acc", "value": 1, "source": "sdk"}
    await ok(client.put(f"{API}/traces/feedback-scores", json={"scores": [score]}))
    exclude = json.dumps(["name", "feedback_scores", "input"])

    async def shown(field: str) -> set[str]:
        sorting = json.dumps([{"field": field}])
        params = {"project_name": "Kept", "exclude": exclude, "sorting": sorting}
        [record] = (await ok(client.get(f"{API}/traces", params=params))).json()["content"]
        return set(record)

    # As TraceDAO's bindTemplateExcludeFieldVariables: the sorting fields stay selected.
    assert "feedback_scores" in await shown("feedback_scores.acc")
    assert "name" not in await shown("feedback_scores.acc")
    assert "feedback_scores" not in await shown("id")


async def test_a_search_without_a_project_says_so_before_its_time_range(
    client: httpx.AsyncClient,
) -> None:
    backwards = {"from_time": at(MS_2024 + 1), "to_time": at(MS_2024)}
    expected = "Either 'project_name' or 'project_id' query params must be provided"

    for answer in (
        await client.post(f"{API}/traces/search", json=backwards),
        await client.post(f"{API}/spans/search", json=backwards),
        await client.get(f"{API}/traces", params=backwards),
        await client.get(f"{API}/spans", params=backwards),
    ):
        assert (answer.status_code, answer.json()["message"]) == (400, expected)


async def test_the_trace_page_sorts_by_a_field_then_newest_id_first(
    client: httpx.AsyncClient,
) -> None:
    keys = sorted(new_id() for _ in range(4))
    names = ["b", "a", "b", None]
    traces = [
        {"id": k, "project_name": "Sort", "start_time": T0, "end_time": f"2024-01-15T09:30:0{n}Z"}
        | ({} if name is None else {"name": name})
        for n, (k, name) in enumerate(zip(keys, names, strict=True))
    ]
    await ok(client.post(f"{API}/traces/batch", json={"traces": traces}))
    for n, key in enumerate(keys[:3]):
        await spans_of(client, key, "Sort", *["llm"] * (n + 1))
    scores = [
        {"id": keys[0], "name": "acc", "value": 0.5, "source": "sdk"},
        {"id": keys[2], "name": "acc", "value": 0.9, "source": "sdk"},
    ]
    await ok(client.put(f"{API}/traces/feedback-scores", json={"scores": scores}))

    async def order(field: str, direction: str = "ASC", **params: str) -> list[str]:
        sorting = json.dumps([{"field": field, "direction": direction}])
        page = await ok(
            client.get(
                f"{API}/traces", params={"project_name": "Sort", "sorting": sorting, **params}
            )
        )
        assert page.json()["sortable_by"] == TRACE_SORTABLE_BY
        return [t["id"] for t in page.json()["content"]]

    assert await order("name") == [keys[1], keys[2], keys[0], keys[3]]  # ties: newest id first
    assert await order("name", "DESC") == [keys[2], keys[0], keys[1], keys[3]]  # NULL last
    assert await order("feedback_scores.acc", "DESC") == [keys[2], keys[0], keys[3], keys[1]]
    assert await order("span_count", "DESC") == [keys[2], keys[1], keys[0], keys[3]]
    assert await order("duration", "DESC") == keys[::-1]
    assert await order("id") == keys
    assert await order("name", size="2", page="2") == [keys[0], keys[3]]

    unsupported = await client.get(
        f"{API}/traces",
        params={"project_name": "Sort", "sorting": '[{"field":"experiment_id"}]'},
    )
    malformed = await client.get(
        f"{API}/traces",
        params={"project_name": "Sort", "sorting": '[{"field":"name","direction":"UP"}]'},
    )
    assert (unsupported.status_code, unsupported.json()) == (
        400,
        {"code": 400, "message": "Invalid sorting fields 'experiment_id'"},
    )
    assert malformed.status_code == 400
    assert malformed.json()["message"].startswith("Invalid sorting query parameter")


async def test_the_span_page_sorts_by_usage_and_model(client: httpx.AsyncClient) -> None:
    [trace] = await traces_of(client, "SpanSort", 1)
    keys = sorted(new_id() for _ in range(3))
    spans = [
        {"id": k, "trace_id": trace, "project_name": "SpanSort", "start_time": T0,
         "model": model, "usage": {"total_tokens": tokens}}
        for k, model, tokens in zip(keys, ["gpt-b", "gpt-a", "gpt-b"], [30, 10, 20], strict=True)
    ]  # fmt: skip
    await ok(client.post(f"{API}/spans/batch", json={"spans": spans}))

    async def order(field: str, direction: str = "ASC") -> list[str]:
        sorting = json.dumps([{"field": field, "direction": direction}])
        page = await ok(
            client.get(f"{API}/spans", params={"project_name": "SpanSort", "sorting": sorting})
        )
        assert page.json()["sortable_by"] == SPAN_SORTABLE_BY
        return [s["id"] for s in page.json()["content"]]

    assert await order("usage.total_tokens") == [keys[1], keys[2], keys[0]]
    assert await order("model", "DESC") == [keys[2], keys[0], keys[1]]
    assert await order("usage.missing") == keys[::-1]  # all NULL: newest id first


async def test_the_page_search_finds_text_in_a_records_fields_ignoring_case(
    client: httpx.AsyncClient,
) -> None:
    keys = sorted(new_id() for _ in range(4))
    traces = [
        {"id": keys[0], "project_name": "Find", "start_time": T0, "input": {"q": "Hello World"}},
        {"id": keys[1], "project_name": "Find", "start_time": T0, "output": {"a": "HELLO"}},
        {"id": keys[2], "project_name": "Find", "start_time": T0, "tags": ["greeting-hello"]},
        {"id": keys[3], "project_name": "Find", "start_time": T0, "name": "other"},
    ]
    await ok(client.post(f"{API}/traces/batch", json={"traces": traces}))
    await spans_of(client, keys[3], "Find", "llm")

    async def found(path: str, text: str) -> list[str]:
        page = await ok(
            client.get(f"{API}/{path}", params={"project_name": "Find", "search": text})
        )
        assert page.json()["total"] == len(page.json()["content"])
        return [r["id"] for r in page.json()["content"]]

    assert await found("traces", "hello") == keys[2::-1]
    assert await found("traces", "OTHER") == [keys[3]]
    assert await found("traces", keys[1][-12:].upper()) == [keys[1]]  # a part of the id
    assert await found("traces", keys[1][19:]) == [keys[1]]  # across a dash
    assert await found("traces", "nothing like it") == []
    assert await found("traces", "  ") == keys[::-1]  # blank: no search, as Opik's trimToNull
    assert len(await found("spans", "LLM STEP")) == 1
