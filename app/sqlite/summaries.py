"""Each experiment's aggregates (opik-reference/experiments.md §2.2): computed from its items'
traces, spans and scores in a few grouped statements for many experiments at once, and kept
in experiment_summaries, which schema.sql's triggers empty in the transaction that changes
what a summary is computed from. A read uses the kept summaries and computes the missing ones
itself; `Summaries` then keeps those too, on the writer, in the background."""

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import msgspec

from app import histograms as histograms_
from app.experiment_answers import Aggregates, aggregates_of
from app.histograms import Histograms
from app.sqlite.connection import Database
from app.sqlite.tables import marks

log = logging.getLogger("experiment_items.summaries")


_encode = msgspec.msgpack.Encoder().encode
_decode = msgspec.msgpack.Decoder(Aggregates).decode


def decode(blob: bytes) -> Aggregates:
    return _decode(blob)


# The items of the experiments, for the statements below: parameters workspace, ids.
_ITEMS = "experiment_items AS i WHERE i.workspace = ? AND i.experiment_id IN ({marks})"
# Traces that no longer exist still count (Opik's count(DISTINCT trace_id)).
ITEM_COUNTS = f"""
SELECT i.experiment_id, count(DISTINCT i.trace_id), count(DISTINCT i.dataset_item_id)
FROM {_ITEMS} GROUP BY i.experiment_id
"""
# One row per item: a trace two items share counts twice, as in Opik. Only stored traces.
_ITEM_TRACES = """experiment_items AS i
JOIN traces AS t ON t.id = i.trace_id AND t.workspace = i.workspace
WHERE i.workspace = ? AND i.experiment_id IN ({marks})"""
# Per item and name, the trace's score is its authors' average; the experiment's is the
# average of those over its items (experiments.md §2.2, feedback_scores steps 1-3).
SCORE_AVERAGES = """
SELECT experiment_id, name, avg(value) FROM (
    SELECT i.experiment_id AS experiment_id, f.name AS name, avg(f.value) AS value
    FROM experiment_items AS i
    JOIN traces AS t ON t.id = i.trace_id AND t.workspace = i.workspace
    JOIN feedback_scores AS f ON f.trace_id = i.trace_id AND f.workspace = i.workspace
    WHERE i.workspace = ? AND i.experiment_id IN ({marks})
    GROUP BY i.id, f.name
)
GROUP BY experiment_id, name ORDER BY experiment_id, name
"""


def _bounds(percent: int) -> str:
    # Linear interpolation at index q * (n - 1) of the sorted values (ClickHouse's quantiles
    # for fewer than 8192 values): the values at the index's floor and the next, and the
    # index's fraction, in integer arithmetic so that a whole index is exact.
    low = f"({percent} * last / 100)"
    return (
        f"max(CASE WHEN k = {low} THEN ms END) AS lo{percent}, "
        f"max(CASE WHEN k = {low} + 1 THEN ms END) AS hi{percent}, "
        f"(({percent} * last) % 100 / 100.0) AS f{percent}"
    )


def _percentile(percent: int) -> str:
    return f"lo{percent} + (coalesce(hi{percent}, lo{percent}) - lo{percent}) * f{percent}"


# Opik's duration: dateDiff('microsecond', start, end) / 1000.0, of traces that have ended.
DURATIONS = f"""
WITH d AS (
    SELECT i.experiment_id AS e, (t.end_time / 1000 - t.start_time / 1000) / 1000.0 AS ms
    FROM {_ITEM_TRACES} AND t.end_time IS NOT NULL
), r AS (
    SELECT e, ms, row_number() OVER (PARTITION BY e ORDER BY ms) - 1 AS k,
           count(*) OVER (PARTITION BY e) - 1 AS last
    FROM d
), b AS (
    SELECT e, {_bounds(50)}, {_bounds(90)}, {_bounds(99)} FROM r GROUP BY e
)
SELECT e, {_percentile(50)}, {_percentile(90)}, {_percentile(99)} FROM b
"""
# Per item, its trace's spans' summed cost; the average counts an item without spans as 0.
_TRACES_OF_ITEMS = (
    "SELECT trace_id FROM experiment_items WHERE workspace = ? AND experiment_id IN ({marks})"
)
COSTS = f"""
WITH c AS (
    SELECT trace_id, total(total_estimated_cost) AS cost FROM spans
    WHERE workspace = ? AND total_estimated_cost IS NOT NULL
      AND trace_id IN ({_TRACES_OF_ITEMS})
    GROUP BY trace_id
)
SELECT i.experiment_id, total(c.cost), avg(coalesce(c.cost, 0))
FROM experiment_items AS i LEFT JOIN c ON c.trace_id = i.trace_id
WHERE i.workspace = ? AND i.experiment_id IN ({{marks}})
GROUP BY i.experiment_id
"""
# Per key, the mean over the items whose trace's spans have that key (Opik's avgMap).
USAGE = f"""
WITH u AS (
    SELECT s.trace_id, j.key AS key, total(j.value) AS value
    FROM spans AS s, json_each(s.usage) AS j
    WHERE s.workspace = ? AND s.usage IS NOT NULL AND s.trace_id IN ({_TRACES_OF_ITEMS})
    GROUP BY s.trace_id, j.key
)
SELECT i.experiment_id, u.key, avg(u.value)
FROM experiment_items AS i JOIN u ON u.trace_id = i.trace_id
WHERE i.workspace = ? AND i.experiment_id IN ({{marks}})
GROUP BY i.experiment_id, u.key ORDER BY i.experiment_id, u.key
"""

Fetch = Callable[[str, Sequence[Any]], Awaitable[Any]]


async def compute(fetch: Fetch, workspace: str, keys: Sequence[bytes]) -> dict[bytes, Aggregates]:
    """The aggregates of each of `keys` (at most 5,000: their ids are bound twice), from what
    `fetch` (a reader's or the writer's) reads now; an experiment without items has none."""
    m = marks(len(keys))
    one = (workspace, *keys)
    twice = (workspace, *one, *one)

    async def rows(sql: str, params: Sequence[Any]) -> Any:
        return await fetch(sql.format(marks=m), params)

    return aggregates_of(
        keys,
        await rows(ITEM_COUNTS, one),
        await rows(SCORE_AVERAGES, one),
        await rows(DURATIONS, one),
        await rows(COSTS, twice),
        await rows(USAGE, twice),
    )


# The values the histograms count: per item and name its authors' average, of stored traces
# as above; and the durations of the traces that have ended.
SCORE_VALUES = """
SELECT i.experiment_id, f.name, avg(f.value) FROM experiment_items AS i
JOIN traces AS t ON t.id = i.trace_id AND t.workspace = i.workspace
JOIN feedback_scores AS f ON f.trace_id = i.trace_id AND f.workspace = i.workspace
WHERE i.workspace = ? AND i.experiment_id IN ({marks})
GROUP BY i.id, f.name
"""
DURATION_VALUES = f"""
SELECT i.experiment_id, (t.end_time / 1000 - t.start_time / 1000) / 1000.0
FROM {_ITEM_TRACES} AND t.end_time IS NOT NULL
"""


async def histograms(
    fetch: Fetch, workspace: str, keys: Sequence[bytes]
) -> dict[bytes, Histograms]:
    """The histograms of each of `keys` (at most 5,000), from what `fetch` reads now."""
    params = (workspace, *keys)
    m = marks(len(keys))
    return histograms_.of_rows(
        keys,
        await fetch(SCORE_VALUES.format(marks=m), params),
        await fetch(DURATION_VALUES.format(marks=m), params),
    )


# Find's filters name a score case-insensitively and average every score so named.
FOLDED_SCORE_AVERAGES = SCORE_AVERAGES.replace("f.name", "lower(f.name)")
assert FOLDED_SCORE_AVERAGES.count("lower(f.name)") == 2, "SCORE_AVERAGES changed its shape"
# The experiments of a workspace that have no kept summary, for find to keep.
MISSING = """
SELECT e.id FROM experiments AS e
LEFT JOIN experiment_summaries AS s ON s.experiment_id = e.id AND s.workspace = e.workspace
WHERE e.workspace = ? AND s.experiment_id IS NULL LIMIT ?
"""
# The kept summaries of some experiments.
KEPT = """
SELECT experiment_id, summary FROM experiment_summaries
WHERE workspace = ? AND experiment_id IN ({marks})
"""
# Kept only for experiments that exist when it is written, in the transaction that computed it,
# with the range of its items' trace ids by which schema.sql's triggers find it.
KEEP = """
INSERT INTO experiment_summaries (experiment_id, workspace, summary, trace_count, cost,
    cost_avg, p50, p90, p99, scores, folded_scores, first_trace, last_trace)
SELECT e.id, e.workspace, ?, ?, ?, ?, ?, ?, ?, ?, ?, r.first, r.last
FROM experiments AS e,
    (SELECT min(trace_id) AS first, max(trace_id) AS last FROM experiment_items
     WHERE workspace = ?11 AND experiment_id = ?10) AS r
WHERE e.id = ?10 AND e.workspace = ?11
ON CONFLICT (experiment_id) DO UPDATE SET workspace = excluded.workspace,
    summary = excluded.summary, trace_count = excluded.trace_count, cost = excluded.cost,
    cost_avg = excluded.cost_avg, p50 = excluded.p50, p90 = excluded.p90, p99 = excluded.p99,
    scores = excluded.scores, folded_scores = excluded.folded_scores,
    first_trace = excluded.first_trace, last_trace = excluded.last_trace
"""
_json = msgspec.json.Encoder().encode


def _kept_row(
    a: Aggregates, folded: dict[str, float], key: bytes, workspace: str
) -> tuple[Any, ...]:
    p50, p90, p99 = a.duration or (0, 0, 0)
    scores = _json(dict(a.feedback_scores)).decode()
    return (
        _encode(a), a.trace_count, a.cost or 0, a.cost_avg or 0, p50, p90, p99, scores,
        _json(folded).decode(), key, workspace,
    )  # fmt: skip


_PER_TRANSACTION = 20  # experiments computed while the writer is held, between other writes


_MISSING_AT_ONCE = 1000


async def missing(db: Database, workspace: str) -> list[bytes]:
    """Experiments of the workspace without a kept summary, a thousand at most."""
    return [row[0] for row in await db.fetch_all(MISSING, (workspace, _MISSING_AT_ONCE))]


class Summaries:
    """Keeps the summaries reads found missing, a few experiments per write transaction, in
    one background task per worker; reads never wait for it."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self._missing: dict[str, set[bytes]] = {}
        self._task: asyncio.Task[None] | None = None

    def keep(self, workspace: str, keys: Sequence[bytes]) -> None:
        if not keys:
            return
        self._missing.setdefault(workspace, set()).update(keys)
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._keep_missing())

    async def _keep_missing(self) -> None:
        while self._missing:
            workspace, keys = next(iter(self._missing.items()))
            chosen = sorted(keys)[:_PER_TRANSACTION]
            keys.difference_update(chosen)
            if not keys:
                del self._missing[workspace]
            try:
                await self._keep(workspace, chosen)
            except Exception as exc:  # a full disk, a read-only file: reads compute them
                log.warning("experiment summaries not kept: %s", exc)
                self._missing.clear()

    async def _keep(self, workspace: str, keys: Sequence[bytes]) -> None:
        m = marks(len(keys))
        async with self.db.transaction() as conn:
            found = await compute(conn.execute_fetchall, workspace, keys)
            charts = await histograms(conn.execute_fetchall, workspace, keys)
            found = {k: msgspec.structs.replace(a, histograms=charts[k]) for k, a in found.items()}
            sql = FOLDED_SCORE_AVERAGES.format(marks=m)
            folded: dict[bytes, dict[str, float]] = {}
            for e, name, value in await conn.execute_fetchall(sql, (workspace, *keys)):
                folded.setdefault(e, {})[name] = value
            rows = [_kept_row(a, folded.get(k, {}), k, workspace) for k, a in found.items()]
            await conn.executemany(KEEP, rows)

    async def idle(self) -> None:
        """Returns once every summary asked for so far is kept (or could not be)."""
        while self._task is not None and not self._task.done():
            await asyncio.gather(self._task, return_exceptions=True)

    async def close(self) -> None:
        """Lets the running transaction end (each is short), and keeps nothing more."""
        self._missing.clear()
        if self._task is not None:
            await asyncio.gather(self._task, return_exceptions=True)
