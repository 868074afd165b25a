"""The server's HTTP protocol in-process: connected to a transport that records each write."""

import asyncio
from typing import Any

from uvicorn.config import Config
from uvicorn.server import ServerState

from app.protocol import HttpProtocol


class RecordingTransport(asyncio.Transport):
    """Each write the protocol makes, in order, and whether it closed."""

    def __init__(self) -> None:
        super().__init__()
        self.writes: list[bytes] = []
        self.closed = False

    @property
    def written(self) -> bytes:
        return b"".join(self.writes)

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.writes.append(bytes(data))

    def close(self) -> None:
        self.closed = True

    def is_closing(self) -> bool:
        return self.closed

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"sockname": ("127.0.0.1", 5173), "peername": ("127.0.0.1", 50000)}.get(name)

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass


def connect(app: Any) -> tuple[HttpProtocol, RecordingTransport]:
    """A protocol serving the ASGI `app`, its connection just made."""
    config = Config(app=app, http=HttpProtocol, log_level="warning")
    protocol = HttpProtocol(config=config, server_state=ServerState(), app_state={})
    transport = RecordingTransport()
    protocol.connection_made(transport)
    return protocol, transport
