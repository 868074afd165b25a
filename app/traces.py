"""Traces and spans: batches, single creates, PATCHes, reads, feedback scores and the trace
search (opik-reference/datasets-traces.md, sections 3.6 to 3.8)."""

from collections.abc import AsyncIterator

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from app import ids, trace_checks
from app.body import LARGE_BODY_BYTES, decode
from app.context import acting, created, path_id
from app.errors import JSON, ApiError
from app.items import NDJSON_LINE_END
from app.payloads import encoder
from app.trace_payloads import (
    ScoreBatch,
    SpanBatch,
    SpanCreate,
    SpanUpdate,
    TraceBatch,
    TraceCreate,
    TraceSearch,
    TraceUpdate,
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


async def search_traces(request: Request) -> Response:
    identity, store = acting(request)
    search = await decode(request, TraceSearch)
    name, key = trace_checks.project_of_search(search)
    if key is not None:
        project = await store.get_project(identity.workspace, key)
        missing = f"Project id: {ids.to_str(key)} not found"
    else:
        assert name is not None
        project = await store.find_project(identity.workspace, name)
        missing = f"Project name: {name} not found"
    if project is None:
        raise ApiError(404, missing)
    query = trace_checks.trace_query(search, ids.parse(project.id) or b"")
    chunks = store.search_traces(identity.workspace, query)

    async def lines() -> AsyncIterator[bytes]:
        async for chunk in chunks:
            yield b"".join(encoder.encode(trace) + NDJSON_LINE_END for trace in chunk)

    return StreamingResponse(lines(), media_type="application/octet-stream")
