"""Rows written straight into either engine's tables, with no store: traces, spans and scores
for tests of reads whose writes the PostgreSQL engine does not have yet."""

import sqlite3
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import asyncpg

from app import ids

Insert = Callable[[str, dict[str, Any]], Awaitable[None]]


async def inserter(location: Path | str) -> tuple[Insert, Callable[[], Awaitable[None]]]:
    """Writes a row into a table of the database at `location` (a SQLite file, or a
    PostgreSQL URL) as given; and how to close it."""
    if isinstance(location, Path):
        lite = sqlite3.connect(location, isolation_level=None)

        async def into_sqlite(table: str, row: dict[str, Any]) -> None:
            marks = ", ".join(f":{c}" for c in row)
            lite.execute(f"INSERT INTO {table} ({', '.join(row)}) VALUES ({marks})", row)

        async def close_sqlite() -> None:
            lite.close()

        return into_sqlite, close_sqlite
    conn = await asyncpg.connect(location)

    async def into_postgres(table: str, row: dict[str, Any]) -> None:
        marks = ", ".join(f"${n}" for n in range(1, len(row) + 1))
        await conn.execute(
            f"INSERT INTO {table} ({', '.join(row)}) VALUES ({marks})", *row.values()
        )

    return into_postgres, conn.close


def audit(at: int, user: str = "admin") -> dict[str, Any]:
    return {"created_at": at, "created_by": user, "last_updated_at": at, "last_updated_by": user}


async def trace(
    insert: Insert,
    workspace: str,
    key: bytes,
    project: bytes,
    at: int,
    *,
    input: str | None = None,
    output: str | None = None,
    scores: dict[str, list[float]] | None = None,
    cost: float | None = None,
) -> None:
    """A trace that took 1.5 ms, its scores (one author each value), and a span with `cost`."""
    await insert("traces", {
        "id": key, "workspace": workspace, "project_id": project, "name": "t",
        "start_time": at, "end_time": at + 1_500_000, "input": input, "output": output,
        **audit(at),
    })  # fmt: skip
    for name, values in (scores or {}).items():
        for n, value in enumerate(values):
            await insert("feedback_scores", {
                "trace_id": key, "name": name, "author": f"author{n}", "workspace": workspace,
                "value": value, "source": "sdk", **audit(at),
            })  # fmt: skip
    if cost is not None:
        await insert("spans", {
            "id": ids.uuid7(), "workspace": workspace, "trace_id": key,
            "project_id": project, "start_time": at, "total_estimated_cost": cost, **audit(at),
        })  # fmt: skip
