"""The single-file executable, run as a user runs it: serve on a new file, write, read back.

Building it takes half a minute, too long for every test run: these tests run when
dist/experiment-items exists (`make binary`), or when EXPERIMENT_ITEMS_BINARY names an
executable to test (`make binary-test` sets it, and then a missing file is a failure).
"""

import json
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from tests.factories import batch, item
from tests.running import STARTUP_SECONDS, free_port

ITEMS = "/api/v1/private/experiments/items"
BINARY = Path(
    os.environ.get("EXPERIMENT_ITEMS_BINARY")
    or Path(__file__).resolve().parent.parent / "dist" / "experiment-items"
)

pytestmark = pytest.mark.skipif(
    "EXPERIMENT_ITEMS_BINARY" not in os.environ and not BINARY.exists(),
    reason="no dist/experiment-items: `make binary-test` builds and tests it",
)


def binary(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BINARY), *args], capture_output=True, text=True, timeout=60, env=_environ()
    )


@contextmanager
def serving(db: Path, log: Path, *args: str) -> Iterator[str]:
    """The executable serving `db` on a free port until the block ends; yields its URL."""
    port = free_port()
    with log.open("wb") as out:
        process = subprocess.Popen(
            [str(BINARY), "serve", "--db", str(db), "--port", str(port), *args],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=_environ(),
        )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_for(url, process, log)
        yield url
    finally:
        process.terminate()
        # uvicorn stops gracefully, then re-raises the SIGTERM it caught (uvicorn/server.py).
        assert process.wait(timeout=20) in (0, -signal.SIGTERM), log.read_text()


def _environ() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("EXPERIMENT_ITEMS_")}


def _wait_for(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        assert process.poll() is None, log.read_text()
        try:
            if httpx.get(f"{url}/is-alive/ping", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            time.sleep(0.05)
    raise AssertionError(f"no answer within {STARTUP_SECONDS} s:\n{log.read_text()}")


def test_the_executable_is_one_file_that_runs() -> None:
    assert BINARY.is_file(), f"{BINARY} is missing: `make binary` builds it"

    assert binary("--version").stdout.startswith("experiment-items ")


@pytest.mark.parametrize("workers", ["1", "2"])
def test_the_executable_serves_a_new_database(tmp_path: Path, workers: str) -> None:
    # A new file needs schema.sql from inside the executable; two workers need uvicorn's
    # spawned processes to start the executable again as workers.
    db, log = tmp_path / "new" / "items.db", tmp_path / "server.log"
    body = item()

    with serving(db, log, "--workers", workers) as url:
        written = httpx.post(f"{url}{ITEMS}", json=batch(body))
        reads = [httpx.get(f"{url}{ITEMS}/{body['id']}") for _ in range(10)]

    assert written.status_code == 204
    assert {read.status_code for read in reads} == {200}
    assert reads[0].json()["trace_id"] == body["trace_id"]
    assert "listening  http://127.0.0.1:" in log.read_text()


def test_the_executable_runs_the_operator_commands(tmp_path: Path) -> None:
    db, copy = tmp_path / "items.db", tmp_path / "backup.db"

    assert binary("demo", "--db", str(db)).returncode == 0
    backed_up = binary("backup", "--db", str(db), str(copy))
    found = json.loads(binary("stats", "--json", "--db", str(copy)).stdout)

    assert backed_up.returncode == 0, backed_up.stderr
    assert found["tables"]["experiment_items"] == 60


def test_the_executable_serves_the_web_ui_with_its_templates_and_stylesheet(
    tmp_path: Path,
) -> None:
    with serving(tmp_path / "ui.db", tmp_path / "ui.log") as url:
        home = httpx.get(f"{url}/", timeout=10)
        style = httpx.get(f"{url}/ui/static/ui.css", timeout=10)

    assert home.status_code == 200
    assert "<h1>Datasets</h1>" in home.text
    assert style.status_code == 200
    assert "font" in style.text
