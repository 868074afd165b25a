"""Prompt versions over HTTP: a version added to a prompt made on first use, read back by the
prompt's name (the latest, or one by commit) or by id; a prompt made with its first version; and
experiments that link to versions (opik-reference/experiments.md)."""

import json
from typing import Any

import httpx
import pytest

from app import clock
from tests.factories import new_id
from tests.test_api_items import JAN_15

pytestmark = pytest.mark.anyio

EXPERIMENTS = "/v1/private/experiments"
PROMPTS = "/v1/private/prompts"
VERSIONS = f"{PROMPTS}/versions"
OTHER = {"Comet-Workspace": "other"}


async def create(client: httpx.AsyncClient, name: str, **fields: Any) -> str:
    key = new_id()
    body = {"id": key, "dataset_name": "qa", "name": name, **fields}
    response = await client.post(EXPERIMENTS, json=body)
    assert response.status_code == 201, response.text
    return key


async def version_of(client: httpx.AsyncClient, prompt: str, template: str = "Answer {{q}}",
                     **fields: Any) -> dict[str, Any]:  # fmt: skip
    body = {"name": prompt, "version": {"template": template, **fields}}
    response = await client.post(VERSIONS, json=body)
    assert response.status_code == 200, response.text
    return dict(response.json())


async def test_a_version_reads_back_by_id_by_name_and_by_its_commit(
    client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(clock, "now_ns", lambda: JAN_15)
    first = await version_of(
        client, "QA prompt", "Hi {{ name }}, {{#list}}{{item}}{{/list}} {{name}} {{ q.a }}",
        metadata={"model": "m", "n": [1, 2.50]}, change_description="first", tags=["b", "a", "b"],
    )  # fmt: skip
    second = await version_of(client, "qa PROMPT", "{{x}}", type="jinja2")

    by_id = await client.get(f"{VERSIONS}/{first['id']}")
    latest = await client.post(f"{VERSIONS}/retrieve", json={"name": "qa prompt"})
    by_commit = await client.post(
        f"{VERSIONS}/retrieve", json={"name": "QA PROMPT", "commit": first["commit"]}
    )

    assert first["commit"] == first["id"][-8:]
    assert second["prompt_id"] == first["prompt_id"]
    assert by_id.content == by_commit.content
    assert by_id.json() == first
    assert latest.json() == second
    assert list(first) == [
        "id", "prompt_id", "commit", "template", "metadata", "type", "change_description",
        "tags", "variables", "template_structure", "created_at", "created_by",
    ]  # fmt: skip
    assert first["metadata"] == {"model": "m", "n": [1, 2.50]}
    assert first["tags"] == ["b", "a"]
    assert first["variables"] == ["name", "item", "q.a"]
    assert (first["type"], first["template_structure"]) == ("mustache", "text")
    assert (first["created_at"], first["created_by"]) == ("2024-01-15T09:30:00.120Z", "admin")
    assert second["variables"] == []  # jinja2: no mustache names
    assert "change_description" not in second
    assert "metadata" not in second


async def test_unknown_versions_and_other_workspaces_versions_are_404(
    client: httpx.AsyncClient,
) -> None:
    mine = await version_of(client, "mine")

    answers = [
        await client.get(f"{VERSIONS}/{new_id()}"),
        await client.get(f"{VERSIONS}/{mine['id']}", headers=OTHER),
        await client.post(f"{VERSIONS}/retrieve", json={"name": "mine"}, headers=OTHER),
        await client.post(f"{VERSIONS}/retrieve", json={"name": "mine", "commit": "00000000"}),
        await client.post(f"{VERSIONS}/retrieve", json={"name": "nope"}),
    ]

    for answer in answers:
        assert answer.status_code == 404, answer.text
        assert answer.content == b'{"errors":["Prompt version not found"]}'


async def test_a_prompt_is_made_once_per_name_and_its_id_is_global(
    client: httpx.AsyncClient,
) -> None:
    key = new_id()
    made = await client.post(PROMPTS, json={"name": "Greeter", "template": "Hi {{n}}", "id": key,
                                            "description": "d", "tags": ["t"]})  # fmt: skip
    again = await client.post(PROMPTS, json={"name": " greeter ", "template": "Hello"})
    elsewhere = await client.post(
        PROMPTS, json={"name": "theirs", "template": "x", "id": key}, headers=OTHER
    )
    added = await version_of(client, "GREETER", "Hello {{n}}")
    theirs = await version_of(client, "Greeter", "Yo")  # another workspace's name is its own
    first = await client.post(f"{VERSIONS}/retrieve", json={"name": "greeter", "commit": None})

    assert made.status_code == 201, made.text
    assert made.headers["location"].endswith(f"/{key}")
    assert again.status_code == 409
    assert again.content == b"""{"errors":["Prompt with name 'greeter' already exists"]}"""
    assert elsewhere.status_code == 409
    assert elsewhere.json()["message"] == f"Prompt '{key}' belongs to another workspace"
    assert added["prompt_id"] == theirs["prompt_id"] == key
    assert first.json()["id"] == theirs["id"]


async def test_an_experiment_links_its_versions_with_their_commit_and_prompt(
    client: httpx.AsyncClient,
) -> None:
    qa = await version_of(client, "qa-prompt")
    unknown = new_id()
    experiment = await create(client, "linked", prompt_versions=[{"id": qa["id"]}, {"id": unknown}],
                              prompt_version={"id": qa["id"]})  # fmt: skip

    got = (await client.get(f"{EXPERIMENTS}/{experiment}")).json()

    link = {"id": qa["id"], "commit": qa["commit"], "prompt_id": qa["prompt_id"],
            "prompt_name": "qa-prompt"}  # fmt: skip
    assert got["prompt_version"] == link
    assert got["prompt_versions"] == [link, {"id": unknown}]


async def test_find_by_prompt_id_and_the_prompt_ids_filter(client: httpx.AsyncClient) -> None:
    qa = await version_of(client, "qa-prompt")
    math = await version_of(client, "math-prompt")
    both = await create(client, "both", prompt_versions=[{"id": qa["id"]}, {"id": math["id"]}])
    legacy = await create(client, "legacy", prompt_version={"id": math["id"]})
    none = await create(client, "none")

    async def found(**params: Any) -> list[str]:
        response = await client.get(EXPERIMENTS, params=params)
        assert response.status_code == 200, response.text
        return [e["id"] for e in response.json()["content"]]

    def where(operator: str, value: str) -> dict[str, str]:
        return {
            "filters": json.dumps([{"field": "prompt_ids", "operator": operator, "value": value}])
        }

    assert await found(prompt_id=qa["prompt_id"]) == [both]
    assert await found(prompt_id=math["prompt_id"]) == [legacy, both]
    assert await found(**where("=", qa["prompt_id"].upper())) == [both]
    assert await found(**where("!=", qa["prompt_id"])) == [none, legacy]
    assert await found(**where("contains", math["prompt_id"][-12:])) == [legacy, both]
    assert await found(**where("not_contains", math["prompt_id"][-12:])) == [none]
    assert await found(**where("is_empty", "")) == [none]
    assert await found(**where("is_not_empty", "")) == [legacy, both]
    bad = await client.get(EXPERIMENTS, params=where(">", "x"))
    assert bad.json() == {
        "code": 400,
        "message": "Invalid operator '>' for field 'prompt_ids' of type 'LIST'",
    }


async def test_a_prompt_id_any_prompt_holds_is_a_409(client: httpx.AsyncClient) -> None:
    key = new_id()
    made = await client.post(PROMPTS, json={"name": "one", "template": "x", "id": key})
    again = await client.post(PROMPTS, json={"name": "two", "template": "x", "id": key})

    assert made.status_code == 201
    assert again.status_code == 409
    assert again.json()["message"] == f"Prompt '{key}' belongs to another workspace"
    missing = await client.post(f"{VERSIONS}/retrieve", json={"name": "two"})
    assert missing.status_code == 404
