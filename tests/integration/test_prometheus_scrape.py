"""The embedded Prometheus endpoint, scraped by the real Prometheus binary."""

from __future__ import annotations

import logging
import socket
from typing import Any

import numpy as np
import pytest
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression

import mlotel
from mlotel import semconv
from support.prometheus_server import PrometheusServer, free_port

MODEL = 'ml_model_name="iris"'
BATCH_SIZES = (1, 2, 3, 4, 5)  # rows per call, one call per size and method


@pytest.fixture(scope="module")
def iris() -> tuple[np.ndarray, LogisticRegression]:
    features, target = load_iris(return_X_y=True)
    model = LogisticRegression(max_iter=1000).fit(features, target)
    return features, model


def _value(sample: dict[str, Any]) -> float:
    return float(sample["value"][1])


def _by_le(result: list[dict[str, Any]]) -> dict[float, float]:
    return {float(s["metric"]["le"]): _value(s) for s in result}


def _scalar(result: list[dict[str, Any]]) -> float | None:
    return _value(result[0]) if len(result) == 1 else None


def _run_calls(
    proxy: Any, fitted: LogisticRegression, features: np.ndarray, offset: int
) -> tuple[list[Any], np.ndarray]:
    """predict_proba and predict once per batch size; returns labels and max scores."""
    labels: list[Any] = []
    scores: list[np.ndarray] = []
    start = offset
    for size in BATCH_SIZES:
        rows = features[start : start + size]
        start += 27  # spread the rows over all three species
        proba = proxy.predict_proba(rows)
        predicted = proxy.predict(rows)
        # The proxy returns exactly what the model returns (the unwrapped model is unobserved).
        np.testing.assert_array_equal(proba, fitted.predict_proba(rows))
        np.testing.assert_array_equal(predicted, fitted.predict(rows))
        assert proba.shape == (size, 3)
        labels.extend(predicted.tolist())
        scores.append(proba.max(axis=1))
    return labels, np.concatenate(scores)


def test_real_prometheus_scrapes_embedded_endpoint(
    iris: tuple[np.ndarray, LogisticRegression],
) -> None:
    features, fitted = iris
    port = free_port()
    cfg = mlotel.configure(
        exporter="embedded", prometheus_port=port, local_sink="none", set_global=False
    )
    try:
        assert cfg.metrics_url == f"http://127.0.0.1:{port}/metrics"
        assert cfg.output_dir is None
        proxy = mlotel.instrument(fitted, model_name="iris", model_version="1")
        assert isinstance(proxy, LogisticRegression)

        labels, scores = _run_calls(proxy, fitted, features, offset=0)
        rows = sum(BATCH_SIZES)

        with PrometheusServer([cfg.metrics_url]) as prom:
            # --- series names are exactly semconv's ---
            names_result = prom.wait_for_query(
                'count by (__name__) ({__name__=~"ml_.+", job="test"})',
                predicate=lambda r: len(r) >= 10,
            )
            names = {s["metric"]["__name__"] for s in names_result}
            expected_names: set[str] = set()
            for inst in (
                semconv.INFERENCE_DURATION,
                semconv.INFERENCE_BATCH_SIZE,
                semconv.PREDICTION_SCORE,
            ):
                base = inst.prometheus_name
                expected_names |= {f"{base}_bucket", f"{base}_count", f"{base}_sum"}
            expected_names.add(semconv.PREDICTIONS.prometheus_name)
            assert names == expected_names
            duration_name = semconv.INFERENCE_DURATION.prometheus_name
            assert duration_name == "ml_inference_duration_seconds"
            assert semconv.PREDICTIONS.prometheus_name == "ml_predictions_total"

            # --- durations: 5 predict_proba + 5 predict calls ---
            total_calls = 2 * len(BATCH_SIZES)
            prom.wait_for_query(
                f"sum({duration_name}_count{{{MODEL}}})",
                predicate=lambda r: _scalar(r) == total_calls,
            )
            per_operation = {
                s["metric"]["ml_operation_name"]: _value(s)
                for s in prom.query(f"{duration_name}_count{{{MODEL}}}")
            }
            assert per_operation == {"predict_proba": 5.0, "predict": 5.0}
            duration_buckets = _by_le(
                prom.query(f"sum by (le) ({duration_name}_bucket{{{MODEL}}})")
            )
            assert duration_buckets[float("inf")] == total_calls
            assert sorted(b for b in duration_buckets if b != float("inf")) == sorted(
                semconv.DURATION_BUCKETS
            )
            sums = prom.query(f"sum({duration_name}_sum{{{MODEL}}})")
            assert 0.0 < _value(sums[0]) < 60.0

            # --- predicted rows by class (both methods count their rows) ---
            all_labels = labels + labels  # predict_proba's argmax == predict for this model
            expected_classes = {str(c): float(all_labels.count(c)) for c in sorted(set(all_labels))}
            predictions_name = semconv.PREDICTIONS.prometheus_name
            prom.wait_for_query(
                f"sum({predictions_name}{{{MODEL}}})",
                predicate=lambda r: _scalar(r) == len(all_labels),
            )
            by_class = {
                s["metric"]["ml_prediction_class"]: _value(s)
                for s in prom.query(f"{predictions_name}{{{MODEL}}}")
            }
            assert by_class == expected_classes
            assert len(all_labels) == 2 * rows

            # --- scores: one per predict_proba row, bucketed le-cumulatively ---
            score_name = semconv.PREDICTION_SCORE.prometheus_name
            score_buckets = _by_le(prom.query(f"sum by (le) ({score_name}_bucket{{{MODEL}}})"))
            expected_scores = {float(b): float(np.sum(scores <= b)) for b in semconv.SCORE_BUCKETS}
            expected_scores[float("inf")] = float(len(scores))
            assert score_buckets == expected_scores
            [score_sum] = prom.query(f"sum({score_name}_sum{{{MODEL}}})")
            assert _value(score_sum) == pytest.approx(float(scores.sum()), rel=1e-9)

            # --- batch sizes ---
            batch_name = semconv.INFERENCE_BATCH_SIZE.prometheus_name
            batch_buckets = _by_le(prom.query(f"sum by (le) ({batch_name}_bucket{{{MODEL}}})"))
            sizes = np.array([*BATCH_SIZES, *BATCH_SIZES], dtype=float)
            for bound in semconv.BATCH_SIZE_BUCKETS:
                assert batch_buckets[bound] == float(np.sum(sizes <= bound)), bound
            assert batch_buckets[float("inf")] == len(sizes)
            [batch_sum] = prom.query(f"sum({batch_name}_sum{{{MODEL}}})")
            assert _value(batch_sum) == float(sizes.sum())

            # --- repeated scrapes do not double count; new calls show up ---
            scrapes = 'count_over_time(up{job="test"}[5m])'
            before = _scalar(prom.query(scrapes)) or 0.0
            prom.wait_for_query(
                scrapes, predicate=lambda r: (_scalar(r) or 0.0) >= before + 2, timeout=15.0
            )
            [again] = prom.query(f"sum({duration_name}_count{{{MODEL}}})")
            assert _value(again) == total_calls
            _run_calls(proxy, fitted, features, offset=1)
            prom.wait_for_query(
                f"sum({duration_name}_count{{{MODEL}}})",
                predicate=lambda r: _scalar(r) == total_calls + 2 * len(BATCH_SIZES),
            )
            [target] = prom.targets()["activeTargets"]
            assert target["health"] == "up", target
    finally:
        mlotel.shutdown(timeout=5.0)


def test_taken_port_does_not_break_predictions(caplog: pytest.LogCaptureFixture) -> None:
    holder = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        holder.bind(("127.0.0.1", 0))
        holder.listen(1)
        port = int(holder.getsockname()[1])
        with caplog.at_level(logging.WARNING, logger="mlotel"):
            cfg = mlotel.configure(
                exporter="embedded", prometheus_port=port, local_sink="none", set_global=False
            )
            try:
                assert cfg.metrics_url is None  # not served: the port belongs to someone else

                @mlotel.instrument(model_name="portclash", model_version="1")
                def predict(rows: list[list[float]]) -> list[int]:
                    return [1 for _ in rows]

                result = predict([[0.1, 0.2], [0.3, 0.4]])
                assert result == [1, 1]
                assert mlotel.force_flush(timeout=5.0) is True
            finally:
                mlotel.shutdown(timeout=5.0)
        warnings = [
            r
            for r in caplog.records
            if r.name == "mlotel" and r.levelno >= logging.WARNING and str(port) in r.getMessage()
        ]
        assert warnings, [r.getMessage() for r in caplog.records]
        message = warnings[0].getMessage()
        assert "MLOTEL_PROMETHEUS_PORT" in message
        assert "OTEL_EXPORTER_OTLP_ENDPOINT" in message
        # The holder still owns the port: mlotel did not steal it.
        assert holder.getsockname()[1] == port
    finally:
        holder.close()
