"""Request bodies and ids for tests: every id a fresh UUID version 7."""

import hashlib
import itertools
from collections.abc import Callable
from typing import Any

from app import ids


def new_id() -> str:
    return ids.to_str(ids.uuid7())


def counting_ids() -> Callable[[], bytes]:
    """A stand-in for ids.uuid7 that counts, so that two runs make the same ids."""
    counter = itertools.count(1)
    return lambda: b"\x01\x90" + next(counter).to_bytes(14, "big")


def item(**fields: Any) -> dict[str, Any]:
    """An item to write, with fresh ids for whatever `fields` does not set."""
    body: dict[str, Any] = {
        "id": new_id(),
        "experiment_id": new_id(),
        "dataset_item_id": new_id(),
        "trace_id": new_id(),
    }
    body.update(fields)
    return {key: value for key, value in body.items() if value is not ...}


def batch(*items: dict[str, Any]) -> dict[str, Any]:
    return {"experiment_items": list(items)}


def sha(key: str) -> str:
    """The hex SHA-256 digest of an API key, as the keys file holds it."""
    return hashlib.sha256(key.encode()).hexdigest()
