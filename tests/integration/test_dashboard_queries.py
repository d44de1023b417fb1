"""Every query of every shipped Grafana dashboard, variables substituted, against the
real Prometheus (loaded with the shipped rule files) after an instrumented run: it
returns data, or it is listed below as needing a signal the run does not produce, with
the reason.

The run produces every signal the dashboard shows: failing calls, a reference profile
with drifted inputs on a quarter of the calls (petal features shifted beyond the
training range), missing values, ground truth recorded for every predicted row, and a
retraining hook (``on_drift``) that is down, whose exceptions mlotel contains and counts
as internal errors."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from sklearn.datasets import load_iris
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline

import mlotel
from support.collector_files import (
    DASHBOARDS,
    dashboard_queries,
    shipped_rule_files,
    split_names,
)
from support.prometheus_server import PrometheusServer, free_port
from support.traffic import BackgroundTraffic

RATE_INTERVAL = "30s"  # $__rate_interval: several 1 s scrapes
VARIABLES = {"model": "iris", "version": "1", "__rate_interval": RATE_INTERVAL}
FEATURES = ["sepal_length", "sepal_width", "petal_length", "petal_width"]

# Metric -> why this run cannot produce it. A query that returns no data must use
# one of these; a query using one of these that does return data fails the test, so
# the list only ever shrinks. The run below produces every signal of the shipped
# dashboard but the generation row; a new panel on a signal a run cannot produce goes here.
_NO_GENERATION = (
    "the iris run generates no tokens (tests/integration/test_transformers_launcher.py "
    "exports these series from a real generate() over OTLP)"
)
NEEDS_SIGNAL: dict[str, str] = {
    "gen_ai_client_token_usage_sum": _NO_GENERATION,
    "gen_ai_server_time_to_first_token_seconds_bucket": _NO_GENERATION,
    "gen_ai_server_time_per_output_token_seconds_bucket": _NO_GENERATION,
    "gen_ai_client_operation_duration_seconds_bucket": _NO_GENERATION,
}


def substitute(expr: str) -> str:
    """The query Grafana sends for model iris, version 1."""
    for name, value in VARIABLES.items():
        expr = re.sub(rf"\$(?:\{{{name}\}}|{name}\b)", value, expr)
    assert "$" not in expr, expr
    return expr


def retraining_hook_that_is_down(event: Any) -> None:
    """An on_drift callback whose service is unreachable (mlotel counts the exception)."""
    raise ConnectionError(f"retraining service unreachable ({event.feature} drifted)")


class Traffic(BackgroundTraffic):
    """Calls the instrumented model from a thread and records the truth of every row."""

    def __init__(self, model: Any, features: np.ndarray, target: np.ndarray) -> None:
        super().__init__(model, features, target)
        self._rng = np.random.default_rng(3)

    def step(self) -> None:
        picked = self._rng.integers(0, len(self.features), int(self._rng.choice([4, 16])))
        rows = self.features[picked].copy()
        calls, self.calls = self.calls, self.calls + 1
        if calls % 10 == 0:
            try:
                self.model.predict(rows[:, :2])  # a failing call (wrong feature count)
            except ValueError:
                return
            raise AssertionError("a two-feature input did not fail")
        if calls % 4 == 1:
            rows[:, 2:] += 3.0  # drift: petal length and width beyond the training range
        if calls % 5 == 2:
            rows[0, 0] = np.nan  # data quality: a missing sepal length (the pipeline imputes)
        if calls % 2:
            self.model.predict_proba(rows)
        else:
            self.model.predict(rows)
        # The truth of every predicted row (wrong for the drifted ones: accuracy drops).
        statuses = mlotel.record_outcomes(mlotel.last_prediction_ids(), self.target[picked])
        assert statuses["matched"] == len(rows), statuses


@pytest.fixture()
def prometheus_after_run() -> Iterator[PrometheusServer]:
    features, target = load_iris(return_X_y=True)
    fitted = make_pipeline(SimpleImputer(), LogisticRegression(max_iter=1000))
    fitted.fit(features, target)
    reference = mlotel.Profile.from_data(
        features, feature_names=FEATURES, prediction=fitted.predict(features)
    )
    # max_classes=2 with three species: the third is collapsed and the drop counted.
    # Outcome and drift minimum samples are lowered so a few seconds of traffic
    # publish performance and drift (the defaults, 100 and 500, would too, later).
    cfg = mlotel.configure(
        exporter="embedded",
        prometheus_port=free_port(),
        local_sink="none",
        set_global=False,
        max_classes=2,
        outcome_min_samples=50,
    )
    assert cfg.metrics_url
    model = mlotel.instrument(
        fitted,
        model_name="iris",
        model_version="1",
        feature_names=FEATURES,
        reference=reference,
        drift=mlotel.DriftConfig(
            window_rows=1000, min_samples=200, on_drift=retraining_hook_that_is_down
        ),
    )
    traffic = Traffic(model, features, target)
    for _ in range(40):  # enough rows and outcomes for every series before the first scrape
        traffic.step()
    mlotel.force_flush()
    traffic.start()
    try:
        with PrometheusServer([cfg.metrics_url], rule_files=shipped_rule_files()) as prom:
            prom.wait_for_query(
                'count_over_time(ml_inference_duration_seconds_count{ml_model_name="iris"}[30s])'
                " >= 4",
                timeout=60,
            )
            yield prom
    finally:
        traffic.stop()


def query_until_data(
    prom: PrometheusServer, queries: list[str], timeout: float
) -> dict[str, list[Any]]:
    """Each query's result, polled until all but the NEEDS_SIGNAL ones have data."""
    deadline = time.monotonic() + timeout
    while True:
        results = {query: prom.query(query) for query in queries}
        waiting = [
            q for q, r in results.items() if not r and not split_names(q)[0] & set(NEEDS_SIGNAL)
        ]
        if not waiting or time.monotonic() > deadline:
            return results
        time.sleep(0.5)


def test_every_dashboard_query_returns_data_or_needs_a_named_signal(
    prometheus_after_run: PrometheusServer,
) -> None:
    prom = prometheus_after_run
    queries = dashboard_queries()
    assert len(queries) >= 15
    results = query_until_data(prom, [substitute(e) for _, _, e in queries], timeout=40)
    with_data: dict[str, list[Any]] = {}
    needing_signal: list[str] = []
    for dashboard, title, expr in queries:
        query = substitute(expr)
        result = results[query]
        metrics, _labels = split_names(expr)
        missing = sorted(metrics & set(NEEDS_SIGNAL))
        where = f"{dashboard} / {title}: {query}"
        if result:
            assert not missing, f"{where} returned data: remove {missing} from NEEDS_SIGNAL"
            with_data.setdefault(title, []).extend(result)
        else:
            assert missing, f"{where} returned no data after the run"
            needing_signal.append(f"{title}: {'; '.join(NEEDS_SIGNAL[m] for m in missing)}")
    print("\nqueries needing a signal this run does not produce:", *needing_signal or ["none"])
    for title in (
        "Prediction rate",
        "Error ratio",
        "Errors by type",
        "Latency p50 / p95 / p99",
        "Batch size",
        "Score distribution",
        "Predicted class shares",
        "Feature drift (latest)",
        "Feature drift",
        "Dataset drift share",
        "Prediction drift",
        "Drift decisions (features)",
        "Dataset drift decision",
        "Prediction drift decision",
        "Fleet drift decision",
        "Fleet feature drift (PSI, all replicas)",
        "Data-quality issues",
        "Model performance",
        "Outcomes",
        "mlotel internal errors",
        "mlotel dropped values",
    ):
        assert title in with_data, title

    def values(title: str, *labels: str) -> dict[Any, float]:
        """The panel's latest values by label (a tuple for several labels)."""
        found = {}
        for series in with_data[title]:
            key = tuple(series["metric"][label] for label in labels)
            found[key if len(key) > 1 else key[0]] = float(series["value"][1])
        return found

    # The panels show what the run did. Drift: the shifted petal features, not the sepals.
    psi = values("Feature drift (latest)", "ml_feature_name", "ml_drift_method")
    assert psi["petal_length", "psi"] > 0.1 and psi["petal_width", "psi"] > 0.1, psi
    assert psi["sepal_width", "psi"] < 0.1, psi
    fleet = values("Fleet feature drift (PSI, all replicas)", "ml_feature_name")
    assert fleet["petal_width"] > 0.1 and fleet["sepal_width"] < 0.1, fleet
    # The decisions flag the shifted petal features (a quarter of the calls shifted by
    # several training standard deviations), on one replica and across the fleet.
    decided = values("Drift decisions (features)", "ml_feature_name")
    assert decided["petal_length"] == 1 and decided["petal_width"] == 1, decided
    assert values("Dataset drift decision", "ml_drift_method")["features"] == 1
    fleet_decided = values("Fleet drift decision", "ml_feature_name")
    assert fleet_decided["petal_width"] == 1, fleet_decided
    assert set(values("Prediction drift decision", "ml_feature_name")) == {"prediction"}
    assert set(values("Dataset drift share", "ml_model_name")) == {"iris"}
    # Prediction drift is labelled with the profile's prediction column.
    assert ("prediction", "psi") in values("Prediction drift", "ml_feature_name", "ml_drift_method")
    quality = values("Data-quality issues", "ml_feature_name", "ml_data_quality_issue")
    assert {("sepal_length", "missing"), ("petal_width", "out_of_range")} <= set(quality), quality
    performance = values("Model performance", "ml_metric_name")
    assert {"accuracy", "f1_macro", "estimated_accuracy"} <= set(performance), performance
    assert 0 < performance["accuracy"] < 1, performance
    assert set(values("Outcomes", "ml_outcome_status")) == {"matched"}
    assert set(values("mlotel internal errors", "mlotel_component")) == {"drift.on_drift"}
    # Dropped values: the collapsed third class, and the two-feature calls the drift
    # monitor cannot map to the profile's four features.
    dropped = values("mlotel dropped values", "mlotel_drop_reason")
    assert set(dropped) == {"max_classes", "input_width"}, dropped
    # The dashboards' $model and $version variable queries list what the run exported.
    listed = {}
    for path in DASHBOARDS:
        for variable in json.loads(path.read_text())["templating"]["list"]:
            if variable["type"] == "query":
                match = re.fullmatch(r"label_values\((.+),\s*(\w+)\)", variable["definition"])
                assert match, variable["definition"]
                selector, label = substitute(match.group(1)), match.group(2)
                listed[variable["name"]] = prom_label_values(prom, label, selector)
    names, versions = listed["model"], listed["version"]
    assert names == ["iris"] and versions == ["1"]


def prom_label_values(prom: PrometheusServer, label: str, selector: str) -> list[str]:
    """What Grafana's label_values(selector, label) shows."""
    values = prom.api(f"label/{label}/values", {"match[]": selector})
    return sorted(values)
