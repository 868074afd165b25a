"""Feedback scores per author, as Opik keeps them: each author's latest score of a name, read
back as one score per name (the authors' average, `value_by_author`), and the per-trace
average that filters, sorting and the experiments' aggregates compare
(opik-reference/datasets-traces.md §3.8, experiments.md §2.2 steps 1-2)."""

import math
from collections.abc import Sequence

import msgspec
from msgspec import UNSET

from app import clock
from app.payloads import FeedbackScore, ValueEntry
from app.sqlite.connection import Database
from app.sqlite.tables import marks, select


class ScoreRow(msgspec.Struct, array_like=True, gc=False):
    """One author's score of a name, of the trace or span `entity_id`."""

    entity_id: bytes
    name: str
    author: str
    category_name: str | None
    value: float
    reason: str | None
    source: str
    created_at: int
    last_updated_at: int
    created_by: str
    last_updated_by: str


def _scores_sql(table: str, entity: str) -> str:
    columns = select(
        ScoreRow,
        entity_id=entity,
        name="name",
        author="author",
        category_name="category_name",
        value="value",
        reason="reason",
        source="source",
        created_at="created_at",
        last_updated_at="last_updated_at",
        created_by="created_by",
        last_updated_by="last_updated_by",
    )
    # Ordered so that each entity's names, and each name's authors, come together.
    return (
        f"SELECT {columns} FROM {table} WHERE workspace = ? AND {entity} IN ({{marks}})"
        f" ORDER BY {entity}, name, author"
    )


TRACE_SCORES = _scores_sql("feedback_scores", "trace_id")
SPAN_SCORES = _scores_sql("span_feedback_scores", "span_id")

# The score of a name of the trace or span `{entity}` (an SQL expression) in the workspace
# `{workspace}`: its authors' average; NULL when it has none. `?` is the name.
ENTITY_SCORE = """(SELECT avg(f.value) FROM {table} AS f
    WHERE f.{column} = {entity} AND f.workspace = {workspace} AND {match})"""


def trace_score(trace: str, workspace: str, fold: bool = False) -> str:
    """ENTITY_SCORE of a trace and workspace expression; the name compared case-insensitively
    when `fold`."""
    match = "lower(f.name) = lower(?)" if fold else "f.name = ?"
    return ENTITY_SCORE.format(
        table="feedback_scores", column="trace_id", entity=trace, workspace=workspace, match=match
    )


def span_score(span: str, workspace: str) -> str:
    """ENTITY_SCORE of a span and workspace expression."""
    return ENTITY_SCORE.format(
        table="span_feedback_scores", column="span_id", entity=span, workspace=workspace,
        match="f.name = ?",
    )  # fmt: skip


def _instant(ns: int) -> str:
    return clock.format_instant(ns)


def combined(rows: Sequence[ScoreRow]) -> FeedbackScore:
    """The one score of a name that its authors' rows make, as Opik's feedback_scores_final:
    the value averaged (the one value alone), categories, reasons and users joined by ", "
    (a missing reason among several is `<no reason>`), the first author's source, the
    earliest creation and the latest update."""
    first = rows[0]
    if len(rows) == 1:
        value, reason = first.value, first.reason
    else:
        value = math.fsum(r.value for r in rows) / len(rows)
        given = any(r.reason for r in rows)
        reason = ", ".join(r.reason or "<no reason>" for r in rows) if given else None
    categories = ", ".join(r.category_name for r in rows if r.category_name)
    return FeedbackScore(
        name=first.name,
        category_name=categories or UNSET,
        value=value,
        reason=UNSET if reason is None else reason,
        source=first.source,
        created_at=_instant(min(r.created_at for r in rows)),
        last_updated_at=_instant(max(r.last_updated_at for r in rows)),
        created_by=", ".join(r.created_by for r in rows),
        last_updated_by=", ".join(r.last_updated_by for r in rows),
        value_by_author={
            r.author: ValueEntry(
                value=r.value,
                reason=UNSET if r.reason is None else r.reason,
                category_name=UNSET if r.category_name is None else r.category_name,
                source=r.source,
                last_updated_at=_instant(r.last_updated_at),
            )
            for r in rows
        },
    )


def by_entity(rows: Sequence[ScoreRow]) -> dict[bytes, list[FeedbackScore]]:
    """Each entity's scores, one per name in name order, from rows in the order of the SQL
    above."""
    found: dict[bytes, list[FeedbackScore]] = {}
    start = 0
    for at in range(1, len(rows) + 1):
        if at == len(rows) or (rows[at].entity_id, rows[at].name) != (
            rows[start].entity_id,
            rows[start].name,
        ):
            group = rows[start:at]
            found.setdefault(group[0].entity_id, []).append(combined(group))
            start = at
    return found


async def read_scores(
    db: Database, sql: str, workspace: str, keys: Sequence[bytes]
) -> dict[bytes, list[FeedbackScore]]:
    """The scores of these traces or spans (TRACE_SCORES or SPAN_SCORES), by id."""
    if not keys:
        return {}
    found = await db.fetch_all(sql.format(marks=marks(len(keys))), (workspace, *keys))
    return by_entity(msgspec.convert(found, list[ScoreRow]))
