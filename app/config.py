"""Settings: one table of name, default, environment variable and help."""

import functools
import math
import os
import urllib.parse
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

ENV_PREFIX = "EXPERIMENT_ITEMS_"


def _flag(text: str) -> bool:
    return text.strip().lower() in {"1", "true", "yes", "on"}


def _optional_path(text: str) -> Path | None:
    return Path(text) if text else None


POSTGRES_SCHEMES = ("postgresql://", "postgres://")


def is_postgres_url(location: object) -> bool:
    """Whether `location` names a PostgreSQL database (a libpq URL) rather than a file."""
    return isinstance(location, str) and location.startswith(POSTGRES_SCHEMES)


def db_location(text: str) -> Path | str:
    """A SQLite file's path, or a PostgreSQL database's libpq URL kept as given (a Path would
    fold its '//')."""
    return text if is_postgres_url(text) else Path(text)


def shown_location(location: Path | str) -> str:
    """The database as messages name it: a URL without its password."""
    if isinstance(location, Path):
        return str(location)
    parts = urllib.parse.urlsplit(location)
    if parts.password is None:
        return location
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urllib.parse.urlunsplit(parts._replace(netloc=netloc))


def _setting(default: Any, parse: Callable[[str], Any], help: str) -> Any:
    return field(default=default, metadata={"parse": parse, "help": help})


@dataclass(frozen=True, slots=True)
class Settings:
    db: Path | str = _setting(
        Path("experiment-items.db"),
        db_location,
        "SQLite database file, created on first start, or a postgresql:// URL (README, "
        "Outgrowing one machine)",
    )
    host: str = _setting("127.0.0.1", str, "address to listen on")
    port: int = _setting(5173, int, "port to listen on (where the Opik SDK looks by default)")
    workers: int = _setting(1, int, "worker processes sharing the one database file")
    api_keys: Path | None = _setting(
        None, _optional_path, "TOML file of API keys; unset means no authentication"
    )
    readers: int = _setting(2, int, "read-only SQLite connections per worker, used in turn")
    access_log: bool = _setting(True, _flag, "log one line per request")
    # Without them a client that sends its request a byte a minute holds its connection for
    # ever (slowloris): uvicorn has no such deadline, app/protocol.py and app/body.py add it.
    head_timeout_seconds: float = _setting(
        10.0,
        float,
        "seconds a request's line and headers may take to arrive, from the connection opening "
        "or the request's first byte; then 408 and the connection closes",
    )
    body_timeout_seconds: float = _setting(
        30.0,
        float,
        "seconds a request's whole body may take to arrive after its headers; then 408 and "
        "the connection closes",
    )
    # uvicorn waits for ever on a reader that takes no byte of an answer, holding the socket
    # and the chunk being sent (up to 8 MiB of a stream's trace text): app/protocol.py cuts
    # it off (reliability probe D2).
    send_timeout_seconds: float = _setting(
        30.0,
        float,
        "seconds a client may take no byte of an answer while the server's write buffer is "
        "full; then the connection is aborted",
    )

    def __post_init__(self) -> None:
        for name in ("head_timeout_seconds", "body_timeout_seconds", "send_timeout_seconds"):
            value = getattr(self, name)
            if not 0 < value < math.inf:  # NaN too
                raise ValueError(f"{name} must be a finite number of seconds over 0, not {value}")


def env_name(name: str) -> str:
    return ENV_PREFIX + name.upper()


def describe() -> list[tuple[str, str, Any, str]]:
    """(name, environment variable, default, help) for every setting: the README's table."""
    return [(f.name, env_name(f.name), f.default, f.metadata["help"]) for f in fields(Settings)]


def from_env(environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
    """Settings from the environment, with `overrides` that are not None on top."""
    environ = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    for f in fields(Settings):
        text = environ.get(env_name(f.name))
        if text is not None:
            try:
                values[f.name] = f.metadata["parse"](text)
            except ValueError as exc:
                raise ValueError(f"{env_name(f.name)}={text!r}: {exc}") from None
    values.update({name: value for name, value in overrides.items() if value is not None})
    return Settings(**values)


@functools.cache
def current() -> Settings:
    """This process's settings, read from its environment once. A worker receives its settings
    in the environment (`to_env`); this is how the parts that `create_app` does not hand them
    to (the HTTP protocol, the body deadline) read them."""
    return from_env()


def to_env(settings: Settings) -> dict[str, str]:
    """The environment from which `from_env` rebuilds `settings`: how workers receive them."""
    env = {}
    for f in fields(Settings):
        value = getattr(settings, f.name)
        text = "" if value is None else str(value)
        env[env_name(f.name)] = text.lower() if isinstance(value, bool) else text
    return env
