"""Push: a workspace's datasets with their items, experiments and experiment items, or one
experiment's, copied to another server that speaks this API (another experiment-items, or an
Opik deployment), as the Opik SDK would send them."""

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
from app.dataset_payloads import DatasetItemWrite, DatasetWrite
from app.lines import DatasetItemLine, DatasetLine, ExperimentLine, NamedLine
from app.payloads import ExperimentWrite, encoder
from app.progress import Progress
from app.sqlite import checkpoint
from app.sqlite.checkpoint import Checkpoint
from app.store import Snapshot, snapshot

DATASETS_PATH = "/v1/private/datasets"
DATASET_ITEMS_PATH = "/v1/private/datasets/items"
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
# The same for a dataset: POST /v1/private/datasets, its project by name.
DATASET_FIELDS = tuple(f for f in DatasetWrite.__struct_fields__ if f != "project_id")
# What PUT /v1/private/datasets/items takes of an item; its dataset goes by name beside it.
DATASET_ITEM_FIELDS = DatasetItemWrite.__struct_fields__


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
    items, the same of datasets and their items, and the requests that took."""

    experiments: int = 0
    existing: int = 0
    items: int = 0
    datasets: int = 0
    existing_datasets: int = 0
    dataset_items: int = 0
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
    """Sends what the target has not received as it is now: every dataset first, then their
    items, every experiment, then the experiment items, ITEMS_PER_REQUEST a request, each
    acknowledged request recorded in the checkpoint."""
    started, pushed = time.monotonic(), Pushed()
    with (
        snapshot(database, workspace, experiment) as snap,
        checkpoint.opened(checkpoint_path, target.fed_from(workspace)) as done,
    ):
        datasets = _push_datasets(snap, target, done, pushed)
        _push_dataset_items(snap, target, done, pushed, datasets)
        _push_experiments(snap, target, done, pushed)
        _push_items(snap, target, done, pushed, progress)
    progress.done()
    pushed.seconds = time.monotonic() - started
    return pushed


def _push_datasets(
    snap: Snapshot, target: Target, done: Checkpoint, pushed: Pushed
) -> dict[str, str]:
    """Each dataset, by one POST /v1/private/datasets (409, there already, is fine); the name
    of each dataset by its id, which its items are sent with: the target may hold a dataset of
    that name under another id."""
    projects = {
        p.id: p.name for page in snap.pages("project") for p in page if isinstance(p, NamedLine)
    }
    names: dict[str, str] = {}
    for page in snap.pages("dataset"):
        datasets = [d for d in page if isinstance(d, DatasetLine)]
        names.update((d.id, d.name) for d in datasets)
        bodies = {_key(d.id): _dataset_body(d, projects) for d in datasets}
        for key, body_digest in done.unsent(bodies).items():
            status = _post(target, DATASETS_PATH, bodies[key], pushed, accepted=(201, 409))
            pushed.datasets += status == 201
            pushed.existing_datasets += status == 409
            done.record({key: body_digest})
    return names


def _dataset_body(dataset: DatasetLine, projects: dict[str, str]) -> bytes:
    fields = {name: getattr(dataset, name) for name in DATASET_FIELDS if name != "project_name"}
    if isinstance(dataset.project_id, str) and dataset.project_id in projects:
        fields["project_name"] = projects[dataset.project_id]
    return encoder.encode({name: value for name, value in fields.items() if value is not UNSET})


def _push_dataset_items(
    snap: Snapshot, target: Target, done: Checkpoint, pushed: Pushed, datasets: dict[str, str]
) -> None:
    """The items of each dataset, up to ITEMS_PER_REQUEST a PUT /v1/private/datasets/items,
    their dataset by name. Items whose dataset was deleted (they outlive it) stay here."""
    waiting: dict[str, dict[bytes, tuple[bytes, bytes]]] = {}  # by dataset name
    for page in snap.pages("dataset_item"):
        items = [i for i in page if isinstance(i, DatasetItemLine) and i.dataset_id in datasets]
        bodies = {_key(i.id): _dataset_item_body(i) for i in items}
        dataset_of = {_key(i.id): datasets[i.dataset_id] for i in items}
        # The dataset's name is in what the checkpoint holds: an item moved is sent again.
        sent_as = {key: dataset_of[key].encode() + b"\0" + body for key, body in bodies.items()}
        for key, body_digest in done.unsent(sent_as).items():
            name = dataset_of[key]
            group = waiting.setdefault(name, {})
            group[key] = (bodies[key], body_digest)
            if len(group) == ITEMS_PER_REQUEST:
                _send_dataset_items(target, done, pushed, name, waiting.pop(name))
    for name, group in waiting.items():
        _send_dataset_items(target, done, pushed, name, group)


def _dataset_item_body(item: DatasetItemLine) -> bytes:
    fields = {name: getattr(item, name) for name in DATASET_ITEM_FIELDS}
    return encoder.encode({name: value for name, value in fields.items() if value is not UNSET})


def _send_dataset_items(
    target: Target,
    done: Checkpoint,
    pushed: Pushed,
    dataset_name: str,
    waiting: dict[bytes, tuple[bytes, bytes]],
) -> None:
    head = b'{"dataset_name":' + encoder.encode(dataset_name) + b',"items":['
    body = head + b",".join(b for b, _ in waiting.values()) + b"]}"
    _post(target, DATASET_ITEMS_PATH, body, pushed, accepted=(200, 204), method="PUT")
    done.record({key: body_digest for key, (_, body_digest) in waiting.items()})
    pushed.dataset_items += len(waiting)


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


def _post(
    target: Target,
    path: str,
    body: bytes,
    pushed: Pushed,
    accepted: Collection[int],
    method: str = "POST",
) -> int:
    url = target.url + path
    status, answer = _send(_request(target, url, body, method))
    pushed.requests += 1
    if status not in accepted:
        raise PushError(f"{method} {url} answered {status}: {_message(answer)}")
    return status


def _request(target: Target, url: str, body: bytes, method: str) -> urllib.request.Request:
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
    return urllib.request.Request(url, data=body, headers=headers, method=method)


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
