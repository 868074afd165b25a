"""The web UI's pages on issue 14's two sizes ("How fast"), for run.py's `ui` row:

- the experiments page of a dataset with 1,000 experiments (goal: 50 ms), on the find row's
  small workspace (1,000 experiments x 10 items, each with a trace, two spans and two scores);
- the compare page of two experiments of 1,000 items each, its first page of 50 rows (goal:
  100 ms), on a workspace of 2 x 1,000 built the same way (workspace.py).

Each page is checked before it is measured: the right experiments and rows, so a page that
is fast because it shows nothing fails the run instead.
"""

import json
import re
from dataclasses import dataclass
from pathlib import Path

from bench import servers, workspace

# Page: (experiments, items per experiment) of its workspace, and its goal in ms.
SIZES = {"experiments": (1000, 10), "compare": (2, 1000)}
GOALS_MS = {"experiments": 50.0, "compare": 100.0}
COMPARE_ROWS = 50
LABELS = {
    "experiments": "experiments page, a dataset of 1,000 experiments",
    "compare": f"compare page, 2 experiments x 1,000 items, first {COMPARE_ROWS} rows",
}
_ROW = re.compile(r'href="/ui/items/[0-9a-f-]+\?')
_EXPERIMENT_ROW = re.compile(r'href="/ui/experiments/[0-9a-f-]+"')


@dataclass(frozen=True)
class Page:
    key: str
    path: str  # what wrk puts before the query
    query: str  # the one line of wrk's ids file
    ws: workspace.Workspace

    @property
    def url(self) -> str:
        return self.path + self.query


def page(key: str, port: int, ws: workspace.Workspace, headers: dict[str, str]) -> Page:
    """The page `key` of the server at `port`, serving `ws`."""
    if key == "experiments":
        found = servers.request(
            port,
            "/v1/private/datasets/retrieve",
            "POST",
            json.dumps({"dataset_name": workspace.DATASET}).encode(),
            {**headers, "Content-Type": "application/json"},
        )
        if found.status != 200:
            raise SystemExit(f"the UI row's dataset: {found.status} {found.body[:200]!r}")
        return Page(key, f"/ui/datasets/{json.loads(found.body)['id']}", "?page=1", ws)
    runs = "&".join(f"experiments={e}" for e in sorted(ws.expected))
    return Page(key, "/ui/compare", f"?{runs}&size={COMPARE_ROWS}", ws)


def check(shown: Page, body: bytes) -> list[str]:
    """What the page shows wrongly; empty when it shows what its workspace holds."""
    text = body.decode()
    experiments, items = SIZES[shown.key]
    wrong = []
    if shown.key == "experiments":
        rows = len(_EXPERIMENT_ROW.findall(text))
        if rows != 25 or f"{experiments} experiments" not in text:
            wrong.append(f"{rows} experiment rows; 25 of {experiments} expected")
        newest = sorted(shown.ws.expected, reverse=True)[0]
        if f"/ui/experiments/{newest}" not in text:
            wrong.append("the newest experiment is not on the first page")
    else:
        rows = len(_ROW.findall(text))
        if rows != COMPARE_ROWS or f"{items} dataset items" not in text:
            wrong.append(f"{rows} compare rows; {COMPARE_ROWS} of {items} expected")
        if "<svg" not in text:
            wrong.append("no histograms")
    return wrong


def write_query(shown: Page, folder: Path) -> Path:
    path = folder / f"ui-{shown.key}.txt"
    path.write_text(shown.query + "\n")
    return path
