"""One write per GET response: the head waits for the body and goes out with it.

In-process against a transport that records each write, then through a real server with
requests pipelined on one connection."""

import asyncio
import socket
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.factories import batch, item
from tests.protocol_harness import RecordingTransport, connect
from tests.running import running_server

ITEMS = "/v1/private/experiments/items"


async def two_part_answer(scope: Any, receive: Any, send: Any) -> None:
    """Head, then a body in two pieces: the body's size comes only from the scope's path."""
    if scope["method"] == "POST":
        while (await receive()).get("more_body"):
            pass
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"[1,", "more_body": True})
    await send({"type": "http.response.body", "body": b"2]"})


async def served(data: bytes) -> RecordingTransport:
    protocol, transport = connect(two_part_answer)
    protocol.data_received(data)
    for _ in range(20):
        await asyncio.sleep(0)
    return transport


@pytest.mark.anyio
async def test_a_get_has_its_head_written_with_the_bodys_first_bytes() -> None:
    transport = await served(b"GET /x HTTP/1.1\r\nHost: t\r\n\r\n")

    first, *rest = transport.writes
    assert first.startswith(b"HTTP/1.1 200 OK\r\n")
    assert first.endswith(b"\r\n\r\n3\r\n[1,\r\n")  # chunked: the head, then the first chunk
    assert rest == [b"2\r\n2]\r\n0\r\n\r\n"]


@pytest.mark.anyio
async def test_a_head_request_gets_its_head_written_alone_when_it_completes() -> None:
    transport = await served(b"HEAD /x HTTP/1.1\r\nHost: t\r\n\r\n")

    assert len(transport.writes) == 1
    assert transport.writes[0].startswith(b"HTTP/1.1 200 OK\r\n")
    assert transport.writes[0].endswith(b"\r\n\r\n")


@pytest.mark.anyio
async def test_pipelined_gets_and_heads_are_answered_whole_and_in_order() -> None:
    request = b"%s /x HTTP/1.1\r\nHost: t\r\n\r\n"
    transport = await served(request % b"HEAD" + request % b"GET" + request % b"HEAD")

    head_only = b"HTTP/1.1 200 OK\r\n\r\n"  # a HEAD's: no body, so no transfer-encoding
    assert transport.writes == [
        head_only,
        b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n3\r\n[1,\r\n",
        b"2\r\n2]\r\n0\r\n\r\n",
        head_only,
    ]
    assert not transport.closed


@pytest.mark.anyio
@pytest.mark.parametrize(
    "request_bytes",
    [
        b"POST /x HTTP/1.1\r\nHost: t\r\nContent-Length: 2\r\n\r\n{}",
        b"GET /x HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\nContent-Length: 0\r\n\r\n",
    ],
)
async def test_requests_with_a_body_keep_their_writes_as_uvicorn_makes_them(
    request_bytes: bytes,
) -> None:
    transport = await served(request_bytes)

    assert transport.writes[0].startswith(b"HTTP/1.1 200 OK\r\n")
    assert transport.writes[0].endswith(b"\r\n\r\n")  # the head alone
    assert transport.writes[1:] == [b"3\r\n[1,\r\n", b"2\r\n2]\r\n0\r\n\r\n"]


class Answers:
    """Answers read off one keep-alive connection, each framed by its Content-Length (none
    after a HEAD's head)."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buffer = b""

    def read(self, heads_only: list[bool]) -> list[tuple[bytes, bytes]]:
        answers = []
        for head_only in heads_only:
            while b"\r\n\r\n" not in self.buffer:
                self._receive()
            head, self.buffer = self.buffer.split(b"\r\n\r\n", 1)
            size = 0 if head_only else _content_length(head)
            while len(self.buffer) < size:
                self._receive()
            answers.append((head, self.buffer[:size]))
            self.buffer = self.buffer[size:]
        return answers

    def _receive(self) -> None:
        chunk = self.sock.recv(65536)
        assert chunk, "the server closed the connection"
        self.buffer += chunk


def _content_length(head: bytes) -> int:
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return int(value)
    raise AssertionError(f"no content-length in {head!r}")


def test_a_real_server_answers_pipelined_gets_and_heads_in_order(db_path: Path) -> None:
    stored = item()
    item_path = f"{ITEMS}/{stored['id']}"
    asks = [("GET", item_path), ("HEAD", item_path), ("GET", "/is-alive/ver"),
            ("HEAD", "/is-alive/ver"), ("GET", item_path)]  # fmt: skip
    with running_server(db_path) as url:
        assert httpx.post(url + ITEMS, json=batch(stored)).status_code == 204
        expected = {path: httpx.get(url + path).content for _, path in asks}
        port = int(url.rsplit(":", 1)[1])
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            answers = Answers(sock)
            sock.sendall(b"".join(f"{m} {p} HTTP/1.1\r\nHost: t\r\n\r\n".encode() for m, p in asks))
            got = answers.read([method == "HEAD" for method, _ in asks])
            # The connection is still good for one more, sent on its own.
            sock.sendall(f"GET {item_path} HTTP/1.1\r\nHost: t\r\n\r\n".encode())
            (last,) = answers.read([False])

    for (head, body), (method, path) in zip(got, asks, strict=True):
        assert head.startswith(b"HTTP/1.1 200 OK\r\n")
        assert _content_length(head) == len(expected[path])
        assert body == (b"" if method == "HEAD" else expected[path])
    assert last[1] == expected[item_path]
