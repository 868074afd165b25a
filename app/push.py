"""Push: a workspace's experiments and items, or one experiment's, copied to another server
that speaks this API (another experiment-items, or an Opik deployment), as the Opik SDK
would send them."""

import gzip
import hashlib
import http.client
import time
import urllib.error
import urllib.request
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path

import msgspec
from msgspec import UNSET

from app import __version__, ids
from app.lines import ExperimentLine
from app.payloads import ExperimentWrite, encoder
from app.progress import Progress
from app.sqlite import checkpoint
from app.sqlite.checkpoint import Checkpoint
from app.store import Snapshot, snapshot

EXPERIMENTS_PATH = "/v1/private/experiments"
ITEMS_PATH = "/v1/private/experiments/items"
ITEMS_PER_REQUEST = 1000  # the most POST /v1/private/experiments/items takes
GZIP_MIN_BYTES = 256  # the Opik SDK gzips every body from this size on
TIMEOUT_SECONDS = 60
ATTEMPTS = 3  # for the answers a busy or restarting server gives, and for lost connections
RETRY_AFTER_SECONDS = 0.5  # doubled after each attempt
RETRIED_STATUSES = frozenset({429, 502, 503, 504})
MAX_MESSAGE_CHARS = 300
UNNAMED_WORKSPACE = "(unnamed: the key's, or the default)"
# What POST /v1/private/experiments takes of an experiment, but its project's id: the
# target's projects have ids of their own, and `project_name` finds or makes one there.
EXPERIMENT_FIELDS = tuple(f for f in ExperimentWrite.__struct_fields__ if f != "project_id")


class PushError(Exception):
    """The target refused a request, or could not be reached."""


@dataclass(frozen=True, slots=True)
class Target:
    """Where to push: `url` is the base under which /v1/private/... is served, what
    OPIK_URL_OVERRIDE names for the SDK; the workspace goes in Comet-Workspace, the key raw in
    Authorization, as the SDK sends them."""

    url: str
    api_key: str | None = None
    workspace: str | None = None

    def __str__(self) -> str:
        return f"{self.url} workspace {self.workspace or UNNAMED_WORKSPACE}"

    def fed_from(self, source_workspace: str) -> str:
        """What a checkpoint is for: this target, fed from that workspace."""
        return f"{self} from workspace {source_workspace}"


@dataclass
class Pushed:
    """What a push sent: experiments created, experiments the target had already (409),
    items, and the requests that took."""

    experiments: int = 0
    existing: int = 0
    items: int = 0
    requests: int = 0
    seconds: float = 0.0


def default_checkpoint(database: Path, target: Target, workspace: str) -> Path:
    """Beside the database, one file per target and source workspace."""
    tag = hashlib.sha256(target.fed_from(workspace).encode()).hexdigest()[:12]
    return database.with_name(f"{database.name}.push-{tag}")


def push(
    database: Path,
    workspace: str,
    experiment: bytes | None,
    target: Target,
    checkpoint_path: Path,
    progress: Progress,
) -> Pushed:
    """Sends what the target has not received as it is now: every experiment first, then the
    items, ITEMS_PER_REQUEST a request, each acknowledged request recorded in the checkpoint."""
    started, pushed = time.monotonic(), Pushed()
    with (
        snapshot(database, workspace, experiment) as snap,
        checkpoint.opened(checkpoint_path, target.fed_from(workspace)) as done,
    ):
        _push_experiments(snap, target, done, pushed)
        _push_items(snap, target, done, pushed, progress)
    progress.done()
    pushed.seconds = time.monotonic() - started
    return pushed


def _push_experiments(snap: Snapshot, target: Target, done: Checkpoint, pushed: Pushed) -> None:
    for page in snap.pages("experiment"):
        experiments = [e for e in page if isinstance(e, ExperimentLine)]
        bodies = {_key(e.id): _experiment_body(e) for e in experiments}
        for key, body_digest in done.unsent(bodies).items():
            status = _post(target, EXPERIMENTS_PATH, bodies[key], pushed, accepted=(201, 409))
            pushed.experiments += status == 201
            pushed.existing += status == 409  # made by an earlier push, or by someone else
            done.record({key: body_digest})


def _key(text: str | None) -> bytes:
    key = ids.parse(text or "")
    assert key is not None, text  # the database holds UUIDs only
    return key


def _experiment_body(experiment: ExperimentLine) -> bytes:
    fields = {name: getattr(experiment, name) for name in EXPERIMENT_FIELDS}
    return encoder.encode({name: value for name, value in fields.items() if value is not UNSET})


def _push_items(
    snap: Snapshot, target: Target, done: Checkpoint, pushed: Pushed, progress: Progress
) -> None:
    total, seen = snap.count("experiment_item"), 0
    waiting: dict[bytes, tuple[bytes, bytes]] = {}  # id: (body, digest), for the next request
    for page in snap.items_to_push():
        bodies = {_key(item.id): encoder.encode(item) for item in page}
        for key, body_digest in done.unsent(bodies).items():
            waiting[key] = (bodies[key], body_digest)
            if len(waiting) == ITEMS_PER_REQUEST:
                _send_items(target, done, pushed, waiting)
        seen += len(page)
        progress.show(f"items: {seen:,} of {total:,} read, {pushed.items:,} sent")
    if waiting:
        _send_items(target, done, pushed, waiting)


def _send_items(
    target: Target, done: Checkpoint, pushed: Pushed, waiting: dict[bytes, tuple[bytes, bytes]]
) -> None:
    body = b'{"experiment_items":[' + b",".join(b for b, _ in waiting.values()) + b"]}"
    _post(target, ITEMS_PATH, body, pushed, accepted=(200, 204))
    done.record({key: body_digest for key, (_, body_digest) in waiting.items()})
    pushed.items += len(waiting)
    waiting.clear()


def _post(target: Target, path: str, body: bytes, pushed: Pushed, accepted: Collection[int]) -> int:
    url = target.url + path
    status, answer = _send(_request(target, url, body))
    pushed.requests += 1
    if status not in accepted:
        raise PushError(f"POST {url} answered {status}: {_message(answer)}")
    return status


def _request(target: Target, url: str, body: bytes) -> urllib.request.Request:
    headers = {
        "Content-Type": "application/json",
        "Accept": "application/json",
        "User-Agent": f"experiment-items/{__version__}",
    }
    if len(body) >= GZIP_MIN_BYTES:
        body = gzip.compress(body, compresslevel=6)
        headers["Content-Encoding"] = "gzip"
    if target.api_key:
        headers["Authorization"] = target.api_key
    if target.workspace:
        headers["Comet-Workspace"] = target.workspace
    return urllib.request.Request(url, data=body, headers=headers, method="POST")


def _send(request: urllib.request.Request) -> tuple[int, bytes]:
    """The status and body of the answer, after up to ATTEMPTS tries of what may pass."""
    for attempt in range(1, ATTEMPTS + 1):
        try:
            with urllib.request.urlopen(request, timeout=TIMEOUT_SECONDS) as response:
                return int(response.status), bytes(response.read())
        except urllib.error.HTTPError as exc:
            with exc:
                answer = int(exc.code), bytes(exc.read())
            if answer[0] not in RETRIED_STATUSES or attempt == ATTEMPTS:
                return answer
        except (urllib.error.URLError, OSError, http.client.HTTPException) as exc:
            if attempt == ATTEMPTS:
                reason = getattr(exc, "reason", exc)
                raise PushError(f"cannot reach {request.full_url}: {reason}") from None
        time.sleep(RETRY_AFTER_SECONDS * 2 ** (attempt - 1))
    raise AssertionError("unreachable: the last attempt returns or raises")


def _message(answer: bytes) -> str:
    """What the target said, on one line: Opik's `message`, or its 422 `errors`."""
    try:
        body = msgspec.json.decode(answer)
    except msgspec.DecodeError:
        body = None
    if isinstance(body, dict) and isinstance(body.get("message"), str):
        text = body["message"]
    elif isinstance(body, dict) and isinstance(body.get("errors"), list):
        text = "; ".join(map(str, body["errors"]))
    else:
        text = answer.decode(errors="replace") or "(no body)"
    text = " ".join(text.split())
    return text if len(text) <= MAX_MESSAGE_CHARS else text[: MAX_MESSAGE_CHARS - 1] + "…"
