"""Push: a workspace's datasets with their items, experiments, traces, spans, feedback scores
and experiment items, or one experiment's, copied to another server that speaks this API
(another experiment-items, or an Opik deployment), through the routes the Opik SDK uses."""

import hashlib
import time
import urllib.parse
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from msgspec import UNSET

from app import config, ids
from app.dataset_payloads import DatasetItemWrite, DatasetWrite
from app.lines import (
    DatasetItemLine,
    DatasetLine,
    ExperimentLine,
    Kind,
    NamedLine,
    ScoreLine,
    SpanLine,
    SpanScoreLine,
    TraceLine,
)
from app.payloads import ExperimentWrite, encoder
from app.progress import Progress
from app.push_http import PushError, Target, send
from app.sqlite import checkpoint
from app.sqlite.checkpoint import Checkpoint
from app.store import Snapshot, snapshot
from app.trace_payloads import ScoreItem, SpanCreate, TraceCreate

__all__ = ["PushError", "Pushed", "Target", "default_checkpoint", "push"]

DATASETS_PATH = "/v1/private/datasets"
DATASET_ITEMS_PATH = "/v1/private/datasets/items"
EXPERIMENTS_PATH = "/v1/private/experiments"
ITEMS_PATH = "/v1/private/experiments/items"
TRACES_PATH = "/v1/private/traces/batch"
SPANS_PATH = "/v1/private/spans/batch"
TRACE_SCORES_PATH = "/v1/private/traces/feedback-scores"
SPAN_SCORES_PATH = "/v1/private/spans/feedback-scores"
ITEMS_PER_REQUEST = 1000  # the most each batch route takes
# A request's body is cut before this many bytes: trace, span and dataset-item batches may be
# 64 MiB inflated (the experiment-items route's 4 MiB holds 1000 items many times over).
BYTES_PER_REQUEST = 16 * 1024 * 1024
# What POST /v1/private/experiments takes of an experiment, but its project's id: the
# target's projects have ids of their own, and `project_name` finds or makes one there.
EXPERIMENT_FIELDS = tuple(f for f in ExperimentWrite.__struct_fields__ if f != "project_id")
# The same for a dataset: POST /v1/private/datasets, its project by name.
DATASET_FIELDS = tuple(f for f in DatasetWrite.__struct_fields__ if f != "project_id")
# What PUT /v1/private/datasets/items takes of an item; its dataset goes by name beside it.
DATASET_ITEM_FIELDS = DatasetItemWrite.__struct_fields__
# What the batch routes take of a trace or span that the file keeps; `last_updated_at` goes
# too, so that the target keeps the newer of its copy and this one. Projects go by name.
TRACE_FIELDS = tuple(f for f in TraceCreate.__struct_fields__ if f in TraceLine.__struct_fields__)
SPAN_FIELDS = tuple(f for f in SpanCreate.__struct_fields__ if f in SpanLine.__struct_fields__)
# The author too: the target keeps one score per (record, name, author), as this one does.
SCORE_FIELDS = ("name", "value", "source", "category_name", "reason", "author")
assert set(SCORE_FIELDS) <= set(ScoreItem.__struct_fields__)


@dataclass
class Pushed:
    """What a push sent: experiments created, experiments the target had already (409),
    items, the same of datasets and their items, traces, spans, their scores, and the
    requests that took."""

    experiments: int = 0
    existing: int = 0
    items: int = 0
    datasets: int = 0
    existing_datasets: int = 0
    dataset_items: int = 0
    traces: int = 0
    spans: int = 0
    trace_scores: int = 0
    span_scores: int = 0
    requests: int = 0
    seconds: float = 0.0


def default_checkpoint(database: Path | str, target: Target, workspace: str) -> Path:
    """Beside the database, one file per target and source workspace; for a PostgreSQL
    database, in the current folder, named after the database, one per database too."""
    if isinstance(database, Path):
        tag = hashlib.sha256(target.fed_from(workspace).encode()).hexdigest()[:12]
        return database.with_name(f"{database.name}.push-{tag}")
    shown = config.shown_location(database)
    tag = hashlib.sha256(f"{shown} to {target.fed_from(workspace)}".encode()).hexdigest()[:12]
    name = urllib.parse.urlsplit(database).path.strip("/") or "postgresql"
    return Path(f"{name}.push-{tag}")


def push(
    database: Path | str,
    workspace: str,
    experiment: bytes | None,
    target: Target,
    checkpoint_path: Path,
    progress: Progress,
) -> Pushed:
    """Sends what the target has not received as it is now, in dependency order: datasets,
    their items, experiments, traces, spans, their scores, then the experiment items (which
    take their trace's project on the target), each acknowledged request recorded in the
    checkpoint."""
    started, pushed = time.monotonic(), Pushed()
    with (
        snapshot(database, workspace, experiment) as snap,
        checkpoint.opened(checkpoint_path, target.fed_from(workspace)) as done,
    ):
        projects = {
            p.id: p.name for page in snap.pages("project") for p in page if isinstance(p, NamedLine)
        }
        datasets = _push_datasets(snap, target, done, pushed, projects)
        _push_dataset_items(snap, target, done, pushed, datasets)
        _push_experiments(snap, target, done, pushed)
        _push_traces(
            snap, _Batches(target, done, pushed, TRACES_PATH, "traces"), progress, projects
        )
        _push_spans(snap, _Batches(target, done, pushed, SPANS_PATH, "spans"), progress, projects)
        scores = _Batches(target, done, pushed, TRACE_SCORES_PATH, "trace_scores", "PUT")
        _push_scores(snap, "feedback_score", scores, progress)
        scores = _Batches(target, done, pushed, SPAN_SCORES_PATH, "span_scores", "PUT")
        _push_scores(snap, "span_feedback_score", scores, progress)
        _push_items(snap, _Batches(target, done, pushed, ITEMS_PATH, "items"), progress)
    progress.done()
    pushed.seconds = time.monotonic() - started
    return pushed


class _Batches:
    """Bodies on their way to one batch route, sent ITEMS_PER_REQUEST (or BYTES_PER_REQUEST)
    a request; what each acknowledged request carried is recorded in the checkpoint and
    counted in `pushed`'s field `counted`."""

    def __init__(
        self,
        target: Target,
        done: Checkpoint,
        pushed: Pushed,
        path: str,
        counted: str,
        method: str = "POST",
        head: bytes | None = None,
    ) -> None:
        self.target, self.done, self.pushed = target, done, pushed
        self.path, self.counted, self.method = path, counted, method
        self.head = head if head is not None else b'{"' + path_key(path) + b'":['
        self.waiting: dict[bytes, tuple[bytes, bytes]] = {}  # id: (body, digest)
        self.bytes = 0

    def add_unsent(
        self, bodies: dict[bytes, bytes], sent_as: dict[bytes, bytes] | None = None
    ) -> None:
        """Queues those of `bodies` (by checkpoint key) that the target has not received as
        they are now (`sent_as`, when the checkpoint should tell more than the body)."""
        for key, body_digest in self.done.unsent(sent_as or bodies).items():
            body = bodies[key]
            if self.waiting and self.bytes + len(body) > BYTES_PER_REQUEST:
                self.flush()
            self.waiting[key] = (body, body_digest)
            self.bytes += len(body) + 1
            if len(self.waiting) == ITEMS_PER_REQUEST:
                self.flush()

    def flush(self) -> None:
        if not self.waiting:
            return
        body = self.head + b",".join(b for b, _ in self.waiting.values()) + b"]}"
        _post(self.target, self.path, body, self.pushed, (200, 204), self.method)
        self.done.record({key: body_digest for key, (_, body_digest) in self.waiting.items()})
        setattr(self.pushed, self.counted, getattr(self.pushed, self.counted) + len(self.waiting))
        self.waiting.clear()
        self.bytes = 0


def path_key(path: str) -> bytes:
    """The key of a batch route's list: `traces` for /traces/batch, `scores` for scores."""
    if path.endswith("/feedback-scores"):
        return b"scores"
    if path == ITEMS_PATH:
        return b"experiment_items"
    return path.removesuffix("/batch").rsplit("/", 1)[1].encode()


def _push_datasets(
    snap: Snapshot, target: Target, done: Checkpoint, pushed: Pushed, projects: dict[str, str]
) -> dict[str, str]:
    """Each dataset, by one POST /v1/private/datasets (409, there already, is fine); the name
    of each dataset by its id, which its items are sent with: the target may hold a dataset of
    that name under another id."""
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
    return _encoded(fields)


def _push_dataset_items(
    snap: Snapshot, target: Target, done: Checkpoint, pushed: Pushed, datasets: dict[str, str]
) -> None:
    """The items of each dataset, up to ITEMS_PER_REQUEST a PUT /v1/private/datasets/items,
    their dataset by name. Items whose dataset was deleted (they outlive it) stay here."""
    waiting: dict[str, _Batches] = {}  # by dataset name
    for page in snap.pages("dataset_item"):
        items = [i for i in page if isinstance(i, DatasetItemLine) and i.dataset_id in datasets]
        for item in items:
            name = datasets[item.dataset_id]
            if name not in waiting:
                head = b'{"dataset_name":' + encoder.encode(name) + b',"items":['
                batches = _Batches(
                    target, done, pushed, DATASET_ITEMS_PATH, "dataset_items", "PUT", head
                )
                waiting[name] = batches
            key, body = _key(item.id), _dataset_item_body(item)
            # The dataset's name is in what the checkpoint holds: an item moved is sent again.
            waiting[name].add_unsent({key: body}, {key: name.encode() + b"\0" + body})
    for batches in waiting.values():
        batches.flush()


def _dataset_item_body(item: DatasetItemLine) -> bytes:
    return _encoded({name: getattr(item, name) for name in DATASET_ITEM_FIELDS})


def _push_experiments(snap: Snapshot, target: Target, done: Checkpoint, pushed: Pushed) -> None:
    for page in snap.pages("experiment"):
        experiments = [e for e in page if isinstance(e, ExperimentLine)]
        bodies = {_key(e.id): _experiment_body(e) for e in experiments}
        for key, body_digest in done.unsent(bodies).items():
            status = _post(target, EXPERIMENTS_PATH, bodies[key], pushed, accepted=(201, 409))
            pushed.experiments += status == 201
            pushed.existing += status == 409  # made by an earlier push, or by someone else
            done.record({key: body_digest})


def _experiment_body(experiment: ExperimentLine) -> bytes:
    return _encoded({name: getattr(experiment, name) for name in EXPERIMENT_FIELDS})


def _push_traces(
    snap: Snapshot, batches: _Batches, progress: Progress, projects: dict[str, str]
) -> None:
    """Each trace as POST /v1/private/traces/batch takes it, its project by name."""
    for page in _shown(snap, "trace", batches, progress):
        traces = [t for t in page if isinstance(t, TraceLine)]
        batches.add_unsent({_key(t.id): _traced_body(t, TRACE_FIELDS, projects) for t in traces})
    batches.flush()


def _push_spans(
    snap: Snapshot, batches: _Batches, progress: Progress, projects: dict[str, str]
) -> None:
    """Each span as POST /v1/private/spans/batch takes it, its project by name."""
    for page in _shown(snap, "span", batches, progress):
        spans = [s for s in page if isinstance(s, SpanLine)]
        batches.add_unsent({_key(s.id): _traced_body(s, SPAN_FIELDS, projects) for s in spans})
    batches.flush()


def _traced_body(
    record: TraceLine | SpanLine, names: tuple[str, ...], projects: dict[str, str]
) -> bytes:
    fields = {name: getattr(record, name) for name in names}
    if record.project_id in projects:
        fields["project_name"] = projects[record.project_id]
    return _encoded(fields)


def _push_scores(snap: Snapshot, kind: Kind, batches: _Batches, progress: Progress) -> None:
    """Each feedback score of a trace (or of a span) as PUT .../feedback-scores takes it, by
    the id of what it scores; in the checkpoint under a key of that id and the score's name,
    its identity (a second score of one name and author replaces the first)."""
    for page in _shown(snap, kind, batches, progress):
        bodies = {}
        for score in page:
            assert isinstance(score, ScoreLine | SpanScoreLine)
            scored = score.trace_id if isinstance(score, ScoreLine) else score.span_id
            fields = {"id": scored, **{name: getattr(score, name) for name in SCORE_FIELDS}}
            author = "" if score.author is UNSET else score.author
            identity = b"\0".join(
                (kind.encode(), _key(scored), score.name.encode(), author.encode())
            )
            bodies[checkpoint.digest(identity)] = _encoded(fields)
        batches.add_unsent(bodies)
    batches.flush()


def _push_items(snap: Snapshot, batches: _Batches, progress: Progress) -> None:
    total, seen = snap.count("experiment_item"), 0
    for page in snap.items_to_push():
        batches.add_unsent({_key(item.id): encoder.encode(item) for item in page})
        seen += len(page)
        progress.show(f"items: {seen:,} of {total:,} read, {batches.pushed.items:,} sent")
    batches.flush()


def _shown(
    snap: Snapshot, kind: Kind, batches: _Batches, progress: Progress
) -> Iterator[list[Any]]:
    """The pages of one kind, with a progress line as each is read."""
    total, seen = snap.count(kind), 0
    noun = kind.replace("_", " ") + "s"
    for page in snap.pages(kind):
        yield page
        seen += len(page)
        sent = getattr(batches.pushed, batches.counted)
        progress.show(f"{noun}: {seen:,} of {total:,} read, {sent:,} sent")


def _key(text: str | None) -> bytes:
    key = ids.parse(text or "")
    assert key is not None, text  # the database holds UUIDs only
    return key


def _encoded(fields: dict[str, object]) -> bytes:
    return encoder.encode({name: value for name, value in fields.items() if value is not UNSET})


def _post(
    target: Target,
    path: str,
    body: bytes,
    pushed: Pushed,
    accepted: Iterable[int],
    method: str = "POST",
) -> int:
    status = send(target, path, body, frozenset(accepted), method)
    pushed.requests += 1
    return status
