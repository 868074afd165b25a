"""The API keys file."""

from pathlib import Path

import pytest

from app.auth import KeyFileError, load_keys
from tests.factories import sha


def test_load_keys_reads_every_entry(tmp_path: Path) -> None:
    path = tmp_path / "keys.toml"
    path.write_text(
        f'[[keys]]\nworkspace = "a"\nuser = "ann"\nsha256 = "{sha("x")}"\n'
        f'[[keys]]\nworkspace = "b"\nuser = "ben"\nsha256 = "{sha("y").upper()}"\n'
    )

    keys = load_keys(path)

    assert [(k.workspace, k.user, k.sha256.hex()) for k in keys] == [
        ("a", "ann", sha("x")),
        ("b", "ben", sha("y")),
    ]


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("", "expected one or more [[keys]] tables"),
        ("keys = 1", "expected one or more [[keys]] tables"),
        ('[[keys]]\nworkspace = "a"\nuser = "u"', "entry 1: 'sha256' must be a non-empty string"),
        ('[[keys]]\nworkspace = ""\nuser = "u"\nsha256 = "00"', "entry 1: 'workspace' must be"),
        ('[[keys]]\nworkspace = "a"\nuser = "u"\nsha256 = "zz"', "'sha256' must be 64 hexadecimal"),
        ("[[keys]\n", "cannot read API keys file"),
    ],
)
def test_load_keys_names_what_is_wrong(tmp_path: Path, text: str, error: str) -> None:
    path = tmp_path / "keys.toml"
    path.write_text(text)

    with pytest.raises(KeyFileError, match=error.replace("[", r"\[")):
        load_keys(path)
