"""Live alerting: the shipped rules in the real Prometheus, the shipped routing in the
real Alertmanager, an instrumented model (with a reference profile and recorded ground
truth) whose error rate, input drift and accuracy are then pushed over the thresholds,
and the alerts arriving at a loopback webhook.

Durations of the shipped rules are compressed 60x (a minute becomes a second) and
Alertmanager's timers shortened: the documented test override in
tests/support/alerting.py and docs/operations.md ("Testing the alerts").
"""

from __future__ import annotations

import time
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
from support.collector_files import COLLECTOR, shipped_rule_files
from support.prometheus_server import PrometheusServer, free_port
from support.traffic import BackgroundTraffic

MODEL = {"ml_model_name": "iris", "ml_model_version": "1"}
FEATURES = ["sepal_length", "sepal_width", "petal_length", "petal_width"]


class Traffic(BackgroundTraffic):
    """Calls the instrumented model from a thread and records each row's ground truth.

    ``failing`` makes half the calls raise, ``drifted`` shifts every feature beyond its
    training range, ``wrong_labels`` records ground truth that contradicts the model.
    """

    def __init__(self, model: Any, features: np.ndarray, target: np.ndarray) -> None:
        super().__init__(model, features, target)
        self.failing = False
        self.drifted = False
        self.wrong_labels = False
        self.errors = 0
        self._rng = np.random.default_rng(1)

    def step(self) -> None:
        picked = self._rng.integers(0, len(self.features), 4)
        rows = self.features[picked]
        if self.drifted:
            rows = rows + 3.0
        self.calls += 1
        if self.failing and self.calls % 2 == 0:
            rows = rows[:, :2]  # wrong number of features: the model raises ValueError
        try:
            self.model.predict(rows)
        except ValueError:
            self.errors += 1
            return
        truth = self.target[picked]
        if self.wrong_labels:
            truth = (truth + 1) % 3
        statuses = mlotel.record_outcomes(mlotel.last_prediction_ids(), truth)
        assert statuses["matched"] == len(rows), statuses


@pytest.fixture()
def stack(tmp_path: Path) -> Iterator[tuple[PrometheusServer, WebhookSink, Traffic]]:
    features, target = load_iris(return_X_y=True)
    fitted = LogisticRegression(max_iter=1000).fit(features, target)
    reference = mlotel.Profile.from_data(
        features, feature_names=FEATURES, prediction=fitted.predict(features)
    )
    # Windows shortened (documented settings) so drift and accuracy follow the
    # traffic within seconds; the minimum samples stay at their defaults (500, 100).
    cfg = mlotel.configure(
        exporter="embedded",
        prometheus_port=free_port(),
        local_sink="none",
        set_global=False,
        outcome_window_size=200,
    )
    assert cfg.metrics_url
    model = mlotel.instrument(
        fitted,
        model_name="iris",
        model_version="1",
        feature_names=FEATURES,
        reference=reference,
        drift=mlotel.DriftConfig(window_rows=1000),
    )
    model.predict(features[:2])  # the series exist before Prometheus first scrapes

    rule_files = []
    for source in shipped_rule_files():
        compress_rules(source, tmp_path / source.name)
        rule_files.append(tmp_path / source.name)
    shipped_am = yaml.safe_load((COLLECTOR / "alertmanager" / "alertmanager.yml").read_text())
    traffic = Traffic(model, features, target)
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


def test_errors_drift_and_wrong_predictions_alert_and_silence_reaches_chat(
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
    assert {
        "HighPredictionErrorRate",
        "NoPredictions",
        "DataDriftDetected",
        "ModelAccuracyDegraded",
        "ml_model:inference_calls:rate5m",
    } <= shipped
    assert loaded == shipped

    # Healthy traffic: the error ratio is recorded as 0, the model's inputs match its
    # reference, its measured accuracy is good, and nothing fires.
    selector = '{ml_model_name="iris", ml_model_version="1"}'
    prom.wait_for_query(
        f"ml_model:inference_error_ratio:rate5m{selector} == 0"
        f" and ml_model:inference_calls:rate5m{selector} > 5",
        timeout=60,
    )
    prom.wait_for_query(f"ml_dataset_drift_share{selector} < 0.5", timeout=30)
    prom.wait_for_query(
        f'ml_dataset_drift_detected{{ml_drift_method="features", {selector[1:-1]}}} == 0',
        timeout=30,
    )
    prom.wait_for_query(
        f'ml_model_performance{{ml_metric_name="accuracy", {selector[1:-1]}}} > 0.8', timeout=30
    )
    assert not [a for a in prom.alerts() if a["labels"]["alertname"] != "NoPredictions"]

    # Half the calls fail, the inputs drift and the ground truth contradicts the model:
    # the two critical alerts page, and drift reaches the retraining hook although the
    # model pages (drift is not inhibited).
    traffic.failing = traffic.drifted = traffic.wrong_labels = True
    paged = sink.wait_for("pager", lambda a: _is("HighPredictionErrorRate", a), timeout=90)
    assert paged["labels"]["severity"] == "critical"
    assert "iris 1" in paged["annotations"]["summary"]
    assert traffic.errors > 0
    wrong = sink.wait_for("pager", lambda a: _is("ModelAccuracyDegraded", a), timeout=90)
    assert wrong["labels"]["severity"] == "critical"
    assert wrong["labels"]["ml_metric_name"] == "accuracy"
    assert wrong["annotations"]["summary"].startswith("Model iris 1: accuracy ")
    drift = sink.wait_for("retraining", lambda a: _is("DataDriftDetected", a), timeout=90)
    assert drift["labels"]["severity"] == "warning"
    assert drift["labels"]["ml_drift_method"] == "features"
    assert drift["annotations"]["summary"] == "Model iris 1: input drift detected (features)"
    sink.wait_for("chat", lambda a: _is("DataDriftDetected", a), timeout=30)
    # The SDK's decisions behind it: every shifted feature flagged, and the predictions
    # (their class mix changed) flagged too, which PredictionDrift turns into an alert
    # (held back from chat while the model pages: inhibited like every other warning).
    assert prom.query(f"ml_feature_drift_detected{selector} == 1")
    deadline = time.monotonic() + 90
    while not [
        a
        for a in prom.alerts()
        if a["labels"]["alertname"] == "PredictionDrift"
        and a["labels"].get("ml_feature_name") == "prediction"
        and a["state"] == "firing"
    ]:
        assert time.monotonic() < deadline, prom.alerts()
        time.sleep(0.5)

    # Healthy again: the critical alerts resolve (else they would inhibit the next warning).
    traffic.failing = traffic.drifted = traffic.wrong_labels = False
    deadline = time.monotonic() + 60
    while [a for a in prom.alerts() if a["labels"]["severity"] == "critical"]:
        assert time.monotonic() < deadline, prom.alerts()
        time.sleep(0.5)

    # Traffic stops: NoPredictions (a warning) reaches the chat receiver.
    traffic.stop()
    silent = sink.wait_for("chat", lambda a: _is("NoPredictions", a), timeout=90)
    assert silent["labels"]["severity"] == "warning"
    assert "no predictions" in silent["annotations"]["summary"]

    # Routing: critical alerts never went to chat, warnings never paged, and only
    # DataDriftDetected reached the retraining receiver.
    chat = {a["labels"]["alertname"] for a in sink.alerts("chat")}
    pager = {a["labels"]["alertname"] for a in sink.alerts("pager")}
    assert {"HighPredictionErrorRate", "ModelAccuracyDegraded"} <= pager
    assert not {"HighPredictionErrorRate", "ModelAccuracyDegraded"} & chat
    assert not {"NoPredictions", "DataDriftDetected"} & pager
    assert {a["labels"]["alertname"] for a in sink.alerts("retraining")} == {"DataDriftDetected"}
