"""The deadline protocol's timers: armed only for a request that a read leaves incomplete.

What a slow client sees of them, through a real server, is in test_reliability_limits.py."""

import asyncio
from typing import Any

import pytest
from uvicorn.config import Config
from uvicorn.server import ServerState

from app.config import current
from app.protocol import HttpProtocol
from tests.protocol_harness import RecordingTransport, connect

pytestmark = pytest.mark.anyio

GET = b"GET /is-alive/ping HTTP/1.1\r\nHost: t\r\n\r\n"
POST_HEAD = b"POST /v1/private/experiments/items HTTP/1.1\r\nHost: t\r\nContent-Length: 9\r\n\r\n"


async def answer(scope: Any, receive: Any, send: Any) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"{}"})


@pytest.fixture
async def timers(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The delay of every timer the loop is asked for, in order."""
    loop = asyncio.get_running_loop()
    delays: list[float] = []
    call_later = loop.call_later

    def counted(delay: float, callback: Any, *args: Any) -> asyncio.TimerHandle:
        delays.append(delay)
        return call_later(delay, callback, *args)

    monkeypatch.setattr(loop, "call_later", counted)
    return delays


async def connected() -> tuple[HttpProtocol, RecordingTransport]:
    return connect(answer)


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


async def test_a_request_that_arrives_in_one_read_costs_no_timer(timers: list[float]) -> None:
    protocol, transport = await connected()
    protocol.data_received(GET)
    await settle()
    timers.clear()  # the connection's first deadline, and uvicorn's keep-alive after the answer

    protocol.data_received(GET)

    assert timers == []
    assert protocol.deadline is None
    await settle()
    assert transport.written.count(b"HTTP/1.1 200 OK") == 2
    assert not transport.closed


async def test_a_new_connection_has_its_head_deadline_at_once(timers: list[float]) -> None:
    protocol, _ = await connected()

    assert timers == [current().head_timeout_seconds]
    assert protocol.deadline is not None


async def test_a_partial_head_then_a_partial_body_each_arm_their_own_deadline(
    timers: list[float],
) -> None:
    protocol, _ = await connected()
    protocol.data_received(GET)
    await settle()
    timers.clear()

    protocol.data_received(POST_HEAD[:20])
    protocol.data_received(POST_HEAD[20:])
    protocol.data_received(b'{"ids"')
    protocol.data_received(b":[]}")

    settings = current()
    assert timers == [settings.head_timeout_seconds, settings.body_timeout_seconds]
    assert protocol.deadline is None


async def test_a_head_past_its_deadline_is_408_and_closed() -> None:
    protocol, transport = await connected()
    protocol.data_received(POST_HEAD[:20])

    assert protocol.deadline is not None
    protocol.deadline._run()  # as the loop does at the deadline

    head, body = transport.written.split(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 408 Request Timeout\r\n")
    assert b"\r\nconnection: close" in head
    seconds = f"{current().head_timeout_seconds:g}"
    assert body == b'{"code":408,"message":"Request head did not arrive within %s s"}' % (
        seconds.encode()
    )
    assert transport.closed


async def test_a_silent_connection_past_its_deadline_is_closed_without_an_answer() -> None:
    protocol, transport = await connected()

    assert protocol.deadline is not None
    protocol.deadline._run()

    assert transport.written == b""
    assert transport.closed


class AbortableTransport(RecordingTransport):
    def __init__(self) -> None:
        super().__init__()
        self.aborted = False
        self.buffered = 1 << 20  # bytes the reader has not taken

    def abort(self) -> None:
        self.aborted = self.closed = True

    def get_write_buffer_size(self) -> int:
        return self.buffered


async def stalled_reader() -> tuple[HttpProtocol, AbortableTransport]:
    config = Config(app=answer, http=HttpProtocol, log_level="warning")
    protocol = HttpProtocol(config=config, server_state=ServerState(), app_state={})
    transport = AbortableTransport()
    protocol.connection_made(transport)
    protocol.pause_writing()  # as the transport does when its buffer is full
    return protocol, transport


async def test_a_reader_that_takes_nothing_past_the_send_deadline_is_cut_off(
    timers: list[float],
) -> None:
    protocol, transport = await stalled_reader()

    assert timers[-1] == current().send_timeout_seconds
    assert protocol.send_deadline is not None
    protocol.send_deadline._run()  # as the loop does at the deadline

    assert transport.aborted


async def test_a_reader_that_takes_some_bytes_before_the_deadline_gets_another(
    timers: list[float],
) -> None:
    protocol, transport = await stalled_reader()
    first = protocol.send_deadline
    transport.buffered -= 1  # a byte taken, writing still paused (above the low-water mark)

    assert first is not None
    first._run()

    assert not transport.aborted
    assert protocol.send_deadline is not None
    assert protocol.send_deadline is not first
    assert timers[-2:] == [current().send_timeout_seconds] * 2
    protocol.send_deadline._run()  # nothing taken since: cut off
    assert transport.aborted


async def test_a_reader_that_takes_its_bytes_in_time_keeps_its_connection() -> None:
    protocol, transport = await stalled_reader()
    deadline = protocol.send_deadline

    protocol.resume_writing()

    assert deadline is not None
    assert deadline.cancelled()
    assert protocol.send_deadline is None
    assert not transport.aborted
