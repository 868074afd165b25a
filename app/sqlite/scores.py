"""Feedback scores per author, as Opik keeps them: each author's latest score of a name, read
back as one score per name (the authors' average, `value_by_author`), and the per-trace
average that filters, sorting and the experiments' aggregates compare
(opik-reference/datasets-traces.md §3.8, experiments.md §2.2 steps 1-2)."""

from collections.abc import Sequence

import msgspec

from app.feedback_scores import ScoreRow, by_entity, combined
from app.payloads import FeedbackScore
from app.sqlite.connection import Database
from app.sqlite.tables import marks, select

__all__ = ["ScoreRow", "by_entity", "combined", "read_scores", "trace_score"]


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

# The score of a name of the trace `{entity}` (an SQL expression) in the workspace
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


async def read_scores(
    db: Database, sql: str, workspace: str, keys: Sequence[bytes]
) -> dict[bytes, list[FeedbackScore]]:
    """The scores of these traces or spans (TRACE_SCORES or SPAN_SCORES), by id."""
    if not keys:
        return {}
    found = await db.fetch_all(sql.format(marks=marks(len(keys))), (workspace, *keys))
    return by_entity(msgspec.convert(found, list[ScoreRow]))
