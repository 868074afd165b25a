"""The command line in a real process for tests: `experiment-items ARGS...`, as a shell runs it."""

import os
import subprocess
import sys
from pathlib import Path

TIMEOUT_SECONDS = 120
ROOT = Path(__file__).resolve().parent.parent  # the checkout whose `app` the tests run


def run(
    *args: str, stdin: Path | None = None, cwd: Path | None = None, **env: str
) -> subprocess.CompletedProcess[str]:
    """Runs `python -m app ARGS`, with only the EXPERIMENT_ITEMS_ variables given in `env`,
    reading `stdin` as `< FILE` in a shell would (else nothing), in the folder `cwd` (else
    this one)."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith("EXPERIMENT_ITEMS_")}
    environ.update(env)
    if cwd is not None:  # `-m app` finds this checkout from the current folder: say where
        environ["PYTHONPATH"] = os.pathsep.join(
            filter(None, [str(ROOT), environ.get("PYTHONPATH")])
        )
    with open(stdin or os.devnull, "rb") as file:
        return subprocess.run(
            [sys.executable, "-m", "app", *args],
            stdin=file,
            capture_output=True,
            text=True,
            env=environ,
            cwd=cwd,
            timeout=TIMEOUT_SECONDS,
        )
