"""The load generator: wrk, found or installed, run pinned to its own core, its summary read."""

import json
import os
import resource
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

SCRIPT = Path(__file__).resolve().parent / "rotate.lua"
_MARKER = "WRK_JSON "

INSTALL_HELP = """wrk is not installed. On Debian or Ubuntu: sudo apt-get install -y wrk
(elsewhere: https://github.com/wg/wrk, `make` and put the binary on PATH)."""


@dataclass(frozen=True)
class Load:
    """What one wrk run measured, with the CPU it used itself (to show it was not the
    bottleneck)."""

    connections: int
    seconds: float
    requests: int
    non_2xx: int
    socket_errors: int
    latency_us: dict[str, float]
    wrk_cpu_seconds: float

    @property
    def rps(self) -> float:
        return self.requests / self.seconds

    @property
    def wrk_cpu_share(self) -> float:
        """The share of its core wrk was busy: near 1 would mean wrk limits the result."""
        return self.wrk_cpu_seconds / self.seconds


def ensure_wrk() -> str:
    """wrk's path, installing the Debian package first when we are root with apt-get."""
    found = shutil.which("wrk")
    if found:
        return found
    if os.geteuid() == 0 and shutil.which("apt-get"):
        print("installing wrk with apt-get ...", file=sys.stderr)
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        subprocess.run(["apt-get", "update", "-qq"], check=True, env=env)
        subprocess.run(["apt-get", "install", "-y", "-qq", "wrk"], check=True, env=env)
        found = shutil.which("wrk")
        if found:
            return found
    sys.exit(INSTALL_HELP)


def version(wrk: str) -> str:
    # `wrk -v` prints its banner and exits 1.
    out = subprocess.run([wrk, "-v"], capture_output=True, text=True).stdout
    return out.split("Copyright")[0].strip().removeprefix("wrk ").strip()


def run(
    wrk: str,
    port: int,
    ids_file: Path,
    connections: int,
    seconds: float,
    headers: tuple[str, ...] = (),
    prefix: str = "/v1/private/experiments/items/",
    core: int = 1,
    timeout_seconds: int = 10,
) -> Load:
    """GET prefix+id for ids from `ids_file` over `connections` connections for `seconds`.
    One wrk thread: it has one core, and one thread drives tens of thousands of requests
    per second, several times what one Python worker serves."""
    command = [
        "taskset", "-c", str(core),
        wrk, "-t1", f"-c{connections}", f"-d{max(1, round(seconds))}s",
        "--timeout", f"{timeout_seconds}s",
        "-s", str(SCRIPT), f"http://127.0.0.1:{port}",
        "--", str(ids_file), prefix, *headers,
    ]  # fmt: skip
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True)
    elapsed = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    lines = [line for line in done.stdout.splitlines() if line.startswith(_MARKER)]
    if done.returncode != 0 or not lines:
        raise RuntimeError(f"wrk failed ({done.returncode}): {done.stdout}{done.stderr}")
    summary = json.loads(lines[-1][len(_MARKER) :])
    errors = summary["errors"]
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    measured = summary["duration_us"] / 1e6 or elapsed
    return Load(
        connections=connections,
        seconds=measured,
        requests=summary["requests"],
        non_2xx=errors["status"],
        socket_errors=errors["connect"] + errors["read"] + errors["write"] + errors["timeout"],
        latency_us={k: float(v) for k, v in summary["latency_us"].items()},
        wrk_cpu_seconds=cpu,
    )
