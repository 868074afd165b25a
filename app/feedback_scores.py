"""Feedback scores per author, as Opik reads them back: each author's latest score of a name
becomes one score per name (the authors' average, `value_by_author`), from rows any engine
reads (opik-reference/datasets-traces.md §3.8)."""

import math
from collections.abc import Sequence

import msgspec
from msgspec import UNSET

from app import clock
from app.payloads import FeedbackScore, ValueEntry


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
