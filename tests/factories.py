"""Request bodies and ids for tests: every id a fresh UUID version 7."""

import hashlib
from typing import Any

from app import ids


def new_id() -> str:
    return ids.to_str(ids.uuid7())


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
