"""The web UI over HTTP against a real server: each page's status and content, stored text
shown escaped, workspaces kept apart, and API keys through the login form's cookie."""

import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from tests.evaluation import (
    DIFFERING,
    EXPERIMENTS,
    IMAGE,
    SCRIPT,
    Evaluation,
    record,
    record_disagreements,
)
from tests.factories import sha
from tests.postgres import Cluster
from tests.running import running_server

KEY = "ui-test-key-research"
OTHER_KEY = "ui-test-key-other"


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def ui_engine(request: pytest.FixtureRequest) -> str:
    """The engine of the module's servers: every page is checked on both."""
    return str(request.param)


@contextmanager
def serving(engine: str, request: pytest.FixtureRequest, folder: Path, *args: str) -> Iterator[str]:
    """A server on a new database of `engine` (a file in `folder`, or one of the cluster's)."""
    if engine == "sqlite":
        with running_server(folder / "ui.db", *args) as url:
            yield url
        return
    cluster: Cluster = request.getfixturevalue("pg_cluster")
    name = f"ui_{folder.name}".replace("-", "_")
    try:
        with running_server(cluster.create_database(name), *args, log=folder / "ui.log") as url:
            yield url
    finally:
        cluster.drop_database(name)


@pytest.fixture(scope="module")
def server(
    ui_engine: str, request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    with serving(ui_engine, request, tmp_path_factory.mktemp("ui"), "--no-access-log") as url:
        yield url


@pytest.fixture(scope="module")
def evaluation(server: str) -> Evaluation:
    return record(server)


@pytest.fixture(scope="module")
def elsewhere(server: str, evaluation: Evaluation) -> Evaluation:
    """An evaluation in workspace `other`, on a dataset of another name."""
    return record(
        server, {"Comet-Workspace": "other"}, dataset="other-questions",
        experiments=("other run a", "other run b"), items=2, hostile=False,
    )  # fmt: skip


def text_of(html: str) -> str:
    """The page's text without its tags, as a reader sees it (entities left as they are)."""
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


def get(url: str, path: str, **kwargs: object) -> httpx.Response:
    return httpx.get(f"{url}{path}", timeout=10, **kwargs)  # type: ignore[arg-type]


def compare_path(*keys: str, **params: str) -> str:
    query = "&".join(
        [*(f"experiments={k}" for k in keys), *(f"{k}={v}" for k, v in params.items())]
    )
    return f"/ui/compare?{query}"


def test_the_root_is_an_html_page_of_the_workspaces_datasets(
    server: str, evaluation: Evaluation, elsewhere: Evaluation
) -> None:
    answer = get(server, "/")

    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/html")
    assert "script-src" not in answer.headers["content-security-policy"]  # none allowed
    assert "default-src 'none'" in answer.headers["content-security-policy"]
    assert evaluation.dataset_name in answer.text
    assert f"/ui/datasets/{evaluation.dataset_id}" in answer.text
    assert elsewhere.dataset_name not in answer.text
    assert '<option value="other"' in answer.text  # the picker offers it


def test_the_api_keeps_its_paths_and_its_json_404(server: str) -> None:
    answer = get(server, "/v1/private/no-such-route")

    assert answer.status_code == 404
    assert answer.json()["code"] == 404
    assert get(server, "/is-alive/ping").status_code == 200


def test_picking_a_workspace_shows_only_its_datasets(
    server: str, evaluation: Evaluation, elsewhere: Evaluation
) -> None:
    with httpx.Client(base_url=server) as client:
        picked = client.post("/ui/workspace", data={"workspace": "other"})
        assert picked.status_code == 303
        cookie = picked.headers["set-cookie"].lower()
        assert "httponly" in cookie
        assert "samesite=strict" in cookie
        home = client.get("/")
        mine = client.get(f"/ui/experiments/{evaluation.experiments[EXPERIMENTS[0]]}")

    assert elsewhere.dataset_name in home.text
    assert evaluation.dataset_name not in home.text
    assert mine.status_code == 404  # an experiment of workspace default is not found


def test_a_dataset_page_lists_its_experiments_with_their_aggregates(
    server: str, evaluation: Evaluation
) -> None:
    answer = get(server, f"/ui/datasets/{evaluation.dataset_id}")
    shown = text_of(answer.text)

    assert answer.status_code == 200
    for name in EXPERIMENTS:
        assert name in answer.text
    assert "correct" in shown
    assert "relevance" in shown
    assert "$0.0012" in shown  # the second experiment's cost: 6 items of $0.0002
    # Newest first: the last recorded experiment is the first row.
    rows = re.findall(r'href="/ui/experiments/([0-9a-f-]+)"', answer.text)
    assert rows == [evaluation.experiments[n] for n in reversed(EXPERIMENTS)]


def test_experiments_filter_by_name_and_sort_by_a_score(
    server: str, evaluation: Evaluation
) -> None:
    base = f"/ui/datasets/{evaluation.dataset_id}"
    filtered = get(server, f"{base}?q=HAIKU")
    ascending = get(server, f"{base}?sort=feedback_scores.relevance&dir=asc")
    descending = get(server, f"{base}?sort=feedback_scores.relevance&dir=desc")

    def order(answer: httpx.Response) -> list[str]:
        return re.findall(r'href="/ui/experiments/([0-9a-f-]+)"', answer.text)

    assert order(filtered) == [evaluation.experiments["claude-haiku + retrieval"]]
    assert order(ascending) == [evaluation.experiments[n] for n in EXPERIMENTS]
    assert order(descending) == [evaluation.experiments[n] for n in reversed(EXPERIMENTS)]


def test_an_experiment_page_shows_items_outputs_scores_and_reasons(
    server: str, evaluation: Evaluation
) -> None:
    key = evaluation.experiments[EXPERIMENTS[1]]
    answer = get(server, f"/ui/experiments/{key}")
    searched = get(server, f"/ui/experiments/{key}?q=number+3")

    assert answer.status_code == 200
    assert "Open Settings, then Security (answer 1-1)" in answer.text
    assert "matches the expected answer" in answer.text
    assert "210 ms" in answer.text  # item 1's trace: 200 + 10 ms
    assert "6 items" in text_of(answer.text)
    assert "<svg" in answer.text  # its histograms
    assert "password number 3" in searched.text
    assert "password number 2" not in searched.text
    assert "1 items" in text_of(searched.text)


def test_compare_marks_each_score_change_against_the_baseline(
    server: str, evaluation: Evaluation
) -> None:
    keys = [evaluation.experiments[n] for n in EXPERIMENTS]
    answer = get(server, compare_path(*keys))
    flipped = get(server, compare_path(*keys, baseline=keys[2]))

    assert answer.status_code == 200
    assert "(baseline)" in answer.text
    assert 'class="up"' in answer.text
    assert 'class="down"' in answer.text
    assert "▲ +0.1" in answer.text  # relevance: 0.1 higher per experiment
    assert "▼ -0.2" in flipped.text  # against the last one, the first is 0.2 lower
    assert "different datasets" not in answer.text


def test_differences_only_leaves_out_the_items_where_all_agree(server: str) -> None:
    twins = record(
        server, dataset="twins", experiments=("twin a", "twin b", "twin c"), items=3,
        hostile=False, variants=(0, 0, 1),
    )  # fmt: skip
    a, b, c = twins.experiments.values()
    every = get(server, compare_path(a, b))
    alike = get(server, compare_path(a, b, diff="1"))
    different = get(server, compare_path(a, c, diff="1"))

    assert "3 dataset items" in text_of(every.text)
    assert 'data-testid="no-rows"' in alike.text
    assert "where the experiments differ" in alike.text
    assert "3 dataset items" in text_of(different.text)  # relevance differs on each
    assert 'data-testid="all-rows"' in different.text


def _rows_of(answer: httpx.Response) -> list[str]:
    """The dataset items a compare page shows, in order."""
    return re.findall(r'href="/ui/items/([0-9a-f-]+)\?', answer.text)


def test_differences_only_compares_outputs_and_each_scores_authors_average(server: str) -> None:
    runs, items = record_disagreements(server)
    every = get(server, compare_path(*runs))
    different = get(server, compare_path(*runs, diff="1"))

    assert sorted(_rows_of(every)) == sorted(items.values())
    assert sorted(_rows_of(different)) == sorted(items[case] for case in DIFFERING)
    assert f"{len(DIFFERING)} dataset items" in text_of(different.text)


def test_compare_warns_when_the_experiments_are_on_different_datasets(
    server: str, evaluation: Evaluation
) -> None:
    other = record(server, dataset="another-dataset", experiments=("elsewhere",), items=1)
    keys = [evaluation.experiments[EXPERIMENTS[0]], other.experiments["elsewhere"]]
    answer = get(server, compare_path(*keys))

    assert answer.status_code == 200
    assert 'data-testid="datasets-differ"' in answer.text
    assert "another-dataset" in answer.text


def test_compare_needs_two_experiments_of_the_workspace(
    server: str, evaluation: Evaluation, elsewhere: Evaluation
) -> None:
    one = evaluation.experiments[EXPERIMENTS[0]]
    theirs = elsewhere.experiments["other run a"]

    assert get(server, compare_path(one)).status_code == 400
    assert get(server, compare_path(one, theirs)).status_code == 404
    assert get(server, compare_path(one, "not-an-id")).status_code == 400


# A query parameter a page cannot take, and what its 400 page says (the part that names it).
BAD_QUERIES = [
    ("dataset", "page=0", "page: a whole number from 1"),
    ("dataset", "page=%C2%B2", "page: a whole number"),  # "²": a digit to str.isdigit()
    ("dataset", "page=" + "1" * 5000, "page: a whole number"),
    ("dataset", "page=-1", "page: a whole number"),
    ("dataset", "size=101", "size: a whole number from 1 to 100"),
    ("dataset", "size=ten", "size: a whole number"),
    ("dataset", "sort=password", "sort: one of name"),
    ("dataset", "sort=feedback_scores.", "sort: feedback_scores.NAME"),
    ("dataset", "dir=sideways", "dir: asc or desc"),
    ("dataset", "q=" + "x" * 201, "q: at most 200 characters"),
    ("experiment", "page=1.5", "page: a whole number"),
    ("experiment", "q=" + "y" * 300, "q: at most 200 characters"),
    ("compare", "experiments=not-an-id", "experiments: “not-an-id” is not an experiment id"),
    ("compare", "baseline=not-an-id", "baseline: the id of one of the experiments"),
    ("compare", "baseline=0190f5b4-7c1a-7000-8000-00000000000b", "baseline: the id of one"),
    ("compare", "diff=yes", "diff: 1 or 0"),
    ("compare", "size=0", "size: a whole number"),
    ("compare", "experiments=" + ",".join(f"0190f5b4-7c1a-7000-8000-0000000000{n:02x}"
                                          for n in range(9)), "experiments: at most 8"),
    ("item", "experiments=%00", "is not an experiment id"),
]  # fmt: skip


@pytest.mark.parametrize(("view", "query", "message"), BAD_QUERIES)
def test_a_parameter_a_page_cannot_take_is_a_400_page_that_names_it(
    server: str, evaluation: Evaluation, view: str, query: str, message: str
) -> None:
    keys = [evaluation.experiments[n] for n in EXPERIMENTS]
    paths = {
        "dataset": f"/ui/datasets/{evaluation.dataset_id}?",
        "experiment": f"/ui/experiments/{keys[0]}?",
        "compare": compare_path(*keys) + "&",
        "item": f"/ui/items/{evaluation.dataset_items[0]}?experiments={keys[0]}&",
    }
    answer = get(server, paths[view] + query)

    assert answer.status_code == 400
    assert answer.headers["content-type"].startswith("text/html")
    assert "default-src 'none'" in answer.headers["content-security-policy"]
    assert message in answer.text.replace("&amp;", "&")


def test_the_parameters_a_page_takes_keep_their_meaning(
    server: str, evaluation: Evaluation
) -> None:
    keys = [evaluation.experiments[n] for n in EXPERIMENTS]
    base = f"/ui/datasets/{evaluation.dataset_id}"
    two = get(server, f"{base}?size=2&page=1&sort=name&dir=asc&q=")
    compared = get(server, compare_path(*keys, size="2", diff="0", baseline=keys[1]))

    assert two.status_code == 200
    assert "page 1 of 2 · 3 experiments" in text_of(two.text)
    assert compared.status_code == 200
    assert "page 1 of 3 · 6 dataset items" in text_of(compared.text)


def test_an_item_page_shows_each_output_its_reasons_and_its_spans(
    server: str, evaluation: Evaluation
) -> None:
    keys = [evaluation.experiments[n] for n in EXPERIMENTS[:2]]
    item = evaluation.dataset_items[1]
    answer = get(server, f"/ui/items/{item}?experiments={keys[0]}&experiments={keys[1]}")
    shown = text_of(answer.text)

    assert answer.status_code == 200
    assert "How do I reset password number 1?" in answer.text
    assert "Open Settings, then Security (answer 1-1)" in answer.text  # experiment 1
    assert "I do not know" in answer.text  # experiment 0
    assert "llm call" in shown
    assert "gpt-4o-mini" in shown
    assert "prompt_tokens 101" in shown
    assert "$0.0002" in shown


def test_pages_of_unknown_or_foreign_things_are_404_pages(
    server: str, evaluation: Evaluation, elsewhere: Evaluation
) -> None:
    theirs = elsewhere.experiments["other run a"]
    for path in (
        f"/ui/experiments/{theirs}",
        f"/ui/datasets/{elsewhere.dataset_id}",
        f"/ui/items/{elsewhere.dataset_items[0]}?experiments={theirs}",
        "/ui/experiments/not-an-id",
    ):
        answer = get(server, path)
        assert answer.status_code == 404, path
        assert answer.headers["content-type"].startswith("text/html"), path
        assert "other run a" not in answer.text


def test_stored_markup_is_shown_as_text_on_every_page(server: str, evaluation: Evaluation) -> None:
    keys = [evaluation.experiments[n] for n in EXPERIMENTS]
    pages = [
        "/",
        f"/ui/datasets/{evaluation.dataset_id}",
        f"/ui/experiments/{keys[0]}",
        compare_path(*keys),
        f"/ui/items/{evaluation.dataset_items[0]}?experiments={keys[0]}&experiments={keys[1]}",
    ]
    for path in pages:
        answer = get(server, path)
        assert answer.status_code == 200, path
        assert "<script" not in answer.text, path
        assert "<img" not in answer.text, path
    item_page = get(server, pages[-1]).text
    assert "&lt;script&gt;window.xss = 1&lt;/script&gt;" in item_page
    assert "&lt;img src=" in item_page  # in the score's name and reason, and the output
    assert SCRIPT not in item_page
    assert IMAGE not in item_page


@pytest.fixture(scope="module")
def keyed(
    ui_engine: str, request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    folder = tmp_path_factory.mktemp("ui-keys")
    keys = folder / "keys.toml"
    keys.write_text(
        f'[[keys]]\nworkspace = "research"\nuser = "ann"\nsha256 = "{sha(KEY)}"\n'
        f'[[keys]]\nworkspace = "other"\nuser = "bob"\nsha256 = "{sha(OTHER_KEY)}"\n'
    )
    with serving(ui_engine, request, folder, "--no-access-log", "--api-keys", str(keys)) as url:
        yield url


def test_with_keys_on_a_page_without_a_key_is_the_401_form(keyed: str) -> None:
    answer = get(keyed, "/")
    wrong = httpx.post(f"{keyed}/ui/login", data={"key": "not a key"})

    assert answer.status_code == 401
    assert 'name="key"' in answer.text
    assert wrong.status_code == 401
    assert "not known" in wrong.text
    assert "set-cookie" not in wrong.headers


def test_a_key_given_once_makes_the_pages_act_as_its_workspace(keyed: str) -> None:
    mine = record(keyed, {"Authorization": KEY}, dataset="research-set", items=2, hostile=False)
    theirs = record(keyed, {"Authorization": OTHER_KEY}, dataset="their-set", items=1)
    with httpx.Client(base_url=keyed) as client:
        login = client.post("/ui/login", data={"key": KEY})
        assert login.status_code == 303
        cookie = login.headers["set-cookie"].lower()
        assert "httponly" in cookie
        assert "samesite=strict" in cookie
        assert "path=/" in cookie
        home = client.get("/")
        foreign = client.get(f"/ui/experiments/{next(iter(theirs.experiments.values()))}")
        picked = client.post("/ui/workspace", data={"workspace": "other"})
        after = client.get("/")
        client.post("/ui/logout")
        gone = client.get("/")

    assert home.status_code == 200
    assert "research-set" in home.text
    assert "their-set" not in home.text
    assert "<select" not in home.text  # no picker: the key decides
    assert foreign.status_code == 404
    assert picked.status_code == 403
    assert "their-set" not in after.text
    assert gone.status_code == 401
    assert mine.dataset_name == "research-set"


def test_a_form_posted_from_another_site_is_refused(keyed: str) -> None:
    answer = httpx.post(
        f"{keyed}/ui/login", data={"key": KEY}, headers={"Origin": "https://evil.example"}
    )

    assert answer.status_code == 403
    assert "set-cookie" not in answer.headers


def test_the_stylesheet_is_served_from_the_package(server: str, tmp_path: Path) -> None:
    answer = get(server, "/ui/static/ui.css")

    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/css")
    assert "url(" not in answer.text  # nothing fetched from elsewhere


def test_a_dataset_of_many_experiments_is_paged(server: str) -> None:
    with httpx.Client(base_url=f"{server}/v1/private") as client:
        for n in range(27):
            body = {"name": f"paged run {n:02d}", "dataset_name": "many-runs"}
            assert client.post("/experiments", json=body).status_code == 201
        dataset = client.post("/datasets/retrieve", json={"dataset_name": "many-runs"}).json()
    first = get(server, f"/ui/datasets/{dataset['id']}?q=paged")
    second = get(server, f"/ui/datasets/{dataset['id']}?q=paged&page=2")

    assert "page 1 of 2 · 27 experiments" in text_of(first.text)
    assert 'href="?q=paged&amp;page=2" rel="next"' in first.text
    assert "paged run 26" in first.text  # newest first
    assert "paged run 00" in second.text
    assert "paged run 26" not in second.text
    assert 'rel="prev"' in second.text
