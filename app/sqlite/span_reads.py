"""Span reads: spans by id with their scores, the span search and pages (one project's spans,
of one trace and type when asked, newest id first), as trace_reads reads traces."""

from collections.abc import AsyncIterator, Sequence

from app.records import batched
from app.sqlite.connection import Database
from app.sqlite.scores import SPAN_SCORES, read_scores
from app.sqlite.tables import marks
from app.sqlite.trace_reads import page, page_keys
from app.trace_answers import SPAN_COLUMNS, span
from app.trace_payloads import Span
from app.trace_records import TraceQuery

_SEARCH_CHUNK_SPANS = 100
SPANS_BY_ID = (
    f"SELECT {', '.join(SPAN_COLUMNS)} FROM spans"
    " WHERE workspace = ? AND partial = 0 AND id IN ({marks})"
)


async def spans(
    db: Database, workspace: str, keys: Sequence[bytes], truncate: bool = False
) -> list[Span]:
    """The spans of these ids that are stored whole, in the order of `keys`."""
    rows = await db.fetch_all(SPANS_BY_ID.format(marks=marks(len(keys))), (workspace, *keys))
    scores = await read_scores(db, SPAN_SCORES, workspace, [row[0] for row in rows])
    by_id = {row[0]: span(row, scores.get(row[0]), truncate) for row in rows}
    return [by_id[key] for key in keys if key in by_id]


async def get_span(db: Database, workspace: str, key: bytes) -> Span | None:
    found = await spans(db, workspace, [key])
    return found[0] if found else None


async def search_spans(
    db: Database, workspace: str, query: TraceQuery
) -> AsyncIterator[list[Span]]:
    found = await page_keys(db, workspace, "spans", query)
    for chunk in batched(found, _SEARCH_CHUNK_SPANS):
        yield await spans(db, workspace, chunk, query.truncate)


async def page_spans(db: Database, workspace: str, query: TraceQuery) -> tuple[list[Span], int]:
    """One page of the project's spans and how many match in all."""
    return await page(db, workspace, "spans", spans, query)
