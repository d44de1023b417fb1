"""Every query of every shipped Grafana dashboard, variables substituted, against the
real Prometheus after an instrumented run: it returns data, or it is listed below as
needing a signal the run does not produce, with the reason."""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator

import numpy as np
import pytest
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression

import mlotel
from support.collector_files import DASHBOARDS, dashboard_queries, split_names
from support.prometheus_server import PrometheusServer, free_port

RATE_INTERVAL = "30s"  # $__rate_interval: several 1 s scrapes
VARIABLES = {"model": "iris", "version": "1", "__rate_interval": RATE_INTERVAL}

# Metric -> why this run cannot produce it. A query that returns no data must use
# one of these; a query using one of these that does return data fails the test, so
# the list only ever shrinks (the drift/outcome issues add runs that produce them).
NEEDS_SIGNAL = {
    "ml_feature_drift": "drift statistics need a reference profile (drift feature); none here",
    "ml_dataset_drift_share": "drift statistics need a reference profile; none here",
    "ml_prediction_drift": "prediction drift needs a reference profile; none here",
    "ml_data_quality_issues_total": "data-quality checks come with the drift feature; none here",
    "ml_outcomes_total": "outcomes need ground truth joined to predictions; none here",
    "mlotel_internal_errors_total": "counts contained faults inside mlotel; a healthy run has none",
}


def substitute(expr: str) -> str:
    """The query Grafana sends for model iris, version 1."""
    for name, value in VARIABLES.items():
        expr = re.sub(rf"\$(?:\{{{name}\}}|{name}\b)", value, expr)
    assert "$" not in expr, expr
    return expr


@pytest.fixture()
def prometheus_after_run() -> Iterator[PrometheusServer]:
    features, target = load_iris(return_X_y=True)
    fitted = LogisticRegression(max_iter=1000).fit(features, target)
    # max_classes=2 with three species: the third is collapsed and the drop counted.
    cfg = mlotel.configure(
        exporter="embedded",
        prometheus_port=free_port(),
        local_sink="none",
        set_global=False,
        max_classes=2,
    )
    assert cfg.metrics_url
    model = mlotel.instrument(fitted, model_name="iris", model_version="1")
    stop = threading.Event()

    def traffic() -> None:
        rng = np.random.default_rng(3)
        calls = 0
        while not stop.wait(0.02):
            rows = features[rng.integers(0, len(features), int(rng.choice([1, 4, 16])))]
            try:
                if calls % 10 == 0:
                    model.predict(rows[:, :2])  # a failing call (wrong feature count)
                elif calls % 2:
                    model.predict_proba(rows)
                else:
                    model.predict(rows)
            except ValueError:
                pass
            calls += 1

    model.predict(features[:3])
    thread = threading.Thread(target=traffic, daemon=True)
    thread.start()
    try:
        with PrometheusServer([cfg.metrics_url]) as prom:
            prom.wait_for_query(
                'count_over_time(ml_inference_duration_seconds_count{ml_model_name="iris"}[30s])'
                " >= 4",
                timeout=60,
            )
            yield prom
    finally:
        stop.set()
        thread.join(timeout=10)


def test_every_dashboard_query_returns_data_or_needs_a_named_signal(
    prometheus_after_run: PrometheusServer,
) -> None:
    prom = prometheus_after_run
    queries = dashboard_queries()
    assert len(queries) >= 15
    with_data: list[str] = []
    needing_signal: list[str] = []
    for dashboard, title, expr in queries:
        query = substitute(expr)
        result = prom.query(query)
        metrics, _labels = split_names(expr)
        missing = sorted(metrics & set(NEEDS_SIGNAL))
        where = f"{dashboard} / {title}: {query}"
        if result:
            assert not missing, f"{where} returned data: remove {missing} from NEEDS_SIGNAL"
            with_data.append(title)
        else:
            assert missing, f"{where} returned no data after the run"
            needing_signal.append(f"{title}: {'; '.join(NEEDS_SIGNAL[m] for m in missing)}")
    print("\nqueries needing a signal this run does not produce:\n  " + "\n  ".join(needing_signal))
    for title in (
        "Prediction rate",
        "Error ratio",
        "Errors by type",
        "Latency p50 / p95 / p99",
        "Batch size",
        "Score distribution",
        "Predicted class shares",
        "mlotel dropped values",
    ):
        assert title in with_data, title
    # The dropped-values panel shows the collapsed third class.
    dropped = prom.query(substitute(next(e for _, t, e in queries if t == "mlotel dropped values")))
    assert {s["metric"]["mlotel_drop_reason"] for s in dropped} == {"max_classes"}
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
