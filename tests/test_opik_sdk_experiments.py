"""The official Opik SDK's high-level client against a real server: it creates experiments,
finds them by name (the stream) and by dataset (find), updates them and logs their scores
(PATCH), and reads back each thing it wrote, with the aggregates of what it recorded."""

import os
import warnings
from collections.abc import Iterator

import httpx
import pytest

from tests.conftest import NewDatabase
from tests.factories import new_id
from tests.running import running_server

os.environ.setdefault("OPIK_ANALYTICS_ENABLE", "false")
os.environ.setdefault("OPIK_SENTRY_ENABLE", "false")
# Off, as tests/test_opik_sdk.py builds its client: with it on, the SDK passes httpx a CA
# path string, which httpx deprecates (and warnings are errors here).
os.environ.setdefault("OPIK_CHECK_TLS_CERTIFICATE", "false")

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    import opik
    from opik.api_objects.experiment.experiment_item import ExperimentItemReferences
    from opik.evaluation.metrics.score_result import ScoreResult

EXPERIMENTS = "/api/v1/private/experiments"
PROJECT = "SDK Experiments"


@pytest.fixture(scope="module")
def url(tmp_path_factory: pytest.TempPathFactory, server_db: NewDatabase) -> Iterator[str]:
    """A server on a database of the module's engine."""
    log = tmp_path_factory.mktemp("sdk-experiments") / "sdk.log"
    with running_server(server_db("sdk"), log=log) as found:
        yield found


@pytest.fixture
def client(url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[opik.Opik]:
    monkeypatch.setenv("OPIK_ANALYTICS_ENABLE", "false")
    monkeypatch.setenv("OPIK_SENTRY_ENABLE", "false")
    monkeypatch.setenv("OPIK_CHECK_TLS_CERTIFICATE", "false")
    sdk = opik.Opik(host=f"{url}/api", workspace="default", _show_misconfiguration_message=False)
    yield sdk
    sdk.end()


def create(url: str, name: str) -> str:
    key = new_id()
    body = {"id": key, "name": name, "dataset_name": "qa", "project_name": "Default Project"}
    assert httpx.post(f"{url}{EXPERIMENTS}", json=body).status_code == 201
    return key


def test_the_sdk_finds_experiments_by_name_and_partial_name(url: str, client: opik.Opik) -> None:
    older = create(url, "sdk-nightly")
    newer = create(url, "sdk-nightly-2")

    exact = client.get_experiment_by_name("sdk-nightly")
    partial = client.get_experiments_by_name("SDK-NIGHTLY")

    assert exact.id == older
    assert exact.name == "sdk-nightly"
    assert [e.id for e in partial] == [newer, older]


def test_the_sdk_updates_an_experiment_and_reads_it_back(url: str, client: opik.Opik) -> None:
    key = create(url, "sdk-before")

    client.update_experiment(key, name="sdk-after", experiment_config={"model": "gpt-4o"})
    read = client.get_experiment_by_id(key)
    stored = httpx.get(f"{url}{EXPERIMENTS}/{key}").json()

    assert read.name == "sdk-after"
    assert stored["name"] == "sdk-after"
    assert stored["metadata"] == {"model": "gpt-4o"}
    assert client.get_experiment_by_name("sdk-after").id == key


def test_the_sdk_finds_every_experiment_holding_a_part_of_the_name(
    url: str, client: opik.Opik
) -> None:
    first = create(url, "part-Eval-A")
    second = create(url, "part-eval-B")
    create(url, "part-other")

    found = client.get_experiments_by_name("EVAL")
    exact = client.get_experiment_by_name("part-eval-B")

    assert [e.id for e in found] == [second, first]
    assert [e.name for e in found] == ["part-eval-B", "part-Eval-A"]
    assert exact.id == second


def test_the_sdk_creates_an_experiment_and_reads_back_what_it_wrote(client: opik.Opik) -> None:
    client.get_or_create_dataset("sdk-created-set", project_name=PROJECT)

    made = client.create_experiment(
        dataset_name="sdk-created-set",
        name="sdk-created",
        experiment_config={"model": "gpt-4o", "temperature": 0.2},
        tags=["sdk", "nightly"],
        project_name=PROJECT,
    )
    data = made.get_experiment_data()
    by_id = client.get_experiment_by_id(made.id)

    assert (data.id, data.name, data.dataset_name) == (made.id, "sdk-created", "sdk-created-set")
    assert data.metadata == {"model": "gpt-4o", "temperature": 0.2}
    assert data.tags == ["sdk", "nightly"]
    assert (data.type, data.status, data.trace_count) == ("regular", "completed", 0)
    assert data.project_name == PROJECT
    assert by_id.name == "sdk-created"


def test_the_sdk_logs_experiment_scores_and_reads_them_back(client: opik.Opik) -> None:
    made = client.create_experiment(dataset_name="sdk-scored-set", name="sdk-scored")

    made.log_experiment_scores(
        [
            ScoreResult(name="f1", value=0.75),
            ScoreResult(name="recall", value=1.0),
            ScoreResult(name="broken", value=0.0, scoring_failed=True),
        ]
    )
    scores = made.get_experiment_data().experiment_scores or []

    assert [(s.name, s.value) for s in scores] == [("f1", 0.75), ("recall", 1.0)]


def test_the_sdk_lists_a_datasets_experiments_newest_first(client: opik.Opik) -> None:
    client.get_or_create_dataset("sdk-listed-set", project_name=PROJECT)
    client.get_or_create_dataset("sdk-elsewhere-set", project_name=PROJECT)
    made = [
        client.create_experiment(dataset_name="sdk-listed-set", name=f"sdk-listed-{n}")
        for n in range(3)
    ]
    client.create_experiment(dataset_name="sdk-elsewhere-set", name="sdk-elsewhere")

    listed = client.get_dataset_experiments("sdk-listed-set", project_name=PROJECT)
    capped = client.get_dataset_experiments("sdk-listed-set", max_results=2, project_name=PROJECT)

    assert [e.id for e in listed] == [e.id for e in made[::-1]]
    assert len(capped) == 2


def test_the_sdk_sees_the_aggregates_of_what_it_recorded(url: str, client: opik.Opik) -> None:
    dataset = client.get_or_create_dataset("sdk-aggregated-set", project_name=PROJECT)
    dataset.insert([{"input": {"q": n}} for n in range(3)])
    items = dataset.get_items()
    made = client.create_experiment(
        dataset_name="sdk-aggregated-set", name="sdk-aggregated", project_name=PROJECT
    )
    values = [1.0, 0.5, 0.0]
    traces = []
    for n, row in enumerate(items):
        trace = client.trace(name=f"run-{n}", input=row["input"], project_name=PROJECT)
        trace.span(name="llm", type="llm", total_cost=0.25 * (n + 1)).end()
        trace.end(output={"a": n})
        traces.append(trace.id)
        made.insert([ExperimentItemReferences(dataset_item_id=row["id"], trace_id=trace.id)])
    client.log_traces_feedback_scores(
        [{"id": t, "name": "accuracy", "value": v} for t, v in zip(traces, values, strict=True)],
        project_name=PROJECT,
    )
    assert client.flush()

    data = made.get_experiment_data()
    stored = httpx.get(f"{url}{EXPERIMENTS}/{made.id}").json()

    assert (data.trace_count, stored["dataset_item_count"]) == (3, 3)
    assert [s.name for s in data.feedback_scores or []] == ["accuracy"]
    assert (data.feedback_scores or [])[0].value == pytest.approx(sum(values) / 3)
    assert stored["total_estimated_cost"] == pytest.approx(0.25 + 0.5 + 0.75)
    assert stored["total_estimated_cost_avg"] == pytest.approx((0.25 + 0.5 + 0.75) / 3)
    assert data.duration is not None
    other = httpx.get(f"{url}{EXPERIMENTS}/{made.id}", headers={"Comet-Workspace": "other"})
    assert other.status_code == 404
