"""Servers under test: one uvicorn worker per target, pinned to its core, and what it cost."""

import http.client
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

REPO = Path(__file__).resolve().parent.parent
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")

# The same server settings for every target (the issue): one worker, uvloop, httptools, no
# access log. No proxy-header middleware and no Server header either, as app/cli.py runs it.
UVICORN_FLAGS = (
    "--factory",
    "--host",
    "127.0.0.1",
    "--workers",
    "1",
    "--loop",
    "uvloop",
    "--http",
    "httptools",
    "--no-access-log",
    "--no-proxy-headers",
    "--no-server-header",
    "--log-level",
    "warning",
)


@dataclass(frozen=True)
class Target:
    """One thing to measure: an ASGI app factory and the environment it reads."""

    key: str
    label: str
    factory: str
    env: dict[str, str] = field(default_factory=dict)
    # uvicorn's httptools protocol, or a subclass of it by import string: the service runs
    # with the one `experiment-items serve` gives it.
    http: str = "httptools"


@dataclass(frozen=True)
class Reply:
    status: int
    content_type: str
    body: bytes


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def request(
    port: int,
    path: str,
    method: str = "GET",
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
    timeout: float = 30.0,
) -> Reply:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        response = conn.getresponse()
        return Reply(response.status, response.getheader("content-type", ""), response.read())
    finally:
        conn.close()


class Server:
    """A server process pinned to `core`; a context manager that stops it on exit."""

    def __init__(
        self,
        command: list[str],
        env: dict[str, str],
        log: Path,
        core: int = 0,
        cwd: Path = REPO,
    ) -> None:
        self.command = ["taskset", "-c", str(core), *command]
        self.cwd = cwd  # the source tree whose `app` package the server imports
        self.env = {**os.environ, **env}
        self.log = log
        self.process: subprocess.Popen[bytes] | None = None
        self.started_at = 0.0

    @classmethod
    def uvicorn(
        cls, target: Target, port: int, logs: Path, core: int = 0, cwd: Path = REPO
    ) -> "Server":
        flags = [target.http if flag == "httptools" else flag for flag in UVICORN_FLAGS]
        command = [sys.executable, "-m", "uvicorn", target.factory, *flags]
        log = logs / f"{target.key}.log"
        return cls([*command, "--port", str(port)], target.env, log, core, cwd)

    def start(self) -> "Server":
        self.started_at = time.perf_counter()
        # The server's output goes to a file: it would bury the progress lines, and the
        # failure message quotes its end.
        with self.log.open("ab") as out:
            # taskset execs the server, so this pid is the server's own.
            self.process = subprocess.Popen(
                self.command, cwd=self.cwd, env=self.env, stdout=out, stderr=subprocess.STDOUT
            )
        return self

    def log_tail(self, lines: int = 20) -> str:
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return "\n".join(text.splitlines()[-lines:])

    def wait_for(
        self, port: int, path: str, headers: dict[str, str], timeout: float = 60.0
    ) -> float:
        """Seconds from process start to the first 200 on `path`."""
        assert self.process is not None
        deadline = self.started_at + timeout
        while time.perf_counter() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"{self.command} exited with {self.process.returncode}:\n{self.log_tail()}"
                )
            try:
                if request(port, path, headers=headers, timeout=5).status == 200:
                    return time.perf_counter() - self.started_at
            except OSError:
                pass
            time.sleep(0.002)
        raise TimeoutError(
            f"{self.command} gave no 200 on {path} within {timeout} s:\n{self.log_tail()}"
        )

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def cpu_seconds(self) -> float:
        """User plus system time of every thread of the process so far."""
        fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # utime, stime

    def memory(self) -> dict[str, int]:
        """Resident memory now and at its peak, in bytes."""
        found = {}
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            name, _, value = line.partition(":")
            if name in ("VmRSS", "VmHWM"):
                found[name] = int(value.split()[0]) * 1024
        return {"rss": found["VmRSS"], "peak": found["VmHWM"]}

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGINT)  # uvicorn's graceful shutdown runs lifespan
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def __enter__(self) -> "Server":
        return self.start() if self.process is None else self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()


def create_database(path: Path, logs: Path, cwd: Path = REPO) -> None:
    """A new, empty database at `path`, made as `experiment-items serve` makes it: uvicorn
    workers open only a file that exists (app/main.py), so a target on a new file needs it."""
    port = free_port()
    command = [sys.executable, "-m", "app", "serve", "--db", str(path), "--port", str(port)]
    with Server([*command, "--no-access-log"], {}, logs / "create.log", cwd=cwd) as server:
        server.wait_for(port, "/is-alive/ping", {})
