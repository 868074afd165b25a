"""README.md's Python blocks, run as pasted: each ```python block runs in a new interpreter
against a real server, with the SDK pointed at it by the variables the README sets, and must
exit 0 having left on the server what it says it records; the SDK's background sender must
have dropped nothing (it logs what it drops)."""

import os
import re
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.running import running_server

README = Path(__file__).resolve().parent.parent / "README.md"
FENCE = re.compile(r"^```python\n(.*?)^```$", re.MULTILINE | re.DOTALL)
BLOCK_SECONDS = 120
# What the SDK logs when its background sender gives up on a message or a call fails, and
# when the README calls what it deprecates.
DROPPED = re.compile(r"Failed to process|Failed to send|ERROR|Traceback|deprecated", re.I)


def blocks() -> list[tuple[int, str]]:
    text = README.read_text()
    return [
        (text.count("\n", 0, match.start()) + 2, match.group(1)) for match in FENCE.finditer(text)
    ]


def test_the_readme_has_the_evaluation_snippet() -> None:
    assert any("evaluate(" in block for _, block in blocks())


@pytest.mark.parametrize(("line", "block"), blocks(), ids=lambda v: str(v)[:12])
def test_the_block_runs_as_pasted_and_records_what_it_says(
    line: int, block: str, tmp_path: Path
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPIK_", "EXPERIMENT_"))}
    env |= {
        "HOME": str(tmp_path),  # no ~/.opik.config of the machine's
        "OPIK_WORKSPACE": "default",
        "OPIK_ANALYTICS_ENABLE": "false",  # the SDK's telemetry, which goes to Comet
        "OPIK_SENTRY_ENABLE": "false",
    }
    with running_server(tmp_path / "server.db") as url:
        env["OPIK_URL_OVERRIDE"] = f"{url}/api/"
        done = subprocess.run(
            [sys.executable, "-c", block],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=BLOCK_SECONDS,
        )
        assert done.returncode == 0, f"README.md:{line}\n{done.stdout}\n{done.stderr}"
        assert not DROPPED.search(done.stdout + done.stderr), done.stdout + done.stderr
        assert "{'output': '4'} [1.0]" in done.stdout, done.stdout
        if "evaluate(" in block:
            _check_the_evaluation(url)


def _check_the_evaluation(url: str) -> None:
    api = f"{url}/api/v1/private"
    [experiment] = httpx.get(f"{api}/experiments", params={"name": "nightly"}).json()["content"]
    assert experiment["trace_count"] == 1
    assert experiment["feedback_scores"] == [{"name": "equals_metric", "value": 1.0}]
    dataset = httpx.post(f"{api}/datasets/retrieve", json={"dataset_name": "arithmetic"}).json()
    assert dataset["dataset_items_count"] == 1
