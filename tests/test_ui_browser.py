"""The web UI in a real browser: Debian's chromium, headless, loads each view from a real
server holding an evaluation (3 experiments on one dataset, with traces, spans, scores and
hostile text). No console errors, the expected names and figures in the rendered DOM, and
no stored payload runs. Screenshots go to the test's temporary folder."""

from collections.abc import Iterator
from pathlib import Path

import pytest

from app import demo
from tests.cdp import CHROMIUM, Page, browser_page
from tests.evaluation import (
    DIFFERING,
    DISAGREEMENTS,
    EXPERIMENTS,
    IMAGE,
    SCRIPT,
    Evaluation,
    record,
    record_disagreements,
)
from tests.factories import sha
from tests.running import running_server

pytestmark = pytest.mark.skipif(
    CHROMIUM is None,
    reason="no chromium on PATH: `apt-get install -y chromium` (.ci/run installs it)",
)
KEY = "browser-test-key"


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("browser")


@pytest.fixture(scope="module")
def server(folder: Path) -> Iterator[str]:
    with running_server(folder / "ui.db", "--no-access-log") as url:
        yield url


@pytest.fixture(scope="module")
def evaluation(server: str) -> Evaluation:
    return record(server)


@pytest.fixture(scope="module")
def page(folder: Path) -> Iterator[Page]:
    with browser_page(folder) as opened:
        yield opened


def _views(e: Evaluation) -> dict[str, tuple[str, list[str]]]:
    keys = [e.experiments[n] for n in EXPERIMENTS]
    compare = "&".join(f"experiments={k}" for k in keys)
    return {
        "datasets": ("/", [e.dataset_name, "3"]),
        "experiments": (
            f"/ui/datasets/{e.dataset_id}",
            [*EXPERIMENTS, "correct", "relevance", "$0.0012", "225 ms"],
        ),
        "experiment": (
            f"/ui/experiments/{keys[1]}",
            ["Open Settings, then Security (answer 1-1)", "matches the expected answer", "210 ms"],
        ),
        "compare": (f"/ui/compare?{compare}", ["(baseline)", "▲ +0.1", "make baseline"]),
        "item": (
            f"/ui/items/{e.dataset_items[1]}?{compare}",
            ["How do I reset password number 1?", "llm call", "prompt_tokens 101", "$0.0003"],
        ),
    }


def test_each_view_renders_its_figures_without_console_errors(
    server: str, evaluation: Evaluation, page: Page, folder: Path
) -> None:
    for view, (path, expected) in _views(evaluation).items():
        page.load(f"{server}{path}")
        page.screenshot(folder / f"{view}.png")
        shown = page.text()

        assert page.errors() == [], view
        for text in expected:
            assert text in shown, (view, text)
    histograms = page.evaluate("document.querySelectorAll('figure.histogram svg rect').length")
    assert histograms == 0  # the item page has none; the compare page does:
    page.load(f"{server}{_views(evaluation)['compare'][0]}")
    assert page.evaluate("document.querySelectorAll('figure.histogram svg rect.bar').length") > 0


def test_stored_markup_shows_as_text_and_never_runs(
    server: str, evaluation: Evaluation, page: Page
) -> None:
    for view in ("experiment", "compare", "item"):
        path = _views(evaluation)[view][0].replace(
            evaluation.dataset_items[1], evaluation.dataset_items[0]
        )
        page.load(f"{server}{path}")
        shown = page.text()

        assert page.evaluate("typeof window.xss") == "undefined", view
        assert page.evaluate("document.querySelectorAll('main script, main img').length") == 0
        assert SCRIPT in shown, view  # the stored text, as text
        assert IMAGE in shown or "onerror" in shown, view
        assert page.errors() == [], view


def test_the_differences_only_switch_keeps_the_items_where_experiments_differ(
    server: str, page: Page, folder: Path
) -> None:
    runs, _ = record_disagreements(server)
    page.load(f"{server}/ui/compare?experiments={runs[0]}&experiments={runs[1]}")
    every = page.evaluate("document.querySelectorAll('[data-testid=rows] tbody tr').length")
    page.evaluate("document.querySelector('form.filter input[name=diff]').checked = true")
    page.submit("form.filter")
    page.screenshot(folder / "differences.png")
    shown = page.text()
    rows = page.evaluate("document.querySelectorAll('[data-testid=rows] tbody tr').length")

    assert every == len(DISAGREEMENTS)
    assert rows == len(DIFFERING)
    for case in DISAGREEMENTS:
        assert (case in shown) == (case in DIFFERING), case
    assert page.evaluate("document.querySelector('input[name=diff]').checked") is True
    assert page.errors() == []


def test_a_key_typed_into_the_form_opens_its_workspace_in_an_httponly_cookie(
    folder: Path, page: Page
) -> None:
    keys = folder / "keys.toml"
    keys.write_text(f'[[keys]]\nworkspace = "research"\nuser = "ann"\nsha256 = "{sha(KEY)}"\n')
    with running_server(folder / "keys.db", "--no-access-log", "--api-keys", str(keys)) as url:
        record(url, {"Authorization": KEY}, dataset="research-set", items=2, hostile=False)
        page.load(f"{url}/")
        asked = page.text()
        page.submit("form.login", key=KEY)
        shown = page.text()
        cookie = page.evaluate("document.cookie")

    assert "An API key, please" in asked
    assert "research-set" in shown
    assert "research" in shown
    assert cookie == ""  # HttpOnly: no script of the page can read the key


def test_serve_with_the_demo_opens_on_its_experiments(folder: Path, page: Page) -> None:
    with running_server(folder / "demo.db", "--no-access-log", "--demo") as url:
        page.load(f"{url}/")
        home = page.text()
        page.load(page.evaluate("document.querySelector('a[href^=\"/ui/datasets/\"]').href"))
        experiments = page.text()
        errors = page.errors()

    assert demo.DATASET in home
    for name in demo.EXPERIMENTS:
        assert name in experiments
    assert "correct" in experiments
    assert "relevance" in experiments
    assert errors == []
