"""What a trace or span search or page asks of a store, in words no engine owns: its
conditions, its order and its bounds (app/trace_checks.py makes them from a request)."""

import msgspec


class TraceCondition(msgspec.Struct, frozen=True, gc=False):
    """One filter of a trace search the store applies (app/trace_checks.py keeps only those)."""

    field: str
    operator: str
    key: str | None
    value: str | float


class TraceSort(msgspec.Struct, frozen=True, gc=False):
    """The order of a page: by `field` (one the engine lists as sortable; `key` names the score
    or usage entry of a `feedback_scores.*` or `usage.*` field), then newest id first."""

    field: str
    descending: bool
    key: str | None = None


class TraceQuery(msgspec.Struct, frozen=True, gc=False):
    """Which traces (or spans) a search or a page reads: one project's, newest id first (or in
    `sort`'s order), older than `before` when it is set, `offset` skipped, at most `limit`,
    each meeting every condition, with an id from `from_id` to `to_id` (both included: the
    UUID v7 bounds of a time range) and holding `search` (ignoring case) when set; spans also
    of `trace_id` and of `span_type` when set."""

    project_id: bytes
    limit: int
    before: bytes | None
    truncate: bool
    conditions: tuple[TraceCondition, ...] = ()
    offset: int = 0
    trace_id: bytes | None = None
    span_type: str | None = None
    from_id: bytes | None = None
    to_id: bytes | None = None
    search: str | None = None
    sort: TraceSort | None = None
