"""Trace and span writes: batches upserted newest-wins, PATCHes that may come before their
create, feedback scores, and deletes of traces (with their spans and scores) and of scores;
each one transaction, with app/sqlite/traces.py's rules.

Every write that stores a row under a trace or span id first locks the id (id_locks.py). The
409 still comes from what each statement reports (RETURNING), as in items.py."""

from collections.abc import Sequence
from dataclasses import dataclass
from operator import itemgetter
from typing import Any

import asyncpg

from app.postgres.connection import Database
from app.postgres.id_locks import SPAN_IDS, TRACE_IDS, lock_ids
from app.postgres.write import Write
from app.records import (
    DEFAULT_PROJECT,
    Conflict,
    Patch,
    ScoreUpsert,
    SpanUpsert,
    TraceUpsert,
    name_key,
)

# Each table's columns with their types (those of unnest's arrays), in the schema's order.
_TRACE_TYPES = {
    "id": "bytea", "workspace": "text", "project_id": "bytea", "hidden": "int4",
    "name": "text", "start_time": "int8", "end_time": "int8", "input": "text",
    "output": "text", "metadata": "text", "tags": "text", "error_info": "text",
    "thread_id": "text", "ttft": "float8", "source": "text", "environment": "text",
    "created_at": "int8", "created_by": "text", "last_updated_at": "int8",
    "last_updated_by": "text", "partial": "int4",
}  # fmt: skip
_SPAN_TYPES = {
    "id": "bytea", "workspace": "text", "trace_id": "bytea", "project_id": "bytea",
    "parent_span_id": "bytea", "name": "text", "type": "text", "start_time": "int8",
    "end_time": "int8", "input": "text", "output": "text", "metadata": "text",
    "model": "text", "provider": "text", "tags": "text", "usage": "text",
    "error_info": "text", "total_estimated_cost": "float8",
    "total_estimated_cost_version": "text", "ttft": "float8", "source": "text",
    "environment": "text", "created_at": "int8", "created_by": "text",
    "last_updated_at": "int8", "last_updated_by": "text", "partial": "int4",
}  # fmt: skip
# The write's own: $1 workspace, $2 its moment, $3 its user; a create is never partial.
_OF_THE_WRITE = {
    "workspace": "$1", "created_at": "$2", "created_by": "$3", "last_updated_by": "$3",
    "partial": "0",
}  # fmt: skip
_KEPT = {"id", "workspace", "created_at", "created_by"}
# What a create does to a row of the same id (app/sqlite/traces.py's _newest_wins): a row a
# PATCH made (partial = 1) keeps what the PATCH set and takes the rest from the create; a full
# row is replaced when the create's last_updated_at is not older; created_* stay.
_ALWAYS_NEW = {"project_id", "start_time", "partial", "last_updated_by", "hidden", "trace_id"}


def _merged(column: str) -> str:
    if column in _ALWAYS_NEW:
        return f"excluded.{column}"
    if column == "last_updated_at":
        return (
            "CASE WHEN t.partial = 1 THEN greatest(t.last_updated_at, excluded.last_updated_at)"
            " ELSE excluded.last_updated_at END"
        )
    return (
        f"CASE WHEN t.partial = 1 THEN coalesce(t.{column}, excluded.{column})"
        f" ELSE excluded.{column} END"
    )


def _newest_wins(table: str, types: dict[str, str]) -> tuple[str, list[str]]:
    """The upsert of a batch of `table` by unnest, and the columns its arrays ($4 on) hold.
    A row the WHERE leaves (older, or another workspace's) is missing from RETURNING, and
    stays locked to this transaction (ON CONFLICT DO UPDATE locks every conflicting row)."""
    given = [c for c in types if c not in _OF_THE_WRITE]
    arrays = ", ".join(f"${n}::{types[c]}[]" for n, c in enumerate(given, start=4))
    values = ", ".join(_OF_THE_WRITE.get(c, f"u.{c}") for c in types)
    updates = ", ".join(f"{c} = {_merged(c)}" for c in types if c not in _KEPT)
    sql = (
        f"INSERT INTO {table} AS t ({', '.join(types)})\n"
        f"SELECT {values} FROM unnest({arrays}) AS u({', '.join(given)})\n"
        f"ON CONFLICT (id) DO UPDATE SET {updates}\n"
        "WHERE t.workspace = excluded.workspace"
        " AND (t.partial = 1 OR excluded.last_updated_at >= t.last_updated_at)\n"
        "RETURNING t.id"
    )
    return sql, given


UPSERT_TRACES, _TRACE_ARRAYS = _newest_wins("traces", _TRACE_TYPES)
UPSERT_SPANS, _SPAN_ARRAYS = _newest_wins("spans", _SPAN_TYPES)


def _rounds(rows: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """The rows in rounds that a statement each can write: the nth of an id's rows in the nth,
    so that a batch's second row of an id meets its first as SQLite's one row at a time does
    (one statement cannot change a row twice); each round in id order, for its locks."""
    seen: dict[bytes, int] = {}
    rounds: list[list[dict[str, Any]]] = []
    for row in rows:
        n = seen[row["id"]] = seen.get(row["id"], -1) + 1
        if n == len(rounds):
            rounds.append([])
        rounds[n].append(row)
    return [sorted(batch, key=lambda row: row["id"]) for batch in rounds]


@dataclass(frozen=True)
class _Kind:
    """Traces or spans: the table, what a 409 calls a record of it, its id lock, its upsert
    and the columns of the upsert's arrays, which are those of a COPY's rows too."""

    table: str
    what: str
    lock: int
    upsert: str
    given: list[str]

    @property
    def copied(self) -> list[str]:
        return [*self.given, *_OF_THE_WRITE]


_TRACES = _Kind("traces", "Trace", TRACE_IDS, UPSERT_TRACES, _TRACE_ARRAYS)
_SPANS = _Kind("spans", "Span", SPAN_IDS, UPSERT_SPANS, _SPAN_ARRAYS)
# {table} is traces or spans, never input.
FIND_STORED = "SELECT id, workspace FROM {table} WHERE id = ANY($1::bytea[])"


async def _stored(w: Write, kind: _Kind, keys: list[bytes]) -> set[bytes]:
    """Those of `keys` this workspace holds; 409 naming the first, in id order, that another
    workspace holds (ids are global). Asked once the ids are locked, so no create or PATCH
    of them can come in between."""
    found = await w.conn.fetch(FIND_STORED.format(table=kind.table), keys)
    foreign = sorted(key for key, workspace in found if workspace != w.workspace)
    if foreign:
        raise Conflict.foreign(kind.what, foreign[0])
    return {key for key, _ in found}


async def _write(w: Write, kind: _Kind, rows: list[dict[str, Any]], stored: set[bytes]) -> None:
    """The rows newest-wins. Those of ids not stored yet, most of a batch as the SDK sends it,
    are copied in (COPY, PostgreSQL's fastest way in); the rest go through the upsert."""
    first, *later = _rounds(rows)
    new = [row for row in first if row["id"] not in stored]
    if new and not await _copied(w, kind, new):
        stored = {row["id"] for row in first}
    old = [row for row in first if row["id"] in stored]
    for batch in (old, *later):
        if batch:
            await _upsert(w, kind, batch)


async def _copied(w: Write, kind: _Kind, rows: list[dict[str, Any]]) -> bool:
    """COPYs the rows; False, with nothing of them kept, when an id among them was stored
    meanwhile by a writer that takes no id lock (a bulk run, an import)."""
    given = itemgetter(*kind.given)
    audit = (w.workspace, w.now, w.user, w.user, 0)  # _OF_THE_WRITE's columns, in its order
    records = [given(row) + audit for row in rows]
    try:
        async with w.conn.transaction():  # a savepoint, for the COPY alone
            await w.conn.copy_records_to_table(kind.table, records=records, columns=kind.copied)
    except asyncpg.UniqueViolationError:
        return False
    return True


async def _upsert(w: Write, kind: _Kind, batch: list[dict[str, Any]]) -> None:
    columns = [[row[c] for row in batch] for c in kind.given]
    written = {r[0] for r in await w.conn.fetch(kind.upsert, w.workspace, w.now, w.user, *columns)}
    left = [row["id"] for row in batch if row["id"] not in written]
    for key in await w.foreign(kind.table, left):  # the others were older than the stored
        raise Conflict.foreign(kind.what, key)


async def upsert_traces(
    db: Database, workspace: str, user: str, records: Sequence[TraceUpsert]
) -> None:
    async with db.transaction() as conn:
        w = Write(conn, workspace, user)
        keys = [r.trace.id for r in records]
        await lock_ids(conn, TRACE_IDS, keys)
        stored = await _stored(w, _TRACES, keys)
        names = [r.trace.project_name or DEFAULT_PROJECT for r in records]
        projects = await w.named("projects", names)
        rows = [
            record.row(projects[name_key(name)], w.now)
            for record, name in zip(records, names, strict=True)
        ]
        await _write(w, _TRACES, rows, stored)


async def upsert_spans(
    db: Database, workspace: str, user: str, records: Sequence[SpanUpsert]
) -> None:
    async with db.transaction() as conn:
        w = Write(conn, workspace, user)
        keys = [r.span.id for r in records]
        await lock_ids(conn, SPAN_IDS, keys)
        stored = await _stored(w, _SPANS, keys)
        names = [r.project_name or DEFAULT_PROJECT for r in records]
        projects = await w.named("projects", names)
        rows = [
            record.row(projects[name_key(name)], w.now)
            for record, name in zip(records, names, strict=True)
        ]
        await _write(w, _SPANS, rows, stored)


# {table} is traces or spans, never input. Locked: a delete waits for the patch.
FIND_TAGS = "SELECT tags FROM {table} WHERE id = $1 AND workspace = $2 FOR UPDATE"


async def _patch(
    db: Database, workspace: str, user: str, table: str, record: Patch, what: str
) -> None:
    """Replaces the given fields of the trace or span, or stores a partial one holding them."""
    types = _TRACE_TYPES if table == "traces" else _SPAN_TYPES
    async with db.transaction() as conn:
        w = Write(conn, workspace, user)
        await lock_ids(conn, TRACE_IDS if table == "traces" else SPAN_IDS, [record.id])
        await w.refuse_foreign(table, [record.id], what)
        found = await conn.fetchrow(FIND_TAGS.format(table=table), record.id, workspace)
        values: dict[str, Any] = dict(record.fields)
        if record.tags_to_add or record.tags_to_remove:
            values["tags"] = record.tags_of(None if found is None else found[0])
        assert set(values) <= set(types), values  # the columns of trace_checks.patch
        if found is not None:
            values.update(last_updated_at=w.now, last_updated_by=user)
            sets = ", ".join(f"{c} = ${n}" for n, c in enumerate(values, start=3))
            await conn.execute(
                f"UPDATE {table} SET {sets} WHERE id = $1 AND workspace = $2",
                record.id,
                workspace,
                *values.values(),
            )
            return
        name = record.project_name or DEFAULT_PROJECT
        row: dict[str, Any] = dict.fromkeys(types)
        row.update(values, id=record.id, workspace=workspace, start_time=0, partial=1)
        row.update(project_id=(await w.named("projects", [name]))[name_key(name)])
        if "hidden" in row:
            row["hidden"] = 0
        row.update(created_at=w.now, created_by=user, last_updated_at=w.now, last_updated_by=user)
        marks = ", ".join(f"${n}" for n in range(1, len(row) + 1))
        sql = (
            f"INSERT INTO {table} ({', '.join(row)}) VALUES ({marks})"
            " ON CONFLICT (id) DO NOTHING RETURNING id"
        )
        if await conn.fetchval(sql, *row.values()) is None:
            raise Conflict.foreign(what, record.id)


async def patch_trace(db: Database, workspace: str, user: str, record: Patch) -> None:
    await _patch(db, workspace, user, "traces", record, "Trace")


async def patch_span(db: Database, workspace: str, user: str, record: Patch) -> None:
    await _patch(db, workspace, user, "spans", record, "Span")


def _upsert_scores(table: str, column: str) -> str:
    """A batch of scores by unnest; one of another workspace's key is missing from RETURNING."""
    return f"""
INSERT INTO {table} AS f ({column}, name, author, workspace, category_name, value, reason,
    source, created_at, created_by, last_updated_at, last_updated_by)
SELECT u.key, u.name, u.author, $1, u.category_name, u.value, u.reason, u.source, $2, $3, $2, $3
FROM unnest($4::bytea[], $5::text[], $6::text[], $7::text[], $8::float8[], $9::text[],
            $10::text[]) AS u(key, name, author, category_name, value, reason, source)
ON CONFLICT ({column}, name, author) DO UPDATE SET
    category_name = excluded.category_name, value = excluded.value, reason = excluded.reason,
    source = excluded.source, last_updated_at = excluded.last_updated_at,
    last_updated_by = excluded.last_updated_by
WHERE f.workspace = excluded.workspace
RETURNING f.{column}
"""


UPSERT_TRACE_SCORES = _upsert_scores("feedback_scores", "trace_id")
UPSERT_SPAN_SCORES = _upsert_scores("span_feedback_scores", "span_id")


async def _scores(
    db: Database,
    workspace: str,
    user: str,
    scores: Sequence[ScoreUpsert],
    scored: str,
    table: str,
    column: str,
) -> None:
    what, sql = (
        ("Trace", UPSERT_TRACE_SCORES) if scored == "traces" else ("Span", UPSERT_SPAN_SCORES)
    )
    async with db.transaction() as conn:
        w = Write(conn, workspace, user)
        keys = list({s.id for s in scores})
        await lock_ids(conn, TRACE_IDS if scored == "traces" else SPAN_IDS, keys)
        # A score names its trace or span by id, stored or not; an id another workspace
        # holds, as a record or in its scores, is a conflict: nothing crosses workspaces.
        for key in [*await w.foreign(scored, keys), *await w.foreign(table, keys, column)]:
            raise Conflict.foreign(what, key)
        await w.named("projects", [s.project_name or DEFAULT_PROJECT for s in scores])
        # One row per key, name and author, the batch's last (SQLite writes each in turn),
        # in key order for the row locks.
        last = {(s.id, s.score.name, s.score.author or user): s.score for s in scores}
        rows = sorted(last.items(), key=lambda row: row[0])
        written = await conn.fetch(
            sql,
            workspace,
            w.now,
            user,
            [key for (key, _, _), _ in rows],
            [name for (_, name, _), _ in rows],
            [author for (_, _, author), _ in rows],
            [s.category_name for _, s in rows],
            [s.value for _, s in rows],
            [s.reason for _, s in rows],
            [s.source for _, s in rows],
        )
        if len(written) != len(rows):
            kept = {row[0] for row in written}
            raise Conflict.foreign(what, min(key for (key, _, _), _ in rows if key not in kept))


async def score_traces(
    db: Database, workspace: str, user: str, scores: Sequence[ScoreUpsert]
) -> None:
    await _scores(db, workspace, user, scores, "traces", "feedback_scores", "trace_id")


async def score_spans(
    db: Database, workspace: str, user: str, scores: Sequence[ScoreUpsert]
) -> None:
    await _scores(db, workspace, user, scores, "spans", "span_feedback_scores", "span_id")


# A trace's delete takes its spans, their scores and its own scores with it, as Opik's
# TraceDeletedListener does; with a project ($3), only a trace of that project and its spans
# of it. The schema's triggers drop the experiment summaries each removed row fed.
_OF_PROJECT = " AND project_id = $3"
_DELETE_TRACE = (
    """DELETE FROM span_feedback_scores WHERE workspace = $1 AND span_id IN (
        SELECT id FROM spans WHERE workspace = $1 AND trace_id = ANY($2::bytea[]){project})""",
    "DELETE FROM spans WHERE workspace = $1 AND trace_id = ANY($2::bytea[]){project}",
    "DELETE FROM feedback_scores AS f WHERE workspace = $1 AND trace_id = ANY($2::bytea[]){trace}",
    "DELETE FROM traces WHERE workspace = $1 AND id = ANY($2::bytea[]){project}",
)
_TRACE_OF_PROJECT = """ AND EXISTS (SELECT 1 FROM traces AS t
    WHERE t.id = f.trace_id AND t.workspace = $1 AND t.project_id = $3)"""
DELETE_TRACES = tuple(sql.format(project="", trace="") for sql in _DELETE_TRACE)
DELETE_PROJECT_TRACES = tuple(
    sql.format(project=_OF_PROJECT, trace=_TRACE_OF_PROJECT) for sql in _DELETE_TRACE
)
# {table} and {column} are a score table's and its key's, never input.
DELETE_SCORE = "DELETE FROM {table} WHERE workspace = $1 AND {column} = $2 AND name = $3"


async def delete_traces(
    db: Database, workspace: str, keys: Sequence[bytes], project_id: bytes | None
) -> None:
    async with db.transaction() as conn:
        for sql in DELETE_TRACES if project_id is None else DELETE_PROJECT_TRACES:
            params = (
                (workspace, list(keys))
                if project_id is None
                else (workspace, list(keys), project_id)
            )
            await conn.execute(sql, *params)


async def _delete_score(
    db: Database, table: str, column: str, workspace: str, key: bytes, name: str, author: str | None
) -> None:
    sql = DELETE_SCORE.format(table=table, column=column)
    params: tuple[object, ...] = (workspace, key, name)
    if author is not None:
        sql, params = f"{sql} AND author = $4", (*params, author)
    async with db.transaction() as conn:
        await conn.execute(sql, *params)


async def delete_trace_score(
    db: Database, workspace: str, key: bytes, name: str, author: str | None
) -> None:
    await _delete_score(db, "feedback_scores", "trace_id", workspace, key, name, author)


async def delete_span_score(
    db: Database, workspace: str, key: bytes, name: str, author: str | None
) -> None:
    await _delete_score(db, "span_feedback_scores", "span_id", workspace, key, name, author)
