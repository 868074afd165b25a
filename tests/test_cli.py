"""The command line in real processes: help, exit codes, one-line errors, serve's first words,
the demo data set and stats."""

import json
import shlex
import shutil
import subprocess
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from app import demo
from app.sqlite.connection import SCHEMA_VERSION
from tests.command import run
from tests.running import running_server

COMMANDS = ("serve", "backup", "restore", "stats", "demo", "migrate")
REPO = Path(__file__).resolve().parent.parent


def test_help_lists_every_command_and_the_exit_codes() -> None:
    result = run("--help")

    assert result.returncode == 0
    for command in COMMANDS:
        assert f"    {command} " in result.stdout
    assert "2 usage or configuration error" in result.stdout


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help(command: str) -> None:
    result = run(command, "--help")

    assert result.returncode == 0
    assert result.stdout.startswith(f"usage: experiment-items {command} ")
    assert "--debug" in result.stdout
    assert result.stderr == ""


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((), "experiment-items: error: the following arguments are required: COMMAND"),
        (("launch",), "experiment-items: error: argument COMMAND: invalid choice: 'launch'"),
        (("backup",), "experiment-items backup: error: the following arguments are required"),
        (("serve", "--port", "x"), "experiment-items serve: error: argument --port"),
        (
            ("serve", "--db", "{tmp}/x.db", "--head-timeout-seconds", "0"),
            "experiment-items: error: head_timeout_seconds must be a finite number of seconds",
        ),
        (("stats", "--top", "many"), "experiment-items stats: error: argument --top: invalid"),
        (("stats", "--db", "{tmp}/missing.db"), "experiment-items: error: no database at"),
        (("restore", "{tmp}/missing.db"), "experiment-items: error: no backup at"),
    ],
)
def test_a_usage_error_is_one_line_and_exit_code_2(
    tmp_path: Path, args: tuple[str, ...], message: str
) -> None:
    result = run(*(arg.format(tmp=tmp_path) for arg in args))

    assert result.returncode == 2
    assert result.stderr.startswith(message)
    assert result.stderr.count("\n") == 1
    assert result.stdout == ""


def test_a_bad_environment_variable_is_a_usage_error(tmp_path: Path) -> None:
    result = run("serve", "--db", str(tmp_path / "x.db"), EXPERIMENT_ITEMS_WORKERS="two")

    assert result.returncode == 2
    assert result.stderr == (
        "experiment-items: error: EXPERIMENT_ITEMS_WORKERS='two': "
        "invalid literal for int() with base 10: 'two'\n"
    )


def test_a_failed_operation_is_one_line_and_exit_code_1(tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.db"
    garbage.write_bytes(b"not a database, only some bytes" * 200)

    result = run("restore", "--db", str(tmp_path / "items.db"), str(garbage))

    assert result.returncode == 1
    assert result.stderr == (
        f"experiment-items: error: cannot restore {garbage}: file is not a database\n"
    )


def test_debug_adds_the_traceback(tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.db"
    garbage.write_bytes(b"not a database, only some bytes" * 200)

    result = run("restore", "--debug", "--db", str(tmp_path / "items.db"), str(garbage))

    assert result.returncode == 1
    assert result.stderr.startswith("Traceback (most recent call last):")
    assert result.stderr.endswith("error: cannot restore " + f"{garbage}: file is not a database\n")


@pytest.mark.skipif(shutil.which("curl") is None, reason="needs curl")
def test_serve_prints_where_it_is_and_curl_lines_that_work(tmp_path: Path) -> None:
    db, log = tmp_path / "items.db", tmp_path / "server.log"

    with running_server(db, log=log):
        banner = dict(_banner_lines(log.read_text()))
        written = _curl(banner["write one"])
        read = _curl(banner["read it"])

    assert banner["database"] == str(db.resolve())
    assert "OPIK_URL_OVERRIDE=http://127.0.0.1:" in banner["listening"]
    assert written.splitlines()[0].split()[1] == "204"
    assert json.loads(read)["created_by"] == "admin"


def test_serve_with_the_demo_serves_its_items(tmp_path: Path) -> None:
    log = tmp_path / "server.log"

    with running_server(tmp_path / "items.db", "--demo", log=log) as url:
        banner = dict(_banner_lines(log.read_text()))
        item_id = banner["read it"].split("/")[-1]
        read = httpx.get(f"{url}/api/v1/private/experiments/items/{item_id}")

    assert banner["demo"] == "60 items in workspace default"
    assert read.status_code == 200


def _experiment_names(url: str) -> list[str]:
    answer = httpx.get(f"{url}/v1/private/experiments", params={"size": 100})
    assert answer.status_code == 200
    return sorted(e["name"] for e in answer.json()["content"])


def test_demo_if_new_fills_a_new_database_once_and_never_an_existing_one(
    tmp_path: Path,
) -> None:
    new, log = tmp_path / "new.db", tmp_path / "server.log"
    with running_server(new, "--demo-if-new", log=log) as url:
        first = dict(_banner_lines(log.read_text()))
        loaded = _experiment_names(url)
        home = httpx.get(f"{url}/")
    with running_server(new, "--demo-if-new", log=log) as url:
        second = dict(_banner_lines(log.read_text()))
        again = _experiment_names(url)
    mine = tmp_path / "mine.db"
    with running_server(mine) as url:
        body = {"name": "my own run", "dataset_name": "mine"}
        assert httpx.post(f"{url}/v1/private/experiments", json=body).status_code == 201
    with running_server(mine, "--demo-if-new", log=log) as url:
        kept = _experiment_names(url)

    assert loaded == sorted(demo.EXPERIMENTS)
    assert first["demo"] == "60 items in workspace default"
    assert "make run DEMO=0" in first["demo note"]
    assert first["web UI"].startswith("http://127.0.0.1:")
    assert demo.DATASET in home.text  # what `make run` then opening / shows
    assert again == loaded  # not loaded twice
    assert "demo" not in second
    assert second["demo note"].startswith("not loaded: the database existed")
    assert kept == ["my own run"]


@pytest.mark.skipif(shutil.which("make") is None, reason="needs make")
def test_make_run_loads_the_demo_only_into_a_new_database_unless_told_not_to() -> None:
    def dry_run(*args: str) -> str:
        done = subprocess.run(
            ["make", "-n", "run", *args], cwd=REPO, capture_output=True, text=True, check=True
        )
        return done.stdout

    made, empty = dry_run(), dry_run("DEMO=0")

    assert "experiment-items serve --demo-if-new" in made
    assert "--demo" not in empty


def test_every_id_the_demo_prints_reads_back_over_http(tmp_path: Path) -> None:
    db = tmp_path / "items.db"
    printed = run("demo", "--db", str(db))
    experiment_ids = [
        line.split()[1] for line in printed.stdout.splitlines() if "experiment " in line
    ]
    item_url = printed.stdout.splitlines()[-1].split("curl ")[1]

    with running_server(db) as url:
        experiments = [httpx.get(f"{url}/v1/private/experiments/{key}") for key in experiment_ids]
        item = httpx.get(f"{url}{urlsplit(item_url).path}")

    assert printed.returncode == 0
    assert len(experiment_ids) == 3
    assert [answer.status_code for answer in experiments] == [200, 200, 200]
    assert {answer.json()["dataset_name"] for answer in experiments} == {"support-questions"}
    assert item.status_code == 200
    assert item.json()["experiment_id"] == experiment_ids[0]


def test_demo_then_stats(tmp_path: Path) -> None:
    db = tmp_path / "items.db"

    assert run("demo", "--db", str(db)).returncode == 0
    assert run("demo", "--db", str(db)).returncode == 0  # the same items again, updated
    result = run("stats", "--json", "--top", "2", EXPERIMENT_ITEMS_DB=str(db))

    assert result.returncode == 0
    found = json.loads(result.stdout)
    assert found["schema_version"] == SCHEMA_VERSION
    assert found["database"] == str(db.resolve())
    assert found["file_bytes"] + found["wal_bytes"] > 0
    assert found["tables"]["experiment_items"] == 60
    assert found["workspaces"]["default"]["experiment_items"] == 60
    assert found["workspaces"]["default"]["projects"] == 1
    assert [e["items"] for e in found["top_experiments"]] == [20, 20]


def test_stats_as_text(tmp_path: Path) -> None:
    db = tmp_path / "items.db"
    run("demo", "--db", str(db))

    lines = run("stats", "--db", str(db)).stdout.splitlines()

    assert lines[0] == f"database  {db.resolve()}"
    assert lines[1] == f"schema    version {SCHEMA_VERSION}"
    assert lines[2].startswith("size      ")
    header = lines[lines.index("rows per workspace") + 1].split()
    default = lines[lines.index("rows per workspace") + 2].split()
    assert dict(zip(header, default, strict=True))["experiment_items"] == "60"
    assert "largest experiments (top 3 by items)" in lines
    assert lines[-1].split()[0] == "default"
    assert lines[-1].split()[-1] == "20"


def test_demo_and_stats_on_postgresql_count_what_sqlite_counts(pg_url: str, tmp_path: Path) -> None:
    db = tmp_path / "items.db"
    found = {}
    for location in (str(db), pg_url):
        assert run("demo", "--db", location).returncode == 0
        result = run("stats", "--json", "--top", "2", "--db", location)
        assert result.returncode == 0, result.stderr
        found[location] = json.loads(result.stdout)
    text = run("stats", "--db", pg_url).stdout.splitlines()

    on_sqlite, on_postgres = found[str(db)], found[pg_url]
    for name in ("schema_version", "tables", "workspaces", "top_experiments"):
        assert on_postgres[name] == on_sqlite[name], name
    assert on_postgres["tables"]["experiment_items"] == 60
    assert on_postgres["size_bytes"] == sum(on_postgres["table_bytes"].values()) > 0
    assert text[:2] == [f"database  {pg_url}", f"schema    version {SCHEMA_VERSION}"]
    assert text[2].startswith("size      ")
    assert text[3:] == run("stats", "--db", str(db)).stdout.splitlines()[3:]


def test_demo_if_new_on_postgresql_fills_a_database_without_its_tables_once(
    pg_url: str, tmp_path: Path
) -> None:
    log = tmp_path / "server.log"
    with running_server(pg_url, "--demo-if-new", log=log) as url:
        first = dict(_banner_lines(log.read_text()))
        loaded = _experiment_names(url)
    with running_server(pg_url, "--demo-if-new", log=log) as url:
        second = dict(_banner_lines(log.read_text()))

    assert loaded == sorted(demo.EXPERIMENTS)
    assert first["demo"] == "60 items in workspace default"
    assert second["demo note"].startswith("not loaded: the database existed")


def _banner_lines(log: str) -> list[tuple[str, str]]:
    """`serve`'s first lines, `  label  text`, up to uvicorn's own log."""
    lines = log.split("INFO:")[0].splitlines()[1:]
    return [(line[:13].strip(), line[13:].strip()) for line in lines]


def _curl(line: str) -> str:
    args = shlex.split(line)
    assert args[0] == "curl"
    return subprocess.run(
        [*args, "--silent", "--show-error", "--max-time", "10"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
