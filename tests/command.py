"""The command line in a real process for tests: `experiment-items ARGS...`, as a shell runs it."""

import os
import subprocess
import sys

TIMEOUT_SECONDS = 120


def run(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """Runs `python -m app ARGS`, with only the EXPERIMENT_ITEMS_ variables given in `env`."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith("EXPERIMENT_ITEMS_")}
    environ.update(env)
    return subprocess.run(
        [sys.executable, "-m", "app", *args],
        capture_output=True,
        text=True,
        env=environ,
        timeout=TIMEOUT_SECONDS,
    )
