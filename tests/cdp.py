"""A tiny client of the Chrome DevTools Protocol for the browser tests: Debian's chromium,
headless, driven over one websocket (https://chromedevtools.github.io/devtools-protocol/).
Enough to load a page, read its DOM, take a screenshot and collect its console errors."""

import base64
import itertools
import json
import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from websockets.sync.client import ClientConnection, connect

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
START_SECONDS = 30
LOAD_SECONDS = 15

# Headless, no sandbox (tests run as root in CI), and nothing of its own fetched from the
# network: no component updates, no sync, no field trials.
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-extensions",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-field-trial-config",
    "--mute-audio",
    "--remote-debugging-port=0",
)


class Page:
    """One tab, through a flattened session on the browser's websocket."""

    def __init__(self, socket: ClientConnection, session: str) -> None:
        self.socket = socket
        self.session = session
        self.ids = itertools.count(1000)
        self.events: list[dict[str, Any]] = []
        for domain in ("Page", "Runtime", "Log"):
            self.send(f"{domain}.enable")

    def send(self, method: str, **params: Any) -> dict[str, Any]:
        return _call(self.socket, next(self.ids), method, params, self.session, self.events)

    def _wait_for(self, method: str, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if any(e.get("method") == method for e in self.events):
                return
            message = json.loads(self.socket.recv(timeout=max(0.01, deadline - time.monotonic())))
            if "id" not in message:
                self.events.append(message)
        raise TimeoutError(f"no {method} within {seconds} s")

    def load(self, url: str) -> None:
        """Opens `url` and returns once its load event fired; its errors start afresh."""
        self.events.clear()
        self.send("Page.navigate", url=url)
        self._wait_for("Page.loadEventFired", LOAD_SECONDS)

    def submit(self, form_selector: str, **fields: str) -> None:
        """Fills a form's fields by name, submits it and waits for the next page."""
        self.events.clear()
        script = [f"const f = document.querySelector({json.dumps(form_selector)});"]
        for name, value in fields.items():
            script.append(f"f.elements[{json.dumps(name)}].value = {json.dumps(value)};")
        script.append("f.requestSubmit();")
        self.evaluate("\n".join(script))
        self._wait_for("Page.loadEventFired", LOAD_SECONDS)

    def evaluate(self, expression: str) -> Any:
        answer = self.send("Runtime.evaluate", expression=expression, returnByValue=True)
        if "exceptionDetails" in answer:
            raise RuntimeError(answer["exceptionDetails"])
        return answer["result"].get("value")

    def text(self) -> str:
        return str(self.evaluate("document.body.innerText"))

    def screenshot(self, path: Path) -> None:
        data = self.send("Page.captureScreenshot", format="png", captureBeyondViewport=True)
        path.write_bytes(base64.b64decode(data["data"]))

    def errors(self) -> list[str]:
        """What the page reported as errors since it loaded: uncaught exceptions, console
        errors, and the browser's own (a failed load, a blocked script or style)."""
        found = []
        for e in self.events:
            method, params = e.get("method"), e.get("params", {})
            if method == "Runtime.exceptionThrown":
                found.append(str(params["exceptionDetails"]))
            elif method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
                found.append(str(params.get("args")))
            elif method == "Log.entryAdded" and params["entry"].get("level") == "error":
                found.append(f"{params['entry'].get('text')} {params['entry'].get('url', '')}")
        return found


def _call(
    socket: ClientConnection,
    key: int,
    method: str,
    params: dict[str, Any],
    session: str | None,
    events: list[dict[str, Any]],
) -> dict[str, Any]:
    message: dict[str, Any] = {"id": key, "method": method, "params": params}
    if session is not None:
        message["sessionId"] = session
    socket.send(json.dumps(message))
    while True:
        answer = json.loads(socket.recv(timeout=LOAD_SECONDS))
        if answer.get("id") != key:
            events.append(answer)
            continue
        if "error" in answer:
            raise RuntimeError(f"{method}: {answer['error']}")
        result: dict[str, Any] = answer["result"]
        return result


@contextmanager
def browser_page(folder: Path) -> Iterator[Page]:
    """A headless chromium with its profile in `folder`, and one page of it."""
    assert CHROMIUM is not None
    profile = folder / "profile"
    log = (folder / "chromium.log").open("wb")
    process = subprocess.Popen(
        [CHROMIUM, *FLAGS, f"--user-data-dir={profile}", "about:blank"],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        port_file = profile / "DevToolsActivePort"
        deadline = time.monotonic() + START_SECONDS
        while not (port_file.exists() and len(port_file.read_text().split()) == 2):
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(
                    f"chromium did not start: {(folder / 'chromium.log').read_text()}"
                )
            time.sleep(0.05)
        port, path = port_file.read_text().split()
        with connect(f"ws://127.0.0.1:{port}{path}", max_size=None) as socket:
            events: list[dict[str, Any]] = []
            target = _call(socket, 1, "Target.createTarget", {"url": "about:blank"}, None, events)
            attached = _call(
                socket, 2, "Target.attachToTarget",
                {"targetId": target["targetId"], "flatten": True}, None, events,
            )  # fmt: skip
            yield Page(socket, attached["sessionId"])
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()
