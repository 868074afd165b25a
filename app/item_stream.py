"""The item stream as every engine answers it: a page of item ids cut into chunks, and each
chunk's rows (an item and what its trace gives, its costs, usage and scores) shaped into the
lines of POST /v1/private/experiments/items/stream."""

import math
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import msgspec
from msgspec import UNSET

from app import clock, ids
from app.experiment_answers import id_or_unset, raw_or_unset
from app.payloads import FeedbackScore, FullItem
from app.records import duration_ms, truncate_images

CHUNK_ITEMS = 100  # items read per statement while streaming, at most
# A chunk also ends once its traces' input and output pass this many characters (bytes for
# ASCII JSON): a chunk is read, encoded and written whole, so 100 traces near the 4 MiB body
# limit would hold ~400 MB several times over (reliability probe D2).
CHUNK_CHARS = 8 * 1024 * 1024


class StreamRow(msgspec.Struct, array_like=True, gc=False):
    """A row of an engine's STREAM_ITEMS, by name: an item and what its trace gives."""

    experiment_id: bytes
    dataset_item_id: bytes
    trace_id: bytes
    id: bytes
    project_id: bytes | None
    known: int  # 1: the trace is stored
    input: str | None
    output: str | None
    start_time: int | None
    end_time: int | None
    created_at: int
    last_updated_at: int
    created_by: str
    last_updated_by: str
    hidden: int | None


def chunks(keys: Sequence[bytes], sizes: dict[bytes, int]) -> Iterator[list[bytes]]:
    """`keys` in order, cut into chunks of at most CHUNK_ITEMS items and, unless one item
    alone is larger, CHUNK_CHARS characters of trace text."""
    chunk: list[bytes] = []
    chars = 0
    for key in keys:
        size = sizes.get(key, 0)
        if chunk and (len(chunk) == CHUNK_ITEMS or chars + size > CHUNK_CHARS):
            yield chunk
            chunk, chars = [], 0
        chunk.append(key)
        chars += size
    if chunk:
        yield chunk


def rows_by_id(found: Sequence[Any]) -> dict[bytes, StreamRow]:
    return {row.id: row for row in msgspec.convert(found, list[StreamRow])}


def usage_of(rows: Iterable[Sequence[Any]]) -> dict[bytes, dict[str, int]]:
    """Each trace's usage from (trace, key, float total) rows, the keys in the rows' order;
    a total that is not finite is left out."""
    usage: dict[bytes, dict[str, int]] = {}
    for trace_id, name, total in rows:
        if math.isfinite(total):
            usage.setdefault(trace_id, {})[name] = int(total)
    return usage


def full_items(
    keys: Sequence[bytes],
    rows: dict[bytes, StreamRow],
    costs: dict[bytes, float],
    usage: dict[bytes, dict[str, int]],
    scores: dict[bytes, list[FeedbackScore]],
    truncate: bool,
) -> list[FullItem]:
    """The lines of `keys` in their order, from what the engine read of them; an item
    deleted since its page was read is left out."""
    items = []
    for key in keys:
        r = rows.get(key)
        if r is None:
            continue
        input_, output = r.input, r.output
        if truncate:
            input_ = input_ and truncate_images(input_)
            output = output and truncate_images(output)
        t = r.trace_id
        items.append(
            FullItem(
                experiment_id=ids.to_str(r.experiment_id),
                dataset_item_id=ids.to_str(r.dataset_item_id),
                trace_id=ids.to_str(t),
                id=ids.to_str(r.id),
                project_id=id_or_unset(r.project_id),
                input=raw_or_unset(input_),
                output=raw_or_unset(output),
                feedback_scores=scores.get(t, UNSET) if r.known else UNSET,
                total_estimated_cost=costs.get(t, UNSET) if r.known else UNSET,
                duration=duration_ms(r.start_time, r.end_time) if r.known else UNSET,
                usage=usage.get(t, UNSET) if r.known else UNSET,
                created_at=clock.format_instant(r.created_at),
                last_updated_at=clock.format_instant(r.last_updated_at),
                created_by=r.created_by,
                last_updated_by=r.last_updated_by,
                trace_visibility_mode="hidden" if r.hidden else "default",
            )
        )
    return items
