"""What `serve` prints on start: where it listens and stores, its capacity, the web UI, what
the demo did, and a first request to paste."""

import json
from pathlib import Path

from app import __version__, config, demo, ids

ITEMS_PATH = "/api/v1/private/experiments/items"


# What --demo-if-new did, in the banner: how to start empty, or why nothing was loaded.
NEW_DEMO = (
    "loaded into this new database; to start empty instead, remove it and run "
    "`make run DEMO=0` (or `experiment-items serve`)"
)
OLD_DATABASE = "not loaded: the database existed (`experiment-items demo` adds it anyway)"


def banner(
    settings: config.Settings,
    loaded: demo.Loaded | None,
    open_files: int | None,
    cap: int | None,
    note: str | None = None,
) -> str:
    """What `serve` prints on start: where it listens and stores, how many connections it
    takes, the web UI, and a first request."""
    base = local_url(settings)
    auth = "" if settings.api_keys is None else " -H 'Authorization: <your key>'"
    lines = [
        f"experiment-items {__version__}",
        f"  database   {_location(settings.db)}",
        f"  listening  {base}/  (Opik SDK: OPIK_URL_OVERRIDE={base}/api/)",
    ]
    if settings.host in ("0.0.0.0", "", "::"):
        # A wildcard address is not one to call, but the operator asked for it: say so.
        lines.insert(2, f"  bound to   {settings.host}:{settings.port}, every address of this host")
    if cap is not None:
        lines.append(
            f"  capacity   {cap:,} connections per worker, then 503 (open files limit "
            f"{open_files:,})"
        )
    lines.append(f"  web UI     {base}/")
    if loaded is not None:
        lines.append(f"  demo       {loaded.items} items in workspace {loaded.workspace}")
    if note is not None:
        lines.append(f"  demo note  {note}")
    if loaded is not None:
        item_id = ids.to_str(loaded.first_item)
    else:
        item_id = ids.to_str(ids.uuid7())
        lines.append(f"  write one  {curl_write(base, item_id)}{auth}")
    lines.append(f"  read it    curl {base}{ITEMS_PATH}/{item_id}{auth}")
    return "\n".join(lines)


def _location(db: Path | str) -> str:
    return str(db.resolve()) if isinstance(db, Path) else config.shown_location(db)


def local_url(settings: config.Settings) -> str:
    """The address a client on this machine uses: a wildcard address is not one to call."""
    host = {"0.0.0.0": "127.0.0.1", "": "127.0.0.1", "::": "::1"}.get(settings.host, settings.host)
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{settings.port}"


def curl_write(base: str, item_id: str) -> str:
    item = {
        "id": item_id,
        "experiment_id": ids.to_str(ids.uuid7()),
        "dataset_item_id": ids.to_str(ids.uuid7()),
        "trace_id": ids.to_str(ids.uuid7()),
        "project_name": "Demo",
    }
    body = json.dumps({"experiment_items": [item]}, separators=(",", ":"))
    return f"curl -i {base}{ITEMS_PATH} -H 'Content-Type: application/json' -d '{body}'"
