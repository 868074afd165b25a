"""The official Opik SDK's REST client against a real server: what it writes, it reads back."""

import datetime
import warnings
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from tests.conftest import NewDatabase
from tests.factories import new_id, sha
from tests.running import running_server

with warnings.catch_warnings():
    # The SDK's own imports may warn (deprecations in its dependencies); not ours to fix.
    warnings.simplefilter("ignore")
    from opik import httpx_client
    from opik.api_objects import rest_stream_parser
    from opik.rest_api import OpikApi
    from opik.rest_api.core.api_error import ApiError
    from opik.rest_api.errors.not_found_error import NotFoundError
    from opik.rest_api.types.experiment_item import ExperimentItem
    from opik.rest_api.types.experiment_item_bulk_record_experiment_item_bulk_write_view import (
        ExperimentItemBulkRecordExperimentItemBulkWriteView as BulkRecord,
    )
    from opik.rest_api.types.feedback_score_experiment_item_bulk_write_view import (
        FeedbackScoreExperimentItemBulkWriteView as BulkScore,
    )
    from opik.rest_api.types.span_experiment_item_bulk_write_view import (
        SpanExperimentItemBulkWriteView as BulkSpan,
    )
    from opik.rest_api.types.trace_experiment_item_bulk_write_view import (
        TraceExperimentItemBulkWriteView as BulkTrace,
    )

KEY = "opik-test-key"
START = datetime.datetime(2024, 1, 15, 9, 30, tzinfo=datetime.UTC)
SECOND = datetime.timedelta(seconds=1)


@contextmanager
def sdk_client(
    url: str, workspace: str, api_key: str | None
) -> Iterator[tuple[OpikApi, list[str]]]:
    """The REST client, and the Content-Encoding of every request it sends."""
    # Built the way the SDK builds its own: gzip on, so bodies of 256 bytes or more arrive
    # compressed.
    http = httpx_client.get(
        workspace=workspace, api_key=api_key, check_tls_certificate=False,
        compress_json_requests=True,
    )  # fmt: skip
    encodings: list[str] = []
    http.event_hooks["request"].append(
        lambda request: encodings.append(request.headers.get("content-encoding", "identity"))
    )
    with http:
        yield OpikApi(base_url=f"{url}/api", httpx_client=http), encodings


@pytest.fixture(scope="module")
def servers(
    tmp_path_factory: pytest.TempPathFactory, server_db: NewDatabase
) -> Iterator[dict[str, str]]:
    """An open server and one with API keys, on databases of the module's engine."""
    base = tmp_path_factory.mktemp("sdk")
    keys = base / "keys.toml"
    keys.write_text(f'[[keys]]\nworkspace = "sdk-ws"\nuser = "sdk-user"\nsha256 = "{sha(KEY)}"\n')
    with (
        running_server(server_db("open"), log=base / "open.log") as open_url,
        running_server(
            server_db("keyed"), "--api-keys", str(keys), log=base / "keyed.log"
        ) as keyed_url,
    ):
        yield {"open": open_url, "keyed": keyed_url}


@pytest.mark.parametrize(
    ("server", "workspace", "api_key", "user"),
    [("open", "default", None, "admin"), ("keyed", "sdk-ws", KEY, "sdk-user")],
)
def test_the_sdk_creates_reads_and_deletes_items(
    servers: dict[str, str], server: str, workspace: str, api_key: str | None, user: str
) -> None:
    with sdk_client(servers[server], workspace, api_key) as (client, encodings):
        round_trip(client, user)
    # Five items are over the SDK's 256-byte threshold: the write went gzipped, so this test
    # shows the server reading what the SDK really sends.
    assert "gzip" in encodings


def round_trip(client: OpikApi, user: str) -> None:
    experiment_id = new_id()
    item_ids = [new_id() for _ in range(5)]
    written = [
        ExperimentItem(
            id=item_id, experiment_id=experiment_id, dataset_item_id=new_id(),
            trace_id=new_id(), project_name="SDK Project",
        )
        for item_id in item_ids
    ]  # fmt: skip

    client.experiments.create_experiment_items(experiment_items=written)
    read = [client.experiments.get_experiment_item_by_id(item_id) for item_id in item_ids]

    for sent, got in zip(written, read, strict=True):
        assert (got.id, got.experiment_id, got.dataset_item_id, got.trace_id) == (
            sent.id, sent.experiment_id, sent.dataset_item_id, sent.trace_id,
        )  # fmt: skip
        assert got.created_by == got.last_updated_by == user
        assert got.trace_visibility_mode == "default"
        assert got.created_at is not None
        assert got.created_at.tzinfo is not None
    assert len({got.project_id for got in read}) == 1
    assert read[0].project_id is not None

    client.experiments.delete_experiment_items(ids=item_ids)
    with pytest.raises(NotFoundError):
        client.experiments.get_experiment_item_by_id(item_ids[0])


def test_the_sdk_with_a_wrong_key_is_refused(servers: dict[str, str]) -> None:
    with (
        sdk_client(servers["keyed"], "sdk-ws", "not-the-key") as (client, _),
        pytest.raises(ApiError) as raised,
    ):
        client.experiments.get_experiment_item_by_id(new_id())

    assert raised.value.status_code == 401


def test_the_sdk_records_an_evaluation_and_streams_it_back(servers: dict[str, str]) -> None:
    with sdk_client(servers["keyed"], "sdk-ws", KEY) as (client, encodings):
        experiment_id = new_id()
        client.experiments.create_experiment(
            id=experiment_id, dataset_name="SDK dataset", name="sdk-run", project_name="SDK"
        )
        experiment = client.experiments.get_experiment_by_id(experiment_id)
        records = [
            BulkRecord(
                dataset_item_id=new_id(),
                trace=BulkTrace(
                    id=new_id(), name="task", start_time=START, end_time=START + SECOND,
                    input={"q": n}, output={"a": n},
                ),
                spans=[BulkSpan(
                    name="llm", type="llm", start_time=START, end_time=START + SECOND,
                    usage={"prompt_tokens": n}, total_estimated_cost=0.5,
                )],
                feedback_scores=[BulkScore(name="acc", value=n / 10, source="sdk")],
            )
            for n in range(1, 6)
        ]  # fmt: skip
        client.experiments.experiment_items_bulk(
            experiment_name="sdk-run", dataset_name="SDK dataset", experiment_id=experiment_id,
            items=records,
        )  # fmt: skip
        streamed = rest_stream_parser.read_and_parse_stream(
            client.experiments.stream_experiment_items(experiment_name="sdk-run", limit=10),
            ExperimentItem,
        )
        client.experiments.delete_experiments_by_id(ids=[experiment_id])
        with pytest.raises(NotFoundError):
            client.experiments.get_experiment_by_id(experiment_id)

    assert (experiment.id, experiment.name, experiment.dataset_name) == (
        experiment_id, "sdk-run", "SDK dataset",
    )  # fmt: skip
    assert experiment.dataset_id is not None
    assert experiment.created_by == "sdk-user"
    assert len(streamed) == 5
    streamed_ids = [str(line.id) for line in streamed]
    assert streamed_ids == sorted(streamed_ids, reverse=True)
    by_trace = {line.trace_id: line for line in streamed}
    for n, record in enumerate(records, 1):
        assert record.trace is not None
        line = by_trace[str(record.trace.id)]
        assert (line.experiment_id, line.dataset_item_id) == (experiment_id, record.dataset_item_id)
        assert (line.input, line.output) == ({"q": n}, {"a": n})
        assert line.duration == 1000.0
        assert line.usage == {"prompt_tokens": n}
        assert line.total_estimated_cost == 0.5
        assert line.feedback_scores is not None
        assert [(s.name, s.value) for s in line.feedback_scores] == [("acc", n / 10)]
    assert "gzip" in encodings
