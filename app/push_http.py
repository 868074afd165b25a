"""Push's target: where it is, who it is there, and each request to it as the Opik SDK
sends it (gzipped from 256 bytes on, the key raw), tried again when the answer may pass."""

import gzip
import http.client
import time
import urllib.error
import urllib.request
from collections.abc import Collection
from dataclasses import dataclass

import msgspec

from app import __version__

GZIP_MIN_BYTES = 256  # the Opik SDK gzips every body from this size on
TIMEOUT_SECONDS = 60
ATTEMPTS = 3  # for the answers a busy or restarting server gives, and for lost connections
RETRY_AFTER_SECONDS = 0.5  # doubled after each attempt
RETRIED_STATUSES = frozenset({429, 502, 503, 504})
MAX_MESSAGE_CHARS = 300
UNNAMED_WORKSPACE = "(unnamed: the key's, or the default)"


class PushError(Exception):
    """The target refused a request, or could not be reached."""


@dataclass(frozen=True, slots=True)
class Target:
    """Where to push: `url` is the base under which /v1/private/... is served, what
    OPIK_URL_OVERRIDE names for the SDK; the workspace goes in Comet-Workspace, the key raw in
    Authorization, as the SDK sends them."""

    url: str
    api_key: str | None = None
    workspace: str | None = None

    def __str__(self) -> str:
        return f"{self.url} workspace {self.workspace or UNNAMED_WORKSPACE}"

    def fed_from(self, source_workspace: str) -> str:
        """What a checkpoint is for: this target, fed from that workspace."""
        return f"{self} from workspace {source_workspace}"


def send(
    target: Target,
    path: str,
    body: bytes,
    accepted: Collection[int],
    method: str = "POST",
) -> int:
    """The status of the target's answer to one request; PushError unless it is `accepted`."""
    url = target.url + path
    status, answer = _send(_request(target, url, body, method))
    if status not in accepted:
        raise PushError(f"{method} {url} answered {status}: {_message(answer)}")
    return status


def _request(target: Target, url: str, body: bytes, method: str) -> urllib.request.Request:
    headers = {
        "Content-Type": "application/json",
        "Accept": "application/json",
        "User-Agent": f"experiment-items/{__version__}",
    }
    if len(body) >= GZIP_MIN_BYTES:
        body = gzip.compress(body, compresslevel=6)
        headers["Content-Encoding"] = "gzip"
    if target.api_key:
        headers["Authorization"] = target.api_key
    if target.workspace:
        headers["Comet-Workspace"] = target.workspace
    return urllib.request.Request(url, data=body, headers=headers, method=method)


def _send(request: urllib.request.Request) -> tuple[int, bytes]:
    """The status and body of the answer, after up to ATTEMPTS tries of what may pass."""
    for attempt in range(1, ATTEMPTS + 1):
        try:
            with urllib.request.urlopen(request, timeout=TIMEOUT_SECONDS) as response:
                return int(response.status), bytes(response.read())
        except urllib.error.HTTPError as exc:
            with exc:
                answer = int(exc.code), bytes(exc.read())
            if answer[0] not in RETRIED_STATUSES or attempt == ATTEMPTS:
                return answer
        except (urllib.error.URLError, OSError, http.client.HTTPException) as exc:
            if attempt == ATTEMPTS:
                reason = getattr(exc, "reason", exc)
                raise PushError(f"cannot reach {request.full_url}: {reason}") from None
        time.sleep(RETRY_AFTER_SECONDS * 2 ** (attempt - 1))
    raise AssertionError("unreachable: the last attempt returns or raises")


def _message(answer: bytes) -> str:
    """What the target said, on one line: Opik's `message`, or its 422 `errors`."""
    try:
        body = msgspec.json.decode(answer)
    except msgspec.DecodeError:
        body = None
    if isinstance(body, dict) and isinstance(body.get("message"), str):
        text = body["message"]
    elif isinstance(body, dict) and isinstance(body.get("errors"), list):
        text = "; ".join(map(str, body["errors"]))
    else:
        text = answer.decode(errors="replace") or "(no body)"
    text = " ".join(text.split())
    return text if len(text) <= MAX_MESSAGE_CHARS else text[: MAX_MESSAGE_CHARS - 1] + "…"
