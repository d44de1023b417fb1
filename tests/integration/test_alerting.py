"""Live alerting: the shipped rules in the real Prometheus, the shipped routing in the
real Alertmanager, an instrumented model whose error rate is pushed over the
threshold, and the alerts arriving at a loopback webhook.

Durations of the shipped rules are compressed 60x (a minute becomes a second) and
Alertmanager's timers shortened: the documented test override in
tests/support/alerting.py and docs/operations.md ("Testing the alerts").
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression

import mlotel
from support.alerting import (
    AlertmanagerServer,
    WebhookSink,
    alertmanager_test_config,
    compress_rules,
)
from support.prometheus_server import PrometheusServer, free_port

COLLECTOR = Path(__file__).resolve().parents[2] / "collector"
PROMETHEUS_DIR = COLLECTOR / "prometheus"
MODEL = {"ml_model_name": "iris", "ml_model_version": "1"}


def shipped_rule_files() -> list[Path]:
    """The rule files the shipped prometheus.yml loads (its globs, resolved)."""
    config = yaml.safe_load((PROMETHEUS_DIR / "prometheus.yml").read_text())
    files: list[Path] = []
    for pattern in config["rule_files"]:
        files.extend(sorted(PROMETHEUS_DIR.glob(pattern)))
    return files


class Traffic:
    """Calls the instrumented model from a thread; ``failing`` makes half the calls raise."""

    def __init__(self, model: Any, features: np.ndarray) -> None:
        self.model = model
        self.features = features
        self.failing = False
        self.calls = 0
        self.errors = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        rng = np.random.default_rng(1)
        while not self._stop.wait(0.02):
            rows = self.features[rng.integers(0, len(self.features), 4)]
            if self.failing and self.calls % 2 == 0:
                rows = rows[:, :2]  # wrong number of features: the model raises ValueError
            try:
                self.model.predict(rows)
            except ValueError:
                self.errors += 1
            self.calls += 1

    def start(self) -> Traffic:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)


@pytest.fixture()
def stack(tmp_path: Path) -> Iterator[tuple[PrometheusServer, WebhookSink, Traffic]]:
    features, target = load_iris(return_X_y=True)
    fitted = LogisticRegression(max_iter=1000).fit(features, target)
    cfg = mlotel.configure(
        exporter="embedded", prometheus_port=free_port(), local_sink="none", set_global=False
    )
    assert cfg.metrics_url
    model = mlotel.instrument(fitted, model_name="iris", model_version="1")
    model.predict(features[:2])  # the series exist before Prometheus first scrapes

    rule_files = []
    for source in shipped_rule_files():
        compress_rules(source, tmp_path / source.name)
        rule_files.append(tmp_path / source.name)
    shipped_am = yaml.safe_load((COLLECTOR / "alertmanager" / "alertmanager.yml").read_text())
    traffic = Traffic(model, features)
    with (
        WebhookSink() as sink,
        AlertmanagerServer(alertmanager_test_config(shipped_am, sink.url)) as alertmanager,
        PrometheusServer(
            [cfg.metrics_url], rule_files=rule_files, alertmanager_url=alertmanager.url
        ) as prom,
    ):
        try:
            yield prom, sink, traffic.start()
        finally:
            traffic.stop()


def _is(alertname: str, alert: dict[str, Any]) -> bool:
    labels = alert["labels"]
    return (
        labels.get("alertname") == alertname
        and all(labels.get(k) == v for k, v in MODEL.items())
        and alert["status"] == "firing"
    )


def test_error_spike_pages_and_silence_reaches_chat(
    stack: tuple[PrometheusServer, WebhookSink, Traffic],
) -> None:
    prom, sink, traffic = stack

    # Every shipped rule is loaded.
    loaded = {rule["name"] for group in prom.rules() for rule in group["rules"]}
    shipped = {
        rule.get("alert") or rule.get("record")
        for path in shipped_rule_files()
        for group in yaml.safe_load(path.read_text())["groups"]
        for rule in group["rules"]
    }
    assert {"HighPredictionErrorRate", "NoPredictions", "ml_model:inference_calls:rate5m"} <= (
        shipped
    )
    assert loaded == shipped

    # Healthy traffic: the error ratio is recorded as 0 and nothing fires.
    selector = '{ml_model_name="iris", ml_model_version="1"}'
    prom.wait_for_query(
        f"ml_model:inference_error_ratio:rate5m{selector} == 0"
        f" and ml_model:inference_calls:rate5m{selector} > 5",
        timeout=60,
    )
    assert not [a for a in prom.alerts() if a["labels"]["alertname"] != "NoPredictions"]

    # Half the calls fail: the critical alert reaches the pager receiver.
    traffic.failing = True
    paged = sink.wait_for("pager", lambda a: _is("HighPredictionErrorRate", a), timeout=90)
    assert paged["labels"]["severity"] == "critical"
    assert "iris 1" in paged["annotations"]["summary"]
    assert traffic.errors > 0

    # Traffic stops: NoPredictions (a warning) reaches the chat receiver.
    traffic.stop()
    silent = sink.wait_for("chat", lambda a: _is("NoPredictions", a), timeout=90)
    assert silent["labels"]["severity"] == "warning"
    assert "no predictions" in silent["annotations"]["summary"]

    # Routing: the critical alert never went to chat, the warning never paged,
    # and nothing reached the drift-only retraining receiver.
    chat = {a["labels"]["alertname"] for a in sink.alerts("chat")}
    pager = {a["labels"]["alertname"] for a in sink.alerts("pager")}
    assert "HighPredictionErrorRate" not in chat
    assert "NoPredictions" not in pager
    assert sink.alerts("retraining") == []
