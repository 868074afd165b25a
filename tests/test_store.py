"""The storage boundary: which engine a location picks, and how the commands refuse a
PostgreSQL URL while its engine covers only the experiment-items core."""

import subprocess
import sys
from pathlib import Path

import pytest

from app import config
from app.postgres import PostgresStore
from app.store import CoreStore, EngineIncomplete, Store, missing_methods, open_store
from tests.command import run
from tests.running import free_port

pytestmark = pytest.mark.anyio

URL = "postgresql://ann:s3cret@127.0.0.1:1/items"  # nothing listens there: nothing is opened


def _verbs(protocol: type) -> set[str]:
    return {name for name, value in vars(protocol).items() if callable(value) and name[0] != "_"}


def test_postgres_has_the_core_and_lacks_exactly_the_rest_of_the_store() -> None:
    missing = missing_methods()

    assert _verbs(CoreStore) <= set(dir(PostgresStore))
    assert set(missing) == _verbs(Store) - set(dir(PostgresStore))
    assert missing  # until the port is done; the verbs go as their resources land
    assert not set(missing) & _verbs(CoreStore)


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


async def test_open_store_refuses_postgres_until_its_engine_is_whole() -> None:
    first = missing_methods()[0]
    with pytest.raises(EngineIncomplete, match=rf"lacks \d+ of the Store's verbs: {first}"):
        await open_store(URL)


@pytest.mark.parametrize("by", ["flag", "env"])
def test_serve_on_a_postgres_url_exits_2_with_one_line_saying_what_is_missing(
    by: str, tmp_path: Path
) -> None:
    args = ["serve", "--port", str(free_port())]
    result = run(*args, "--db", URL) if by == "flag" else run(*args, EXPERIMENT_ITEMS_DB=URL)

    assert result.returncode == 2
    assert result.stderr.count("\n") == 1
    assert result.stderr.startswith(
        "experiment-items: error: cannot open database postgresql://ann:***@127.0.0.1:1/items: "
        "the PostgreSQL engine is in progress"
    )
    assert missing_methods()[0] in result.stderr
    assert "s3cret" not in result.stderr


@pytest.mark.parametrize(
    "args",
    [
        ["stats"],
        ["backup", "copy.db"],
        ["restore", "copy.db"],
        ["export"],
        ["import", "-"],
        ["push", "http://127.0.0.1:1/api"],
        ["demo"],
        ["serve", "--demo", "--port", "0"],
    ],
)
def test_the_other_commands_refuse_a_postgres_url_in_one_line(
    args: list[str], tmp_path: Path
) -> None:
    result = run(*args, "--db", URL)

    assert result.returncode == 2, result.stderr
    assert result.stderr.count("\n") == 1
    assert "works on a SQLite file only so far" in result.stderr
    assert "s3cret" not in result.stderr
    assert not Path("postgresql:").exists()  # no SQLite file was made of the URL
