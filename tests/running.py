"""A real server process for tests: `experiment-items serve` on a free port."""

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

STARTUP_SECONDS = 30


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def running_server(db: Path | str, *args: str, log: Path | None = None) -> Iterator[str]:
    """Starts the server on `db` (a file, or a PostgreSQL URL: then `log` is needed), waits
    until it answers, yields its base URL, stops it."""
    with server_process(db, *args, log=log) as (url, _):
        yield url


@contextmanager
def server_process(
    db: Path | str, *args: str, log: Path | None = None, shell_first: str | None = None
) -> Iterator[tuple[str, "subprocess.Popen[bytes]"]]:
    """As running_server, with the process too (with one worker, the one serving).
    `shell_first`: a sh command run before the server replaces the shell (`ulimit -n 100`)."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("EXPERIMENT_ITEMS_")}
    if log is None:
        assert isinstance(db, Path), "a server on a PostgreSQL URL needs a log path"
        log = db.with_suffix(".log")
    command = [sys.executable, "-m", "app", "serve", "--db", str(db), "--port", str(port), *args]
    if shell_first is not None:
        command = ["sh", "-c", f'{shell_first} && exec "$@"', "sh", *command]
    with log.open("wb") as out:
        process = subprocess.Popen(
            command,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
        )
        url = f"http://127.0.0.1:{port}"
        try:
            wait_until_up(url, process, log)
            yield url, process
        finally:
            process.terminate()
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def wait_until_up(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    """Returns once the server at `url` answers its health check; raises with its log when it
    exits first or does not answer within STARTUP_SECONDS."""
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}:\n{log.read_text()}")
        try:
            if httpx.get(f"{url}/is-alive/ping", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.05)
    raise RuntimeError(f"server did not answer within {STARTUP_SECONDS} s:\n{log.read_text()}")
