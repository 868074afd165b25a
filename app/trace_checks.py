"""From trace, span, score and search payloads to records: what the Structs' types cannot say
(ids that must be version 7, instants the store can hold), as app/checks.py does for items."""

from collections.abc import Iterator
from datetime import datetime

import msgspec
from msgspec import UNSET, Raw, UnsetType

from app import clock, ids
from app.body import require_text, require_uuid, require_v7
from app.checks import encoded, given_name, instant, span_record, trace_record, v7_column
from app.errors import ApiError
from app.payloads import DEFAULT_STREAM_LIMIT
from app.records import Patch, ScoreRecord, ScoreUpsert, SpanUpsert, TraceUpsert, json_text
from app.trace_payloads import ScoreItem, SpanCreate, SpanUpdate, TraceCreate, TraceUpdate
from app.trace_queries import (
    SPAN_FIELDS,
    SPAN_SORTABLE_BY,
    TRACE_FIELDS,
    TRACE_SORTABLE_BY,
    SpanSearch,
    SpansQuery,
    TraceFilter,
    TraceSearch,
    TracesQuery,
)
from app.trace_records import TraceCondition, TraceQuery, TraceSort

Searched = TraceSearch | SpanSearch | TracesQuery | SpansQuery
_filters = msgspec.json.Decoder(list[TraceFilter])


# A batch's ids are checked a column at a time (checks.v7_column), a third of the Python time
# of a batch of 1,000 spans; when a column fails, each record checks its own and names it.
def trace_upserts(traces: list[TraceCreate], at: str = "traces") -> list[TraceUpsert]:
    keys = v7_column([t.id for t in traces]) or [None] * len(traces)
    upserts = []
    for n, (trace, key) in enumerate(zip(traces, keys, strict=True)):
        path = f"{at}[{n}]"
        updated = None
        if trace.last_updated_at is not None:
            updated = instant(trace.last_updated_at, f"{path}.last_updated_at")
        upserts.append(TraceUpsert(trace_record(trace, path, key), updated))
    return upserts


def span_upserts(spans: list[SpanCreate], at: str = "spans") -> list[SpanUpsert]:
    unknown = [None] * len(spans)
    keys = v7_column([s.id for s in spans]) or unknown
    traces = v7_column([s.trace_id for s in spans]) or unknown
    given = [s.parent_span_id for s in spans if s.parent_span_id is not None]
    parents: Iterator[bytes | None] = iter(v7_column(given) or unknown)
    upserts = []
    for n, (span, key, trace_id) in enumerate(zip(spans, keys, traces, strict=True)):
        path = f"{at}[{n}]"
        parent = None if span.parent_span_id is None else next(parents)
        record = span_record(span, path, key, parent)
        if trace_id is None:
            trace_id = require_v7(span.trace_id, "trace_id", "Span", f"{path}.trace_id")
        updated = None
        if span.last_updated_at is not None:
            updated = instant(span.last_updated_at, f"{path}.last_updated_at")
        upserts.append(SpanUpsert(record, trace_id, given_name(span.project_name), updated))
    return upserts


def path_id(text: str, resource: str) -> bytes:
    """The key of a path's id: a bare 404 when it is no UUID (Jersey cannot convert it), 400
    when it is not version 7."""
    key = ids.parse(text)
    if key is None:
        raise ApiError(404, "HTTP 404 Not Found")
    return require_v7(text, "id", resource)


# The fields of a PATCH that are columns as they are, and those stored as JSON text.
_PLAIN = (
    "name", "thread_id", "ttft", "source", "environment", "model", "provider", "type",
    "total_estimated_cost", "total_estimated_cost_version",
)  # fmt: skip
_ENCODED = ("tags", "error_info", "usage")


def patch(key: bytes, update: TraceUpdate | SpanUpdate) -> Patch:
    """The fields the update gives (an explicit null is none), by column."""
    fields: dict[str, object] = {}
    values = msgspec.structs.asdict(update)
    for name in _PLAIN:
        if values.get(name) is not None:
            fields[name] = values[name]
    for name in _ENCODED:
        if values.get(name) is not None:
            fields[name] = encoded(values[name])
    for name in ("input", "output", "metadata"):
        raw: Raw | UnsetType = values[name]
        text = json_text(raw) if raw is not UNSET else None
        if text is not None:
            fields[name] = text
    if update.end_time is not None:
        fields["end_time"] = instant(update.end_time, "end_time")
    if isinstance(update, SpanUpdate):
        fields["trace_id"] = require_v7(update.trace_id, "trace_id", "Span")
        if update.parent_span_id is not None:
            fields["parent_span_id"] = require_v7(update.parent_span_id, "parent_span_id", "Span")
    if update.project_id is not None:
        require_uuid(update.project_id, "project_id")
    return Patch(
        id=key,
        project_name=given_name(update.project_name),
        fields=fields,
        tags_to_add=tuple(update.tags_to_add or ()),
        tags_to_remove=tuple(update.tags_to_remove or ()),
    )


def score_upserts(scores: list[ScoreItem], resource: str) -> list[ScoreUpsert]:
    upserts = []
    for n, s in enumerate(scores):
        key = require_v7(s.id, "id", resource, f"scores[{n}].id")
        require_text(s.name, f"scores[{n}].name")
        if s.project_id is not None:
            require_uuid(s.project_id, f"scores[{n}].project_id")
        # Opik's author: the one the score names, else the request's user (the store's).
        author = s.author.strip() if s.author is not None and s.author.strip() else None
        record = ScoreRecord(s.name.strip(), s.value, s.source, s.category_name, s.reason, author)
        upserts.append(ScoreUpsert(key, given_name(s.project_name), record))
    return upserts


def project_of_search(search: Searched) -> tuple[str | None, bytes | None]:
    """The searched project's name or id key: 400 when neither is given."""
    name = given_name(search.project_name)
    key = None if search.project_id is None else require_uuid(search.project_id, "project_id")
    if name is None and key is None:
        raise ApiError(400, "Either 'project_name' or 'project_id' query params must be provided")
    return name, key


_NAME_OPERATORS = {"=", "!=", "contains", "not_contains", "starts_with", "ends_with"}
_NUMBER_OPERATORS = {"=", "!=", ">", ">=", "<", "<="}


def _condition(f: TraceFilter) -> TraceCondition | None:
    if f.field == "name" and f.operator in _NAME_OPERATORS and f.value is not None:
        return TraceCondition("name", f.operator, None, f.value)
    if f.field == "feedback_scores" and f.operator in _NUMBER_OPERATORS and f.key:
        try:
            number = float(f.value or "")
        except ValueError:
            return None
        return TraceCondition("feedback_scores", f.operator, f.key, number)
    return None


def _before(last_retrieved_id: str | None) -> bytes | None:
    if last_retrieved_id is None:
        return None
    return require_uuid(last_retrieved_id, "last_retrieved_id")


def _conditions(filters: list[TraceFilter] | None) -> tuple[TraceCondition, ...]:
    conditions = [_condition(f) for f in filters or ()]
    return tuple(c for c in conditions if c is not None)


# UUID version 7 keeps its instant in its first 48 bits, in milliseconds (RFC 9562 §5.7).
_MAX_MS = 2**48 - 1


def _instant_param(text: str | None, name: str, in_body: bool) -> datetime | None:
    """A `from_time`/`to_time` as an ISO-8601 instant (no zone: UTC); 400 otherwise, as
    Jackson refuses a body's text that is no Instant."""
    if text is None or not text.strip():
        return None
    try:
        return msgspec.convert(text.strip(), datetime)
    except msgspec.ValidationError:
        if in_body:
            raise ApiError(
                400, f"Unable to process JSON. {name} is not an instant: '{text}'"
            ) from None
        raise ApiError(400, f"Invalid query param {name} '{text}'") from None


def _id_bound(value: datetime | None, upper: bool) -> bytes | None:
    """The least (or greatest) UUID v7 of the instant's millisecond, as Opik's
    InstantToUUIDMapper makes them: version and variant set, every other bit 0 (or 1)."""
    if value is None:
        return None
    ms = min(max(clock.to_ns(value) // 1_000_000, 0), _MAX_MS)
    if upper:
        return (ms << 80 | 0x7FFF << 64 | 0xBFFF_FFFF_FFFF_FFFF).to_bytes(16, "big")
    return (ms << 80 | 0x7000 << 64 | 0x8000_0000_0000_0000).to_bytes(16, "big")


def time_range(
    from_time: str | None, to_time: str | None, in_body: bool = False
) -> tuple[bytes | None, bytes | None]:
    """The id bounds of a `from_time`/`to_time` range, both included, as Opik's TraceDAO and
    SpanDAO bound `id` (ValidationUtils.validateTimeRangeParameters: from before to, else
    400)."""
    start = _instant_param(from_time, "from_time", in_body)
    end = _instant_param(to_time, "to_time", in_body)
    if start is not None and end is not None and not clock.to_ns(start) < clock.to_ns(end):
        raise ApiError(400, "Parameter 'from_time' must be before 'to_time'")
    return _id_bound(start, upper=False), _id_bound(end, upper=True)


def excluded(names: list[str] | None, allowed: tuple[str, ...], kind: str) -> frozenset[str]:
    """The fields a search leaves out of each record: names of Opik's `TraceField` or
    `SpanField`; another is a 400, as Jackson refuses a value that is not of the enum."""
    for name in names or ():
        if name not in allowed:
            raise ApiError(
                400,
                f"Unable to process JSON. Cannot deserialize value of type `{kind}` from String "
                f'"{name}": not one of the values accepted for Enum class: [{", ".join(allowed)}]',
            )
    return frozenset(names or ())


def excluded_param(raw: str | None, allowed: tuple[str, ...]) -> frozenset[str]:
    """A page's `exclude`, JSON text of such names: 400 as Opik's ParamsValidator.get."""
    if raw is None or not raw.strip():
        return frozenset()
    try:
        names = msgspec.json.decode(raw, type=list[str])
    except (msgspec.DecodeError, msgspec.ValidationError):
        names = None
    if names is None or any(name not in allowed for name in names):
        raise ApiError(400, f"Invalid query param exclude '{raw}'")
    return frozenset(names)


def sort(raw: str | None, sortable: list[str]) -> TraceSort | None:
    """A page's order: the first entry of `sorting` (JSON text, Opik's SortingFactory), by a
    field of `sortable` (`feedback_scores.<name>` and `usage.<key>` for the `.*` ones);
    ascending unless `DESC`. 400 when it is no such JSON or names another field."""
    if raw is None or not raw.strip():
        return None
    try:
        entries = msgspec.json.decode(raw)
    except msgspec.DecodeError:
        entries = None
    if not isinstance(entries, list) or not all(
        isinstance(e, dict)
        and isinstance(e.get("field"), str)
        and e.get("direction") in (None, "ASC", "DESC")
        for e in entries
    ):
        raise ApiError(400, f"Invalid sorting query parameter '{raw}'")
    if not entries:
        return None
    field, descending = entries[0]["field"], entries[0].get("direction") == "DESC"
    head, dot, key = field.partition(".")
    if dot and key and f"{head}.*" in sortable:
        return TraceSort(f"{head}.*", descending, key)
    if field in sortable and "*" not in field:
        return TraceSort(field, descending)
    raise ApiError(400, f"Invalid sorting fields '{field}'")


def _search_text(text: str | None) -> str | None:
    return text.strip() if text is not None and text.strip() else None


def trace_query(search: TraceSearch, project_id: bytes) -> TraceQuery:
    project_of_search(search)  # first, as Opik's resources check it before the time range
    from_id, to_id = time_range(search.from_time, search.to_time, in_body=True)
    return TraceQuery(
        project_id=project_id,
        limit=DEFAULT_STREAM_LIMIT if search.limit is None else search.limit,
        before=_before(search.last_retrieved_id),
        truncate=search.truncate is True,
        conditions=_conditions(search.filters),
        from_id=from_id,
        to_id=to_id,
    )


def span_query(search: SpanSearch, project_id: bytes) -> TraceQuery:
    project_of_search(search)
    trace_id = None if search.trace_id is None else require_uuid(search.trace_id, "trace_id")
    from_id, to_id = time_range(search.from_time, search.to_time, in_body=True)
    return TraceQuery(
        project_id=project_id,
        limit=DEFAULT_STREAM_LIMIT if search.limit is None else search.limit,
        before=_before(search.last_retrieved_id),
        truncate=search.truncate is True,
        conditions=_conditions(search.filters),
        trace_id=trace_id,
        span_type=search.type,
        from_id=from_id,
        to_id=to_id,
    )


def search_exclude(search: TraceSearch | SpanSearch) -> frozenset[str]:
    if isinstance(search, TraceSearch):
        return excluded(search.exclude, TRACE_FIELDS, "com.comet.opik.api.Trace$TraceField")
    return excluded(search.exclude, SPAN_FIELDS, "com.comet.opik.api.Span$SpanField")


def page_exclude(query: TracesQuery | SpansQuery, order: TraceSort | None) -> frozenset[str]:
    """The fields a page leaves out; the one it sorts by stays, as TraceDAO keeps the sorting
    fields out of `exclude_fields`."""
    allowed = TRACE_FIELDS if isinstance(query, TracesQuery) else SPAN_FIELDS
    fields = excluded_param(query.exclude, allowed)
    return fields - {order.field.removesuffix(".*")} if order is not None else fields


def page_query(query: TracesQuery | SpansQuery, project_id: bytes) -> TraceQuery:
    """A page as a query: `size` of them after the first (page - 1) * size, newest first or in
    `sorting`'s order; `filters` the JSON text of the search's filter list (400 when it is not
    one); `search` a text held by one of the record's fields, ignoring case."""
    project_of_search(query)
    filters = None
    if query.filters is not None and query.filters.strip():
        try:
            filters = _filters.decode(query.filters)
        except (msgspec.DecodeError, msgspec.ValidationError):
            raise ApiError(400, f"Invalid filters query parameter '{query.filters}'") from None
    trace_id, span_type = None, None
    sortable = TRACE_SORTABLE_BY
    if isinstance(query, SpansQuery):
        if query.trace_id is not None:
            trace_id = require_uuid(query.trace_id, "trace_id")
        span_type = query.type
        sortable = SPAN_SORTABLE_BY
    from_id, to_id = time_range(query.from_time, query.to_time)
    return TraceQuery(
        project_id=project_id,
        limit=query.size,
        before=None,
        truncate=query.truncate,
        conditions=_conditions(filters),
        offset=(query.page - 1) * query.size,
        trace_id=trace_id,
        span_type=span_type,
        from_id=from_id,
        to_id=to_id,
        search=_search_text(query.search),
        sort=sort(query.sorting, sortable),
    )
