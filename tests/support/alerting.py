"""Live alerting for tests: the real Alertmanager, a loopback webhook, and the
documented test override of the shipped rule and routing files.

Test override (docs/operations.md, "Testing the alerts"): the shipped rules are
loaded unchanged except that every duration in them (``for:``, range selectors,
subquery ranges and steps, ``offset``, group ``interval``) is divided by
``TIME_COMPRESSION`` (60: a minute becomes a second), so a 5-minute window with
``for: 5m`` plays out in 5 s against Prometheus scraping and evaluating every 1 s.
The shipped Alertmanager route tree, grouping and inhibit rules are kept; its
timers are shortened to ``ALERTMANAGER_TIMER`` and every receiver is replaced by a
webhook to ``<sink>/<receiver name>`` so the test sees which receiver got what.
"""

from __future__ import annotations

import http.server
import json
import os
import re
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

import pytest
import yaml

from support.prometheus_server import free_port, terminate, wait_ready

__all__ = [
    "ALERTMANAGER_TIMER",
    "TIME_COMPRESSION",
    "AlertmanagerServer",
    "WebhookSink",
    "alertmanager_test_config",
    "compress_duration",
    "compress_rules",
    "parse_duration",
]

_HOST = "127.0.0.1"
TIME_COMPRESSION = 60
ALERTMANAGER_TIMER = "1s"
_UNIT_SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, "y": 31536000}
_DURATION = re.compile(r"^(?:\d+(?:ms|s|m|h|d|w|y))+$")
_PART = re.compile(r"(\d+)(ms|s|m|h|d|w|y)")
_RANGE = re.compile(r"\[\s*([0-9a-z]+)\s*(?::\s*([0-9a-z]*)\s*)?\]")
_OFFSET = re.compile(r"\boffset\s+(-?)([0-9a-z]+)")


def parse_duration(text: str) -> float:
    """Seconds of a Prometheus duration such as ``1h30m`` or ``500ms``."""
    if not _DURATION.match(text):
        raise ValueError(f"not a Prometheus duration: {text!r}")
    return sum(int(n) * _UNIT_SECONDS[u] for n, u in _PART.findall(text))


def compress_duration(text: str, factor: int = TIME_COMPRESSION) -> str:
    """``text`` divided by ``factor``, in whole milliseconds (at least 1 ms)."""
    millis = max(1, round(parse_duration(text) * 1000 / factor))
    return f"{millis // 1000}s" if millis % 1000 == 0 else f"{millis}ms"


def _compress_expr(expr: str, factor: int) -> str:
    def one_range(match: re.Match[str]) -> str:
        window = compress_duration(match.group(1), factor)
        if match.group(2) is None:
            return f"[{window}]"
        step = compress_duration(match.group(2), factor) if match.group(2) else ""
        return f"[{window}:{step}]"

    expr = _RANGE.sub(one_range, expr)
    return _OFFSET.sub(
        lambda m: f"offset {m.group(1)}{compress_duration(m.group(2), factor)}", expr
    )


def compress_rules(source: Path, target: Path, factor: int = TIME_COMPRESSION) -> dict[str, Any]:
    """Write ``source`` (a rule file) to ``target`` with every duration divided by ``factor``."""
    document = yaml.safe_load(source.read_text())
    for group in document.get("groups") or []:
        if "interval" in group:
            group["interval"] = compress_duration(str(group["interval"]), factor)
        for rule in group.get("rules") or []:
            rule["expr"] = _compress_expr(str(rule["expr"]), factor)
            if "for" in rule:
                rule["for"] = compress_duration(str(rule["for"]), factor)
            if "keep_firing_for" in rule:
                rule["keep_firing_for"] = compress_duration(str(rule["keep_firing_for"]), factor)
    target.write_text(yaml.safe_dump(document, sort_keys=False))
    return dict(document)


def alertmanager_test_config(shipped: dict[str, Any], webhook_base: str) -> dict[str, Any]:
    """The shipped config with short timers and every receiver a loopback webhook."""

    def shorten(route: dict[str, Any], top: bool) -> dict[str, Any]:
        route = dict(route)
        for timer in ("group_wait", "group_interval", "repeat_interval"):
            if top or timer in route:
                route[timer] = ALERTMANAGER_TIMER
        route["routes"] = [shorten(child, top=False) for child in route.get("routes", [])]
        return route

    config = {key: value for key, value in shipped.items() if key not in ("route", "receivers")}
    config["route"] = shorten(shipped["route"], top=True)
    config["receivers"] = [
        {
            "name": receiver["name"],
            "webhook_configs": [
                {"url": f"{webhook_base}/{receiver['name']}", "send_resolved": False}
            ],
        }
        for receiver in shipped["receivers"]
    ]
    return config


class WebhookSink:
    """A loopback HTTP server recording every Alertmanager webhook POST by path."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._received: list[tuple[str, dict[str, Any]]] = []
        sink = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                body = json.loads(self.rfile.read(length) or b"{}")
                with sink._lock:
                    sink._received.append((self.path.strip("/"), body))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self._server = http.server.ThreadingHTTPServer((_HOST, 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://{_HOST}:{self._server.server_address[1]}"

    def __enter__(self) -> WebhookSink:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def alerts(self, receiver: str | None = None) -> list[dict[str, Any]]:
        """Every alert delivered (to ``receiver`` when given), oldest first."""
        with self._lock:
            received = list(self._received)
        return [
            alert
            for path, body in received
            if receiver is None or path == receiver
            for alert in body.get("alerts", [])
        ]

    def wait_for(
        self,
        receiver: str,
        predicate: Callable[[dict[str, Any]], bool],
        timeout: float = 60.0,
    ) -> dict[str, Any]:
        """The first alert at ``receiver`` matching ``predicate``; AssertionError on timeout."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for alert in self.alerts(receiver):
                if predicate(alert):
                    return alert
            time.sleep(0.2)
        raise AssertionError(
            f"no matching alert reached receiver {receiver!r} in {timeout}s; "
            f"received: {[(a['labels'].get('alertname'), a['status']) for a in self.alerts()]}"
        )


def alertmanager_binary() -> str:
    """Path of the Alertmanager executable, or fail (never skip) the test."""
    for name in ("prometheus-alertmanager", "alertmanager"):
        found = shutil.which(name)
        if found:
            return found
    pytest.fail(
        "alertmanager not found: install Debian package prometheus-alertmanager "
        "(scripts/test.sh does this)",
        pytrace=False,
    )


class AlertmanagerServer:
    """The real Alertmanager on 127.0.0.1 with ``config``; use as a context manager."""

    def __init__(self, config: dict[str, Any], ready_timeout: float = 30.0) -> None:
        self.config = config
        self.ready_timeout = ready_timeout
        self.port = 0
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://{_HOST}:{self.port}"

    def __enter__(self) -> AlertmanagerServer:
        binary = alertmanager_binary()
        self._tmp = tempfile.TemporaryDirectory(prefix="mlotel-alertmanager-")
        tmp = Path(self._tmp.name)
        config_path = tmp / "alertmanager.yml"
        config_path.write_text(yaml.safe_dump(self.config, sort_keys=False))
        self._log = open(tmp / "alertmanager.log", "wb")
        for _attempt in range(3):  # the free port may be taken before Alertmanager binds
            self.port = free_port()
            self._proc = subprocess.Popen(
                [
                    binary,
                    f"--config.file={config_path}",
                    f"--storage.path={tmp / 'data'}",
                    f"--web.listen-address={_HOST}:{self.port}",
                    "--cluster.listen-address=",  # no gossip port: a single test instance
                    "--log.level=info",
                ],
                stdin=subprocess.DEVNULL,
                stdout=self._log,
                stderr=subprocess.STDOUT,
                cwd=tmp,
                env={**os.environ},
            )
            if self._wait_ready():
                return self
        self.__exit__()
        raise RuntimeError(f"Alertmanager did not start:\n{self.log_tail()}")

    def _wait_ready(self) -> bool:
        assert self._proc is not None
        return wait_ready(self._proc, self.url, "Alertmanager", self.ready_timeout, self.log_tail)

    def __exit__(self, *exc_info: object) -> None:
        terminate(self._proc)
        self._proc = None
        if self._log is not None:
            self._log.close()
            self._log = None
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    def log_tail(self, lines: int = 30) -> str:
        if self._tmp is None:
            return "<no alertmanager log>"
        path = Path(self._tmp.name) / "alertmanager.log"
        if self._log is not None:
            self._log.flush()
        text = path.read_text(errors="replace") if path.exists() else ""
        return "\n".join(text.splitlines()[-lines:])
