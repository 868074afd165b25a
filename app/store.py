"""The storage boundary: the domain's verbs over the database, with their SQL.

Callers hand in validated values (ids checked, bodies decoded); every write is one transaction
on the writer, every read one or a few statements on a reader.
"""

import re
from collections.abc import AsyncIterator, Iterable, Iterator, Sequence
from itertools import islice
from typing import TypeVar

import msgspec
from msgspec import UNSET, Raw, UnsetType

from app import clock, ids
from app.db import Connection, Database, Lookup, Row
from app.payloads import (
    BulkUpload,
    Experiment,
    ExperimentWrite,
    FeedbackScore,
    FullItem,
    Item,
    SpanWrite,
    TraceWrite,
)

DEFAULT_PROJECT = "Default Project"  # where Opik puts a trace that names no project
_LAST_KEY = b"\xff" * 16  # sorts after every id: "no last_retrieved_id"
_STREAM_CHUNK_ITEMS = 100  # items read per statement while streaming
_EXPERIMENTS_PER_QUERY = 200  # under SQLite's 500 terms of one compound SELECT

T = TypeVar("T")


class Conflict(Exception):
    """The write would touch a record of another workspace, or contradicts a stored one."""


class ItemRecord(msgspec.Struct, frozen=True, gc=False):
    """An item to store, validated: ids as 16-byte keys. A Struct: a batch makes a thousand,
    and this builds them 15 times faster than a dataclass (no cycles: gc=False)."""

    id: bytes
    experiment_id: bytes
    dataset_item_id: bytes
    trace_id: bytes
    project_name: str | None
    project_id: bytes | None


def batched(values: Iterable[T], size: int) -> Iterator[tuple[T, ...]]:
    """itertools.batched, which Python 3.11 lacks."""
    iterator = iter(values)
    while chunk := tuple(islice(iterator, size)):
        yield chunk


def name_key(name: str) -> str:
    """What makes two names the same name: Opik matches names case-insensitively."""
    return name.strip().casefold()


def _key(text: str | None) -> bytes | None:
    """The key of an id the caller has validated."""
    if text is None:
        return None
    key = ids.parse(text)
    if key is None:
        raise ValueError(f"not a UUID: {text!r}")
    return key


def json_text(value: Raw | UnsetType) -> str | None:
    """A JSON value's text as the client sent it; an explicit null is no value."""
    if value is UNSET:
        return None
    text = bytes(value).decode()
    return None if text.strip() == "null" else text


def _encoded(value: object) -> str | None:
    return None if value is None else msgspec.json.encode(value).decode()


def _raw(text: str | None) -> Raw | UnsetType:
    return UNSET if text is None else Raw(text.encode())


def id_or_unset(key: bytes | None) -> str | UnsetType:
    return UNSET if key is None else ids.to_str(key)


def marks(count: int) -> str:
    return ", ".join("?" * count)


# --- SQL -----------------------------------------------------------------------------------

# An item's project is its own, else its trace's; its trace decides its visibility.
GET_ITEM = """
SELECT i.experiment_id, i.dataset_item_id, i.trace_id, i.id,
       coalesce(i.project_id, t.project_id),
       i.created_at, i.last_updated_at, i.created_by, i.last_updated_by, t.hidden
FROM experiment_items AS i
LEFT JOIN traces AS t ON t.id = i.trace_id AND t.workspace = i.workspace
WHERE i.id IN ({keys}) AND +i.workspace = ?
"""

ITEM_BY_ID = Lookup(GET_ITEM, key_column=3)  # column 3: i.id

# {table} is one of the fixed names below, never input.
FIND_NAMED = "SELECT name_key, id FROM {table} WHERE workspace = ? AND name_key IN ({marks})"
INSERT_NAMED = """
INSERT INTO {table} (id, workspace, name, name_key, created_at, created_by,
                     last_updated_at, last_updated_by)
VALUES (?, ?, ?, ?, ?, ?, ?, ?)
"""
FIND_FOREIGN = "SELECT {column} FROM {table} WHERE workspace <> ? AND {column} IN ({marks})"

# An existing id of the same workspace is updated, keeping its creation. The WHERE guards
# what the foreign-id check before it already refused.
UPSERT_ITEM = """
INSERT INTO experiment_items (id, workspace, experiment_id, dataset_item_id, trace_id,
                              project_id, created_at, created_by, last_updated_at,
                              last_updated_by)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (id) DO UPDATE SET
    experiment_id = excluded.experiment_id,
    dataset_item_id = excluded.dataset_item_id,
    trace_id = excluded.trace_id,
    project_id = coalesce(excluded.project_id, experiment_items.project_id),
    last_updated_at = excluded.last_updated_at,
    last_updated_by = excluded.last_updated_by
WHERE experiment_items.workspace = excluded.workspace
"""

DELETE_ITEM = "DELETE FROM experiment_items WHERE id = ? AND workspace = ?"

INSERT_EXPERIMENT = """
INSERT INTO experiments (id, workspace, name, dataset_id, project_id, metadata, tags, type,
                         evaluation_method, optimization_id, status, experiment_scores,
                         prompt_version, prompt_versions, dataset_version_id, created_at,
                         created_by, last_updated_at, last_updated_by)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
"""

GET_EXPERIMENT = """
SELECT e.id, d.name, e.dataset_id, e.project_id, p.name, e.name, e.metadata, e.tags, e.type,
       e.evaluation_method, e.optimization_id, e.created_at, e.last_updated_at, e.created_by,
       e.last_updated_by, e.status, e.experiment_scores, e.prompt_version, e.prompt_versions,
       e.dataset_version_id
FROM experiments AS e
JOIN datasets AS d ON d.id = e.dataset_id
LEFT JOIN projects AS p ON p.id = e.project_id
WHERE e.id = ? AND e.workspace = ?
"""

FIND_EXPERIMENT = "SELECT workspace, dataset_id FROM experiments WHERE id = ?"
DELETE_EXPERIMENT_ITEMS = "DELETE FROM experiment_items WHERE workspace = ? AND experiment_id = ?"
DELETE_EXPERIMENT = "DELETE FROM experiments WHERE workspace = ? AND id = ?"

UPSERT_TRACE = """
INSERT INTO traces (id, workspace, project_id, hidden, name, start_time, end_time, input,
                    output, metadata, tags, error_info, thread_id, ttft, source, environment,
                    created_at, created_by, last_updated_at, last_updated_by)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (id) DO UPDATE SET
    project_id = excluded.project_id, hidden = excluded.hidden, name = excluded.name,
    start_time = excluded.start_time, end_time = excluded.end_time, input = excluded.input,
    output = excluded.output, metadata = excluded.metadata, tags = excluded.tags,
    error_info = excluded.error_info, thread_id = excluded.thread_id, ttft = excluded.ttft,
    source = excluded.source, environment = excluded.environment,
    last_updated_at = excluded.last_updated_at, last_updated_by = excluded.last_updated_by
WHERE traces.workspace = excluded.workspace
"""

UPSERT_SPAN = """
INSERT INTO spans (id, workspace, trace_id, project_id, parent_span_id, name, type, start_time,
                   end_time, input, output, metadata, model, provider, tags, usage, error_info,
                   total_estimated_cost, total_estimated_cost_version, ttft, source,
                   environment, created_at, created_by, last_updated_at, last_updated_by)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (id) DO UPDATE SET
    trace_id = excluded.trace_id, project_id = excluded.project_id,
    parent_span_id = excluded.parent_span_id, name = excluded.name, type = excluded.type,
    start_time = excluded.start_time, end_time = excluded.end_time, input = excluded.input,
    output = excluded.output, metadata = excluded.metadata, model = excluded.model,
    provider = excluded.provider, tags = excluded.tags, usage = excluded.usage,
    error_info = excluded.error_info, total_estimated_cost = excluded.total_estimated_cost,
    total_estimated_cost_version = excluded.total_estimated_cost_version,
    ttft = excluded.ttft, source = excluded.source, environment = excluded.environment,
    last_updated_at = excluded.last_updated_at, last_updated_by = excluded.last_updated_by
WHERE spans.workspace = excluded.workspace
"""

UPSERT_SCORE = """
INSERT INTO feedback_scores (trace_id, name, workspace, category_name, value, reason, source,
                             created_at, created_by, last_updated_at, last_updated_by)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (trace_id, name) DO UPDATE SET
    category_name = excluded.category_name, value = excluded.value, reason = excluded.reason,
    source = excluded.source, last_updated_at = excluded.last_updated_at,
    last_updated_by = excluded.last_updated_by
WHERE feedback_scores.workspace = excluded.workspace
"""

INSERT_BULK_ITEM = """
INSERT INTO experiment_items (id, workspace, experiment_id, dataset_item_id, trace_id,
                              project_id, created_at, created_by, last_updated_at,
                              last_updated_by)
VALUES (?, ?, ?, ?, ?, NULL, ?, ?, ?, ?)
"""

FIND_EXPERIMENTS_BY_NAME = "SELECT id FROM experiments WHERE workspace = ? AND name = ?"
FIND_PROJECT = "SELECT id FROM projects WHERE workspace = ? AND name_key = ?"

# One page of the stream is found as ids first, newest first. Each experiment's own newest
# ids come from one range of experiment_items_by_experiment, so a page reads at most `limit`
# index entries per experiment, however many items the experiment holds.
STREAM_PAGE_BRANCH = """
SELECT * FROM (
    SELECT i.id FROM experiment_items AS i
    WHERE i.workspace = ? AND i.experiment_id = ? AND i.id < ?
    ORDER BY i.id DESC LIMIT ?
)"""
STREAM_PAGE_BRANCH_IN_PROJECT = """
SELECT * FROM (
    SELECT i.id FROM experiment_items AS i
    LEFT JOIN traces AS t ON t.id = i.trace_id AND t.workspace = i.workspace
    WHERE i.workspace = ? AND i.experiment_id = ? AND i.id < ?
      AND coalesce(i.project_id, t.project_id) = ?
    ORDER BY i.id DESC LIMIT ?
)"""

# The unary + keeps the planner off experiment_items_by_experiment, which a long IN list
# would otherwise make it scan whole: each id is one primary-key lookup
# (https://www.sqlite.org/optoverview.html#disqualifying_where_clause_terms_using_unary_).
STREAM_ITEMS = """
SELECT i.experiment_id, i.dataset_item_id, i.trace_id, i.id,
       coalesce(i.project_id, t.project_id), t.id IS NOT NULL, t.input, t.output,
       t.start_time, t.end_time, i.created_at, i.last_updated_at, i.created_by,
       i.last_updated_by, t.hidden
FROM experiment_items AS i
LEFT JOIN traces AS t ON t.id = i.trace_id AND t.workspace = i.workspace
WHERE +i.workspace = ? AND i.id IN ({marks})
"""
STREAM_COSTS = """
SELECT trace_id, sum(total_estimated_cost) FROM spans
WHERE workspace = ? AND trace_id IN ({marks}) AND total_estimated_cost IS NOT NULL
GROUP BY trace_id
"""
STREAM_USAGE = """
SELECT s.trace_id, u.key, sum(u.value) FROM spans AS s, json_each(s.usage) AS u
WHERE s.workspace = ? AND s.trace_id IN ({marks}) AND s.usage IS NOT NULL
GROUP BY s.trace_id, u.key
"""
STREAM_SCORES = """
SELECT trace_id, name, category_name, value, reason, source, created_at, last_updated_at,
       created_by, last_updated_by
FROM feedback_scores WHERE workspace = ? AND trace_id IN ({marks})
ORDER BY trace_id, name
"""

# Opik's truncation of embedded base64 images, applied to the JSON text of input and output:
# com.comet.opik.domain.ImageUtils.IMAGE_TRUNCATION_REGEX, replaced with "[image]".
_IMAGE = re.compile(
    r'"(?:data:image/[^;]{3,4};base64,)?'
    r"(?:/9j/|iVBORw0KGgo|R0lGODlh|R0lGODdh|Qk|SUkq|TU0A|UklGR)"
    r'={0,2}[A-Za-z0-9+/]+={0,2}"'
)


def truncate_images(text: str) -> str:
    return _IMAGE.sub('"[image]"', text)


# --- Writing -------------------------------------------------------------------------------


class Write:
    """One write transaction: its connection, workspace, user and moment."""

    def __init__(self, conn: Connection, workspace: str, user: str) -> None:
        self.conn = conn
        self.workspace = workspace
        self.user = user
        self.now = clock.now_ns()

    def audit(self) -> tuple[int, str, int, str]:
        return self.now, self.user, self.now, self.user

    async def named(self, table: str, names: Iterable[str]) -> dict[str, bytes]:
        """The ids of projects or datasets by name key, creating those that are missing."""
        wanted = {name_key(name): name.strip() for name in names}
        if not wanted:
            return {}
        sql = FIND_NAMED.format(table=table, marks=marks(len(wanted)))
        rows = await self.conn.execute_fetchall(sql, (self.workspace, *wanted))
        found: dict[str, bytes] = {key: value for key, value in rows}
        missing = [(key, name) for key, name in wanted.items() if key not in found]
        for key, _ in missing:
            found[key] = ids.uuid7()
        await self.conn.executemany(
            INSERT_NAMED.format(table=table),
            [(found[key], self.workspace, name, key, *self.audit()) for key, name in missing],
        )
        return found

    async def refuse_foreign(self, table: str, keys: Sequence[bytes], what: str) -> None:
        """409 when any of `keys` is already an id of another workspace: ids are global."""
        for key in await self.foreign(table, keys):
            raise Conflict(f"{what} '{ids.to_str(key)}' belongs to another workspace")

    async def foreign(self, table: str, keys: Iterable[bytes], column: str = "id") -> list[bytes]:
        """Those of `keys` that `column` of `table` holds in another workspace."""
        found: list[bytes] = []
        for chunk in batched(keys, 10_000):
            sql = FIND_FOREIGN.format(table=table, column=column, marks=marks(len(chunk)))
            rows = await self.conn.execute_fetchall(sql, (self.workspace, *chunk))
            found += [key for (key,) in rows]
        return found

    async def insert_experiment(
        self,
        key: bytes,
        name: str,
        dataset_id: bytes,
        project_id: bytes | None,
        write: ExperimentWrite | None = None,
    ) -> None:
        if write is None:
            extra: tuple[object, ...] = (None, None, "regular", "dataset", None, None)
            extra += (None, None, None, None)
        else:
            extra = (
                json_text(write.metadata),
                _encoded(write.tags),
                write.type,
                write.evaluation_method,
                _key(write.optimization_id),
                write.status,
                _encoded(write.experiment_scores),
                _encoded(write.prompt_version),
                _encoded(write.prompt_versions),
                _key(write.dataset_version_id),
            )
        row = (key, self.workspace, name, dataset_id, project_id, *extra, *self.audit())
        await self.conn.execute(INSERT_EXPERIMENT, row)


def _trace_row(
    w: Write, key: bytes, project_id: bytes, trace: TraceWrite | None, output: str | None
) -> tuple[object, ...]:
    """A trace as recorded, or the one Opik makes from a task's result (output, no input)."""
    if trace is None:
        return (key, w.workspace, project_id, 0, None, w.now, w.now, None, output, None, None,
                None, None, None, None, None, *w.audit())  # fmt: skip
    return (
        key,
        w.workspace,
        project_id,
        int(trace.visibility_mode == "hidden"),
        trace.name,
        clock.to_ns(trace.start_time),
        None if trace.end_time is None else clock.to_ns(trace.end_time),
        json_text(trace.input),
        json_text(trace.output),
        json_text(trace.metadata),
        _encoded(trace.tags),
        _encoded(trace.error_info),
        trace.thread_id,
        trace.ttft,
        trace.source,
        trace.environment,
        *w.audit(),
    )


def _span_row(w: Write, trace_id: bytes, project_id: bytes, span: SpanWrite) -> tuple[object, ...]:
    return (
        _key(span.id) or ids.uuid7(),
        w.workspace,
        trace_id,
        project_id,
        _key(span.parent_span_id),
        span.name,
        span.type,
        clock.to_ns(span.start_time),
        None if span.end_time is None else clock.to_ns(span.end_time),
        json_text(span.input),
        json_text(span.output),
        json_text(span.metadata),
        span.model,
        span.provider,
        _encoded(span.tags),
        _encoded(span.usage),
        _encoded(span.error_info),
        span.total_estimated_cost,
        span.total_estimated_cost_version,
        span.ttft,
        span.source,
        span.environment,
        *w.audit(),
    )


# --- Reading -------------------------------------------------------------------------------


def _duration_ms(start_ns: int | None, end_ns: int | None) -> float | UnsetType:
    # Opik: dateDiff('microsecond', start_time, end_time) / 1000.0
    if start_ns is None or end_ns is None:
        return UNSET
    return (end_ns // 1_000 - start_ns // 1_000) / 1000.0


def _score(row: Row) -> FeedbackScore:
    _, name, category, value, reason, source, created, updated, created_by, updated_by = row
    return FeedbackScore(
        name,
        UNSET if category is None else category,
        value,
        UNSET if reason is None else reason,
        source,
        clock.format_instant(created),
        clock.format_instant(updated),
        created_by,
        updated_by,
    )


# The text of ids that many items share: an experiment's, and a dataset item's, which every
# experiment over the dataset repeats. Emptied when full, so it stays small.
_SHARED_TEXT: dict[bytes, str] = {}
_SHARED_KEPT = 4096


def _shared_text(key: bytes) -> str:
    text = _SHARED_TEXT.get(key)
    if text is None:
        if len(_SHARED_TEXT) >= _SHARED_KEPT:
            _SHARED_TEXT.clear()
        text = _SHARED_TEXT[key] = ids.to_str(key)
    return text


class Store:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def ping(self) -> None:
        """Raises unless the database can be read: the health check."""
        await self.db.check()

    # Experiment items

    async def get_item(self, workspace: str, item_id: bytes) -> Item | None:
        row = await self.db.lookup(ITEM_BY_ID, workspace, item_id)
        if row is None:
            return None
        e, d, t, i, p, created, updated, created_by, updated_by, hidden = row
        created_at = clock.format_instant(created)
        return Item(
            _shared_text(e),
            _shared_text(d),
            ids.to_str(t),
            ids.to_str(i),
            UNSET if p is None else ids.to_str(p),
            created_at,
            # An item never written again was last updated when it was created.
            created_at if updated == created else clock.format_instant(updated),
            created_by,
            updated_by,
            "hidden" if hidden else "default",
        )

    async def upsert_items(self, workspace: str, user: str, items: Sequence[ItemRecord]) -> None:
        """Store every item or none, durably, in one transaction."""
        async with self.db.transaction() as conn:
            w = Write(conn, workspace, user)
            experiment_ids = list({i.experiment_id for i in items})
            await w.refuse_foreign("experiments", experiment_ids, "Experiment")
            projects = await w.named("projects", [i.project_name for i in items if i.project_name])
            rows = [
                (
                    i.id,
                    workspace,
                    i.experiment_id,
                    i.dataset_item_id,
                    i.trace_id,
                    projects[name_key(i.project_name)] if i.project_name else i.project_id,
                    *w.audit(),
                )
                for i in items
            ]
            written = await conn.executemany(UPSERT_ITEM, rows)
            # The upsert leaves alone a row that another workspace holds under the same id
            # (ids are global) and does not count it; only then is it worth finding which.
            if written.rowcount != len(rows):
                ids_ = [i.id for i in items]
                await w.refuse_foreign("experiment_items", ids_, "Experiment item")
                raise AssertionError("an upsert skipped rows that no other workspace holds")

    async def delete_items(self, workspace: str, item_ids: Sequence[bytes]) -> None:
        async with self.db.transaction() as conn:
            await conn.executemany(DELETE_ITEM, [(i, workspace) for i in item_ids])

    # Experiments

    async def create_experiment(
        self, workspace: str, user: str, key: bytes, name: str, write: ExperimentWrite
    ) -> None:
        """A new experiment; 409 when the id exists already, in any workspace."""
        async with self.db.transaction() as conn:
            w = Write(conn, workspace, user)
            if await conn.execute_fetchall(FIND_EXPERIMENT, (key,)):
                raise Conflict(f"Already exists experiment with id '{ids.to_str(key)}'")
            datasets = await w.named("datasets", [write.dataset_name])
            project_id = _key(write.project_id)
            if project_id is None and write.project_name and write.project_name.strip():
                project_id = (await w.named("projects", [write.project_name]))[
                    name_key(write.project_name)
                ]
            await w.insert_experiment(
                key, name, datasets[name_key(write.dataset_name)], project_id, write
            )

    async def get_experiment(self, workspace: str, key: bytes) -> Experiment | None:
        rows = await self.db.fetch_all(GET_EXPERIMENT, (key, workspace))
        if not rows:
            return None
        (e, dataset_name, dataset_id, project_id, project_name, name, metadata, tags, kind,
         method, optimization_id, created, updated, created_by, updated_by, status, scores,
         prompt_version, prompt_versions, dataset_version_id) = rows[0]  # fmt: skip
        return Experiment(
            ids.to_str(e),
            dataset_name,
            ids.to_str(dataset_id),
            id_or_unset(project_id),
            UNSET if project_name is None else project_name,
            name,
            _raw(metadata),
            _raw(tags),
            kind,
            method,
            id_or_unset(optimization_id),
            clock.format_instant(created),
            clock.format_instant(updated),
            created_by,
            updated_by,
            UNSET if status is None else status,
            _raw(scores),
            _raw(prompt_version),
            _raw(prompt_versions),
            id_or_unset(dataset_version_id),
        )

    async def delete_experiments(self, workspace: str, keys: Sequence[bytes]) -> None:
        """The experiments and their items; traces stay, as in Opik."""
        async with self.db.transaction() as conn:
            rows = [(workspace, key) for key in keys]
            await conn.executemany(DELETE_EXPERIMENT_ITEMS, rows)
            await conn.executemany(DELETE_EXPERIMENT, rows)

    # Bulk recording

    async def record_bulk(self, workspace: str, user: str, upload: BulkUpload) -> None:
        """An evaluation run, all of it or none: experiment, traces, spans, scores, items."""
        async with self.db.transaction() as conn:
            w = Write(conn, workspace, user)
            dataset_id = (await w.named("datasets", [upload.dataset_name]))[
                name_key(upload.dataset_name)
            ]
            experiment_id = await self._bulk_experiment(w, upload, dataset_id)
            default_project = upload.project_name or DEFAULT_PROJECT
            traces = [r.trace if isinstance(r.trace, TraceWrite) else None for r in upload.items]
            projects = await w.named(
                "projects",
                {(t.project_name if t and t.project_name else default_project) for t in traces},
            )
            trace_rows, span_rows, score_rows, item_rows = [], [], [], []
            for record, trace in zip(upload.items, traces, strict=True):
                trace_id = (_key(trace.id) if trace else None) or ids.uuid7()
                name = trace.project_name if trace and trace.project_name else default_project
                project_id = projects[name_key(name)]
                output = None if trace else json_text(record.evaluate_task_result)
                trace_rows.append(_trace_row(w, trace_id, project_id, trace, output))
                span_rows += [_span_row(w, trace_id, project_id, s) for s in record.spans or ()]
                score_rows += [
                    (trace_id, s.name, workspace, s.category_name, s.value, s.reason, s.source,
                     *w.audit())
                    for s in record.feedback_scores or ()
                ]  # fmt: skip
                dataset_item_id = _key(record.dataset_item_id)
                item_rows.append(
                    (ids.uuid7(), workspace, experiment_id, dataset_item_id, trace_id, *w.audit())
                )
            await w.refuse_foreign("traces", [row[0] for row in trace_rows], "Trace")  # type: ignore[misc]
            await w.refuse_foreign("spans", [row[0] for row in span_rows], "Span")  # type: ignore[misc]
            await conn.executemany(UPSERT_TRACE, trace_rows)
            await conn.executemany(UPSERT_SPAN, span_rows)
            await conn.executemany(UPSERT_SCORE, score_rows)
            await conn.executemany(INSERT_BULK_ITEM, item_rows)

    async def _bulk_experiment(self, w: Write, upload: BulkUpload, dataset_id: bytes) -> bytes:
        """The experiment with `experiment_id` when it exists, else a new one by name."""
        key = _key(upload.experiment_id)
        if key is not None:
            found = await w.conn.execute_fetchall(FIND_EXPERIMENT, (key,))
            for workspace, stored_dataset in found:
                if workspace != w.workspace:
                    raise Conflict(f"Experiment '{ids.to_str(key)}' belongs to another workspace")
                if stored_dataset != dataset_id:
                    raise Conflict("Experiment dataset mismatch")
                return key
        key = key or ids.uuid7()
        project_id = None
        if upload.project_name:
            project_id = (await w.named("projects", [upload.project_name]))[
                name_key(upload.project_name)
            ]
        await w.insert_experiment(key, upload.experiment_name, dataset_id, project_id)
        return key

    # Streaming

    async def stream_items(
        self,
        workspace: str,
        experiment_name: str,
        limit: int,
        before: bytes | None,
        project_name: str | None,
        truncate: bool,
    ) -> AsyncIterator[list[FullItem]]:
        """The items of every experiment of that name, newest id first, in chunks read one at
        a time, so that a client that goes away stops the reading."""
        page = await self._stream_page(workspace, experiment_name, limit, before, project_name)
        for chunk in batched(page, _STREAM_CHUNK_ITEMS):
            yield await self._full_items(workspace, chunk, truncate)

    async def _stream_page(
        self,
        workspace: str,
        experiment_name: str,
        limit: int,
        before: bytes | None,
        project_name: str | None,
    ) -> list[bytes]:
        experiments = await self.db.fetch_all(
            FIND_EXPERIMENTS_BY_NAME, (workspace, experiment_name)
        )
        if not experiments:
            return []
        branch, filter_values = STREAM_PAGE_BRANCH, tuple[object, ...]()
        if project_name is not None:
            project = await self.db.fetch_all(FIND_PROJECT, (workspace, name_key(project_name)))
            if not project:
                return []
            branch, filter_values = STREAM_PAGE_BRANCH_IN_PROJECT, (project[0][0],)
        page: list[bytes] = []
        for chunk in batched([row[0] for row in experiments], _EXPERIMENTS_PER_QUERY):
            sql = " UNION ALL ".join([branch] * len(chunk))
            params: list[object] = []
            for experiment_id in chunk:
                params += [workspace, experiment_id, before or _LAST_KEY, *filter_values, limit]
            page += [row[0] for row in await self.db.fetch_all(sql, params)]
        page.sort(reverse=True)
        return page[:limit]

    async def _full_items(
        self, workspace: str, keys: Sequence[bytes], truncate: bool
    ) -> list[FullItem]:
        sql = STREAM_ITEMS.format(marks=marks(len(keys)))
        rows = {row[3]: row for row in await self.db.fetch_all(sql, (workspace, *keys))}
        traces = list({row[2] for row in rows.values() if row[5]})
        costs: dict[bytes, float] = {}
        usage: dict[bytes, dict[str, int]] = {}
        scores: dict[bytes, list[FeedbackScore]] = {}
        if traces:
            trace_marks = marks(len(traces))
            params = (workspace, *traces)
            costs = dict(await self.db.fetch_all(STREAM_COSTS.format(marks=trace_marks), params))
            for trace_id, name, total in await self.db.fetch_all(
                STREAM_USAGE.format(marks=trace_marks), params
            ):
                usage.setdefault(trace_id, {})[name] = int(total)
            for row in await self.db.fetch_all(STREAM_SCORES.format(marks=trace_marks), params):
                scores.setdefault(row[0], []).append(_score(row))
        items = []
        for key in keys:
            found = rows.get(key)
            if found is None:  # deleted since the page was read
                continue
            (e, d, t, i, p, known, input_, output, start, end, created, updated, created_by,
             updated_by, hidden) = found  # fmt: skip
            if truncate:
                input_ = input_ and truncate_images(input_)
                output = output and truncate_images(output)
            items.append(
                FullItem(
                    ids.to_str(e),
                    ids.to_str(d),
                    ids.to_str(t),
                    ids.to_str(i),
                    id_or_unset(p),
                    _raw(input_),
                    _raw(output),
                    scores.get(t, UNSET) if known else UNSET,
                    costs.get(t, UNSET) if known else UNSET,
                    _duration_ms(start, end) if known else UNSET,
                    usage.get(t, UNSET) if known else UNSET,
                    clock.format_instant(created),
                    clock.format_instant(updated),
                    created_by,
                    updated_by,
                    "hidden" if hidden else "default",
                )
            )
        return items
