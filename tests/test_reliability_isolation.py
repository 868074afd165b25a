"""Isolation and auth with API keys on: every documented route, tried without a key, with a
wrong key, and with another workspace's key and name. Nothing crosses a workspace.

The routes and their request bodies come from the OpenAPI document (each operation's
example), so a route added to the document is covered here without a change.
"""

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.conftest import NewDatabase
from tests.evaluation import record
from tests.factories import new_id, sha
from tests.soak.harness import Server, fingerprint

ANN_KEY, BEN_KEY = "ann-7c1a-secret-key", "ben-9f2b-secret-key"
ANN, BEN = {"Authorization": ANN_KEY}, {"Authorization": f"Bearer {BEN_KEY}"}
ITEMS, EXPERIMENTS = "/v1/private/experiments/items", "/v1/private/experiments"
START = "2024-01-15T09:30:00Z"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, server_db: NewDatabase) -> Iterator[Server]:
    folder = tmp_path_factory.mktemp("isolation")
    keys = folder / "keys.toml"
    keys.write_text(
        f'[[keys]]\nworkspace = "one"\nuser = "ann"\nsha256 = "{sha(ANN_KEY)}"\n'
        f'[[keys]]\nworkspace = "two"\nuser = "ben"\nsha256 = "{sha(BEN_KEY)}"\n'
    )
    with Server(
        server_db("isolation"), "--api-keys", str(keys), log=folder / "server.log"
    ) as running:
        yield running


@pytest.fixture(scope="module")
def doc(server: Server) -> dict[str, Any]:
    document: dict[str, Any] = httpx.get(f"{server.url}/openapi.json").json()
    return document


def operations(doc: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in doc["paths"].items():
        for method, operation in item.items():
            yield path, method.upper(), operation


def example(path: str, operation: dict[str, Any]) -> Any:
    if "requestBody" not in operation:
        return None
    media = operation["requestBody"]["content"]["application/json"]
    assert "example" in media, f"{path}: give its operation an example in app/openapi.py"
    return media["example"]


@pytest.fixture(scope="module")
def owned(server: Server, doc: dict[str, Any]) -> dict[str, str]:
    """Ann writes in workspace one with every write route's example; the ids she owns."""
    experiment = {"dataset_name": "questions", "name": "ann's"}
    with httpx.Client(base_url=server.url, headers=ANN) as ann:
        created = ann.post("/v1/private/experiments", json=experiment)
        assert created.status_code == 201
        for path, method, operation in sorted(operations(doc), key=lambda o: "/stream" in o[0]):
            # Each write route once: the /api/ twin of a route is the same endpoint, and some
            # writes (a dataset's create by name) can be made only once.
            if method == "GET" or path.endswith("/delete") or "{" in path:
                continue
            if path.startswith("/api/"):
                continue
            if not any(status.startswith("2") for status in operation["responses"]):
                continue  # a route that is not offered (execute: 501) writes nothing
            response = ann.request(method, path, json=example(path, operation))
            assert response.status_code < 300, f"{method} {path}: {response.text}"
            if path.endswith("/stream"):  # streamed last, after the bulk: Ann sees her run
                assert response.content, path
        trace = new_id()
        bulk = {
            "experiment_name": "ann-run",
            "dataset_name": "questions",
            "items": [
                {
                    "dataset_item_id": new_id(),
                    "trace": {"id": trace, "start_time": "2024-01-15T09:30:00Z"},
                }
            ],
        }
        assert ann.put("/v1/private/experiments/items/bulk", json=bulk).status_code == 204
        # One record of every kind a path names by id, with an id of its own.
        dataset, dataset_item, span = new_id(), new_id(), new_id()
        made = [
            ann.post("/v1/private/datasets", json={"id": dataset, "name": "ann-secret"}),
            ann.put(
                "/v1/private/datasets/items",
                json={
                    "dataset_name": "ann-secret",
                    "items": [{"id": dataset_item, "source": "sdk", "data": {"q": "ann"}}],
                },
            ),
            ann.post(
                "/v1/private/spans/batch",
                json={
                    "spans": [{"id": span, "trace_id": trace, "start_time": "2024-01-15T09:30:00Z"}]
                },
            ),
            ann.put(
                "/v1/private/traces/feedback-scores",
                json={"scores": [{"id": trace, "name": "ann-score", "value": 1, "source": "sdk"}]},
            ),
            ann.put(
                "/v1/private/spans/feedback-scores",
                json={"scores": [{"id": span, "name": "ann-score", "value": 1, "source": "sdk"}]},
            ),
        ]
        assert [r.status_code for r in made] == [201, 204, 204, 204, 204], [r.text for r in made]
        version = ann.post(
            "/v1/private/prompts/versions",
            json={"name": "ann-prompt", "version": {"template": "Hi {{ann}}"}},
        )
        assert version.status_code == 200, version.text
        project = ann.get(f"/v1/private/traces/{trace}").json()["project_id"]
    item = doc["paths"]["/v1/private/experiments/items"]["post"]
    return {
        "item": example("", item)["experiment_items"][0]["id"],
        "experiment": created.headers["location"].rsplit("/", 1)[1],
        "trace": trace,
        "span": span,
        "dataset": dataset,
        "dataset_item": dataset_item,
        "prompt_version": version.json()["id"],
        "project": project,
    }


# Which of Ann's ids each path's {id} takes, by the path's start, the longest first.
ID_OF = {
    "/v1/private/experiments/items/": "item",
    "/v1/private/experiments/": "experiment",
    "/v1/private/datasets/": "dataset",
    "/v1/private/prompts/versions/": "prompt_version",
    "/v1/private/traces/": "trace",
    "/v1/private/spans/": "span",
    "/v1/private/projects/": "project",
}


def url(path: str, owned: dict[str, str]) -> str:
    """The path with Ann's id of the kind its parameter names: a route added with a kind of
    id this does not know fails here."""
    if "{" not in path:
        return path
    bare = path.removeprefix("/api")
    kind = next((kind for start, kind in ID_OF.items() if bare.startswith(start)), None)
    assert kind is not None, f"{path}: add the kind of its id to ID_OF"
    filled = path.replace("{id}", owned[kind])
    assert "{" not in filled, f"{path}: a parameter other than {{id}}"
    return filled


def test_without_a_key_or_with_a_wrong_one_every_route_is_401_and_changes_nothing(
    server: Server, doc: dict[str, Any], owned: dict[str, str]
) -> None:
    before = fingerprint(server.db)
    for path, method, operation in operations(doc):
        for headers in (
            {},
            {"Authorization": "wrong"},
            {"Authorization": "Bearer " + ANN_KEY[:-1]},
        ):
            response = httpx.request(
                method,
                server.url + url(path, owned),
                json=example(path, operation),
                headers=headers,
            )
            expected = 401 if operation["security"] else 200
            assert response.status_code == expected, f"{method} {path} {headers}"

    assert fingerprint(server.db) == before


def test_a_key_with_another_workspaces_name_is_403_on_every_route_and_changes_nothing(
    server: Server, doc: dict[str, Any], owned: dict[str, str]
) -> None:
    before = fingerprint(server.db)
    tries = [
        ({**BEN, "Comet-Workspace": "one"}, {}),
        (BEN, {"workspace_name": "one"}),
        ({**ANN, "Comet-Workspace": "two"}, {}),
    ]
    for path, method, operation in operations(doc):
        if not operation["security"]:
            continue
        for headers, params in tries:
            response = httpx.request(
                method,
                server.url + url(path, owned),
                json=example(path, operation),
                headers=headers,
                params=params,
            )
            assert response.status_code == 403, f"{method} {path} {headers} {params}"

    assert fingerprint(server.db) == before


def test_another_workspace_can_neither_read_nor_change_what_it_does_not_own(
    server: Server, doc: dict[str, Any], owned: dict[str, str]
) -> None:
    anns = fingerprint(server.db, "one")
    with httpx.Client(base_url=server.url, headers=BEN) as ben:
        # Reads first, while Ben has nothing of his own: Ann's ids and names find nothing.
        ordered = sorted(operations(doc), key=lambda o: o[1] != "GET" and "/stream" not in o[0])
        for path, method, operation in ordered:
            if not operation["security"]:
                continue
            response = ben.request(method, url(path, owned), json=example(path, operation))
            not_offered = response.status_code == 501 and "501" in operation["responses"]
            assert response.status_code < 500 or not_offered, f"{method} {path}: {response.text}"
            if path.endswith("/auth/workspace"):  # his own workspace's name, not Ann's
                assert response.json() == {"workspace_name": "two"}
            elif method == "GET" and "{" in path:
                # 404; or, for a page of a dataset's items (Opik answers an unknown dataset
                # with an empty page) and the versions (403: off), nothing of Ann's.
                assert response.status_code in (404, 403, 422, 200), f"{method} {path}"
                if response.status_code == 200:
                    assert response.json()["total"] == 0, f"{method} {path}"
                    assert not any(key in response.text for key in owned.values()), path
                else:  # the error shape alone, naming at most the id Ben sent
                    assert set(response.json()) <= {"code", "message", "errors"}, path
                assert "ann" not in response.text.lower(), f"{method} {path}"
            elif method == "GET":  # a search: it answers (400 without a required parameter,
                # the groups' `groups`), with nothing of Ann's
                assert response.status_code in (200, 400), f"{method} {path}"
                assert owned["experiment"] not in response.text, path
                assert "ann" not in response.text, path
            if path.endswith("/stream"):
                assert response.content == b"", path
        # Ann's names find nothing either.
        lookups = [
            ben.post("/v1/private/datasets/retrieve", json={"dataset_name": "ann-secret"}),
            ben.post("/v1/private/prompts/versions/retrieve", json={"name": "ann-prompt"}),
            ben.post("/v1/private/datasets/items/stream", json={"dataset_name": "ann-secret"}),
        ]
        # Ids are global: one of another workspace is a conflict, never an overwrite.
        item = {"id": owned["item"], "experiment_id": new_id(), "dataset_item_id": new_id()}
        trace = {"id": owned["trace"], "start_time": "2024-01-15T09:30:00Z"}
        run = {"experiment_name": "x", "dataset_name": "questions"}
        collisions = [
            ben.post(ITEMS, json={"experiment_items": [{**item, "trace_id": new_id()}]}),
            ben.post(EXPERIMENTS, json={"id": owned["experiment"], "dataset_name": "d"}),
            ben.put(
                f"{ITEMS}/bulk",
                json={
                    **run,
                    "experiment_id": owned["experiment"],
                    "items": [{"dataset_item_id": new_id(), "evaluate_task_result": {}}],
                },
            ),
            ben.put(
                f"{ITEMS}/bulk",
                json={**run, "items": [{"dataset_item_id": new_id(), "trace": trace}]},
            ),
            ben.post("/v1/private/traces/batch", json={"traces": [trace]}),
            ben.patch(f"/v1/private/traces/{owned['trace']}", json={"name": "ben's"}),
            ben.post(
                "/v1/private/spans/batch",
                json={"spans": [{"id": owned["span"], "trace_id": new_id(), "start_time": START}]},
            ),
            ben.patch(
                f"/v1/private/spans/{owned['span']}",
                json={"trace_id": owned["trace"], "name": "ben's"},
            ),
            ben.patch(f"/v1/private/experiments/{owned['experiment']}", json={"name": "ben's"}),
            ben.post("/v1/private/datasets", json={"id": owned["dataset"], "name": "ben's"}),
            ben.put(
                "/v1/private/datasets/items",
                json={
                    "dataset_name": "ben's",
                    "items": [{"id": owned["dataset_item"], "source": "sdk", "data": {"q": 1}}],
                },
            ),
            ben.put(
                "/v1/private/traces/feedback-scores",
                json={"scores": [{"id": owned["trace"], "name": "f", "value": 1, "source": "sdk"}]},
            ),
            ben.put(
                "/v1/private/spans/feedback-scores",
                json={"scores": [{"id": owned["span"], "name": "f", "value": 1, "source": "sdk"}]},
            ),
        ]
        deleted = [
            ben.post("/v1/private/experiments/items/delete", json={"ids": [owned["item"]]}),
            ben.post("/v1/private/experiments/delete", json={"ids": [owned["experiment"]]}),
            ben.delete(f"/v1/private/datasets/{owned['dataset']}"),
            ben.post("/v1/private/datasets/delete", json={"dataset_name": "ann-secret"}),
            ben.post(
                "/v1/private/datasets/items/delete", json={"item_ids": [owned["dataset_item"]]}
            ),
            ben.post(
                "/v1/private/datasets/items/delete",
                json={"dataset_id": owned["dataset"], "items": []},
            ),
            # Ann's trace, span and their scores: a delete of nothing, saying nothing.
            ben.post(
                f"/v1/private/traces/{owned['trace']}/feedback-scores/delete",
                json={"name": "ann-score"},
            ),
            ben.post(
                f"/v1/private/spans/{owned['span']}/feedback-scores/delete",
                json={"name": "ann-score", "author": "ann"},
            ),
            ben.post("/v1/private/traces/delete", json={"ids": [owned["trace"]]}),
            ben.post(
                "/v1/private/traces/delete",
                json={"ids": [owned["trace"]], "project_id": owned["project"]},
            ),
            ben.delete(f"/v1/private/traces/{owned['trace']}"),
        ]

    # An experiment of another workspace is not found by its PATCH, as on read.
    assert [c.status_code for c in collisions] == [409] * 8 + [404] + [409] * 4, [
        c.text for c in collisions
    ]
    # A delete of what Ben does not own is a delete of nothing: 204, or 404 for a name.
    assert [d.status_code for d in deleted] == [204, 204, 204, 404, 204, 204] + [204] * 5
    assert [r.status_code for r in lookups] == [404, 404, 200]
    assert lookups[2].content == b""
    assert fingerprint(server.db, "one") == anns
    with httpx.Client(base_url=server.url, headers=ANN) as ann:
        assert ann.get(f"/v1/private/experiments/items/{owned['item']}").status_code == 200
        assert ann.get(f"/v1/private/experiments/{owned['experiment']}").status_code == 200
        for path in ID_OF:  # every record of hers that Ben tried, by its id, still hers
            if path != "/v1/private/experiments/items/":
                kind = ID_OF[path]
                assert ann.get(path + owned[kind]).status_code == 200, kind
        for kind in ("trace", "span"):  # with their spans and scores
            record = ann.get(f"/v1/private/{kind}s/{owned[kind]}").json()
            assert [s["name"] for s in record["feedback_scores"]] == ["ann-score"], kind
        assert ann.get(f"/v1/private/traces/{owned['trace']}").json()["span_count"] == 1
        page = ann.get(f"/v1/private/datasets/{owned['dataset']}/items").json()
        assert [i["id"] for i in page["content"]] == [owned["dataset_item"]]


def test_keys_never_reach_the_log(
    server: Server, doc: dict[str, Any], owned: dict[str, str]
) -> None:
    httpx.get(f"{server.url}/v1/private/experiments/items/{owned['item']}", headers=ANN)
    httpx.get(f"{server.url}/v1/private/experiments/items/{owned['item']}", headers=BEN)
    log = server.logs()

    assert "request_id=" in log  # the access log is on
    for secret in (ANN_KEY, BEN_KEY, ANN_KEY[:-1], sha(ANN_KEY), sha(BEN_KEY)):
        assert secret not in log


# Ben's things that no page of Ann's may ever show.
BEN_MARKS = ("ben-ui-secret", "ben secret run", "BEN-SECRET", "ben-secret-span", "ben-secret")


def test_with_one_workspaces_key_in_the_cookie_no_page_shows_anything_of_another(
    server: Server,
) -> None:
    mine = record(server.url, ANN, dataset="ann-ui", experiments=("ann ui a", "ann ui b"),
                  items=2, hostile=False)  # fmt: skip
    ben_trace, ben_item, ben_run = new_id(), new_id(), new_id()
    with httpx.Client(base_url=f"{server.url}/v1/private", headers=BEN) as ben:
        body = {
            "dataset_name": "ben-ui-secret",
            "items": [{"id": ben_item, "source": "sdk", "data": {"q": "BEN-SECRET-Q"}}],
        }
        assert ben.put("/datasets/items", json=body).status_code == 204
        trace = {
            "id": ben_trace,
            "start_time": START,
            "input": {"q": "BEN-SECRET-INPUT"},
            "output": {"a": "BEN-SECRET-OUTPUT"},
        }
        run = {"experiment_name": "ben secret run", "experiment_id": ben_run,
               "dataset_name": "ben-ui-secret",
               "items": [{"dataset_item_id": ben_item, "trace": trace,
                          "spans": [{"name": "ben-secret-span", "type": "llm",
                                     "start_time": START}],
                          "feedback_scores": [{"name": "ben-secret-score", "value": 1,
                                               "source": "sdk"}]}]}  # fmt: skip
        assert ben.put("/experiments/items/bulk", json=run).status_code == 204
        ben_dataset = ben.post("/datasets/retrieve", json={"dataset_name": "ben-ui-secret"})
    ann_runs = list(mine.experiments.values())
    # Ann's experiment names Ben's trace in an item of its own: ids are global, rows are not.
    stray = new_id()
    with httpx.Client(base_url=server.url, headers=ANN) as ann:
        item = {"id": new_id(), "experiment_id": ann_runs[0], "dataset_item_id": stray,
                "trace_id": ben_trace, "project_name": "support-bot"}  # fmt: skip
        assert ann.post(ITEMS, json={"experiment_items": [item]}).status_code == 204
    theirs = {
        "dataset": ben_dataset.json()["id"],
        "experiment": ben_run,
        "dataset item": ben_item,
        "trace": ben_trace,
    }
    two = "&".join(f"experiments={key}" for key in ann_runs)
    with httpx.Client(base_url=server.url, timeout=30) as page:
        assert page.post("/ui/login", data={"key": ANN_KEY}).status_code == 303
        # Whatever else the request says (Ben's key, his workspace), the cookie decides.
        page.headers.update({"Authorization": BEN_KEY, "Comet-Workspace": "two"})
        foreign = {
            f"/ui/datasets/{theirs['dataset']}",
            f"/ui/experiments/{ben_run}",
            f"/ui/compare?experiments={ben_run}&experiments={ann_runs[0]}",
            f"/ui/compare?experiments={ann_runs[0]}&experiments={ben_run}&baseline={ben_run}",
            f"/ui/items/{ben_item}?experiments={ben_run}",
            f"/ui/items/{ben_item}?experiments={ann_runs[0]}",
            f"/ui/items/{mine.dataset_items[0]}?experiments={ben_run}",
            *(f"/ui/{kind}/{key}" for kind in ("datasets", "experiments")
              for key in theirs.values()),
            *(f"/ui/items/{key}?experiments={ann_runs[0]}" for key in theirs.values()),
        }  # fmt: skip
        own = [
            "/",
            f"/ui/datasets/{mine.dataset_id}",
            *(f"/ui/experiments/{key}" for key in ann_runs),
            f"/ui/compare?{two}",
            f"/ui/compare?{two}&diff=1",
            f"/ui/compare?{two}&q=secret",
            f"/ui/items/{mine.dataset_items[0]}?{two}",
            f"/ui/items/{stray}?{two}",  # the item that names Ben's trace
        ]
        answers = {path: page.get(path) for path in [*sorted(foreign), *own]}
    with httpx.Client(base_url=server.url) as page:  # the control: Ben sees his own
        assert page.post("/ui/login", data={"key": BEN_KEY}).status_code == 303
        bens = page.get(f"/ui/items/{ben_item}?experiments={ben_run}").text

    assert all(mark in bens for mark in BEN_MARKS if mark != "ben-ui-secret")
    for path in foreign:
        assert answers[path].status_code == 404, path
    for path in own:
        assert answers[path].status_code == 200, path
    for path, answer in answers.items():
        for mark in BEN_MARKS:
            assert mark not in answer.text, (path, mark)
    assert "ann-ui" in answers["/"].text
    assert "Its trace is not stored here." in answers[f"/ui/items/{stray}?{two}"].text
