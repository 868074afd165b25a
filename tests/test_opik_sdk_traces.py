"""The official Opik SDK's high-level API against a real server: traces and spans made with
client.trace() and @opik.track, scores, flush, then read back; nothing may be dropped."""

import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.running import running_server

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    import opik
    from opik.api_objects import opik_client

PROJECT = "SDK Traces"


@pytest.fixture
def server(location: Path | str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    # A server per test on a new database of each engine: the tests count a project's traces.
    # No analytics or error reports leave the machine; the SDK reads these when a client starts.
    monkeypatch.setenv("OPIK_ANALYTICS_ENABLE", "false")
    monkeypatch.setenv("OPIK_SENTRY_ENABLE", "false")
    monkeypatch.setenv("OPIK_CHECK_TLS_CERTIFICATE", "false")
    with running_server(location, log=tmp_path / "sdk.log") as url:
        monkeypatch.setenv("OPIK_URL_OVERRIDE", f"{url}/api")
        monkeypatch.setenv("OPIK_WORKSPACE", "default")
        monkeypatch.setenv("OPIK_PROJECT_NAME", PROJECT)
        opik_client.reset_global_client()
        yield url
        opik_client.reset_global_client()  # ends the @track client and its threads


def test_the_sdk_records_traces_spans_and_scores_and_reads_them_all_back(server: str) -> None:
    client = opik.Opik(host=f"{server}/api", workspace="default", project_name=PROJECT)
    try:
        made = []
        for n in range(3):
            trace = client.trace(
                name=f"manual-{n}", input={"q": n}, metadata={"n": n}, tags=["manual"]
            )
            span = trace.span(
                name="llm",
                type="llm",
                input={"prompt": n},
                usage={"prompt_tokens": 5, "completion_tokens": 2, "total_tokens": 7},
            )
            span.end(output={"text": f"a{n}"})
            trace.end(output={"answer": n})
            made.append((trace.id, span.id))

        @opik.track(name="tracked", project_name=PROJECT)  # type: ignore[untyped-decorator]
        def tracked(x: int) -> int:
            return int(inner(x)) + 1

        @opik.track(name="inner", type="tool", project_name=PROJECT)  # type: ignore[untyped-decorator]
        def inner(x: int) -> int:
            return x * 2

        assert tracked(3) == 7
        opik.flush_tracker()

        ids = [trace_id for trace_id, _ in made]
        client.log_traces_feedback_scores(
            [{"id": trace_id, "name": "accuracy", "value": 0.5 + n / 10, "reason": "ok"}
             for n, trace_id in enumerate(ids)],
            project_name=PROJECT,
        )  # fmt: skip
        assert client.flush()

        found = client.search_traces(project_name=PROJECT, max_results=100)
        by_name = {t.name or "": t for t in found}
        assert sorted(by_name) == ["manual-0", "manual-1", "manual-2", "tracked"]
        spans = client.search_spans(project_name=PROJECT, max_results=100)
        assert sorted(s.name or "" for s in spans) == ["inner", "llm", "llm", "llm", "tracked"]
        [first_span] = client.search_spans(project_name=PROJECT, trace_id=made[0][0])
        assert (first_span.id, first_span.output) == (made[0][1], {"text": "a0"})
        named = client.search_spans(project_name=PROJECT, filter_string='name = "inner"')
        assert [s.type for s in named] == ["tool"]
        for n, (trace_id, span_id) in enumerate(made):
            content = client.get_trace_content(trace_id)
            assert content.name == f"manual-{n}"
            assert content.input == {"q": n}
            assert content.output == {"answer": n}
            assert content.metadata == {"n": n}
            assert content.tags == ["manual"]
            assert content.end_time is not None
            assert content.project_id is not None
            assert (content.span_count, content.llm_span_count) == (1, 1)
            assert content.usage is not None
            assert content.usage["total_tokens"] == 7
            scores = [(s.name, round(s.value, 6), s.reason) for s in content.feedback_scores or []]
            assert scores == [("accuracy", round(0.5 + n / 10, 6), "ok")]
            stored = read_span(server, span_id)
            assert (stored["name"], stored["type"], stored["trace_id"]) == ("llm", "llm", trace_id)
            assert stored["output"] == {"text": f"a{n}"}
            assert stored["input"] == {"prompt": n}
            assert "end_time" in stored
        tracked_trace = client.get_trace_content(by_name["tracked"].id or "")
        assert tracked_trace.input == {"x": 3}
        assert tracked_trace.output == {"output": 7}
        assert tracked_trace.end_time is not None
        assert tracked_trace.span_count == 2  # the function's own span and inner's
        assert tracked_trace.has_tool_spans is True
        project = client.rest_client.projects.get_project_by_id(tracked_trace.project_id or "")
        assert project.name == PROJECT
    finally:
        client.end()


def read_span(url: str, span_id: str) -> dict[str, Any]:
    response = httpx.get(f"{url}/api/v1/private/spans/{span_id}")
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def test_the_sdk_filters_dataset_items_by_data_and_tags(server: str) -> None:
    client = opik.Opik(host=f"{server}/api", workspace="default", project_name=PROJECT)
    try:
        dataset = client.get_or_create_dataset("filtered")
        dataset.insert(
            [
                {"input": {"q": "2+2"}, "category": "math"},
                {"input": {"q": "1066"}, "category": "history"},
            ]
        )
        got = dataset.get_items(filter_string='data.category = "math"')
        assert [item["input"] for item in got] == [{"q": "2+2"}]
        chunks = dataset.stream_items(filter_string='data.category contains "HIST"')
        assert [item["category"] for chunk in chunks for item in chunk] == ["history"]
        assert dataset.get_items(filter_string='tags contains "none"') == []
    finally:
        client.end()


def test_the_sdk_deletes_scores_and_moves_traces_and_nothing_else_is_dropped(
    server: str,
) -> None:
    client = opik.Opik(host=f"{server}/api", workspace="default", project_name=PROJECT)
    try:
        made = []
        for n in range(2):
            trace = client.trace(name=f"t{n}", input={"q": n})
            span = trace.span(name=f"s{n}", type="llm", input={"p": n})
            span.end(output={"text": n})
            trace.end(output={"a": n})
            made.append((trace.id, span.id))
        assert client.flush()
        client.log_traces_feedback_scores(
            [{"id": t, "name": name, "value": 1} for t, _ in made for name in ("accuracy", "f1")],
            project_name=PROJECT,
        )
        client.log_spans_feedback_scores(
            [{"id": s, "name": "quality", "value": 0.5} for _, s in made], project_name=PROJECT
        )
        assert client.flush()

        # POST /traces/{id}/feedback-scores/delete and /spans/{id}/feedback-scores/delete.
        client.delete_trace_feedback_score(made[0][0], "accuracy")
        client.delete_span_feedback_score(made[0][1], "quality")

        def names(record: Any) -> list[str]:
            return sorted(s.name for s in record.feedback_scores or [])

        assert names(client.get_trace_content(made[0][0])) == ["f1"]
        assert names(client.get_trace_content(made[1][0])) == ["accuracy", "f1"]
        assert names(client.get_span_content(made[0][1])) == []
        assert names(client.get_span_content(made[1][1])) == ["quality"]

        # The SDK's own client for POST /traces/delete and DELETE /traces/{id}: its high-level
        # copy_traces(delete_original_project=True) would call it, but 2.2.122 gives the copies
        # their new ids in place first (trace/migration.py), so it deletes the copies' ids.
        other = client.trace(name="kept", input={"q": "kept"})
        other.end()
        assert client.flush()
        client.rest_client.traces.delete_traces(ids=[made[0][0]])
        client.rest_client.traces.delete_trace_by_id(made[1][0])

        assert [t.name for t in client.search_traces(project_name=PROJECT)] == ["kept"]
        assert client.search_spans(project_name=PROJECT) == []
        for trace_id, span_id in made:
            assert httpx.get(f"{server}/api/v1/private/traces/{trace_id}").status_code == 404
            assert httpx.get(f"{server}/api/v1/private/spans/{span_id}").status_code == 404
        assert client.get_trace_content(other.id).input == {"q": "kept"}
    finally:
        client.end()
