"""A real uvicorn process on a real file: the lifespan, the command line, several workers."""

import sqlite3
import subprocess
import sys
from pathlib import Path

import httpx

from app.sqlite.connection import SCHEMA_VERSION
from tests.factories import batch, item, sha
from tests.running import running_server

ITEMS = "/api/v1/private/experiments/items"


def test_first_start_creates_the_database_with_its_schema_version(tmp_path: Path) -> None:
    db = tmp_path / "new" / "items.db"

    with running_server(db, log=tmp_path / "server.log") as url:
        assert httpx.get(f"{url}/is-alive/ping").json() == {
            "message": "Healthy Server",
            "healthy": True,
        }

    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_a_write_through_one_worker_is_read_through_every_other(tmp_path: Path) -> None:
    # Each request on a new connection goes to whichever of the two workers accepts it,
    # so fifty write-then-read pairs cross between workers many times over.
    with running_server(tmp_path / "items.db", "--workers", "2", "--no-access-log") as url:
        for _ in range(50):
            body = item()
            with httpx.Client(base_url=url) as writer:
                assert writer.post(ITEMS, json=batch(body)).status_code == 204
            with httpx.Client(base_url=url) as reader:
                read = reader.get(f"{ITEMS}/{body['id']}")
            assert read.status_code == 200
            assert read.json()["trace_id"] == body["trace_id"]


def test_serve_with_api_keys_from_a_toml_file(tmp_path: Path) -> None:
    keys = tmp_path / "keys.toml"
    keys.write_text(f'[[keys]]\nworkspace = "lab"\nuser = "ann"\nsha256 = "{sha("s3cret")}"\n')
    body = item()

    with running_server(tmp_path / "items.db", "--api-keys", str(keys)) as url:
        denied = httpx.post(f"{url}{ITEMS}", json=batch(body))
        stored = httpx.post(f"{url}{ITEMS}", json=batch(body), headers={"Authorization": "s3cret"})
        read = httpx.get(f"{url}{ITEMS}/{body['id']}", headers={"Authorization": "Bearer s3cret"})

    assert denied.status_code == 401
    assert stored.status_code == 204
    assert read.json()["created_by"] == "ann"
    assert "s3cret" not in (tmp_path / "items.log").read_text()


def test_a_bad_keys_file_stops_the_server_with_one_clear_line(tmp_path: Path) -> None:
    keys = tmp_path / "keys.toml"
    keys.write_text('[[keys]]\nworkspace = "lab"\nuser = "ann"\nsha256 = "abc"\n')

    result = subprocess.run(
        [sys.executable, "-m", "app", "serve", "--db", str(tmp_path / "x.db"),
         "--api-keys", str(keys)],
        capture_output=True,
        text=True,
        timeout=60,
    )  # fmt: skip

    assert result.returncode == 2
    assert result.stderr == (
        f"experiment-items: error: {keys}: [[keys]] entry 1: "
        "'sha256' must be 64 hexadecimal digits\n"
    )


def test_a_database_from_a_newer_release_is_refused(tmp_path: Path) -> None:
    db = tmp_path / "future.db"
    with sqlite3.connect(db) as conn:
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")

    result = subprocess.run(
        [sys.executable, "-m", "app", "serve", "--db", str(db)],
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert result.returncode == 2
    assert "newer than this release's" in result.stderr
    assert "Traceback" not in result.stderr
