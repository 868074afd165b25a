"""`serve` as an operator meets it: a busy port, signals, and a server that stops because it
cannot serve (the probe's D8, D12, D13) and an import batch too long for other writers (D10)."""

import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.command import run
from tests.running import free_port, server_process


def test_a_busy_port_is_one_line_before_anything_starts(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run("serve", "--db", str(tmp_path / "items.db"), "--port", str(port))

    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        f"experiment-items: error: cannot listen on 127.0.0.1:{port}: Address already in use; pass "
        "--port or set EXPERIMENT_ITEMS_PORT (make run PORT=...)"
    ]
    assert not (tmp_path / "items.db").exists()


def test_an_import_batch_beyond_the_cap_is_refused(tmp_path: Path) -> None:
    source = tmp_path / "in.jsonl"
    source.write_text("")

    result = run("import", "--db", str(tmp_path / "items.db"), "--batch", "10001", str(source))

    assert result.returncode == 2
    assert "--batch must be between 1 and 10,000" in result.stderr


def test_sighup_leaves_a_single_worker_serving(tmp_path: Path) -> None:
    db = tmp_path / "items.db"
    with server_process(db) as (url, process):
        process.send_signal(signal.SIGHUP)
        time.sleep(0.5)

        assert process.poll() is None
        assert httpx.get(f"{url}/is-alive/ping", timeout=5).status_code == 200
    assert "SIGHUP ignored" in db.with_suffix(".log").read_text()


def _workers(parent: int) -> list[int]:
    children = Path(f"/proc/{parent}/task/{parent}/children").read_text().split()
    return [
        int(pid)
        for pid in children
        if b"resource_tracker" not in Path(f"/proc/{pid}/cmdline").read_bytes()
    ]


def _wait_for_two_workers(db: Path, process: "subprocess.Popen[bytes]") -> None:
    """Until both workers have started serving: a worker still starting is not a replacement."""
    log = db.with_suffix(".log")
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        started = log.read_text().count("Application startup complete")
        if started >= 2 and len(_workers(process.pid)) >= 2:
            return
        time.sleep(0.1)
    raise AssertionError(f"two workers did not start:\n{log.read_text()}")


def test_a_server_whose_replacement_worker_cannot_start_exits_non_zero(tmp_path: Path) -> None:
    db = tmp_path / "items.db"
    with server_process(db, "--workers", "2") as (_, process):
        _wait_for_two_workers(db, process)
        # A newer release migrated the file: a new worker of this one refuses it.
        with sqlite3.connect(db) as conn:
            conn.execute("PRAGMA user_version = 99")
        os.kill(_workers(process.pid)[0], signal.SIGKILL)

        code = process.wait(timeout=90)

    assert code == 3, db.with_suffix(".log").read_text()


def test_a_stopped_server_exits_zero(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("EXPERIMENT_ITEMS_")}
    port = free_port()
    args = ["serve", "--db", str(tmp_path / "items.db"), "--port", str(port), "--workers", "2"]
    process = subprocess.Popen([sys.executable, "-m", "app", *args], env=env)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            httpx.get(f"http://127.0.0.1:{port}/is-alive/ping", timeout=1)
            break
        except httpx.TransportError:
            time.sleep(0.1)
    process.terminate()

    assert process.wait(timeout=30) == 0


def test_a_worker_restarted_after_the_file_moved_does_not_make_a_new_one(tmp_path: Path) -> None:
    # The probe's D18: the replacement made an empty file beside the old WAL.
    db = tmp_path / "items.db"
    with server_process(db, "--workers", "2") as (_, process):
        _wait_for_two_workers(db, process)
        db.rename(tmp_path / "moved.db")
        os.kill(_workers(process.pid)[0], signal.SIGKILL)

        code = process.wait(timeout=90)

    log = db.with_suffix(".log").read_text()
    assert code == 3, log
    assert not db.exists()
    assert "it was moved or removed after the server started" in log


def test_the_banner_says_a_wildcard_host_is_bound(tmp_path: Path) -> None:
    db = tmp_path / "items.db"
    with server_process(db, "--host", "0.0.0.0") as (url, _):
        port = url.rsplit(":", 1)[1]
        banner = db.with_suffix(".log").read_text()

    assert f"  bound to   0.0.0.0:{port}, every address of this host\n" in banner
    assert f"  listening  http://127.0.0.1:{port}/" in banner
