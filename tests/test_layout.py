"""The README's layout table against app/: every module named once, none that is not there;
and the engine boundary: only app/sqlite/ imports the SQLite drivers."""

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
APP = ROOT / "app"


def _layout_rows() -> list[str]:
    text = (ROOT / "README.md").read_text()
    table = text.split("The code layout, one concept per module", 1)[1].split("\n\n", 2)[1]
    return [line for line in table.splitlines() if line.startswith("| `")]


def test_the_readme_layout_names_every_module_of_app_and_no_other() -> None:
    named: list[str] = []
    for row in _layout_rows():
        named += re.findall(r"`([a-z_]+(?:\.py|/))`", row.split("|")[1])
    on_disk = [p.name for p in APP.glob("*.py") if p.name != "__init__.py"]
    on_disk += [p.name + "/" for p in APP.iterdir() if (p / "__init__.py").is_file()]

    assert sorted(named) == sorted(on_disk)


def test_the_readme_names_every_module_of_the_sqlite_engine() -> None:
    row = next(row for row in _layout_rows() if row.startswith("| `sqlite/`"))
    named = set(re.findall(r"`([a-z_]+)`", row.split("|")[2]))
    modules = {p.stem for p in (APP / "sqlite").glob("*.py") if p.stem != "__init__"}

    assert modules <= named, sorted(modules - named)


def test_only_the_engine_imports_sqlite3_or_aiosqlite() -> None:
    importers = []
    for path in APP.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            if any(name.split(".")[0] in ("sqlite3", "aiosqlite") for name in names):
                importers.append(path.relative_to(APP).as_posix())

    assert importers
    assert all(path.startswith("sqlite/") for path in importers), importers


def test_endpoints_and_commands_reach_the_engine_only_through_the_store() -> None:
    allowed = {"store.py", "commands.py", "push.py"}  # backup, stats; push: its checkpoint
    reaching = []
    for path in APP.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith(
                ("app.sqlite", "app.postgres")
            ):
                reaching.append(path.name)
    assert set(reaching) <= allowed, sorted(set(reaching) - allowed)


def test_no_module_of_app_is_over_400_lines() -> None:
    long = {
        path.relative_to(APP).as_posix(): n
        for path in APP.rglob("*.py")
        if (n := len(path.read_text().splitlines())) > 400
    }

    assert long == {}


def _imports(path: Path) -> list[str]:
    names: list[str] = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.append(node.module)
    return names


def test_the_readme_names_every_module_of_the_postgres_engine() -> None:
    row = next(row for row in _layout_rows() if row.startswith("| `postgres/`"))
    named = set(re.findall(r"`([a-z_]+)`", row.split("|")[2]))
    modules = {p.stem for p in (APP / "postgres").glob("*.py") if p.stem != "__init__"}

    assert modules <= named, sorted(modules - named)


def test_only_the_postgres_engine_imports_asyncpg_and_it_never_imports_sqlite() -> None:
    importers = [
        path.relative_to(APP).as_posix()
        for path in APP.rglob("*.py")
        if any(name.split(".")[0] == "asyncpg" for name in _imports(path))
    ]
    crossing = [
        path.name
        for path in (APP / "postgres").glob("*.py")
        if any(name.startswith(("app.sqlite", "sqlite3", "aiosqlite")) for name in _imports(path))
    ]

    assert importers
    assert all(path.startswith("postgres/") for path in importers), importers
    assert crossing == []
