"""The web UI's server time on the issue's two sizes (issue 14, "How fast"):

    .venv/bin/python bench/ui.py [--rounds 15]

a dataset with 1,000 experiments (the experiments page, goal 50 ms) and two experiments of
1,000 items each with traces, spans and scores (the compare page's first page, goal 100 ms;
the page shows 20 rows, the goal names 50). One server, its access log's duration per
request (server time, without the client), the median of `--rounds` requests per page. Not
yet a row of `make bench`: it runs beside it, on its own database in a temporary folder.
"""

import argparse
import re
import statistics
import sys
import tempfile
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.factories import new_id
from tests.running import running_server

GOALS_MS = {"experiments page, 1,000 experiments": 50.0, "compare, 2 x 1,000 items": 100.0}
_LOGGED = re.compile(r'"GET (\S+)" 200 ([0-9.]+) ms')


def _record(client: httpx.Client) -> tuple[str, list[str]]:
    items = [new_id() for _ in range(1000)]
    data = [{"id": k, "source": "sdk", "data": {"q": f"question {n}"}} for n, k in enumerate(items)]
    client.put("/datasets/items", json={"dataset_name": "big", "items": data}).raise_for_status()
    runs = []
    for e in range(2):
        runs.append(new_id())
        records = [
            {
                "dataset_item_id": k,
                "trace": {
                    "start_time": "2025-01-15T09:30:00Z",
                    "end_time": "2025-01-15T09:30:01Z",
                    "input": {"q": n},
                    "output": {"a": (n + e) % 3},
                },
                "spans": [
                    {
                        "name": "llm",
                        "type": "llm",
                        "start_time": "2025-01-15T09:30:00Z",
                        "total_estimated_cost": 0.001,
                    }
                ],
                "feedback_scores": [{"name": "acc", "value": (n + e) % 2, "source": "sdk"}],
            }
            for n, k in enumerate(items)
        ]
        body = {"experiment_name": f"run {e}", "experiment_id": runs[-1], "dataset_name": "big",
                "items": records}  # fmt: skip
        client.put("/experiments/items/bulk", json=body).raise_for_status()
    for e in range(998):
        client.post("/experiments", json={"name": f"more {e}", "dataset_name": "big"})
    dataset = client.post("/datasets/retrieve", json={"dataset_name": "big"}).json()["id"]
    return str(dataset), runs


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=15)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as scratch:
        db, log = Path(scratch) / "ui.db", Path(scratch) / "ui.log"
        with running_server(db, log=log) as url:
            with httpx.Client(base_url=f"{url}/v1/private", timeout=120) as client:
                dataset, runs = _record(client)
            pages = {
                "experiments page, 1,000 experiments": f"/ui/datasets/{dataset}",
                "compare, 2 x 1,000 items": "/ui/compare?" + "&".join(
                    f"experiments={key}" for key in runs),
            }  # fmt: skip
            for path in pages.values():
                for _ in range(args.rounds):
                    httpx.get(f"{url}{path}", timeout=120).raise_for_status()
        logged: dict[str, list[float]] = {}
        for path, ms in _LOGGED.findall(log.read_text()):
            logged.setdefault(path, []).append(float(ms))
    print("| page | median server time | goal |\n| --- | ---: | ---: |")
    for label, path in pages.items():
        median = statistics.median(logged[path.split("?")[0]][-args.rounds :])
        print(f"| {label} | {median:.1f} ms | {GOALS_MS[label]:.0f} ms |")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
