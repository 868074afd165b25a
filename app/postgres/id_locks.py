"""Transaction locks on trace and span ids: every write that stores a row under such an id (a
create, a PATCH, a score) takes them first, so that two writes of one id, from two workspaces
or two servers, run one after the other and each finds what the other committed, as under
SQLite's one writer.

They are advisory locks (https://www.postgresql.org/docs/15/explicit-locking.html#ADVISORY-
LOCKS), in the two-key form, whose keys never meet the migration lock's one key. Each lock
held takes a slot of PostgreSQL's shared lock table, which holds about
max_locks_per_transaction (64 by default) per connection: a lock per id of a batch of 1,000
would fill it with a few such batches at once, and every transaction would then fail ("out of
shared memory"). So a write of few ids locks each id (in its id's bucket's shared lock),
and a write of more locks the buckets its ids fall in, at most BUCKETS, exclusively:
- two writes of few ids wait for each other only on an id they share;
- a write of many ids waits for any other of its buckets, and two of many ids for each
  other whenever they share a bucket (most often, for big batches: they are serialised).
Every write takes its buckets first, then its ids, each in ascending order: no two wait for
each other in a circle."""

from collections.abc import Iterable
from typing import Any

# The first key of each lock: the kind of id, and the kind of its buckets.
TRACE_IDS, SPAN_IDS = 1, 2
_BUCKETS_OF = {TRACE_IDS: 11, SPAN_IDS: 12}
BUCKETS = 32
EXACT_IDS = 16  # the most ids a write locks one by one: with their buckets, 2 x 16 locks

_LOCK = "SELECT pg_advisory_xact_lock($1, k) FROM unnest($2::int4[]) AS k"
_SHARE = "SELECT pg_advisory_xact_lock_shared($1, k) FROM unnest($2::int4[]) AS k"


async def lock_ids(conn: Any, kind: int, keys: Iterable[bytes]) -> None:
    """Holds the ids `keys` of `kind` until the transaction ends. An id is named by its last
    32 bits: two ids that share them only wait for each other."""
    keys32 = sorted({int.from_bytes(key[-4:], "big", signed=True) for key in keys})
    buckets = sorted({key % BUCKETS for key in keys32})
    if len(keys32) > EXACT_IDS:
        await conn.execute(_LOCK, _BUCKETS_OF[kind], buckets)
        return
    await conn.execute(_SHARE, _BUCKETS_OF[kind], buckets)
    await conn.execute(_LOCK, kind, keys32)
