"""`serve` as an operator meets it: a busy port, signals, and a server that stops because it
cannot serve (the probe's D8, D12, D13), an import batch too long for other writers (D10) and
idle connections past the limit on open files (D6). On either engine, but for what is about
the SQLite file itself."""

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from app.postgres.schema import VERSION_TABLE
from tests.command import run
from tests.conftest import NewDatabase
from tests.running import free_port, server_process
from tests.soak.harness import Location, query


def _holds_nothing(db: Location) -> bool:
    """No file there, or a PostgreSQL database without a table."""
    if isinstance(db, Path):
        return not db.exists()
    return query(db, "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'") == [(0,)]


def test_a_busy_port_is_one_line_before_anything_starts(server_db: NewDatabase) -> None:
    db = server_db("busy")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run("serve", "--db", str(db), "--port", str(port))

    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        f"experiment-items: error: cannot listen on 127.0.0.1:{port}: Address already in use; pass "
        "--port or set EXPERIMENT_ITEMS_PORT (make run PORT=...)"
    ]
    assert _holds_nothing(db)


def test_an_import_batch_beyond_the_cap_is_refused(server_db: NewDatabase, tmp_path: Path) -> None:
    source = tmp_path / "in.jsonl"
    source.write_text("")

    result = run("import", "--db", str(server_db("cap")), "--batch", "10001", str(source))

    assert result.returncode == 2
    assert "--batch must be between 1 and 10,000" in result.stderr


def test_sighup_leaves_a_single_worker_serving(server_db: NewDatabase, tmp_path: Path) -> None:
    log = tmp_path / "server.log"
    with server_process(server_db("sighup"), log=log) as (url, process):
        process.send_signal(signal.SIGHUP)
        time.sleep(0.5)

        assert process.poll() is None
        assert httpx.get(f"{url}/is-alive/ping", timeout=5).status_code == 200
    assert "SIGHUP ignored" in log.read_text()


def _workers(parent: int) -> list[int]:
    children = Path(f"/proc/{parent}/task/{parent}/children").read_text().split()
    return [
        int(pid)
        for pid in children
        if b"resource_tracker" not in Path(f"/proc/{pid}/cmdline").read_bytes()
    ]


def _wait_for_two_workers(log: Path, process: "subprocess.Popen[bytes]") -> None:
    """Until both workers have started serving: a worker still starting is not a replacement."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        started = log.read_text().count("Application startup complete")
        if started >= 2 and len(_workers(process.pid)) >= 2:
            return
        time.sleep(0.1)
    raise AssertionError(f"two workers did not start:\n{log.read_text()}")


def test_a_server_whose_replacement_worker_cannot_start_exits_non_zero(
    server_db: NewDatabase, tmp_path: Path
) -> None:
    db, log = server_db("newer"), tmp_path / "server.log"
    with server_process(db, "--workers", "2", log=log) as (_, process):
        _wait_for_two_workers(log, process)
        # A newer release migrated the database: a new worker of this one refuses it.
        if isinstance(db, Path):
            query(db, "PRAGMA user_version = 99")
        else:
            query(db, f"UPDATE {VERSION_TABLE} SET version = 99")
        os.kill(_workers(process.pid)[0], signal.SIGKILL)

        code = process.wait(timeout=90)

    assert code == 3, log.read_text()
    assert "schema version 99" in log.read_text()


def test_a_stopped_server_exits_zero(server_db: NewDatabase) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("EXPERIMENT_ITEMS_")}
    port = free_port()
    args = ["serve", "--db", str(server_db("stopped")), "--port", str(port), "--workers", "2"]
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


@pytest.mark.sqlite_only("it moves the database file; a PostgreSQL database has none to move")
def test_a_worker_restarted_after_the_file_moved_does_not_make_a_new_one(tmp_path: Path) -> None:
    # The probe's D18: the replacement made an empty file beside the old WAL.
    db = tmp_path / "items.db"
    with server_process(db, "--workers", "2") as (_, process):
        _wait_for_two_workers(db.with_suffix(".log"), process)
        db.rename(tmp_path / "moved.db")
        os.kill(_workers(process.pid)[0], signal.SIGKILL)

        code = process.wait(timeout=90)

    log = db.with_suffix(".log").read_text()
    assert code == 3, log
    assert not db.exists()
    assert "it was moved or removed after the server started" in log


def test_the_banner_says_a_wildcard_host_is_bound(server_db: NewDatabase, tmp_path: Path) -> None:
    log = tmp_path / "server.log"
    with server_process(server_db("wildcard"), "--host", "0.0.0.0", log=log) as (url, _):
        port = url.rsplit(":", 1)[1]
        banner = log.read_text()

    assert f"  bound to   0.0.0.0:{port}, every address of this host\n" in banner
    assert f"  listening  http://127.0.0.1:{port}/" in banner


def _capacity(log: Path) -> str:
    return next(line for line in log.read_text().splitlines() if "capacity" in line).strip()


def test_idle_connections_past_the_open_files_limit_leave_the_health_check_an_answer(
    server_db: NewDatabase, tmp_path: Path
) -> None:
    db, log, open_files = server_db("open_files"), tmp_path / "server.log", 160
    statuses: list[bytes] = []
    idle: list[socket.socket] = []
    # Soft and hard limit alike: the server cannot raise it. Each connection makes one
    # request and stays open, as a keep-alive client's does (the probe's D6 repro).
    with server_process(db, log=log, shell_first=f"ulimit -n {open_files}") as (url, _):
        port = int(url.rsplit(":", 1)[1])
        try:
            for _ in range(open_files):
                sock = socket.create_connection(("127.0.0.1", port), timeout=5)
                idle.append(sock)
                sock.sendall(b"GET /is-alive/ver HTTP/1.1\r\nHost: test\r\n\r\n")
                statuses.append(sock.recv(65536).split(b" ", 2)[1])
            ping = httpx.get(f"{url}/is-alive/ping", timeout=5)
        finally:
            for sock in idle:
                sock.close()

    # 64 + 3 for the writer and each of the 2 readers kept apart (a file's three descriptors,
    # or a PostgreSQL connection's socket: the same reserve on both engines).
    assert _capacity(log) == "capacity   87 connections per worker, then 503 (open files limit 160)"
    # At most the cap; one fewer when the server has yet to see the start-up check's close.
    assert statuses.count(b"200") in (86, 87)
    assert set(statuses) == {b"200", b"503"}
    assert ping.status_code == 503
    assert ping.json() == {
        "code": 503,
        "message": "The server is at its connection limit: try again in a moment",
    }
    assert ping.headers["retry-after"] == "1"


def test_serve_raises_the_soft_limit_on_open_files_to_the_hard_one(
    server_db: NewDatabase, tmp_path: Path
) -> None:
    log = tmp_path / "server.log"

    with server_process(
        server_db("raised"), log=log, shell_first="ulimit -Sn 150 && ulimit -Hn 300"
    ):
        pass

    assert (
        _capacity(log) == "capacity   227 connections per worker, then 503 (open files limit 300)"
    )
