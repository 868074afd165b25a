"""Identity: the workspace and user of a request, and the optional API keys that prove it."""

import hashlib
import hmac
import tomllib
from dataclasses import dataclass
from pathlib import Path

import msgspec
from starlette.datastructures import QueryParams
from starlette.requests import HTTPConnection
from starlette.types import Scope

from app.errors import ApiError

DEFAULT_WORKSPACE = "default"
DEFAULT_USER = "admin"


class Identity(msgspec.Struct, frozen=True, gc=False):
    """Who a request acts as. A Struct: every request makes one, in 35 ns against a frozen
    dataclass's 240."""

    workspace: str
    user: str


@dataclass(frozen=True, slots=True)
class ApiKey:
    sha256: bytes
    workspace: str
    user: str


class KeyFileError(ValueError):
    """The API keys file cannot be used; the message says which entry and why."""


def load_keys(path: Path) -> tuple[ApiKey, ...]:
    """The `[[keys]]` tables of a TOML file: `workspace`, `user` and `sha256`, the hex
    SHA-256 digest of the key, so the file never holds a key itself."""
    try:
        document = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise KeyFileError(f"cannot read API keys file {path}: {exc}") from None
    entries = document.get("keys")
    if not isinstance(entries, list) or not entries:
        raise KeyFileError(f"{path}: expected one or more [[keys]] tables")
    keys = []
    for number, entry in enumerate(entries, 1):
        where = f"{path}: [[keys]] entry {number}"
        if not isinstance(entry, dict):
            raise KeyFileError(f"{where} is not a table")
        values = {name: entry.get(name) for name in ("workspace", "user", "sha256")}
        for name, value in values.items():
            if not isinstance(value, str) or not value.strip():
                raise KeyFileError(f"{where}: '{name}' must be a non-empty string")
        try:
            digest = bytes.fromhex(str(values["sha256"]))
        except ValueError:
            digest = b""
        if len(digest) != 32:
            raise KeyFileError(f"{where}: 'sha256' must be 64 hexadecimal digits")
        keys.append(ApiKey(digest, str(values["workspace"]), str(values["user"])))
    return tuple(keys)


def _find_key(keys: tuple[ApiKey, ...], presented: str) -> ApiKey | None:
    # Every entry is compared, in constant time, whatever matches first.
    digest = hashlib.sha256(presented.encode()).digest()
    found = None
    for key in keys:
        if hmac.compare_digest(key.sha256, digest):
            found = key
    return found


def key_identity(keys: tuple[ApiKey, ...], presented: str) -> Identity | None:
    """Who a key (raw, as a form or cookie holds it) acts as, or None for an unknown one: the
    web UI's login."""
    key = _find_key(keys, presented.strip()) if presented.strip() else None
    return None if key is None else Identity(key.workspace, key.user)


def _text(value: bytes) -> str:
    """A header's text. UTF-8, as the query string is read: "équipe" by header and by
    `workspace_name` is one workspace, and a key's UTF-8 bytes are the ones its digest was
    taken of. Bytes that are not UTF-8 are read as Latin-1, the HTTP default (RFC 9110
    section 5.5), rather than refused."""
    try:
        return value.decode()
    except UnicodeDecodeError:
        return value.decode("latin-1")


def _credentials(scope: Scope) -> tuple[str | None, str]:
    """The workspace a request names and the Authorization it presents, read from the raw
    headers: the item read takes this path on every request, and building a Headers object
    for two lookups costs more than the scan. Names come lowercase from the server; the first
    of a repeated header counts, as Headers.get would have it."""
    workspace = authorization = None
    for name, value in scope["headers"]:
        if name == b"comet-workspace":
            if workspace is None:
                workspace = _text(value)
        elif name == b"authorization" and authorization is None:
            authorization = _text(value)
    if not workspace and scope["query_string"]:
        workspace = QueryParams(scope["query_string"]).get("workspace_name")
    return workspace, authorization or ""


def identify(request: HTTPConnection | Scope, keys: tuple[ApiKey, ...] | None) -> Identity:
    """The identity of a request (a Request, or its ASGI scope); 401 without a known key and
    403 for another workspace's, when keys are configured."""
    scope = request.scope if isinstance(request, HTTPConnection) else request
    workspace, presented = _credentials(scope)
    if keys is None:
        return Identity(workspace or DEFAULT_WORKSPACE, DEFAULT_USER)
    if presented[:7].lower() == "bearer ":
        presented = presented[7:]
    key = _find_key(keys, presented.strip()) if presented else None
    if key is None:
        raise ApiError(401, "API key is missing or unknown")
    # With keys on, a request that names no workspace works in its key's workspace.
    if workspace and workspace != key.workspace:
        raise ApiError(403, f"API key has no access to workspace '{workspace}'")
    return Identity(key.workspace, key.user)
