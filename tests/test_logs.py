"""The access log and request ids, read from a real server's output (on each engine: the lines
are the server's, whatever its database)."""

import re
import socket
from pathlib import Path

import httpx

from app import ids
from app.logs import RequestIds
from tests.conftest import NewDatabase
from tests.factories import batch, item, new_id
from tests.soak.harness import Server

ITEMS = "/v1/private/experiments/items"
LINE = re.compile(
    r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z 127\.0\.0\.1:\d+ "
    r'"(?P<method>[A-Z]+) (?P<path>(?:[^"\\]|\\.)*)" (?P<status>\d{3}) (?P<ms>\d+\.\d) ms '
    r"request_id=(?P<id>[0-9a-f-]{36}) pid=(?P<pid>\d+)$"
)


def access_lines(log: str) -> list[re.Match[str]]:
    """The access log's lines, but for the health checks that wait for the server."""
    lines = [m for m in map(LINE.match, log.splitlines()) if m]
    return [m for m in lines if m["path"] != "/is-alive/ping"]


def test_each_request_logs_one_line_with_its_request_id(
    server_db: NewDatabase, tmp_path: Path
) -> None:
    body = item()
    with (
        Server(server_db("lines"), log=tmp_path / "server.log") as server,
        httpx.Client(base_url=server.url) as client,
    ):
        answers = [
            client.post(ITEMS, json=batch(body)),
            client.get(f"{ITEMS}/{body['id']}"),
            client.get(f"/api{ITEMS}/{new_id()}"),
            client.post(f"{ITEMS}/delete", json={"ids": []}),
            client.get("/nowhere"),
            client.delete(f"{ITEMS}/{body['id']}"),
        ]
        pid = server.pid
    log = server.logs()
    lines = access_lines(log)

    assert ' HTTP/1.1" ' not in log  # uvicorn's own access line: one line a request, ours
    assert [(m["method"], m["path"], int(m["status"])) for m in lines] == [
        ("POST", ITEMS, 204),
        ("GET", f"{ITEMS}/{body['id']}", 200),
        ("GET", f"/api{ITEMS}/{answers[2].request.url.path.rsplit('/', 1)[1]}", 404),
        ("POST", f"{ITEMS}/delete", 422),
        ("GET", "/nowhere", 404),
        ("DELETE", f"{ITEMS}/{body['id']}", 405),
    ]
    assert [m["id"] for m in lines] == [a.headers["x-request-id"] for a in answers]
    assert len({m["id"] for m in lines}) == len(lines)
    assert {int(m["pid"]) for m in lines} == {pid}  # one worker: the server process itself


def test_no_access_log_turns_the_lines_off_and_keeps_the_request_id(
    server_db: NewDatabase, tmp_path: Path
) -> None:
    with Server(server_db("quiet"), "--no-access-log", log=tmp_path / "server.log") as server:
        response = httpx.get(f"{server.url}{ITEMS}/{new_id()}")

    assert response.status_code == 404
    assert re.fullmatch(r"[0-9a-f-]{36}", response.headers["x-request-id"])
    assert access_lines(server.logs()) == []
    assert response.headers["x-request-id"] not in server.logs()


def test_a_path_cannot_forge_a_log_line(server_db: NewDatabase, tmp_path: Path) -> None:
    forged = '2024-01-01T00:00:00.000Z 127.0.0.1:1 "GET /forged" 200 0.1 ms'
    with (
        Server(server_db("forged"), log=tmp_path / "server.log") as server,
        socket.create_connection(("127.0.0.1", server.port)) as sock,
    ):
        # Percent-encoded CR LF and quotes arrive decoded in the ASGI path.
        path = "/x%0d%0a" + forged.replace(" ", "%20").replace('"', "%22")
        sock.sendall(f"GET {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n".encode())
        assert sock.recv(65536).startswith(b"HTTP/1.1 404 ")
    log = server.logs()

    lines = access_lines(log)
    assert len(lines) == 1
    assert lines[0]["path"].startswith('/x\\r\\n2024-01-01T00:00:00.000Z 127.0.0.1:1 \\"GET')
    assert not any(line.startswith(forged[:30]) for line in log.splitlines())


def test_a_client_gone_before_its_body_arrived_is_logged_499_not_500(
    server_db: NewDatabase, tmp_path: Path
) -> None:
    with Server(server_db("gone"), log=tmp_path / "server.log") as server:
        with socket.create_connection(("127.0.0.1", server.port)) as sock:
            sock.sendall(
                f"POST {ITEMS} HTTP/1.1\r\nHost: t\r\nContent-Length: 100\r\n\r\n{{".encode()
            )
        # The server stops only once the abandoned request has ended, and is logged.
        assert httpx.get(f"{server.url}{ITEMS}/{new_id()}").status_code == 404
    statuses = [(m["method"], m["status"]) for m in access_lines(server.logs())]

    assert ("POST", "499") in statuses
    assert ("POST", "500") not in statuses


def test_request_ids_are_unique_version_7_uuids() -> None:
    make = RequestIds()
    made = [make() for _ in range(20_000)]  # several milliseconds' worth

    assert len(set(made)) == len(made)
    for text in made:
        key = ids.parse(text)
        assert key is not None
        assert ids.is_v7(key)
        assert ids.to_str(key) == text
    assert len({text[:13] for text in made}) > 1  # the time part moved on
