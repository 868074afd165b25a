"""Stream throughput: page through one experiment with `POST /items/stream`."""

import json
import time
from dataclasses import dataclass

from bench.servers import request

STREAM_PATH = "/v1/private/experiments/items/stream"
PAGE_ITEMS = 2000  # the contract's largest `limit`


@dataclass(frozen=True)
class StreamRate:
    items: int
    seconds: float
    status: int  # the first non-200 answer, or 200

    @property
    def available(self) -> bool:
        return self.status == 200

    @property
    def items_per_second(self) -> float:
        return self.items / self.seconds if self.seconds else 0.0


def stream_all(
    port: int, experiment_name: str, headers: dict[str, str], budget_seconds: float
) -> StreamRate:
    """Pages of PAGE_ITEMS, newest first, each after the last id of the page before, until
    the experiment is exhausted or the time budget is spent."""
    items = 0
    last_id: str | None = None
    started = time.perf_counter()
    while time.perf_counter() - started < budget_seconds:
        query: dict[str, object] = {"experiment_name": experiment_name, "limit": PAGE_ITEMS}
        if last_id is not None:
            query["last_retrieved_id"] = last_id
        reply = request(
            port,
            STREAM_PATH,
            "POST",
            json.dumps(query).encode(),
            {**headers, "Content-Type": "application/json"},
        )
        if reply.status != 200:
            return StreamRate(items, time.perf_counter() - started, reply.status)
        lines = [line for line in reply.body.split(b"\r\n") if line]
        if not lines:
            break
        items += len(lines)
        last_id = json.loads(lines[-1])["id"]
    return StreamRate(items, time.perf_counter() - started, 200)
