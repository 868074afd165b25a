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


# Processes that serve a target though they do not share our session, with their children:
# the PostgreSQL cluster's postmaster (pg_ctl starts it in a session of its own, and each
# backend it forks takes one of its own too).
SERVING_PARENTS: set[int] = set()


def _other_sessions() -> dict[int, tuple[int, int]]:
    """Per process of another session: its own CPU ticks and its waited-for children's.
    Ours (this script, wrk, the servers) share this session; kernel threads have none."""
    ours = os.getsid(0)
    found = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:  # it ended meanwhile
            continue
        serving = int(stat.parent.name) in SERVING_PARENTS or int(fields[1]) in SERVING_PARENTS
        if int(fields[3]) not in (0, ours) and not serving:
            utime, stime, cutime, cstime = (int(f) for f in fields[11:15])
            found[int(stat.parent.name)] = (utime + stime, cutime + cstime)
    return found


class Others:
    """CPU time that other sessions' processes (another shell's test suite, say) spend from
    now on. A process that ends meanwhile still counts, through its parent's children
    times; per-process differences keep a parent that ends from cancelling the rest."""

    def __init__(self) -> None:
        self.before = _other_sessions()

    def share(self, seconds: float) -> float:
        """The cores' worth of other processes over the last `seconds`: at most all of them,
        since a child that ended brings all its time into its parent's, some from before."""
        return min(float(os.cpu_count() or 1), self.seconds() / seconds)

    def seconds(self) -> float:
        ticks = 0
        for pid, (own, children) in _other_sessions().items():
            own_before, children_before = self.before.get(pid, (0, 0))
            ticks += max(0, own - own_before) + max(0, children - children_before)
        return ticks / CLOCK_TICKS


def wait_for_quiet(limit_seconds: float, limit_share: float, window: float = 2.0) -> float:
    """Waits, up to `limit_seconds`, for `window` seconds in which other processes leave the
    cores alone (starting while a test suite runs would measure the test suite; a one-second
    gap between two of its runs is too short to trust); returns the seconds waited."""
    started = time.perf_counter()
    while True:
        others = Others()
        time.sleep(window)
        waited = time.perf_counter() - started
        if others.seconds() / window <= limit_share or waited >= limit_seconds:
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
