"""What makes the peers' answers the service's answers: the query and the timestamp rule.

Deliberately not imported from app/: a peer shares the service's contract, not its code.
"""

import time

DB_ENV = "BENCH_DB"
DEFAULT_WORKSPACE = "default"

# The item's project is its own, else its trace's; its trace decides the visibility.
GET_ITEM = """
SELECT i.experiment_id, i.dataset_item_id, i.trace_id, i.id,
       coalesce(i.project_id, t.project_id),
       i.created_at, i.last_updated_at, i.created_by, i.last_updated_by, t.hidden
FROM experiment_items AS i
LEFT JOIN traces AS t ON t.id = i.trace_id AND t.workspace = i.workspace
WHERE i.id = ? AND i.workspace = ?
"""

BAD_ID_MESSAGE = "HTTP 404 Not Found"


def not_found_message(item_id: str) -> str:
    return f"Not found experiment item with id '{item_id}'"


def format_instant(ns: int) -> str:
    """ISO-8601 in UTC with 0, 3, 6 or 9 fraction digits (Java's ISO_INSTANT), as the
    contract asks: datetime's own formatting always writes 6."""
    seconds, fraction = divmod(ns, 1_000_000_000)
    base = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds))
    if fraction == 0:
        return base + "Z"
    if fraction % 1_000_000 == 0:
        return f"{base}.{fraction // 1_000_000:03d}Z"
    if fraction % 1_000 == 0:
        return f"{base}.{fraction // 1_000:06d}Z"
    return f"{base}.{fraction:09d}Z"
