"""Deleting traces and feedback scores over HTTP: Opik's deleteTraces, deleteTraceById,
deleteTraceFeedbackScore and deleteSpanFeedbackScore (TracesResource.java, SpansResource.java;
a trace's spans and scores go with it, as TraceDeletedListener.java deletes them)."""

from typing import Any

import httpx
import pytest

from tests.factories import new_id

pytestmark = pytest.mark.anyio

API = "/api/v1/private"
T0 = "2024-01-15T09:30:00Z"
OTHER = {"Comet-Workspace": "other"}


async def ok(response: Any) -> httpx.Response:
    answer: httpx.Response = await response
    assert answer.status_code in (200, 204), answer.text
    return answer


async def recorded(
    client: httpx.AsyncClient, project: str = "Del", headers: dict[str, str] | None = None
) -> tuple[str, str]:
    """A trace with a span, each with a score: their ids."""
    trace, span = new_id(), new_id()
    await ok(
        client.post(
            f"{API}/traces/batch",
            json={"traces": [{"id": trace, "project_name": project, "start_time": T0}]},
            headers=headers,
        )
    )
    body = {"spans": [{"id": span, "trace_id": trace, "project_name": project, "start_time": T0}]}
    await ok(client.post(f"{API}/spans/batch", json=body, headers=headers))
    for path, key in (("traces", trace), ("spans", span)):
        score = {"id": key, "name": "acc", "value": 1, "source": "sdk", "project_name": project}
        await ok(
            client.put(f"{API}/{path}/feedback-scores", json={"scores": [score]}, headers=headers)
        )
    return trace, span


async def status(client: httpx.AsyncClient, path: str, **kwargs: Any) -> int:
    return (await client.get(f"{API}/{path}", **kwargs)).status_code


async def test_deleting_traces_takes_their_spans_and_scores_and_nothing_else(
    client: httpx.AsyncClient,
) -> None:
    gone, gone_span = await recorded(client)
    kept, kept_span = await recorded(client)
    patched = new_id()  # only a PATCH so far: a partial trace, deleted all the same
    await ok(client.patch(f"{API}/traces/{patched}", json={"project_name": "Del"}))

    deleted = await client.post(f"{API}/traces/delete", json={"ids": [gone, patched, new_id()]})

    assert (deleted.status_code, deleted.content) == (204, b"")
    assert await status(client, f"traces/{gone}") == 404
    assert await status(client, f"spans/{gone_span}") == 404
    spans = await ok(client.post(f"{API}/spans/search", json={"project_name": "Del"}))
    assert gone_span not in spans.text
    assert kept_span in spans.text
    # The partial trace is gone: its create now makes a whole new trace, not a merge.
    await ok(
        client.post(
            f"{API}/traces/batch",
            json={"traces": [{"id": patched, "project_name": "Del", "start_time": T0}]},
        )
    )
    assert (await ok(client.get(f"{API}/traces/{patched}"))).json()["id"] == patched
    # A new span of the old id starts with no score: the old ones went with the trace.
    again = {"id": gone_span, "trace_id": gone, "project_name": "Del", "start_time": T0}
    await ok(client.post(f"{API}/spans/batch", json={"spans": [again]}))
    assert "feedback_scores" not in (await ok(client.get(f"{API}/spans/{gone_span}"))).json()
    trace = (await ok(client.get(f"{API}/traces/{kept}"))).json()
    span = (await ok(client.get(f"{API}/spans/{kept_span}"))).json()
    assert [s["name"] for s in trace["feedback_scores"]] == ["acc"]
    assert [s["name"] for s in span["feedback_scores"]] == ["acc"]
    assert trace["span_count"] == 1


async def test_a_trace_delete_by_id_and_by_project_deletes_only_what_it_names(
    client: httpx.AsyncClient,
) -> None:
    one, _ = await recorded(client, "One")
    two, two_span = await recorded(client, "Two")
    three, _ = await recorded(client, "Two")
    project = (await ok(client.get(f"{API}/traces/{one}"))).json()["project_id"]

    scoped = await client.post(
        f"{API}/traces/delete", json={"ids": [one, two], "project_id": project}
    )
    by_id = await client.delete(f"{API}/traces/{three}")
    not_uuid = await client.delete(f"{API}/traces/nope")

    assert (scoped.status_code, by_id.status_code) == (204, 204)
    assert await status(client, f"traces/{one}") == 404
    assert await status(client, f"traces/{two}") == 200  # of another project: kept
    assert await status(client, f"spans/{two_span}") == 200
    assert await status(client, f"traces/{three}") == 404
    assert (not_uuid.status_code, not_uuid.json()) == (
        404,
        {"code": 404, "message": "HTTP 404 Not Found"},
    )


async def test_another_workspaces_traces_and_scores_are_untouched_and_not_revealed(
    client: httpx.AsyncClient,
) -> None:
    theirs, their_span = await recorded(client, headers=OTHER)

    deleted = await client.post(f"{API}/traces/delete", json={"ids": [theirs]})
    by_id = await client.delete(f"{API}/traces/{theirs}")
    score = await client.post(f"{API}/traces/{theirs}/feedback-scores/delete", json={"name": "acc"})
    span_score = await client.post(
        f"{API}/spans/{their_span}/feedback-scores/delete", json={"name": "acc"}
    )

    # The same answer as for an id nobody holds: nothing says the other workspace has it.
    assert [r.status_code for r in (deleted, by_id, score, span_score)] == [204] * 4
    trace = (await ok(client.get(f"{API}/traces/{theirs}", headers=OTHER))).json()
    span = (await ok(client.get(f"{API}/spans/{their_span}", headers=OTHER))).json()
    assert [s["name"] for s in trace["feedback_scores"]] == ["acc"]
    assert [s["name"] for s in span["feedback_scores"]] == ["acc"]


@pytest.mark.parametrize(
    ("body", "code"),
    [
        (b'{"ids": []}', 422),
        (b'{"ids": "x"}', 422),
        (b"{}", 422),
        (b'{"ids": ["nope"]}', 422),
        (b'{"ids": [null]}', 422),
        (b'{"ids": ["0190f5b4-7c1a-7000-8000-000000000100"], "project_id": "x"}', 422),
        (b'{"ids": [', 400),
        (b"[]", 422),
    ],
)
async def test_a_bad_trace_delete_is_refused_and_deletes_nothing(
    client: httpx.AsyncClient, body: bytes, code: int
) -> None:
    trace, _ = await recorded(client)

    answer = await client.post(
        f"{API}/traces/delete", content=body, headers={"Content-Type": "application/json"}
    )

    assert answer.status_code == code
    assert set(answer.json()) in ({"errors"}, {"code", "message"})
    assert await status(client, f"traces/{trace}") == 200


async def test_a_trace_delete_takes_1000_ids_and_refuses_1001(client: httpx.AsyncClient) -> None:
    trace, _ = await recorded(client)
    many = [new_id() for _ in range(999)]

    most = await client.post(f"{API}/traces/delete", json={"ids": [*many, new_id(), new_id()]})
    at_most = await client.post(f"{API}/traces/delete", json={"ids": [*many, trace]})

    assert most.status_code == 422
    assert at_most.status_code == 204
    assert await status(client, f"traces/{trace}") == 404


async def test_a_score_delete_takes_the_names_scores_of_one_author_or_of_all(
    client: httpx.AsyncClient,
) -> None:
    trace, span = await recorded(client)
    scores = [
        {"id": trace, "name": "acc", "value": 0, "source": "sdk", "author": "bob"},
        {"id": trace, "name": "f1", "value": 0.5, "source": "sdk"},
    ]
    await ok(client.put(f"{API}/traces/feedback-scores", json={"scores": scores}))

    def authors(record: dict[str, Any]) -> dict[str, list[str]]:
        return {s["name"]: sorted(s.get("value_by_author", {})) for s in record["feedback_scores"]}

    await ok(
        client.post(
            f"{API}/traces/{trace}/feedback-scores/delete", json={"name": "acc", "author": "bob"}
        )
    )
    after_bob = (await ok(client.get(f"{API}/traces/{trace}"))).json()
    await ok(
        client.post(
            f"{API}/traces/{trace}/feedback-scores/delete", json={"name": "acc", "author": ""}
        )
    )
    after_all = (await ok(client.get(f"{API}/traces/{trace}"))).json()
    await ok(client.post(f"{API}/spans/{span}/feedback-scores/delete", json={"name": "acc"}))
    span_after = (await ok(client.get(f"{API}/spans/{span}"))).json()
    unknown = await client.post(
        f"{API}/traces/{new_id()}/feedback-scores/delete", json={"name": "acc"}
    )
    blank = await client.post(f"{API}/traces/{trace}/feedback-scores/delete", json={"name": " "})
    nameless = await client.post(f"{API}/spans/{span}/feedback-scores/delete", json={})
    not_uuid = await client.post(f"{API}/spans/x/feedback-scores/delete", json={"name": "acc"})

    assert set(authors(after_bob)) == {"acc", "f1"}
    assert authors(after_bob)["acc"] == ["admin"]
    assert set(authors(after_all)) == {"f1"}
    assert "feedback_scores" not in span_after
    assert unknown.status_code == 204
    assert (blank.status_code, nameless.status_code) == (422, 422)
    assert not_uuid.status_code == 404
