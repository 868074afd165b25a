"""Operations: a SIGTERM lets in-flight writes finish, and the health check tells when the
database cannot be read."""

import json
import os
import random
import signal
import socket
import sqlite3
import threading
from pathlib import Path

import httpx
import pytest

from app import ids
from app.config import Settings
from app.main import create_app
from app.sqlite import SqliteStore
from app.sqlite.connection import Database
from tests.factories import batch, item
from tests.soak.harness import Server, integrity_check, scaled

ITEMS = "/v1/private/experiments/items"
UNHEALTHY_PINGS = 10  # readers are used in turn: every one of them must say so


def stored(db: Path, item_ids: list[str]) -> int:
    keys = [ids.parse(i) for i in item_ids]
    with sqlite3.connect(db) as conn:
        sql = f"SELECT count(*) FROM experiment_items WHERE id IN ({', '.join('?' * len(keys))})"
        return int(conn.execute(sql, keys).fetchone()[0])


def test_sigterm_during_a_write_lets_it_finish_and_keeps_it(tmp_path: Path) -> None:
    server = Server(tmp_path / "items.db").start()
    body = batch(*[item() for _ in range(500)])
    data = json.dumps(body).encode()
    head = (
        f"POST {ITEMS} HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(data)}\r\n\r\n"
    ).encode()
    try:
        with socket.create_connection(("127.0.0.1", server.port), timeout=30) as sock:
            sock.sendall(head + data[:1000])
            # An answer on another connection means the server has read the first one's
            # headers: the write is in flight when the signal comes.
            assert httpx.get(f"{server.url}/is-alive/ping").status_code == 200
            server.send(signal.SIGTERM)
            sock.sendall(data[1000:])
            answer = sock.recv(65536)
        code = server.wait()
    finally:
        server.stop()

    assert answer.startswith(b"HTTP/1.1 204 ")
    # uvicorn shuts down gracefully, then re-raises the signal it caught (systemd counts
    # death by SIGTERM as a clean stop).
    assert code in (0, -signal.SIGTERM)
    assert "Application shutdown complete." in server.logs()
    assert isinstance(server.db, Path)
    assert stored(server.db, [i["id"] for i in body["experiment_items"]]) == 500
    assert "Traceback" not in server.logs()


def test_sigterm_under_load_keeps_every_acknowledged_write(tmp_path: Path) -> None:
    db = tmp_path / "items.db"
    acknowledged: list[str] = []
    lock = threading.Lock()
    enough = threading.Event()
    target = scaled(40, 400)

    def write(url: str, seed: int) -> None:
        rng = random.Random(seed)
        with httpx.Client(base_url=url, timeout=30) as client:
            while True:
                items = [item() for _ in range(rng.randint(1, 50))]
                try:
                    response = client.post(ITEMS, json=batch(*items))
                except httpx.TransportError:
                    return
                if response.status_code != 204:
                    return  # refused while stopping: not acknowledged, nothing to keep
                with lock:
                    acknowledged.extend(i["id"] for i in items)
                    if len(acknowledged) >= target:
                        enough.set()

    with Server(db, "--workers", "2", "--no-access-log") as server:
        threads = [threading.Thread(target=write, args=(server.url, n)) for n in range(8)]
        for thread in threads:
            thread.start()
        assert enough.wait(timeout=60)
        code = server.terminate()
        for thread in threads:
            thread.join(timeout=60)

    assert code in (0, -signal.SIGTERM)
    assert integrity_check(db) == "ok"
    assert stored(db, acknowledged) == len(acknowledged)


def test_a_database_file_overwritten_with_garbage_is_reported_unhealthy(tmp_path: Path) -> None:
    db = tmp_path / "items.db"
    with Server(db, "--no-access-log") as server:
        for _ in range(3):
            httpx.post(f"{server.url}{ITEMS}", json=batch(*[item() for _ in range(100)]))
        for path in (db, db.with_name(db.name + "-wal")):
            with path.open("r+b") as file:  # in place: the server's open files see it
                file.write(os.urandom(path.stat().st_size))
        answers = [httpx.get(f"{server.url}/is-alive/ping") for _ in range(UNHEALTHY_PINGS)]
        alive = httpx.get(f"{server.url}/is-alive/ver")

    assert {a.status_code for a in answers} == {500}
    assert {a.json()["healthy"] for a in answers} == {False}
    assert answers[0].json()["message"].startswith("Database cannot be read: ")
    assert alive.status_code == 200  # the process stays up to say so


@pytest.mark.anyio
async def test_closed_connections_are_reported_unhealthy(tmp_path: Path) -> None:
    database = await Database.open(tmp_path / "items.db")
    app = create_app(
        Settings(db=tmp_path / "items.db", access_log=False), store=SqliteStore(database)
    )
    transport = httpx.ASGITransport(app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        healthy = await client.get("/is-alive/ping")
        await database.close()
        unhealthy = await client.get("/is-alive/ping")

    assert (healthy.status_code, healthy.json()["healthy"]) == (200, True)
    assert (unhealthy.status_code, unhealthy.json()["healthy"]) == (500, False)
