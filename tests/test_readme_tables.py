"""The README's route and settings tables against the code they describe: a route or a
setting added, removed or renamed without the README fails here."""

import re
from pathlib import Path

from app import config
from app.routes import ENDPOINTS, PREFIXES

README = (Path(__file__).resolve().parents[1] / "README.md").read_text()


def _rows(header: str) -> list[list[str]]:
    """The body rows of the table whose header line is `header`."""
    lines = README.split(header + "\n", 1)[1].splitlines()
    table = lines[: next(n for n, line in enumerate(lines) if not line.startswith("|"))]
    return [[cell.strip() for cell in line.strip("|").split("|")] for line in table[1:]]


def test_the_route_table_lists_every_route_once() -> None:
    listed = [re.findall(r"`(\w+) (\S+)`", row[0])[0] for row in _rows("| route | what it does |")]

    assert listed == [(e.method, e.path) for e in ENDPOINTS]
    assert "/api" in PREFIXES  # the table's sentence: every route under both prefixes


def test_the_settings_table_names_every_setting_with_its_variable_and_default() -> None:
    rows = {
        row[1].split("=")[0].strip("`"): row
        for row in _rows("| flag | environment variable | default | meaning |")
    }

    assert sorted(rows) == sorted(env for _, env, _, _ in config.describe())
    for name, env, default, _ in config.describe():
        flag, _, shown, _ = rows[env]
        assert flag.strip("`").lstrip("-").replace("-", "_").removeprefix("no_") == name
        if default is None:
            assert shown == "unset", name
        elif isinstance(default, bool):
            assert shown == ("on" if default else "off"), name
        else:
            expected = f"{default:g}" if isinstance(default, float) else str(default)
            assert shown.strip("`") == expected, name
