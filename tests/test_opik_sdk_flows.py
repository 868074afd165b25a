"""The official Opik SDK's high-level API against a real server: the flows people run with
datasets, prompts and experiments (opik-reference/datasets-traces.md §2), each read back."""

import warnings
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.conftest import NewDatabase
from tests.running import running_server

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    import opik
    from opik.api_objects import opik_client
    from opik.api_objects.prompt import prompt_cache
    from opik.rest_api.core.api_error import ApiError

PROJECT = "SDK flows"


@pytest.fixture(scope="module")
def url(tmp_path_factory: pytest.TempPathFactory, server_db: NewDatabase) -> Iterator[str]:
    """A server on a database of the module's engine."""
    log = tmp_path_factory.mktemp("flows") / "flows.log"
    with running_server(server_db("flows"), log=log) as base:
        yield base


@pytest.fixture
def client(url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[opik.Opik]:
    # The SDK's own telemetry stays off; everything else is its default configuration.
    monkeypatch.setenv("OPIK_ANALYTICS_ENABLE", "false")
    monkeypatch.setenv("OPIK_SENTRY_ENABLE", "false")
    monkeypatch.setenv("OPIK_CHECK_TLS_CERTIFICATE", "false")
    monkeypatch.setenv("OPIK_URL_OVERRIDE", f"{url}/api")
    # The SDK's own global client (of opik.Prompt, evaluate) keeps the first server's URL, and
    # its prompt cache the first server's prompts, process-wide: both made again here, since
    # each engine's run of the module has a server of its own.
    opik_client.reset_global_client()
    prompt_cache.get_global_cache().clear()
    found = opik.Opik(host=f"{url}/api", workspace="default", project_name=PROJECT)
    yield found
    found.end()
    opik_client.reset_global_client()


def api(url: str, path: str, **body: Any) -> httpx.Response:
    return httpx.post(f"{url}/api/v1/private/{path}", json=body)


def test_get_or_create_finds_the_dataset_the_second_time(client: opik.Opik, url: str) -> None:
    first = client.get_or_create_dataset("flows: get or create")
    second = client.get_or_create_dataset("flows: get or create")

    assert first.id == second.id
    found = api(url, "datasets/retrieve", dataset_name="flows: get or create").json()
    assert found["id"] == first.id


def test_inserted_items_read_back_and_duplicates_are_not_sent_twice(
    client: opik.Opik, url: str
) -> None:
    a = {"input": {"q": "a"}, "expected_output": "A"}
    b = {"input": {"q": "b"}, "expected_output": "B"}
    c = {"input": {"q": "c"}, "expected_output": "C", "tags": ["x"], "score": 0.5}
    dataset = client.get_or_create_dataset("flows: insert")
    dataset.insert([a, b, a])
    # A fresh object of the same dataset syncs the stored items' hashes through the stream:
    # `a` is dropped by the SDK itself, which needs `data` back exactly as it was sent.
    again = client.get_dataset("flows: insert")
    again.insert([a, c])

    items = again.get_items()

    assert sorted(({k: v for k, v in i.items() if k != "id"} for i in items), key=str) == sorted(
        [a, b, c], key=str
    )
    assert client.get_dataset("flows: insert").dataset_items_count == 3


def test_deleting_items_and_clearing_empty_the_dataset(client: opik.Opik) -> None:
    dataset = client.get_or_create_dataset("flows: delete")
    dataset.insert([{"input": n} for n in range(4)])
    first = dataset.get_items()[0]

    dataset.delete([first["id"]])
    left = dataset.get_items()
    dataset.clear()

    assert len(left) == 3
    assert first["id"] not in {i["id"] for i in left}
    assert dataset.get_items() == []


def test_deleting_a_dataset_twice_raises_the_second_time(client: opik.Opik) -> None:
    client.get_or_create_dataset("flows: drop")

    client.delete_dataset("flows: drop")

    with pytest.raises(ApiError) as raised:
        client.delete_dataset("flows: drop")
    assert raised.value.status_code == 404


def test_a_prompt_is_created_once_and_versioned_when_its_template_changes(
    client: opik.Opik, url: str
) -> None:
    first = client.create_prompt(name="flows: answer", prompt="Answer {{question}}")
    same = client.create_prompt(name="flows: answer", prompt="Answer {{question}}")
    changed = client.create_prompt(name="flows: answer", prompt="Reply to {{question}}")
    latest = client.get_prompt("flows: answer")
    pinned = client.get_prompt("flows: answer", commit=first.commit)

    assert first.commit == same.commit != changed.commit
    assert latest is not None
    assert pinned is not None
    assert (latest.commit, latest.prompt) == (changed.commit, "Reply to {{question}}")
    assert (pinned.commit, pinned.prompt) == (first.commit, "Answer {{question}}")
    by_id = httpx.get(f"{url}/api/v1/private/prompts/versions/{first.version_id}").json()
    assert (by_id["commit"], by_id["variables"]) == (first.commit, ["question"])
    assert client.get_prompt("flows: no such prompt") is None


def answer(item: dict[str, Any]) -> dict[str, Any]:
    """The task under evaluation: right on 2+2, wrong on 3+3."""
    return {"output": {"2+2": "4", "3+3": "7"}[item["input"]["q"]]}


def test_evaluate_records_a_run_that_reads_back_and_scores_again(
    client: opik.Opik, url: str
) -> None:
    from opik.evaluation import evaluate, evaluate_experiment
    from opik.evaluation.metrics import Contains, Equals

    dataset = client.get_or_create_dataset("flows: evaluate")
    dataset.insert([
        {"input": {"q": "2+2"}, "expected_output": "4"},
        {"input": {"q": "3+3"}, "expected_output": "6"},
    ])  # fmt: skip
    prompt = client.create_prompt(name="flows: arithmetic", prompt="Compute {{q}}")

    result = evaluate(
        dataset=dataset, task=answer, scoring_metrics=[Equals()], experiment_name="flows: run",
        project_name=PROJECT, scoring_key_mapping={"reference": "expected_output"},
        task_threads=1, verbose=0, prompts=[prompt],
    )  # fmt: skip
    client.flush()

    # The run reads back through the SDK as a user would: by name, item by item.
    experiment = client.get_experiment_by_name("flows: run")
    assert experiment.id == result.experiment_id
    items = experiment.get_items()
    assert len(items) == 2
    by_question = {(i.dataset_item_data or {})["input"]["q"]: i for i in items}
    assert by_question["2+2"].evaluation_task_output == {"output": "4"}
    assert by_question["3+3"].evaluation_task_output == {"output": "7"}
    scores = {q: {s["name"]: s["value"] for s in i.feedback_scores} for q, i in by_question.items()}
    assert scores == {"2+2": {"equals_metric": 1.0}, "3+3": {"equals_metric": 0.0}}

    # Nothing the background sender had was dropped: every task trace is stored, with its
    # project, and the experiment's aggregates count them.
    for item in items:
        trace = client.get_trace_content(item.trace_id)
        assert trace.project_id is not None
        assert trace.output == item.evaluation_task_output
    stored = httpx.get(f"{url}/api/v1/private/experiments/{experiment.id}").json()
    assert stored["trace_count"] == 2
    assert stored["feedback_scores"] == [{"name": "equals_metric", "value": 0.5}]
    assert [link["commit"] for link in stored["prompt_versions"]] == [prompt.commit]

    # Scoring the run again puts the new scores on the same traces.
    evaluate_experiment(
        experiment_name="flows: run", scoring_metrics=[Contains()], verbose=0, project_name=PROJECT,
        scoring_key_mapping={"reference": "expected_output"},
    )  # fmt: skip
    client.flush()
    rescored = client.get_experiment_by_name("flows: run").get_items()
    names = {frozenset(s["name"] for s in i.feedback_scores) for i in rescored}
    assert names == {frozenset({"equals_metric", "contains_metric"})}
