"""README.md's shell blocks, run as pasted: each ```sh, ```bash or ```console block (in a
console block, the lines after a `$ ` prompt) runs in bash with `set -eo pipefail`, in a new
folder where the default database is a new file, with the virtual environment's bin first on
PATH, and must exit 0.

A block that calls the server at port 5173 (as `make run` serves) gets a real server on a free
port, and the port in its text is that one; so does 5174, the port of the push example's own
target server. Where a block says a `curl -i` answer (`# HTTP/1.1 204 ...`), the statuses must
be those. A block that names EXAMPLE_POSTGRES runs against a new database of the test
cluster. What is not run is listed here, with why."""

import contextlib
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.running import free_port, running_server

README = Path(__file__).resolve().parent.parent / "README.md"
FENCE = re.compile(r"^```(sh|bash|console)\n(.*?)^```$", re.MULTILINE | re.DOTALL)
STATUS = re.compile(r"HTTP/1\.1 (\d{3}) ")  # an answer without a newline runs into the next
DOCUMENTED_STATUS = re.compile(r"^# HTTP/1\.1 (\d{3})", re.MULTILINE)
BLOCK_SECONDS = 30
# The PostgreSQL database of the README's examples: a block that names it runs against a new
# database of the test cluster instead (and skips, saying why, without PostgreSQL's binaries).
EXAMPLE_POSTGRES = "postgresql://app@db.example:5432/items"

# Blocks not run, by their first command (comments left out), and why.
SKIPPED_BLOCKS = {
    "make run": "serves until stopped (and `make test` is the whole suite)",
    ".venv/bin/experiment-items serve --db /data/items.db --host 0.0.0.0 --port 5173 "
    "--workers 2": "serves until stopped, on every address",
    "make check": "the whole suite (and `make format` rewrites the tree)",
}
# Lines left out of the blocks that are run, by their command, and why.
SKIPPED_LINES = {
    "make run": "serves until stopped",
    "experiment-items serve --demo": "serves until stopped",
    "experiment-items serve --demo-if-new": "serves until stopped",
    f"experiment-items serve --db {EXAMPLE_POSTGRES} --host 0.0.0.0 --workers 4": "serves until "
    "stopped, on every address",
}


def command(line: str) -> str:
    return line.split(" #", 1)[0].strip()


def blocks() -> list[tuple[int, str]]:
    """Each shell block with the number of its first line, as it would be pasted."""
    text = README.read_text()
    found = []
    for match in FENCE.finditer(text):
        lines = match.group(2).splitlines()
        if match.group(1) == "console":
            lines = [line[2:] for line in lines if line.startswith("$ ")]
        found.append((text.count("\n", 0, match.start()) + 2, "\n".join(lines) + "\n"))
    return found


def first_command(block: str) -> str:
    return next(command(line) for line in block.splitlines() if command(line))


RUN = [(line, block) for line, block in blocks() if first_command(block) not in SKIPPED_BLOCKS]


def test_every_skip_names_what_the_readme_holds() -> None:
    firsts = {first_command(block) for _, block in blocks()}
    commands = {command(line) for _, block in RUN for line in block.splitlines()}

    assert set(SKIPPED_BLOCKS) <= firsts
    assert set(SKIPPED_LINES) <= commands
    assert len(RUN) >= 5


def test_the_readme_puts_the_commands_on_path() -> None:
    assert 'export PATH="$PWD/.venv/bin:$PATH"' in README.read_text()


@pytest.mark.parametrize(("line", "block"), RUN, ids=[f"README.md:{line}" for line, _ in RUN])
def test_the_block_runs_as_pasted(
    line: int, block: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    kept = [text for text in block.splitlines() if command(text) not in SKIPPED_LINES]
    script = re.sub(r"\b5174\b", str(free_port()), "\n".join(kept))
    if EXAMPLE_POSTGRES in script:
        script = script.replace(EXAMPLE_POSTGRES, str(request.getfixturevalue("pg_url")))
    env = {k: v for k, v in os.environ.items() if not k.startswith("EXPERIMENT_ITEMS_")}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"
    env["PYTHONPATH"] = str(README.parent)  # this tree's code, wherever the venv came from
    work = tmp_path / "work"
    work.mkdir()

    def run(script: str) -> subprocess.CompletedProcess[str]:
        # A session of its own: what the block leaves running (a server it started in the
        # background, when it failed before `kill $!`) is stopped with it.
        with subprocess.Popen(
            ["bash", "-c", "set -eo pipefail\n" + script],
            cwd=work,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        ) as shell:
            try:
                out, err = shell.communicate(timeout=BLOCK_SECONDS)
            except subprocess.TimeoutExpired:
                out, err = "", f"timed out after {BLOCK_SECONDS} s"
            finally:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(shell.pid, signal.SIGKILL)
                shell.wait()
            return subprocess.CompletedProcess(shell.args, shell.returncode, out, err)

    if re.search(r"\b5173\b", script):
        with running_server(tmp_path / "server.db") as url:
            result = run(re.sub(r"\b5173\b", url.rsplit(":", 1)[1], script))
    else:
        result = run(script)

    assert result.returncode == 0, f"README.md:{line}\n{result.stdout}\n{result.stderr}"
    documented = DOCUMENTED_STATUS.findall(block)
    if documented:
        assert STATUS.findall(result.stdout) == documented, result.stdout
