"""Span reads: spans by id with their scores, the span search and pages (one project's spans,
of one trace and type when asked, newest id first), as trace_reads reads traces."""

import json
from collections.abc import AsyncIterator, Sequence

from msgspec import UNSET

from app import clock, ids
from app.experiment_answers import id_or_unset, raw_or_unset
from app.records import TraceQuery, batched, duration_ms, truncate_images
from app.sqlite.connection import Database
from app.sqlite.scores import SPAN_SCORES, read_scores, span_score
from app.sqlite.tables import marks
from app.sqlite.trace_reads import instant_or_unset, or_unset, page_keys, page_of
from app.trace_payloads import Span

_SEARCH_CHUNK_SPANS = 100
_SPAN_COLUMNS = (
    "id project_id trace_id parent_span_id name type start_time end_time input output metadata "
    "model provider tags usage error_info created_at last_updated_at created_by last_updated_by "
    "total_estimated_cost total_estimated_cost_version ttft source environment"
)
SPANS_BY_ID = (
    f"SELECT {', '.join(_SPAN_COLUMNS.split())} FROM spans"
    " WHERE workspace = ? AND partial = 0 AND id IN ({marks})"
)
_SPAN_SCORE = span_score("t.id", "t.workspace")


def _int_usage(text: str) -> dict[str, int]:
    loaded = json.loads(text)
    return {str(k): int(v) for k, v in loaded.items()} if isinstance(loaded, dict) else {}


async def spans(
    db: Database, workspace: str, keys: Sequence[bytes], truncate: bool = False
) -> list[Span]:
    """The spans of these ids that are stored whole, in the order of `keys`."""
    rows = await db.fetch_all(SPANS_BY_ID.format(marks=marks(len(keys))), (workspace, *keys))
    scores = await read_scores(db, SPAN_SCORES, workspace, [row[0] for row in rows])
    by_id = {}
    for row in rows:
        (key, project_id, trace_id, parent, name, kind, start, end, input_, output, metadata,
         model, provider, tags, usage, error_info, created_at, updated_at, created_by,
         updated_by, cost, cost_version, ttft, source, environment) = row  # fmt: skip
        if truncate:
            input_, output = input_ and truncate_images(input_), output and truncate_images(output)
            metadata = metadata and truncate_images(metadata)
        by_id[key] = Span(
            id=ids.to_str(key),
            project_id=ids.to_str(project_id),
            trace_id=ids.to_str(trace_id),
            parent_span_id=id_or_unset(parent),
            name=or_unset(name),
            type=kind or "general",
            start_time=clock.format_instant(start),
            end_time=instant_or_unset(end),
            input=raw_or_unset(input_),
            output=raw_or_unset(output),
            metadata=raw_or_unset(metadata),
            model=or_unset(model),
            provider=or_unset(provider),
            tags=raw_or_unset(tags),
            usage=UNSET if usage is None else _int_usage(usage),
            error_info=raw_or_unset(error_info),
            created_at=clock.format_instant(created_at),
            last_updated_at=clock.format_instant(updated_at),
            created_by=created_by,
            last_updated_by=updated_by,
            feedback_scores=scores.get(key, UNSET),
            total_estimated_cost=or_unset(cost),
            total_estimated_cost_version=or_unset(cost_version),
            duration=duration_ms(start, end),
            ttft=or_unset(ttft),
            source=or_unset(source),
            environment=or_unset(environment),
        )
    return [by_id[key] for key in keys if key in by_id]


async def get_span(db: Database, workspace: str, key: bytes) -> Span | None:
    found = await spans(db, workspace, [key])
    return found[0] if found else None


async def search_spans(
    db: Database, workspace: str, query: TraceQuery
) -> AsyncIterator[list[Span]]:
    page = await page_keys(db, workspace, "spans", _SPAN_SCORE, query)
    for chunk in batched(page, _SEARCH_CHUNK_SPANS):
        yield await spans(db, workspace, chunk, query.truncate)


async def page_spans(db: Database, workspace: str, query: TraceQuery) -> tuple[list[Span], int]:
    """One page of the project's spans and how many match in all."""
    return await page_of(db, workspace, "spans", _SPAN_SCORE, spans, query)
