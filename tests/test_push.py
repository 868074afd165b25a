"""Push through the command line, to a second real server: everything arrives, nothing is
sent twice, an interrupted push goes on where it stopped, and a refusal is one clear line.

The module runs once per engine (server_db): the source and the target server's database are
both of it. Pushes between the two engines are test_push_from_postgresql_sends_what_push_from_
sqlite_sends's."""

import itertools
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from app import ids
from app import push as push_module
from app.config import shown_location
from app.progress import Progress
from app.push import Target
from tests.command import run
from tests.conftest import NewDatabase
from tests.factories import new_id, sha
from tests.running import running_server
from tests.soak.harness import Location, query

API = "/api/v1/private"
KEY, OTHER_KEY = "key-of-team", "key-of-elsewhere"
EXPERIMENTS = 3
ITEMS = 2500  # three requests of at most 1000
SPANS = 1200  # two requests
AT = "2024-01-15T09:30:00.123456789Z"
# The routes take times to the microsecond (the SDK's), as Python's datetime holds them.
STARTED = "2024-01-15T09:30:00.123456Z"
AUDIT = {"created_at": AT, "last_updated_at": AT, "created_by": "ann", "last_updated_by": "ann"}


@dataclass
class Source:
    """A database with experiments and items, and what they are."""

    db: Location
    folder: Path  # the test's own: the source's import file, its checkpoints, the target
    experiments: list[dict[str, Any]]
    items: list[dict[str, Any]]
    project_of: dict[str, str] = field(default_factory=dict)  # item id: project name
    dataset: dict[str, Any] = field(default_factory=dict)
    dataset_items: list[dict[str, Any]] = field(default_factory=list)
    traces: list[dict[str, Any]] = field(default_factory=list)
    spans: list[dict[str, Any]] = field(default_factory=list)


def _source(folder: Path, db: Location) -> Source:
    """Experiments and items loaded by `import` into `db`: items named by their trace's
    project, and one in ten by a project of its own."""
    demo, other = ({"id": new_id(), "name": name, **AUDIT} for name in ("Demo", "Other"))
    dataset = {
        "id": new_id(), "name": "QA", "project_id": demo["id"], "tags": ["gold"],
        "description": "questions", **AUDIT,
    }  # fmt: skip
    dataset_items = [
        {"id": new_id(), "source": "sdk", "data": {"q": n}, "tags": ["t"], "description": "d",
         "dataset_id": dataset["id"], **AUDIT}
        for n in range(3)
    ]  # fmt: skip
    orphan = {**dataset_items[0], "id": new_id(), "dataset_id": new_id()}  # dataset deleted
    experiments: list[dict[str, Any]] = [
        {
            "id": new_id(), "dataset_name": "QA", "dataset_id": dataset["id"],
            "project_id": demo["id"], "project_name": "Demo", "name": f"run-{n}",
            "metadata": {"n": n, "model": "m"}, "tags": ["nightly"], "type": "regular",
            "evaluation_method": "dataset", **AUDIT, "status": "completed",
            "experiment_scores": [{"name": "f1", "value": 0.5}],
        }
        for n in range(EXPERIMENTS)
    ]  # fmt: skip
    traces: list[dict[str, Any]] = [
        {"id": new_id(), "project_id": demo["id"], "start_time": STARTED, **AUDIT}
    ]
    traces.append(
        {
            "id": new_id(), "project_id": other["id"], "name": "qa", "start_time": STARTED,
            "end_time": "2024-01-15T09:30:02.5Z", "input": {"q": "2+2?"},
            "output": {"a": "4"}, "metadata": {"model": "m"}, "tags": ["x", "y"],
            "error_info": {"exception_type": "E", "traceback": "tb", "message": "m"},
            "thread_id": "t-1",
            "ttft": 12.5, "source": "sdk", "environment": "prod", **AUDIT,
        }
    )  # fmt: skip
    spans = [
        {
            "id": new_id(), "trace_id": traces[n % 2]["id"],
            "project_id": [demo, other][n % 2]["id"], "name": f"s{n}", "type": "llm",
            "start_time": STARTED, "end_time": "2024-01-15T09:30:01Z", "input": {"n": n},
            "model": "gpt", "provider": "openai", "usage": {"prompt_tokens": n},
            "total_estimated_cost": 0.25, "metadata": {"k": [1, 2]}, **AUDIT,
        }
        for n in range(SPANS)
    ]  # fmt: skip
    spans[3]["parent_span_id"] = spans[1]["id"]
    score = {"value": 0.75, "source": "sdk", "reason": "close", **AUDIT}
    scores = [{"trace_id": t["id"], "name": "f1", **score} for t in traces]
    scores.append({"trace_id": traces[1]["id"], "name": "grade", "category_name": "A", **score})
    # A second author's score of one name: both must arrive, each under its author.
    scores.append(
        {"trace_id": traces[0]["id"], "name": "f1", **score, "value": 0.25, "author": "ben"}
    )
    span_scores = [{"span_id": s["id"], "name": "ok", **score} for s in spans[:3]]
    items: list[dict[str, Any]] = []
    project_of: dict[str, str] = {}
    for n in range(ITEMS):
        own = n % 10 == 0
        items.append(
            {
                "experiment_id": experiments[n % EXPERIMENTS]["id"],
                "dataset_item_id": new_id(),
                "trace_id": traces[0]["id"],
                "id": new_id(),
                **({"project_id": other["id"]} if own else {}),
                **AUDIT,
            }
        )
        project_of[items[-1]["id"]] = "Other" if own else "Demo"
    lines: list[dict[str, Any]] = [{"project": demo}, {"project": other}, {"dataset": dataset}]
    lines += [{"experiment": e} for e in experiments] + [{"trace": t} for t in traces]
    lines += [{"span": sp} for sp in spans] + [{"feedback_score": sc} for sc in scores]
    lines += [{"span_feedback_score": sc} for sc in span_scores]
    lines += [{"dataset_item": i} for i in [*dataset_items, orphan]]
    lines += [{"experiment_item": i} for i in items]
    file = folder / "source.jsonl"
    file.write_text("".join(json.dumps(line) + "\n" for line in lines))
    assert run("import", "--db", str(db), str(file)).returncode == 0
    return Source(db, folder, experiments, items, project_of, dataset, dataset_items, traces,
                  spans)  # fmt: skip


# Each test's databases have names of their own: server_db's files share the module's folder.
_MADE = itertools.count(1)


@pytest.fixture
def source(server_db: NewDatabase, tmp_path: Path) -> Source:
    return _source(tmp_path, server_db(f"source{next(_MADE)}"))


@contextmanager
def target(folder: Path, db: Location) -> Iterator[tuple[str, Path]]:
    """A second server on `db` with API keys: KEY for workspace `team`, OTHER_KEY for
    `elsewhere`."""
    keys = folder / "keys.toml"
    keys.write_text(
        f'[[keys]]\nworkspace = "team"\nuser = "pusher"\nsha256 = "{sha(KEY)}"\n'
        f'[[keys]]\nworkspace = "elsewhere"\nuser = "eve"\nsha256 = "{sha(OTHER_KEY)}"\n'
    )
    log = folder / "target.log"
    with running_server(db, "--api-keys", str(keys), log=log) as url:
        yield url, log


@pytest.fixture
def target_db(server_db: NewDatabase) -> Location:
    return server_db(f"target{next(_MADE)}")


def push(source: Source, url: str, *args: str) -> Any:
    # In the test's folder: a PostgreSQL source's checkpoints are made in the current one.
    return run("push", "--db", str(source.db), f"{url}/api", *args, cwd=source.folder)


def posts(log: Path) -> int:
    return log.read_text().count(f'"POST {API}/experiments')


def project_names(db: Location, workspace: str) -> dict[str, str]:
    """Each item's project name in a database of either engine, by item id."""
    found = query(
        db,
        "SELECT i.id, p.name FROM experiment_items AS i JOIN projects AS p "
        f"ON p.id = i.project_id WHERE i.workspace = '{workspace}'",  # the tests' own names
    )
    return {ids.to_str(key): name for key, name in found}


def test_push_copies_every_experiment_and_item_once(
    source: Source, target_db: Location, tmp_path: Path
) -> None:
    with target(tmp_path, target_db) as (url, log):
        first = push(source, url, "--api-key", KEY, "--target-workspace", "team")
        requests_after_first = posts(log)
        second = push(source, url, "--api-key", KEY, "--target-workspace", "team")
        requests_after_second = posts(log)
        with httpx.Client(base_url=f"{url}{API}", headers={"Authorization": KEY}) as client:
            experiments = [client.get(f"/experiments/{e['id']}") for e in source.experiments]
            items = [client.get(f"/experiments/items/{i['id']}") for i in source.items]
            dataset = client.get(f"/datasets/{source.dataset['id']}").json()
            dataset_items = client.get(f"/datasets/{source.dataset['id']}/items").json()

    assert first.returncode == 0, first.stderr
    assert first.stdout.startswith(
        f"pushed workspace default of {shown_location(source.db)} to {url}/api workspace team: "
        "3 experiments "
        "created and 0 there already, 2,500 items, 1 dataset created and 0 there already, "
        "3 dataset items, 2 traces, 1,200 spans, 4 trace feedback scores, 3 span feedback "
        "scores, 13 requests, in "
    )  # the dataset, its items in one, 3 experiments, traces, spans in 2, scores, items in 3
    assert requests_after_first == 6  # 3 experiments, then items in 3 requests
    assert second.returncode == 0, second.stderr
    assert (
        ": 0 experiments created and 0 there already, 0 items, 0 datasets created and 0 there "
        "already, 0 dataset items, 0 traces, 0 spans, 0 trace feedback scores, 0 span feedback "
        "scores, 0 requests, in"
    ) in second.stdout
    assert requests_after_second == requests_after_first
    for sent, answer in zip(source.experiments, experiments, strict=True):
        assert answer.status_code == 200
        got = answer.json()
        for name in ("id", "name", "dataset_name", "project_name", "metadata", "tags", "type"):
            assert got[name] == sent[name], name
        assert got["status"] == "completed"
        assert got["experiment_scores"] == [{"name": "f1", "value": 0.5}]
        assert got["created_by"] == "pusher"
    for sent, answer in zip(source.items, items, strict=True):
        assert answer.status_code == 200
        got = answer.json()
        for name in ("id", "experiment_id", "dataset_item_id", "trace_id"):
            assert got[name] == sent[name], name
        assert got["created_by"] == "pusher"
    assert project_names(target_db, "team") == source.project_of
    assert (dataset["tags"], dataset["description"]) == (["gold"], "questions")
    assert dataset["dataset_items_count"] == 3
    sent_items = {i["id"]: i["data"] for i in source.dataset_items}
    assert {i["id"]: i["data"] for i in dataset_items["content"]} == sent_items
    assert {i["created_by"] for i in dataset_items["content"]} == {"pusher"}


AUDIT_KEYS = frozenset({"project_id", *AUDIT})
# Who gave a score and when, per author (where scores keep their authors): the target's own.
SCORE_AUDIT_KEYS = AUDIT_KEYS | {"value_by_author"}


def _as_read(client: httpx.Client, path: str) -> dict[str, Any]:
    """What a server answers for a trace or span, but for what the target makes its own: the
    project's id (its name instead) and who wrote what when, in the record and its scores."""
    answer = client.get(path)
    assert answer.status_code == 200, (path, answer.text)
    got: dict[str, Any] = answer.json()
    project = client.get(f"/projects/{got['project_id']}").json()["name"]
    scores = [
        {k: v for k, v in score.items() if k not in SCORE_AUDIT_KEYS}
        for score in got.get("feedback_scores", [])
    ]
    kept = {k: v for k, v in got.items() if k not in AUDIT_KEYS and k != "feedback_scores"}
    return {**kept, "project": project, "scores": sorted(scores, key=lambda sc: sc["name"])}


def test_push_copies_traces_spans_and_their_scores_as_the_source_reads_them(
    source: Source, target_db: Location, tmp_path: Path
) -> None:
    with (
        target(tmp_path, target_db) as (url, log),
        running_server(source.db, log=tmp_path / "source.log") as here,
    ):
        result = push(source, url, "--api-key", KEY)
        with (
            httpx.Client(base_url=f"{here}{API}") as mine,
            httpx.Client(base_url=f"{url}{API}", headers={"Authorization": KEY}) as theirs,
        ):
            paths = [f"/traces/{t['id']}" for t in source.traces]
            paths += [f"/spans/{sp['id']}" for sp in source.spans]
            sent = [_as_read(mine, path) for path in paths]
            received = [_as_read(theirs, path) for path in paths]
        requests = log.read_text()

    assert result.returncode == 0, result.stderr
    assert received == sent
    # Every field that was stored came across, scores with their categories and reasons.
    assert sent[1]["thread_id"] == "t-1"
    assert sent[1]["error_info"] == {"exception_type": "E", "traceback": "tb", "message": "m"}
    assert sent[1]["project"] == "Other"
    assert [sc["name"] for sc in sent[1]["scores"]] == ["f1", "grade"]
    assert [(sc["name"], sc["value"]) for sc in sent[0]["scores"]] == [("f1", 0.5)]
    assert sent[2]["scores"] == [{"name": "ok", "value": 0.75, "reason": "close", "source": "sdk"}]
    assert sent[2 + 3]["parent_span_id"] == source.spans[1]["id"]
    assert sent[2 + 1]["usage"] == {"prompt_tokens": 1}
    # Through the SDK's routes, in batches of at most 1000.
    assert requests.count(f'"POST {API}/traces/batch" 204') == 1
    assert requests.count(f'"POST {API}/spans/batch" 204') == 2
    assert requests.count(f'"PUT {API}/traces/feedback-scores" 204') == 1
    assert requests.count(f'"PUT {API}/spans/feedback-scores" 204') == 1


def test_a_batch_is_cut_at_its_byte_bound_before_its_count(
    source: Source, target_db: Location, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # 1200 spans of about 450 bytes: two requests by count, three at 200 kB a request.
    monkeypatch.setattr(push_module, "BYTES_PER_REQUEST", 200_000)
    with target(tmp_path, target_db) as (url, log):
        pushed = push_module.push(
            source.db, "default", None, Target(f"{url}/api", KEY), tmp_path / "cp", Progress()
        )
        with httpx.Client(base_url=f"{url}{API}", headers={"Authorization": KEY}) as client:
            found = [client.get(f"/spans/{sp['id']}") for sp in source.spans]
        requests = log.read_text()

    assert pushed.spans == SPANS
    assert requests.count(f'"POST {API}/spans/batch" 204') == 3
    assert {answer.status_code for answer in found} == {200}


def test_an_interrupted_push_goes_on_where_it_stopped(
    source: Source, target_db: Location, tmp_path: Path
) -> None:
    in_the_way = source.items[1500]  # in the second request of items
    taken = {k: in_the_way[k] for k in ("id", "experiment_id", "dataset_item_id", "trace_id")}
    with target(tmp_path, target_db) as (url, _):
        other = {"Authorization": OTHER_KEY}
        body = {"experiment_items": [{**taken, "experiment_id": new_id()}]}
        assert httpx.post(f"{url}{API}/experiments/items", json=body, headers=other)
        stopped = push(source, url, "--api-key", KEY)
        delete = {"ids": [taken["id"]]}
        httpx.post(f"{url}{API}/experiments/items/delete", json=delete, headers=other)
        resumed = push(source, url, "--api-key", KEY)

    assert stopped.returncode == 1
    assert stopped.stderr == (
        f"experiment-items: error: POST {url}/api/v1/private/experiments/items answered 409: "
        f"Experiment item '{taken['id']}' belongs to another workspace\n"
    )
    assert resumed.returncode == 0, resumed.stderr
    resumed_what = (
        ": 0 experiments created and 0 there already, 1,500 items, 0 datasets created and "
        "0 there already, 0 dataset items, 0 traces, 0 spans, 0 trace feedback scores, 0 span "
        "feedback scores, 2 requests, in"
    )
    assert resumed_what in resumed.stdout
    assert set(project_names(target_db, "team")) == set(source.project_of)


def test_one_experiment_is_pushed_alone(
    source: Source, target_db: Location, tmp_path: Path
) -> None:
    chosen = source.experiments[1]
    with target(tmp_path, target_db) as (url, _):
        result = push(source, url, "--experiment", chosen["id"], "--api-key", KEY)

    assert result.returncode == 0, result.stderr
    shown = shown_location(source.db)
    assert result.stdout.startswith(f"pushed experiment {chosen['id']} of {shown} to ")
    expected = {i["id"] for i in source.items if i["experiment_id"] == chosen["id"]}
    assert set(project_names(target_db, "team")) == expected


def test_a_checkpoint_of_another_target_is_refused(
    source: Source, target_db: Location, tmp_path: Path
) -> None:
    checkpoint = tmp_path / "push.checkpoint"
    with target(tmp_path, target_db) as (url, _):
        first = push(source, url, "--api-key", KEY, "--checkpoint", str(checkpoint))
        other = push(
            source, url, "--api-key", OTHER_KEY, "--target-workspace", "elsewhere",
            "--checkpoint", str(checkpoint),
        )  # fmt: skip

    assert first.returncode == 0, first.stderr
    assert other.returncode == 2
    assert other.stderr.startswith(
        f"experiment-items: error: cannot push {shown_location(source.db)}: "
    )
    assert f"{checkpoint} is the checkpoint of a push to {url}/api workspace (unnamed" in (
        other.stderr
    )


def test_a_wrong_api_key_is_one_line_and_exit_code_1(
    source: Source, target_db: Location, tmp_path: Path
) -> None:
    with target(tmp_path, target_db) as (url, _):
        result = push(source, url, "--api-key", "wrong")
        forbidden = push(source, url, "--api-key", KEY, "--target-workspace", "elsewhere")

    assert result.returncode == 1
    assert result.stderr == (
        f"experiment-items: error: POST {url}/api/v1/private/datasets answered 401: "
        "API key is missing or unknown\n"
    )
    assert forbidden.returncode == 1
    assert "answered 403: API key has no access to workspace 'elsewhere'\n" in forbidden.stderr


@dataclass
class Stub:
    """What a failing server was sent."""

    url: str
    requests: list[tuple[str, dict[str, str], bytes]] = field(default_factory=list)


@contextmanager
def failing_server(status: int) -> Iterator[Stub]:
    """An HTTP server that answers every POST with `status`, as a broken deployment does."""
    stub = Stub("")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            stub.requests.append((self.path, dict(self.headers), body))
            answer = json.dumps({"code": status, "message": "the database is on fire"}).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    with ThreadingHTTPServer(("127.0.0.1", 0), Handler) as server:
        stub.url = f"http://127.0.0.1:{server.server_address[1]}"
        thread = threading.Thread(target=server.serve_forever)
        thread.start()
        try:
            yield stub
        finally:
            server.shutdown()
            thread.join()


@pytest.mark.parametrize(("status", "tries"), [(500, 1), (503, 3)])
def test_a_failing_server_is_one_line_and_exit_code_1(
    source: Source, status: int, tries: int
) -> None:
    with failing_server(status) as stub:
        result = push(source, stub.url, "--api-key", KEY, "--target-workspace", "team")

    assert result.returncode == 1
    assert result.stderr == (
        f"experiment-items: error: POST {stub.url}/api/v1/private/datasets answered "
        f"{status}: the database is on fire\n"
    )
    assert len(stub.requests) == tries  # a 503 may pass: it is tried again
    path, headers, _ = stub.requests[0]
    assert path == "/api/v1/private/datasets"  # datasets go first
    assert headers["Authorization"] == KEY
    assert headers["Comet-Workspace"] == "team"
    assert "Content-Encoding" not in headers  # gzip from 256 bytes on, as the SDK: not this


def test_push_needs_a_url_it_can_use(source: Source) -> None:
    result = run("push", "--db", str(source.db), "localhost:5173")

    assert result.returncode == 2
    assert result.stderr == (
        "experiment-items: error: URL must start with http:// or https://, not 'localhost:5173'\n"
    )


def test_push_from_postgresql_sends_what_push_from_sqlite_sends(
    pg_url: str, tmp_path: Path
) -> None:
    # Across the engines, once: from a file to a file, and from PostgreSQL to a file.
    source = _source(tmp_path, tmp_path / "source.db")
    assert run("import", "--db", pg_url, str(tmp_path / "source.jsonl")).returncode == 0
    pushed = {}
    for name, db in (("sqlite", str(source.db)), ("postgresql", pg_url)):
        folder = tmp_path / name
        folder.mkdir()
        with target(folder, folder / "target.db") as (url, _):
            result = run(
                "push", "--db", db, f"{url}/api", "--api-key", KEY,
                "--checkpoint", str(folder / "checkpoint"),
            )  # fmt: skip
        assert result.returncode == 0, result.stderr
        pushed[name] = result.stdout.split(" the default): ")[1].split(" in ")[0]
        assert project_names(folder / "target.db", "team") == source.project_of

    assert pushed["postgresql"] == pushed["sqlite"]
    assert pushed["sqlite"].startswith("3 experiments created and 0 there already, 2,500 items")


def test_the_checkpoint_of_a_postgresql_database_is_named_after_it_in_the_current_folder() -> None:
    to = Target("http://h:5173/api", None, None)
    url = "postgresql://ann:s3cret@db1:5432/items"

    checkpoint = push_module.default_checkpoint(url, to, "default")

    assert checkpoint.parent == Path()
    assert checkpoint.name.startswith("items.push-")
    assert push_module.default_checkpoint(url.replace("db1", "db2"), to, "default") != checkpoint
    assert push_module.default_checkpoint(url, to, "other") != checkpoint
