"""Settings from the environment and back."""

from pathlib import Path

import pytest

from app import config


def test_defaults_serve_the_sdk_on_its_local_address() -> None:
    settings = config.from_env({})

    assert (settings.host, settings.port) == ("127.0.0.1", 5173)
    assert settings.api_keys is None


def test_environment_then_overrides() -> None:
    environ = {"EXPERIMENT_ITEMS_PORT": "9000", "EXPERIMENT_ITEMS_DB": "/data/x.db"}

    settings = config.from_env(environ, port=9100, workers=None)

    assert settings.port == 9100
    assert settings.db == Path("/data/x.db")
    assert settings.workers == 1


def test_to_env_round_trips_every_setting() -> None:
    settings = config.Settings(
        db=Path("a.db"),
        port=1,
        workers=3,
        api_keys=Path("k.toml"),
        access_log=False,
        head_timeout_seconds=0.5,
        body_timeout_seconds=120,
    )

    assert config.from_env(config.to_env(settings)) == settings


def test_every_setting_has_an_environment_variable_and_help() -> None:
    for name, env, _, help in config.describe():
        assert env == f"EXPERIMENT_ITEMS_{name.upper()}"
        assert help


@pytest.mark.parametrize("seconds", ["0", "-1", "nan", "inf"])
def test_a_deadline_is_a_finite_number_of_seconds_over_0(seconds: str) -> None:
    environ = {"EXPERIMENT_ITEMS_BODY_TIMEOUT_SECONDS": seconds}

    with pytest.raises(ValueError, match=r"^body_timeout_seconds must be a finite number"):
        config.from_env(environ)
