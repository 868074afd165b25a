"""The official Opik SDK's high-level client against a real server: it finds experiments by
name (the stream), updates them (PATCH) and reads them back."""

import os
import warnings
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

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

EXPERIMENTS = "/api/v1/private/experiments"


@pytest.fixture(scope="module")
def url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with running_server(Path(tmp_path_factory.mktemp("sdk-experiments")) / "sdk.db") as found:
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
