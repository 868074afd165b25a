"""Trace and span writes: batches upserted newest-wins, PATCHes that may come before their
create, feedback scores, and deletes of traces (with their spans and scores) and of scores;
each one transaction (CONTRACT.md, "Datasets, traces, ...")."""

from collections.abc import Sequence
from typing import Any

import msgspec

from app.records import (
    DEFAULT_PROJECT,
    Conflict,
    Patch,
    ScoreUpsert,
    SpanUpsert,
    TraceUpsert,
    name_key,
)
from app.sqlite.connection import Database
from app.sqlite.tables import (
    FEEDBACK_SCORES,
    SPAN_FEEDBACK_SCORES,
    SPANS,
    TRACES,
    Table,
)
from app.sqlite.write import Write

# What a create does to a row of the same id: a row a PATCH made (partial = 1) keeps what the
# PATCH set and takes the rest from the create; a full row is replaced when the create's
# last_updated_at is not older (the newest wins whatever the arrival order); created_* stay.
_ALWAYS_NEW = {"project_id", "start_time", "partial", "last_updated_by", "hidden", "trace_id"}


def _newest_wins(table: Table) -> str:
    t = table.name
    merge = {}
    for column in table.columns:
        if column in {*table.key, "workspace", "created_at", "created_by", *_ALWAYS_NEW}:
            continue
        if column == "last_updated_at":
            merge[column] = (
                f"CASE WHEN {t}.partial = 1 THEN max({t}.last_updated_at, excluded.last_updated_at)"
                " ELSE excluded.last_updated_at END"
            )
        else:
            merge[column] = (
                f"CASE WHEN {t}.partial = 1 THEN coalesce({t}.{column}, excluded.{column})"
                f" ELSE excluded.{column} END"
            )
    return (
        table.upsert(merge=merge)
        + f" AND ({t}.partial = 1 OR excluded.last_updated_at >= {t}.last_updated_at)"
    )


UPSERT_TRACE = _newest_wins(TRACES)
UPSERT_SPAN = _newest_wins(SPANS)
UPSERT_TRACE_SCORE = FEEDBACK_SCORES.upsert()
UPSERT_SPAN_SCORE = SPAN_FEEDBACK_SCORES.upsert()
# {table} is TRACES or SPANS, never input.
FIND_TAGS = "SELECT tags FROM {table} WHERE id = ? AND workspace = ?"


def _stamped(rows: list[dict[str, Any]], w: Write) -> list[dict[str, Any]]:
    """The rows with the write's audit columns where they have none of their own, and not
    partial: each row is completed in place, a batch's one copy (the hot loop of a batch)."""
    if rows:
        extra = {k: v for k, v in w.stamp.items() if k not in rows[0]} | {"partial": 0}
        for row in rows:
            row.update(extra)
    return rows


async def upsert_traces(
    db: Database, workspace: str, user: str, records: Sequence[TraceUpsert]
) -> None:
    async with db.transaction() as conn:
        w = Write(conn, workspace, user)
        await w.refuse_foreign(TRACES, [r.trace.id for r in records], "Trace")
        names = [r.trace.project_name or DEFAULT_PROJECT for r in records]
        projects = await w.named("projects", names)
        rows = _stamped(
            [
                record.row(projects[name_key(name)], w.now)
                for record, name in zip(records, names, strict=True)
            ],
            w,
        )
        await conn.executemany(UPSERT_TRACE, rows)


async def upsert_spans(
    db: Database, workspace: str, user: str, records: Sequence[SpanUpsert]
) -> None:
    async with db.transaction() as conn:
        w = Write(conn, workspace, user)
        await w.refuse_foreign(SPANS, [r.span.id for r in records], "Span")
        names = [r.project_name or DEFAULT_PROJECT for r in records]
        projects = await w.named("projects", names)
        rows = _stamped(
            [
                record.row(projects[name_key(name)], w.now)
                for record, name in zip(records, names, strict=True)
            ],
            w,
        )
        await conn.executemany(UPSERT_SPAN, rows)


async def patch(
    db: Database, workspace: str, user: str, table: Table, record: Patch, what: str
) -> None:
    """Replaces the given fields of the trace or span, or stores a partial one holding them."""
    async with db.transaction() as conn:
        w = Write(conn, workspace, user)
        await w.refuse_foreign(table, [record.id], what)
        found = list(
            await conn.execute_fetchall(FIND_TAGS.format(table=table.name), (record.id, workspace))
        )
        values: dict[str, Any] = dict(record.fields)
        if record.tags_to_add or record.tags_to_remove:
            values["tags"] = record.tags_of(found[0][0] if found else None)
        table.check(values)
        if found:
            values.update(last_updated_at=w.now, last_updated_by=user)
            sets = ", ".join(f"{column} = :{column}" for column in values)
            await conn.execute(
                f"UPDATE {table.name} SET {sets} WHERE id = :id AND workspace = :workspace",
                {**values, "id": record.id, "workspace": workspace},
            )
            return
        name = record.project_name or DEFAULT_PROJECT
        project_id = (await w.named("projects", [name]))[name_key(name)]
        row: dict[str, Any] = dict.fromkeys(table.columns)
        row.update(values, id=record.id, project_id=project_id, start_time=0, partial=1)
        if "hidden" in row:
            row["hidden"] = 0
        row.update(w.stamp)
        await conn.execute(table.insert(), row)


async def patch_trace(db: Database, workspace: str, user: str, record: Patch) -> None:
    await patch(db, workspace, user, TRACES, record, "Trace")


async def patch_span(db: Database, workspace: str, user: str, record: Patch) -> None:
    await patch(db, workspace, user, SPANS, record, "Span")


async def _scores(
    w: Write, scores: Sequence[ScoreUpsert], scored: Table, table: Table, column: str, sql: str
) -> None:
    keys = list({s.id for s in scores})
    # A score names its trace or span by id, stored or not; an id another workspace holds, as
    # a record or in its scores, is a conflict: nothing crosses workspaces.
    for key in [*await w.foreign(scored, keys), *await w.foreign(table, keys, column)]:
        raise Conflict.foreign(scored.name[:-1].capitalize(), key)
    await w.named("projects", [s.project_name or DEFAULT_PROJECT for s in scores])
    rows = [
        {
            **msgspec.structs.asdict(s.score),
            column: s.id,
            **w.stamp,
            "author": s.score.author or w.user,
        }
        for s in scores
    ]
    await w.conn.executemany(sql, rows)


async def score_traces(
    db: Database, workspace: str, user: str, scores: Sequence[ScoreUpsert]
) -> None:
    async with db.transaction() as conn:
        w = Write(conn, workspace, user)
        await _scores(w, scores, TRACES, FEEDBACK_SCORES, "trace_id", UPSERT_TRACE_SCORE)


async def score_spans(
    db: Database, workspace: str, user: str, scores: Sequence[ScoreUpsert]
) -> None:
    async with db.transaction() as conn:
        w = Write(conn, workspace, user)
        await _scores(w, scores, SPANS, SPAN_FEEDBACK_SCORES, "span_id", UPSERT_SPAN_SCORE)


# A trace's delete takes its spans, their scores and its own scores with it, as Opik's
# TraceDeletedListener does (feedbackScoreService.deleteByTraceIds, spanService.deleteByTraceIds);
# with a project, only a trace of that project and its spans of it. The schema's triggers drop
# the experiment summaries each removed row fed, in this transaction.
_OF_PROJECT = " AND project_id = :project_id"
_DELETE_TRACE = (
    """DELETE FROM span_feedback_scores WHERE workspace = :workspace AND span_id IN (
        SELECT id FROM spans WHERE workspace = :workspace AND trace_id = :id{project})""",
    "DELETE FROM spans WHERE workspace = :workspace AND trace_id = :id{project}",
    """DELETE FROM feedback_scores WHERE workspace = :workspace AND trace_id = :id{trace}""",
    "DELETE FROM traces WHERE workspace = :workspace AND id = :id{project}",
)
_TRACE_OF_PROJECT = """ AND EXISTS (SELECT 1 FROM traces
    WHERE id = :id AND workspace = :workspace AND project_id = :project_id)"""
DELETE_TRACES = tuple(sql.format(project="", trace="") for sql in _DELETE_TRACE)
DELETE_PROJECT_TRACES = tuple(
    sql.format(project=_OF_PROJECT, trace=_TRACE_OF_PROJECT) for sql in _DELETE_TRACE
)
# {table} and {column} are FEEDBACK_SCORES' or SPAN_FEEDBACK_SCORES', never input.
DELETE_SCORE = "DELETE FROM {table} WHERE workspace = ? AND {column} = ? AND name = ?"


async def delete_traces(
    db: Database, workspace: str, keys: Sequence[bytes], project_id: bytes | None
) -> None:
    async with db.transaction() as conn:
        rows = [{"workspace": workspace, "id": key, "project_id": project_id} for key in keys]
        for sql in DELETE_TRACES if project_id is None else DELETE_PROJECT_TRACES:
            await conn.executemany(sql, rows)


async def _delete_score(
    db: Database,
    table: Table,
    column: str,
    workspace: str,
    key: bytes,
    name: str,
    author: str | None,
) -> None:
    sql = DELETE_SCORE.format(table=table.name, column=column)
    params: tuple[object, ...] = (workspace, key, name)
    if author is not None:
        sql, params = f"{sql} AND author = ?", (*params, author)
    async with db.transaction() as conn:
        await conn.execute(sql, params)


async def delete_trace_score(
    db: Database, workspace: str, key: bytes, name: str, author: str | None
) -> None:
    await _delete_score(db, FEEDBACK_SCORES, "trace_id", workspace, key, name, author)


async def delete_span_score(
    db: Database, workspace: str, key: bytes, name: str, author: str | None
) -> None:
    await _delete_score(db, SPAN_FEEDBACK_SCORES, "span_id", workspace, key, name, author)
