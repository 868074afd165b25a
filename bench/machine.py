"""The machine: what it is, for the report, and whether other processes are using it."""

import importlib.metadata
import os
import platform
import sqlite3
import subprocess
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
PACKAGES = (
    "starlette",
    "uvicorn",
    "msgspec",
    "aiosqlite",
    "uvloop",
    "httptools",
    "fastapi",
    "pydantic",
)


def others_seconds() -> float:
    """CPU time used so far by the processes of other sessions: another shell's test suite,
    say. Ours (this script, wrk, the servers) share this session; kernel threads have none.
    A process that ended is still counted, in its parent's children times."""
    ours = os.getsid(0)
    total = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:  # it ended meanwhile
            continue
        session = int(fields[3])
        if session not in (0, ours):
            total += sum(int(f) for f in fields[11:15])  # utime, stime, cutime, cstime
    return total / CLOCK_TICKS


def wait_for_quiet(limit_seconds: float, limit_share: float) -> float:
    """Waits, up to `limit_seconds`, for a second in which other processes leave the cores
    alone (starting while a test suite runs would measure the test suite); returns the
    seconds waited."""
    started = time.perf_counter()
    while True:
        before = others_seconds()
        time.sleep(1.0)
        busy = others_seconds() - before
        waited = time.perf_counter() - started
        if busy <= limit_share or waited >= limit_seconds:
            return waited


def describe() -> dict[str, Any]:
    """The CPU, kernel, versions and commit a run is reported with."""
    cpu = "unknown"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    versions = {"Python": platform.python_version(), "SQLite": sqlite3.sqlite_version}
    versions |= {name: importlib.metadata.version(name) for name in PACKAGES}

    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True).stdout

    commit = git("rev-parse", "--short", "HEAD").strip() or "unknown"
    # What is measured is the working tree: say so when it differs from the commit.
    if git("status", "--porcelain", "--", "app", "schema.sql").strip():
        commit += " plus uncommitted changes to app/"
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "kernel": platform.release(),
        "versions": versions,
        "commit": commit,
    }
