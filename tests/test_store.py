"""The storage boundary: which engine a location picks, that the PostgreSQL engine meets the
whole Store and serves, and how backup and restore point a PostgreSQL URL to its own tools."""

import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from app import config
from app.postgres import PostgresStore
from app.store import CoreStore, Store, open_store
from tests.command import run
from tests.factories import batch, item
from tests.running import free_port, running_server

pytestmark = pytest.mark.anyio

URL = "postgresql://ann:s3cret@127.0.0.1:1/items"  # nothing listens there: nothing is opened


def _verbs(protocol: type) -> set[str]:
    return {name for name, value in vars(protocol).items() if callable(value) and name[0] != "_"}


def test_postgres_meets_the_whole_store() -> None:
    assert _verbs(Store) | _verbs(CoreStore) <= set(dir(PostgresStore))


def test_serving_sqlite_never_imports_the_postgres_driver() -> None:
    imports = "import sys, app.main, app.cli; print('asyncpg' in sys.modules)"
    done = subprocess.run(
        [sys.executable, "-c", imports], capture_output=True, text=True, check=True, timeout=60
    )

    assert done.stdout.strip() == "False"


def test_a_url_stays_a_url_and_a_path_a_path() -> None:
    assert config.db_location(URL) == URL
    assert config.db_location("postgres://h/db") == "postgres://h/db"
    assert config.db_location("data/items.db") == Path("data/items.db")
    assert config.from_env({"EXPERIMENT_ITEMS_DB": URL}).db == URL


def test_messages_name_a_url_without_its_password() -> None:
    assert config.shown_location(URL) == "postgresql://ann:***@127.0.0.1:1/items"
    assert config.shown_location("postgresql://ann@h/db") == "postgresql://ann@h/db"


async def test_open_store_opens_postgres_for_a_url_and_makes_its_schema(pg_url: str) -> None:
    store = await open_store(pg_url, readers=1, create=False)
    try:
        assert isinstance(store, PostgresStore)
        await store.ping()
        assert await store.get_item("default", bytes(16)) is None
    finally:
        await store.close()


def test_serve_on_a_postgres_url_serves_it(pg_url: str, tmp_path: Path) -> None:
    written = item()
    with running_server(pg_url, log=tmp_path / "server.log") as url:
        posted = httpx.post(f"{url}/v1/private/experiments/items", json=batch(written))
        got = httpx.get(f"{url}/v1/private/experiments/items/{written['id']}")

    assert posted.status_code == 204, posted.text
    assert got.status_code == 200, got.text
    assert got.json()["trace_id"] == written["trace_id"]


@pytest.mark.parametrize("by", ["flag", "env"])
def test_serve_on_an_unreachable_postgres_url_exits_2_in_one_line_without_the_password(
    by: str, tmp_path: Path
) -> None:
    args = ["serve", "--port", str(free_port())]
    result = run(*args, "--db", URL) if by == "flag" else run(*args, EXPERIMENT_ITEMS_DB=URL)

    assert result.returncode == 2
    assert result.stderr.count("\n") == 1
    assert result.stderr.startswith(
        "experiment-items: error: cannot open database postgresql://ann:***@127.0.0.1:1/items: "
    )
    assert "s3cret" not in result.stderr


@pytest.mark.parametrize(
    ("args", "tool"),
    [(["backup", "copy.db"], "pg_dump --format=custom"), (["restore", "copy.db"], "pg_restore")],
)
def test_backup_and_restore_of_a_postgres_url_name_its_own_tools_in_one_line(
    args: list[str], tool: str
) -> None:
    result = run(*args, "--db", URL)

    assert result.returncode == 2, result.stderr
    assert result.stderr.count("\n") == 1
    assert tool in result.stderr
    assert "s3cret" not in result.stderr
    assert not Path("postgresql:").exists()  # no SQLite file was made of the URL


@pytest.mark.parametrize(
    "args",
    [["stats"], ["export"], ["import", "-"], ["push", "http://127.0.0.1:1/api"], ["demo"]],
)
def test_a_command_on_an_unreachable_postgres_url_fails_in_one_line_without_the_password(
    args: list[str],
) -> None:
    result = run(*args, "--db", URL)

    assert result.returncode == 1, result.stderr
    assert result.stderr.count("\n") == 1
    assert result.stderr.startswith("experiment-items: error: cannot ")
    assert "postgresql://ann:***@127.0.0.1:1/items: " in result.stderr
    assert "s3cret" not in result.stderr
    assert not Path("postgresql:").exists()


def test_a_command_on_a_postgres_database_without_its_tables_says_so_and_makes_none(
    pg_url: str,
) -> None:
    results = [run(command, "--db", pg_url) for command in ("stats", "export")]

    for result in results:
        assert result.returncode == 2, result.stderr
        assert result.stderr.endswith(": no experiment-items tables in this database\n")
    assert run("export", "--db", pg_url).returncode == 2  # still none: nothing was made
