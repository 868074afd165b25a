"""Traces and spans: batches, single creates, PATCHes, reads, feedback scores, the trace and
span searches and pages, deletes of traces and scores (opik-reference/datasets-traces.md,
sections 3.6 to 3.8; TracesResource.java and SpansResource.java for the deletes)."""

from collections.abc import AsyncIterator, Sequence
from typing import Any, TypeVar

import msgspec
from msgspec import UNSET
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from app import ids, trace_checks
from app.body import LARGE_BODY_BYTES, decode, decode_query, require_text, require_uuid
from app.context import acting, created, path_id
from app.errors import JSON, ApiError
from app.items import NDJSON_LINE_END
from app.payloads import encoder
from app.trace_payloads import (
    ScoreBatch,
    ScoreDelete,
    Span,
    SpanBatch,
    SpanCreate,
    SpanPage,
    SpanUpdate,
    Trace,
    TraceBatch,
    TraceCreate,
    TraceDelete,
    TracePage,
    TraceUpdate,
)
from app.trace_queries import (
    SPAN_SORTABLE_BY,
    TRACE_SORTABLE_BY,
    SpanSearch,
    SpansQuery,
    TraceSearch,
    TracesQuery,
)


async def create_traces(request: Request) -> Response:
    identity, store = acting(request)
    batch = await decode(request, TraceBatch, LARGE_BODY_BYTES)
    records = trace_checks.trace_upserts(batch.traces)
    await store.upsert_traces(identity.workspace, identity.user, records)
    return Response(status_code=204)


async def create_trace(request: Request) -> Response:
    identity, store = acting(request)
    trace = await decode(request, TraceCreate, LARGE_BODY_BYTES)
    records = trace_checks.trace_upserts([trace], "trace")
    await store.upsert_traces(identity.workspace, identity.user, records)
    return created(request, ids.to_str(records[0].trace.id))


async def create_spans(request: Request) -> Response:
    identity, store = acting(request)
    batch = await decode(request, SpanBatch, LARGE_BODY_BYTES)
    records = trace_checks.span_upserts(batch.spans)
    await store.upsert_spans(identity.workspace, identity.user, records)
    return Response(status_code=204)


async def create_span(request: Request) -> Response:
    identity, store = acting(request)
    span = await decode(request, SpanCreate, LARGE_BODY_BYTES)
    records = trace_checks.span_upserts([span], "span")
    await store.upsert_spans(identity.workspace, identity.user, records)
    return created(request, ids.to_str(records[0].span.id))


async def update_trace(request: Request) -> Response:
    identity, store = acting(request)
    key = trace_checks.path_id(request.path_params["id"], "Trace")
    update = await decode(request, TraceUpdate, LARGE_BODY_BYTES)
    await store.patch_trace(identity.workspace, identity.user, trace_checks.patch(key, update))
    return Response(status_code=204)


async def update_span(request: Request) -> Response:
    identity, store = acting(request)
    key = trace_checks.path_id(request.path_params["id"], "Span")
    update = await decode(request, SpanUpdate, LARGE_BODY_BYTES)
    await store.patch_span(identity.workspace, identity.user, trace_checks.patch(key, update))
    return Response(status_code=204)


async def get_trace(request: Request) -> Response:
    identity, store = acting(request)
    key = path_id(request)
    trace = await store.get_trace(identity.workspace, key)
    if trace is None:
        raise ApiError(404, f"Trace id: {ids.to_str(key)} not found")
    return Response(encoder.encode(trace), media_type=JSON)


async def get_span(request: Request) -> Response:
    identity, store = acting(request)
    key = path_id(request)
    span = await store.get_span(identity.workspace, key)
    if span is None:
        raise ApiError(404, f"Span id: {ids.to_str(key)} not found")
    return Response(encoder.encode(span), media_type=JSON)


async def score_traces(request: Request) -> Response:
    identity, store = acting(request)
    batch = await decode(request, ScoreBatch, LARGE_BODY_BYTES)
    scores = trace_checks.score_upserts(batch.scores, "Trace")
    await store.score_traces(identity.workspace, identity.user, scores)
    return Response(status_code=204)


async def score_spans(request: Request) -> Response:
    identity, store = acting(request)
    batch = await decode(request, ScoreBatch, LARGE_BODY_BYTES)
    scores = trace_checks.score_upserts(batch.scores, "Span")
    await store.score_spans(identity.workspace, identity.user, scores)
    return Response(status_code=204)


async def _project_key(request: Request, search: trace_checks.Searched) -> bytes | None:
    """The key of the project a search or page names: 400 when it names none; None when the
    workspace has no such project."""
    identity, store = acting(request)
    name, key = trace_checks.project_of_search(search)
    if key is not None:
        project = await store.get_project(identity.workspace, key)
    else:
        assert name is not None
        project = await store.find_project(identity.workspace, name)
    return None if project is None else ids.parse(project.id)


async def _searched_project(request: Request, search: TraceSearch | SpanSearch) -> bytes:
    """As _project_key; an unknown project is a 404, before streaming starts."""
    key = await _project_key(request, search)
    if key is None:
        name, given = trace_checks.project_of_search(search)
        if given is not None:
            raise ApiError(404, f"Project id: {ids.to_str(given)} not found")
        raise ApiError(404, f"Project name: {name} not found")
    return key


# What an excluded field reads as: left out, but for the counts Opik's Trace keeps as Java
# primitives, which it writes as 0 and false (TraceDAO's `EXCEPT (<exclude_fields>)`).
_EXCLUDED_AS = {"span_count": 0, "llm_span_count": 0, "has_tool_spans": False}
R = TypeVar("R", Trace, Span)


def _without(records: Sequence[R], fields: frozenset[str]) -> Sequence[R]:
    """The records with the fields of `exclude` left out; names of fields never stored here
    (comments, guardrails_validations, experiment, span_feedback_scores) change nothing."""
    if not fields or not records:
        return records
    kept = set(records[0].__struct_fields__)
    changes = {f: _EXCLUDED_AS.get(f, UNSET) for f in fields if f in kept}
    return [msgspec.structs.replace(r, **changes) for r in records] if changes else records


def _ndjson(chunks: AsyncIterator[Sequence[Any]], exclude: frozenset[str]) -> Response:
    """A search's answer: each record on its own line, a chunk written at a time."""

    async def lines() -> AsyncIterator[bytes]:
        async for chunk in chunks:
            shown = _without(chunk, exclude)
            yield b"".join(encoder.encode(record) + NDJSON_LINE_END for record in shown)

    return StreamingResponse(lines(), media_type="application/octet-stream")


async def search_traces(request: Request) -> Response:
    identity, store = acting(request)
    search = await decode(request, TraceSearch)
    exclude = trace_checks.search_exclude(search)
    query = trace_checks.trace_query(search, b"")
    project_id = await _searched_project(request, search)
    query = msgspec.structs.replace(query, project_id=project_id)
    return _ndjson(store.search_traces(identity.workspace, query), exclude)


async def search_spans(request: Request) -> Response:
    identity, store = acting(request)
    search = await decode(request, SpanSearch)
    exclude = trace_checks.search_exclude(search)
    query = trace_checks.span_query(search, b"")
    project_id = await _searched_project(request, search)
    query = msgspec.structs.replace(query, project_id=project_id)
    return _ndjson(store.search_spans(identity.workspace, query), exclude)


async def get_traces(request: Request) -> Response:
    identity, store = acting(request)
    wanted = decode_query(request, TracesQuery)
    query = trace_checks.page_query(wanted, b"")
    exclude = trace_checks.page_exclude(wanted, query.sort)
    project_id = await _project_key(request, wanted)
    # An unknown project has no traces: an empty page, as Opik's TracePage.empty.
    found: list[Trace] = []
    total = 0
    if project_id is not None:
        query = msgspec.structs.replace(query, project_id=project_id)
        found, total = await store.page_traces(identity.workspace, query)
    shown = list(_without(found, exclude))
    page = TracePage(wanted.page, len(shown), total, shown, sortable_by=TRACE_SORTABLE_BY)
    return Response(encoder.encode(page), media_type=JSON)


async def get_spans(request: Request) -> Response:
    identity, store = acting(request)
    wanted = decode_query(request, SpansQuery)
    query = trace_checks.page_query(wanted, b"")
    exclude = trace_checks.page_exclude(wanted, query.sort)
    project_id = await _project_key(request, wanted)
    found: list[Span] = []
    total = 0
    if project_id is not None:
        query = msgspec.structs.replace(query, project_id=project_id)
        found, total = await store.page_spans(identity.workspace, query)
    shown = list(_without(found, exclude))
    page = SpanPage(wanted.page, len(shown), total, shown, sortable_by=SPAN_SORTABLE_BY)
    return Response(encoder.encode(page), media_type=JSON)


async def delete_traces(request: Request) -> Response:
    identity, store = acting(request)
    body = await decode(request, TraceDelete)
    keys = [require_uuid(value, f"ids[{n}]") for n, value in enumerate(body.ids)]
    project_id = None if body.project_id is None else require_uuid(body.project_id, "project_id")
    await store.delete_traces(identity.workspace, keys, project_id)
    return Response(status_code=204)


async def delete_trace(request: Request) -> Response:
    identity, store = acting(request)
    key = path_id(request)
    await store.delete_traces(identity.workspace, [key], None)
    return Response(status_code=204)


async def _score_delete(request: Request) -> tuple[bytes, str, str | None]:
    key = path_id(request)
    body = await decode(request, ScoreDelete)
    require_text(body.name, "name")
    # Opik's FeedbackScoreDAO: a blank author deletes every author's score of the name.
    author = body.author.strip() if body.author is not None and body.author.strip() else None
    return key, body.name.strip(), author


async def delete_trace_score(request: Request) -> Response:
    identity, store = acting(request)
    key, name, author = await _score_delete(request)
    await store.delete_trace_score(identity.workspace, key, name, author)
    return Response(status_code=204)


async def delete_span_score(request: Request) -> Response:
    identity, store = acting(request)
    key, name, author = await _score_delete(request)
    await store.delete_span_score(identity.workspace, key, name, author)
    return Response(status_code=204)
