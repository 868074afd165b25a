"""`opik.evaluate` end to end: the official SDK evaluates a dataset with a trivial task and a
heuristic metric (no LLM) against a running server, and what that costs each side.

    python -m bench.evaluate PORT SERVER_PID ITEMS NAME

run.py runs this pinned to the load generator's core, with the SDK's environment
(OPIK_URL_OVERRIDE and the rest, see `sdk_env`). It inserts ITEMS dataset items into a new
dataset, then times `evaluate()` from its call until the SDK has flushed every message, with
the CPU seconds of this process (the SDK, all its threads) and of the server's (read from
/proc) over the same span, checks through the REST API that the experiment counts every item
and scores them all 1, and prints one JSON object.
"""

import json
import resource
import sys
import time
import urllib.request
import warnings
from pathlib import Path
from typing import Any

from bench.servers import CLOCK_TICKS

EXPERIMENT_PREFIX = "bench-evaluate"


def sdk_env(port: int) -> dict[str, str]:
    """The SDK's configuration for a local server without its telemetry, as
    tests/test_opik_sdk_flows.py runs it."""
    return {
        "OPIK_URL_OVERRIDE": f"http://127.0.0.1:{port}/api",
        "OPIK_WORKSPACE": "default",
        "OPIK_ANALYTICS_ENABLE": "false",
        "OPIK_SENTRY_ENABLE": "false",
        "OPIK_CHECK_TLS_CERTIFICATE": "false",
    }


def _cpu(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def _own_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)  # every thread of the process
    return usage.ru_utime + usage.ru_stime


def task(item: dict[str, Any]) -> dict[str, Any]:
    """The task under evaluation: it answers what the item expects."""
    return {"output": item["expected_output"]}


def run(port: int, server_pid: int, items: int, name: str) -> dict[str, Any]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import opik
        from opik.evaluation import evaluate
        from opik.evaluation.metrics import Equals

    client = opik.Opik(workspace="default", project_name=name)
    dataset = client.get_or_create_dataset(name)
    rows = [
        {"input": {"question": f"What is {k} plus {k}?"}, "expected_output": str(2 * k)}
        for k in range(items)
    ]
    wall, own, server = time.perf_counter(), _own_cpu(), _cpu(server_pid)
    dataset.insert(rows)
    inserted = time.perf_counter() - wall
    wall, own, server = time.perf_counter(), _own_cpu(), _cpu(server_pid)
    result = evaluate(
        dataset=dataset, task=task, scoring_metrics=[Equals()], experiment_name=name,
        scoring_key_mapping={"reference": "expected_output"}, verbose=0,
    )  # fmt: skip
    opik.flush_tracker()
    client.flush()
    seconds = time.perf_counter() - wall
    own, server = _own_cpu() - own, _cpu(server_pid) - server
    url = f"http://127.0.0.1:{port}/api/v1/private/experiments/{result.experiment_id}"
    with urllib.request.urlopen(url) as answer:
        stored = json.load(answer)
    return {
        "items": items,
        "insert_seconds": inserted,
        "seconds": seconds,
        "sdk_cpu_seconds": own,
        "server_cpu_seconds": server,
        "trace_count": stored.get("trace_count"),
        "feedback_scores": stored.get("feedback_scores"),
    }


def main(argv: list[str]) -> None:
    port, server_pid, items, name = int(argv[0]), int(argv[1]), int(argv[2]), argv[3]
    print(json.dumps(run(port, server_pid, items, name)))


if __name__ == "__main__":
    main(sys.argv[1:])
