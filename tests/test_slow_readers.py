"""A client that stops reading a large answer, through a real server: once its socket buffers
are full, the server waits `--send-timeout-seconds` for it to take a byte, then aborts its
connection and says so in the log, answering everyone else meanwhile (the probe's D2). On
either engine: what is sent is the server's, whatever its database."""

import socket
import time
from pathlib import Path

import httpx

from app import ids
from tests.conftest import NewDatabase
from tests.running import server_process
from tests.test_stream_memory import fill_experiment

SEND_TIMEOUT_SECONDS = 1.5
ITEMS, CHARS = 12, 1_000_000  # a 12 MB answer: far more than the sockets' buffers hold
STEADY_ITEMS = 6  # 6 MB: read in several times the deadline on a busy machine
ABORTED = "Aborted the connection of"


def _stream_request(port: int) -> socket.socket:
    """A connection with a small receive buffer that asks for the whole experiment."""
    sock = socket.socket()
    # Set before connecting, so the window the server sees is small from the start.
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", port))
    body = b'{"experiment_name":"large","limit":100}'
    sock.sendall(
        b"POST /v1/private/experiments/items/stream HTTP/1.1\r\nHost: t\r\n"
        b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)
    )
    return sock


def _until_closed(sock: socket.socket) -> int:
    """The bytes left to read before the connection ends (closed or reset)."""
    received = 0
    sock.settimeout(10)
    try:
        while chunk := sock.recv(65536):
            received += len(chunk)
    except ConnectionResetError:
        pass
    return received


def test_a_reader_that_stops_reading_is_aborted_after_the_deadline_and_others_are_served(
    server_db: NewDatabase, tmp_path: Path
) -> None:
    db = server_db("slow")
    text = '{"text":"' + "x" * (CHARS - 12) + '"}'
    fill_experiment(db, ((ids.uuid7(), text) for _ in range(ITEMS)))
    log = tmp_path / "slow.log"
    timeout = ("--send-timeout-seconds", str(SEND_TIMEOUT_SECONDS))
    with server_process(db, *timeout, log=log) as (url, _), httpx.Client(base_url=url) as other:
        port = int(url.rsplit(":", 1)[1])
        with _stream_request(port) as sock:
            asked = time.monotonic()
            assert sock.recv(1024).startswith(b"HTTP/1.1 200 OK\r\n")  # a little, no more

            pings = []
            while ABORTED not in log.read_text() and time.monotonic() - asked < 20:
                started = time.monotonic()
                assert other.get("/is-alive/ping").status_code == 200
                pings.append(time.monotonic() - started)
                time.sleep(0.1)
            aborted_after = time.monotonic() - asked
            rest = _until_closed(sock)
        served_after = other.get("/is-alive/ping").status_code

    line = next(line for line in log.read_text().splitlines() if ABORTED in line)
    assert line.endswith(
        f'"POST /v1/private/experiments/items/stream": it took no byte of the answer for '
        f"{SEND_TIMEOUT_SECONDS:g} s"
    )
    assert SEND_TIMEOUT_SECONDS <= aborted_after < SEND_TIMEOUT_SECONDS + 10
    assert len(pings) >= 5
    assert max(pings) < 0.5, pings  # the stalled reader held no one up
    # Aborted, not closed: what the server had buffered for it is dropped, not sent.
    assert rest < ITEMS * CHARS // 2
    assert served_after == 200


def test_a_reader_that_keeps_reading_slowly_gets_the_whole_answer(
    server_db: NewDatabase, tmp_path: Path
) -> None:
    db = server_db("steady")
    text = '{"text":"' + "x" * (CHARS - 12) + '"}'
    fill_experiment(db, ((ids.uuid7(), text) for _ in range(STEADY_ITEMS)))
    log = tmp_path / "steady.log"
    timeout = ("--send-timeout-seconds", str(SEND_TIMEOUT_SECONDS))
    with (
        server_process(db, *timeout, log=log) as (url, _),
        _stream_request(int(url.rsplit(":", 1)[1])) as sock,
    ):
        sock.settimeout(10)
        received = b""
        started = time.monotonic()
        # Slower than the server writes, but never a deadline's worth of silence.
        while not received.endswith(b"0\r\n\r\n"):
            chunk = sock.recv(65536)
            assert chunk, f"closed after {len(received):,} bytes"
            received += chunk
            time.sleep(0.002)
        took = time.monotonic() - started

    assert received.count(b'"experiment_id"') == STEADY_ITEMS
    # Its writes were paused for longer than the deadline: taking some bytes is what counts.
    assert took > SEND_TIMEOUT_SECONDS
    assert ABORTED not in log.read_text()
