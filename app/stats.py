"""Stats: what a database holds (rows per workspace and table, the experiments with the most
items), as each engine counts it from one snapshot, and the text that prints it."""

from dataclasses import dataclass
from typing import Any

import msgspec

from app import ids

# Served by the index experiment_items_by_experiment (workspace, experiment_id, id) alone.
# {limit} is the engine's placeholder of the number of experiments.
TOP_EXPERIMENTS = """
SELECT workspace, experiment_id, count(*) AS items FROM experiment_items
GROUP BY workspace, experiment_id ORDER BY items DESC, workspace, experiment_id LIMIT {limit}
"""


@dataclass(frozen=True, slots=True)
class ExperimentCount:
    workspace: str
    experiment_id: str
    items: int


def top_experiments(rows: list[Any]) -> list[ExperimentCount]:
    """TOP_EXPERIMENTS' rows as counts."""
    return [ExperimentCount(workspace, ids.to_str(key), items) for workspace, key, items in rows]


def to_json(stats: Any) -> bytes:
    return msgspec.json.encode(stats)


def to_text(stats: Any) -> str:
    """The engine's own lines (where, schema version, size), then the rows and the largest
    experiments as both engines print them."""
    lines = [*stats.heading(), "", "rows per workspace", *_grid(_workspace_rows(stats))]
    if stats.top_experiments:
        lines += ["", f"largest experiments (top {len(stats.top_experiments)} by items)"]
        rows = [["workspace", "experiment_id", "items"]]
        rows += [[e.workspace, e.experiment_id, f"{e.items:,}"] for e in stats.top_experiments]
        lines += _grid(rows, names=2)
    return "\n".join(lines) + "\n"


def _workspace_rows(stats: Any) -> list[list[str]]:
    names = list(stats.tables)
    rows = [["workspace", *names]]
    for workspace, counts in stats.workspaces.items():
        rows.append([workspace, *(f"{counts.get(name, 0):,}" for name in names)])
    rows.append(["(all)", *(f"{stats.tables[name]:,}" for name in names)])
    return rows


def _grid(rows: list[list[str]], names: int = 1) -> list[str]:
    """Columns padded to their widest cell: the first `names` to the left, counts right."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return [
        "  ".join(
            cell.ljust(width) if i < names else cell.rjust(width)
            for i, (cell, width) in enumerate(zip(row, widths, strict=True))
        ).rstrip()
        for row in rows
    ]


def mib(size_bytes: int) -> str:
    return f"{size_bytes / 2**20:.1f} MiB"
