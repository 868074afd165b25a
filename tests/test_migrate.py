"""Migrate: a whole SQLite database, two workspaces of an evaluation, prompts and a trace that
only a PATCH wrote, copied into PostgreSQL, which then exports and serves what SQLite does."""

import asyncio
import json
import sqlite3
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from app import demo, ids
from app.migrate import CACHES
from tests import evaluation
from tests.command import run
from tests.factories import new_id
from tests.running import running_server

API = "/v1/private"
WORKSPACES = ("default", "other")


@dataclass(frozen=True)
class Source:
    db: Path
    prompt_version: str
    partial_trace: str


def _prompt_and_partial_trace(client: httpx.Client) -> tuple[str, str]:
    """A prompt with its version, an experiment that links it, a span's score, and a trace
    that only a PATCH wrote (it waits for its create, and no export line carries it)."""
    made = client.post(f"{API}/prompts", json={"name": "answer", "template": "Q: {{q}}"})
    assert made.status_code == 201, made.text
    version = client.post(f"{API}/prompts/versions/retrieve", json={"name": "answer"}).json()
    linked = {"name": "with a prompt", "dataset_name": "qa", "id": new_id(),
              "prompt_versions": [{"id": version["id"], "commit": version["commit"]}]}  # fmt: skip
    assert client.post(f"{API}/experiments", json=linked).status_code == 201
    span = ids.to_str(demo.demo_id("span", 0))
    score = {"id": span, "name": "grounded", "value": 0.75, "source": "sdk",
             "project_name": demo.PROJECT, "reason": "cites the page"}  # fmt: skip
    answer = client.put(f"{API}/spans/feedback-scores", json={"scores": [score]})
    assert answer.status_code == 204, answer.text
    partial = new_id()
    answer = client.patch(f"{API}/traces/{partial}", json={"project_name": "late", "name": "x"})
    assert answer.status_code == 204, answer.text
    return version["id"], partial


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Source:
    """The demo and an evaluation in workspace default, another evaluation in workspace
    other, written through a real server on SQLite."""
    db = tmp_path_factory.mktemp("source") / "items.db"
    assert run("demo", "--db", str(db)).returncode == 0
    with running_server(db, "--no-access-log") as url, httpx.Client(base_url=url) as client:
        evaluation.record(url, dataset="qa", items=4)
        evaluation.record(url, {"Comet-Workspace": "other"}, dataset="qa", items=3)
        prompt_version, partial = _prompt_and_partial_trace(client)
    return Source(db, prompt_version, partial)


def sqlite_tables(db: Path) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table but the caches, in a stable order, columns by SQLite's order."""
    with closing(sqlite3.connect(db)) as conn:
        names = [n for (n,) in conn.execute("SELECT name FROM sqlite_schema WHERE type='table'")]
        found = {}
        for name in sorted(set(names) - set(CACHES)):
            columns = [c for (c,) in conn.execute("SELECT name FROM pragma_table_info(?)", (name,))]
            rows = conn.execute(f"SELECT {', '.join(columns)} FROM {name}").fetchall()
            found[name] = sorted(rows, key=repr)
        return found


async def postgres_tables(url: str, columns: dict[str, list[str]]) -> dict[str, list[Any]]:
    conn = await asyncpg.connect(url)
    try:
        found = {}
        for name, names in columns.items():
            rows = await conn.fetch(f"SELECT {', '.join(names)} FROM {name}")
            found[name] = sorted((tuple(row) for row in rows), key=repr)
        return found
    finally:
        await conn.close()


def _columns(db: Path) -> dict[str, list[str]]:
    with closing(sqlite3.connect(db)) as conn:
        return {
            name: [c for (c,) in conn.execute("SELECT name FROM pragma_table_info(?)", (name,))]
            for name in sqlite_tables(db)
        }


def _gets(lines: list[dict[str, Any]], source: Source) -> list[str]:
    """The GETs of every record an export names, and the lists and pages over them."""
    paths = [f"{API}/prompts/versions/{source.prompt_version}", f"{API}/traces/{new_id()}"]
    paths += [f"{API}/traces/{source.partial_trace}"]
    experiments = [line["experiment"]["id"] for line in lines if "experiment" in line]
    for line in lines:
        kind, record = next(iter(line.items()))
        key = record.get("id")
        paths += {
            "project": [f"{API}/projects/{key}", f"{API}/traces?project_id={key}&size=50",
                        f"{API}/spans?project_id={key}&size=50"],
            "dataset": [f"{API}/datasets/{key}", f"{API}/datasets/{key}/items?size=50",
                        f"{API}/datasets/{key}/items/experiments/items?experiment_ids="
                        f"{json.dumps(experiments)}"],
            "experiment": [f"{API}/experiments/{key}"],
            "trace": [f"{API}/traces/{key}"],
            "span": [f"{API}/spans/{key}"],
            "experiment_item": [f"{API}/experiments/items/{key}"],
        }.get(kind, [])  # fmt: skip
    return [*paths, f"{API}/experiments?size=100", f"{API}/experiments/feedback-scores/names"]


def _answers(url: str, workspace: str, paths: list[str]) -> list[tuple[str, int, bytes]]:
    headers = {"Comet-Workspace": workspace}
    with httpx.Client(base_url=url, headers=headers) as client:
        return [(path, (r := client.get(path)).status_code, r.content) for path in paths]


def test_a_whole_sqlite_database_moves_into_postgresql_losslessly(
    source: Source, pg_url: str, tmp_path: Path
) -> None:
    migrated = run("migrate", "--from", str(source.db), "--to", pg_url)

    assert migrated.returncode == 0, migrated.stderr
    assert migrated.stdout.startswith(f"migrated {source.db} to {pg_url}: ")
    assert migrated.stdout.endswith(f"; serve it with: experiment-items serve --db {pg_url}\n")
    # Every row of every table, prompts and the PATCH-only trace too, as SQLite holds it.
    expected = sqlite_tables(source.db)
    assert asyncio.run(postgres_tables(pg_url, _columns(source.db))) == expected
    assert len(expected["prompt_versions"]) == 1
    assert len(expected["span_feedback_scores"]) == 1
    exports = {}
    for workspace in WORKSPACES:
        on_sqlite = run("export", "--db", str(source.db), "--workspace", workspace)
        on_postgres = run("export", "--db", pg_url, "--workspace", workspace)
        assert on_sqlite.returncode == 0, on_sqlite.stderr
        assert on_postgres.returncode == 0, on_postgres.stderr
        assert on_postgres.stdout == on_sqlite.stdout
        assert (
            on_postgres.stderr.replace(pg_url, "DB").split(" in ")[0]
            == (on_sqlite.stderr.replace(str(source.db), "DB").split(" in ")[0])
        )
        exports[workspace] = [json.loads(line) for line in on_sqlite.stdout.splitlines()]
    kinds = {next(iter(line)) for line in exports["default"]}
    assert kinds == {"project", "dataset", "experiment", "trace", "span", "feedback_score",
                     "span_feedback_score", "dataset_item", "experiment_item"}  # fmt: skip
    one = next(line["experiment"]["id"] for line in exports["other"] if "experiment" in line)
    scoped = [
        run("export", "--db", db, "--workspace", "other", "--experiment", one).stdout
        for db in (str(source.db), pg_url)
    ]
    assert scoped[0] == scoped[1]
    assert scoped[0].count("\n") > 10
    with (
        running_server(source.db, "--no-access-log") as sqlite_url,
        running_server(pg_url, "--no-access-log", log=tmp_path / "pg.log") as postgres_url,
    ):
        for workspace in WORKSPACES:
            paths = _gets(exports[workspace], source)
            answers = _answers(sqlite_url, workspace, paths)
            assert _answers(postgres_url, workspace, paths) == answers
            # A trace no one wrote, and one that only a PATCH wrote, are 404 (in Opik, too);
            # and the prompt is workspace default's.
            missing = {path for path, status, _ in answers if status != 200}
            assert missing == {paths[1], paths[2], *([paths[0]] if workspace == "other" else [])}


def test_migrate_into_a_database_that_holds_rows_is_refused_and_changes_nothing(
    source: Source, pg_url: str
) -> None:
    assert run("demo", "--db", pg_url).returncode == 0
    before = asyncio.run(postgres_tables(pg_url, _columns(source.db)))

    again = run("migrate", "--from", str(source.db), "--to", pg_url)

    assert again.returncode == 2
    assert again.stderr.count("\n") == 1
    assert "holds rows already: migrate copies into an empty database" in again.stderr
    assert asyncio.run(postgres_tables(pg_url, _columns(source.db))) == before


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (["--from", "missing.db", "--to", "postgresql://h/db"], "no database at missing.db"),
        (["--from", "items.db", "--to", "other.db"], "into a postgresql:// URL (--to)"),
    ],
)
def test_a_bad_migrate_call_is_one_line_and_exit_code_2(args: list[str], said: str) -> None:
    result = run("migrate", *args)

    assert result.returncode == 2
    assert result.stderr.count("\n") == 1
    assert said in result.stderr
