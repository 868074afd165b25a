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


def busy_seconds() -> float:
    """CPU time spent by anything on any core so far (/proc/stat's first line, idle and
    iowait left out, steal counted: a neighbour's time is time we did not get)."""
    fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(f) for f in fields[:8])
    return (user + nice + system + irq + softirq + steal) / CLOCK_TICKS


def own_seconds() -> float:
    """CPU time of this process and of the children it has waited for."""
    times = os.times()
    return times.user + times.system + times.children_user + times.children_system


def wait_for_quiet(limit_seconds: float, limit_share: float) -> float:
    """Waits, up to `limit_seconds`, for a second in which other processes leave the cores
    alone (starting while a test suite runs would measure the test suite); returns the
    seconds waited."""
    started = time.perf_counter()
    while True:
        before = busy_seconds()
        time.sleep(1.0)
        busy = busy_seconds() - before
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
