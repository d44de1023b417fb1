"""Headless Chromium driven over the DevTools protocol on a pipe (``--remote-debugging-pipe``:
no port, no websocket, no extra package): load a page at a window size, read the laid-out
DOM, list every network request the page made, take a screenshot. Usage::

    with Browser(chromium_path, tmp_path) as browser:
        requests = browser.open(page.as_uri(), width=1440)
        title = browser.evaluate("document.title")
        browser.screenshot(tmp_path / "page.png", 1440, 2000)
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import json
import os
import select
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

FLAGS = [
    "--headless",
    "--no-sandbox",  # tests may run as root in CI containers
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-default-apps",
    "--disable-extensions",
    "--disable-sync",
    "--no-default-browser-check",
    "--no-first-run",
    "--hide-scrollbars",
    "--remote-debugging-pipe",
]


def find_chromium() -> str | None:
    """The path of the ``chromium`` (or ``chromium-browser``) on PATH, or None."""
    return shutil.which("chromium") or shutil.which("chromium-browser")


def _high(fds: tuple[int, int]) -> tuple[int, int]:
    """The two descriptors moved to numbers >= 100."""
    moved = tuple(fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 100) for fd in fds)
    for fd in fds:
        os.close(fd)
    return moved[0], moved[1]


class Browser:
    """One Chromium process and one page (tab), driven by DevTools commands."""

    def __init__(self, binary: str, workdir: Path, timeout: float = 60.0) -> None:
        self.timeout = timeout
        to_browser_read, self._write = _high(os.pipe())
        self._read, from_browser_write = _high(os.pipe())
        # Chromium reads commands on fd 3 and writes replies on fd 4: bash puts the pipes
        # there and execs the browser (the pipes' own numbers are >= 100: no clash).
        script = (
            f'exec "$0" "$@" 3<&{to_browser_read} 4>&{from_browser_write} '
            f"{to_browser_read}<&- {from_browser_write}>&-"
        )
        self.process = subprocess.Popen(
            ["bash", "-c", script, binary, *FLAGS, f"--user-data-dir={workdir / 'profile'}"],
            pass_fds=(to_browser_read, from_browser_write),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env={**os.environ, "HOME": str(workdir)},
        )
        os.close(to_browser_read)
        os.close(from_browser_write)
        self._buffer = b""
        self._next_id = 0
        self.events: list[dict[str, Any]] = []
        target = self.command("Target.createTarget", {"url": "about:blank"})["targetId"]
        self.session = self.command(
            "Target.attachToTarget", {"targetId": target, "flatten": True}
        )["sessionId"]
        for domain in ("Page", "Network", "Runtime"):
            self.command(f"{domain}.enable", session=True)

    def __enter__(self) -> Browser:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        with contextlib.suppress(OSError, RuntimeError, TimeoutError):
            self.command("Browser.close")
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)
        for fd in (self._write, self._read):
            with contextlib.suppress(OSError):
                os.close(fd)

    # --- the protocol --------------------------------------------------------------------
    def _message(self, deadline: float) -> dict[str, Any]:
        while b"\0" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("no answer from Chromium")
            ready, _, _ = select.select([self._read], [], [], left)
            if ready:
                chunk = os.read(self._read, 1 << 20)
                if not chunk:
                    raise RuntimeError("Chromium closed its DevTools pipe")
                self._buffer += chunk
        raw, self._buffer = self._buffer.split(b"\0", 1)
        message: dict[str, Any] = json.loads(raw)
        return message

    def command(
        self, method: str, params: dict[str, Any] | None = None, session: bool = False
    ) -> dict[str, Any]:
        """Send one DevTools command and return its result (events seen meanwhile are
        kept in :attr:`events`)."""
        self._next_id += 1
        message: dict[str, Any] = {"id": self._next_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = self.session
        os.write(self._write, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + self.timeout
        while True:
            answer = self._message(deadline)
            if answer.get("id") == self._next_id:
                if "error" in answer:
                    raise RuntimeError(f"{method}: {answer['error']}")
                result: dict[str, Any] = answer.get("result", {})
                return result
            self.events.append(answer)

    def wait_for(self, event: str) -> dict[str, Any]:
        deadline = time.monotonic() + self.timeout
        while True:
            for seen in self.events:
                if seen.get("method") == event:
                    self.events.remove(seen)
                    return seen
            self.events.append(self._message(deadline))

    # --- what the tests use ----------------------------------------------------------------
    def open(self, url: str, width: int, height: int = 900) -> list[str]:
        """Load ``url`` in a ``width`` x ``height`` window; returns the URLs of every
        request the page made (the page's own included)."""
        self.command(
            "Emulation.setDeviceMetricsOverride",
            {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False},
            session=True,
        )
        self.events.clear()
        self.command("Page.navigate", {"url": url}, session=True)
        self.wait_for("Page.loadEventFired")
        return [
            e["params"]["request"]["url"]
            for e in self.events
            if e.get("method") == "Network.requestWillBeSent"
        ]

    def evaluate(self, expression: str) -> Any:
        """The value of a JavaScript expression in the page (DevTools evaluates it even
        when the page's own policy forbids scripts)."""
        result = self.command(
            "Runtime.evaluate", {"expression": expression, "returnByValue": True}, session=True
        )
        if "exceptionDetails" in result:
            raise RuntimeError(f"evaluate failed: {result['exceptionDetails']}")
        return result["result"].get("value")

    def screenshot(self, path: Path, width: int, height: int) -> Path:
        """A PNG of the page's top ``width`` x ``height`` pixels (beyond the window too)."""
        data = self.command(
            "Page.captureScreenshot",
            {
                "format": "png",
                "captureBeyondViewport": True,
                "clip": {"x": 0, "y": 0, "width": width, "height": height, "scale": 1},
            },
            session=True,
        )["data"]
        path.write_bytes(base64.b64decode(data))
        return path
