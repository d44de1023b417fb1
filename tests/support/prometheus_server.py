"""Run the real Prometheus binary on 127.0.0.1 for a test."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import IO, Any

import pytest

_HOST = "127.0.0.1"
_INSTALL_HINT = "install Debian package prometheus (tests/setup does this)"
_HTTP_TIMEOUT_S = 5.0


def prometheus_binary() -> str | None:
    """Path of the prometheus executable, or None when it is not installed."""
    found = shutil.which("prometheus")
    if found:
        return found
    fallback = Path("/usr/bin/prometheus")
    return str(fallback) if os.access(fallback, os.X_OK) else None


def require_prometheus() -> str:
    """Return the prometheus path, or fail (never skip) the current test."""
    binary = prometheus_binary()
    if binary is None:
        pytest.fail(f"prometheus binary not found: {_INSTALL_HINT}", pytrace=False)
    return binary


def free_port() -> int:
    """A currently free TCP port on 127.0.0.1 (may race; callers retry)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((_HOST, 0))
        return int(sock.getsockname()[1])


def wait_ready(
    proc: subprocess.Popen[bytes], url: str, name: str, timeout: float, log_tail: Callable[[], str]
) -> bool:
    """Poll ``url``/-/ready until 200 (True), or the process exits on a port clash
    (False: try another port); any other exit or the timeout raises."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            log = log_tail()
            if "address already in use" in log:
                return False
            raise RuntimeError(f"{name} exited with {proc.returncode}:\n{log}")
        try:
            with urllib.request.urlopen(f"{url}/-/ready", timeout=1.0) as resp:
                if resp.status == 200:
                    return True
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{name} not ready after {timeout}s:\n{log_tail()}")


def terminate(proc: subprocess.Popen[bytes] | None) -> None:
    """Stop a server process: SIGTERM, then SIGKILL after 10 s."""
    if proc is not None and proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


def _merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    """Recursively merge `extra` into a copy of `base` (non-dict values replace)."""
    merged = dict(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _scrape_config(job_name: str, targets: Sequence[str]) -> dict[str, Any]:
    """One scrape job; targets are "host:port" or URLs sharing scheme and path."""
    scheme, path = "http", "/metrics"
    hosts: list[str] = []
    url_forms: set[tuple[str, str]] = set()
    for target in targets:
        if "://" in target:
            parsed = urllib.parse.urlsplit(target)
            url_forms.add((parsed.scheme, parsed.path or "/metrics"))
            hosts.append(parsed.netloc)
        else:
            hosts.append(target)
    if len(url_forms) > 1:
        raise ValueError(f"scrape targets use different schemes/paths: {sorted(url_forms)}")
    if url_forms:
        scheme, path = url_forms.pop()
    return {
        "job_name": job_name,
        "scheme": scheme,
        "metrics_path": path,
        "static_configs": [{"targets": hosts}],
    }


def _alerting_config(alertmanager_url: str) -> dict[str, Any]:
    parsed = urllib.parse.urlsplit(alertmanager_url)
    if not parsed.netloc:
        raise ValueError(f"alertmanager_url needs scheme://host:port, got {alertmanager_url!r}")
    manager: dict[str, Any] = {
        "scheme": parsed.scheme or "http",
        "static_configs": [{"targets": [parsed.netloc]}],
    }
    if parsed.path.strip("/"):
        manager["path_prefix"] = parsed.path
    return {"alertmanagers": [manager]}


class PrometheusServer:
    """A real Prometheus process scraping `scrape_targets`; use as a context manager."""

    def __init__(
        self,
        scrape_targets: Sequence[str],
        rule_files: Sequence[str | os.PathLike[str]] | None = None,
        scrape_interval: str = "1s",
        evaluation_interval: str = "1s",
        extra_config: dict[str, Any] | None = None,
        alertmanager_url: str | None = None,
        job_name: str = "test",
        ready_timeout: float = 30.0,
        flags: Sequence[str] = (),
    ) -> None:
        self.scrape_targets = list(scrape_targets)
        self.rule_files = [str(Path(p).resolve()) for p in rule_files or []]
        self.scrape_interval = scrape_interval
        self.evaluation_interval = evaluation_interval
        self.extra_config = extra_config or {}
        self.alertmanager_url = alertmanager_url
        self.job_name = job_name
        self.ready_timeout = ready_timeout
        self.flags = list(flags)  # extra command-line flags, e.g. feature flags
        self.port = 0
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None
        self._log_path: Path | None = None

    @property
    def url(self) -> str:
        """Base URL, e.g. http://127.0.0.1:9090."""
        if not self.port:
            raise RuntimeError("PrometheusServer is not started")
        return f"http://{_HOST}:{self.port}"

    @property
    def config_path(self) -> Path:
        """Path of the generated prometheus.yml."""
        if self._tmp is None:
            raise RuntimeError("PrometheusServer is not started")
        return Path(self._tmp.name) / "prometheus.yml"

    def config(self) -> dict[str, Any]:
        """The configuration written to prometheus.yml."""
        config: dict[str, Any] = {
            "global": {
                "scrape_interval": self.scrape_interval,
                "scrape_timeout": self.scrape_interval,
                "evaluation_interval": self.evaluation_interval,
            },
            "scrape_configs": [_scrape_config(self.job_name, self.scrape_targets)],
        }
        if self.rule_files:
            config["rule_files"] = self.rule_files
        if self.alertmanager_url:
            config["alerting"] = _alerting_config(self.alertmanager_url)
        return _merge(config, self.extra_config)

    # -- lifecycle ---------------------------------------------------------

    def start(self) -> PrometheusServer:
        """Write the config, start Prometheus and wait until /-/ready answers 200."""
        binary = require_prometheus()
        self._tmp = tempfile.TemporaryDirectory(prefix="mlotel-prometheus-")
        tmp = Path(self._tmp.name)
        # JSON is valid YAML, so no YAML library is needed.
        self.config_path.write_text(json.dumps(self.config(), indent=2))
        self._log_path = tmp / "prometheus.log"
        try:
            for _attempt in range(3):  # the free port may be taken before Prometheus binds
                self.port = free_port()
                if self._launch(binary, tmp):
                    return self
            raise RuntimeError(f"Prometheus did not start:\n{self.log_tail()}")
        except BaseException:
            self.stop()
            raise

    def _launch(self, binary: str, tmp: Path) -> bool:
        """Start one process; True when ready, False when it exited on a port clash."""
        data_dir = tmp / f"data-{self.port}"
        self._log = open(self._log_path, "wb")  # noqa: SIM115 (closed in _terminate)
        self._proc = subprocess.Popen(
            [
                binary,
                f"--config.file={self.config_path}",
                f"--storage.tsdb.path={data_dir}",
                f"--web.listen-address={_HOST}:{self.port}",
                "--log.level=info",
                *self.flags,
            ],
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            cwd=tmp,
        )
        try:
            ready = wait_ready(
                self._proc, self.url, "Prometheus", self.ready_timeout, self.log_tail
            )
        except RuntimeError:
            self._terminate()
            raise
        if not ready:
            self._terminate()
        return ready

    def _terminate(self) -> None:
        terminate(self._proc)
        if self._log is not None:
            self._log.close()
            self._log = None

    def stop(self) -> None:
        """Terminate Prometheus (kill after 10 s) and remove its temp dir."""
        self._terminate()
        self._proc = None
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None
            self._log_path = None

    def __enter__(self) -> PrometheusServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # -- HTTP API ----------------------------------------------------------

    def api(self, path: str, params: dict[str, str] | None = None) -> Any:
        """GET /api/v1/<path> and return its `data`; raises RuntimeError on API errors."""
        query = f"?{urllib.parse.urlencode(params)}" if params else ""
        url = f"{self.url}/api/v1/{path}{query}"
        try:
            with urllib.request.urlopen(url, timeout=_HTTP_TIMEOUT_S) as resp:
                payload = json.load(resp)
        except urllib.error.HTTPError as exc:  # 4xx/5xx still carry a JSON error body
            body = exc.read().decode("utf-8", "replace")
            raise RuntimeError(f"GET {url} -> {exc.code}: {body}") from exc
        if payload.get("status") != "success":
            raise RuntimeError(f"GET {url} failed: {payload}")
        return payload["data"]

    def query(self, promql: str) -> list[Any]:
        """Instant query; returns `data.result`."""
        return list(self.api("query", {"query": promql})["result"])

    def wait_for_query(
        self,
        promql: str,
        predicate: Callable[[list[Any]], object] = bool,
        timeout: float = 30.0,
        interval: float = 0.25,
    ) -> list[Any]:
        """Poll `query(promql)` until `predicate(result)`; AssertionError on timeout."""
        deadline = time.monotonic() + timeout
        while True:
            result = self.query(promql)
            if predicate(result):
                return result
            if time.monotonic() >= deadline:
                raise AssertionError(
                    f"timed out after {timeout}s waiting for {promql!r}\n"
                    f"last result: {result!r}\n"
                    f"targets: {self._target_summary()}\n"
                    f"prometheus log tail:\n{self.log_tail()}"
                )
            time.sleep(interval)

    def targets(self) -> dict[str, Any]:
        """/api/v1/targets data (activeTargets, droppedTargets)."""
        return dict(self.api("targets"))

    def rules(self) -> list[Any]:
        """/api/v1/rules rule groups."""
        return list(self.api("rules")["groups"])

    def alerts(self) -> list[Any]:
        """/api/v1/alerts active alerts."""
        return list(self.api("alerts")["alerts"])

    def _target_summary(self) -> str:
        try:
            active = self.targets()["activeTargets"]
        except (RuntimeError, OSError) as exc:
            return f"<unavailable: {exc}>"
        return repr([(t.get("scrapeUrl"), t.get("health"), t.get("lastError")) for t in active])

    def log_tail(self, lines: int = 40) -> str:
        """Last `lines` lines of the Prometheus log."""
        if self._log_path is None or not self._log_path.exists():
            return "<no prometheus log>"
        if self._log is not None:
            self._log.flush()
        text = self._log_path.read_text(errors="replace")
        return "\n".join(text.splitlines()[-lines:])
