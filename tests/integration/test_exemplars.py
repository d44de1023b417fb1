"""Exemplars link ml.inference.duration and ml.prediction.score to the traces of real
spans (issue 13, item 19): over OTLP, and through the embedded Prometheus endpoint to a
real Prometheus with exemplar storage (`/api/v1/query_exemplars`)."""

from __future__ import annotations

import time
import urllib.request
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import mlotel
import mlotel.testing
from mlotel import semconv
from support.file_sink import file_spans
from support.otlp_receiver import OTLPReceiver
from support.prometheus_server import PrometheusServer, free_port

PAUSES = (0.0, 0.003, 0.03)  # spread the calls over three duration buckets


def _slow_classifier(rows: np.ndarray) -> np.ndarray:
    time.sleep(float(rows[0, 0]))
    return np.tile([[0.1, 0.9]], (len(rows), 1))


def _predict_a_few(predict: Any) -> None:
    for pause in PAUSES:
        for _ in range(3):
            predict(np.array([[pause, 0.0], [pause, 1.0]]))


def _file_spans(folder: Path) -> dict[str, str]:
    """trace id -> span id of every span in the files sink (hex, as OpenMetrics has them)."""
    return {span["traceId"]: span["spanId"] for _, span in file_spans(folder)}


def test_real_prometheus_stores_exemplars_of_real_spans(tmp_path: Path) -> None:
    port = free_port()
    cfg = mlotel.configure(
        exporter="embedded", prometheus_port=port, output_dir=str(tmp_path), set_global=False
    )
    try:
        predict = mlotel.instrument(_slow_classifier, model_name="linked", model_version="2")
        _predict_a_few(predict)
        # The endpoint itself, asked for OpenMetrics as Prometheus asks.
        request = urllib.request.Request(
            str(cfg.metrics_url),
            headers={"Accept": "application/openmetrics-text; version=1.0.0; charset=utf-8"},
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            exposition = response.read().decode()
        assert '# {span_id="' in exposition and 'trace_id="' in exposition
        # ... and in the classic text format no exemplar (it has no syntax for them).
        with urllib.request.urlopen(str(cfg.metrics_url), timeout=10) as response:
            assert "trace_id" not in response.read().decode()

        start = time.time() - 600
        with PrometheusServer(
            [str(cfg.metrics_url)], flags=["--enable-feature=exemplar-storage"]
        ) as prom:
            found: dict[str, list[dict[str, Any]]] = {}
            for instrument in (semconv.INFERENCE_DURATION, semconv.PREDICTION_SCORE):
                query = f'{instrument.prometheus_name}_bucket{{ml_model_name="linked"}}'
                deadline = time.monotonic() + 30
                while True:
                    data = prom.api(
                        "query_exemplars",
                        {"query": query, "start": str(start), "end": str(time.time() + 60)},
                    )
                    exemplars = [e for series in data for e in series["exemplars"]]
                    if exemplars or time.monotonic() > deadline:
                        break
                    time.sleep(0.25)
                assert exemplars, f"no exemplars for {query}:\n{prom.log_tail()}"
                found[instrument.name] = exemplars
        assert mlotel.force_flush()
        spans = _file_spans(tmp_path)
        assert len(spans) == 9
        for name, exemplars in found.items():
            for exemplar in exemplars:
                trace_id = exemplar["labels"]["trace_id"]
                assert trace_id in spans, (name, exemplar)  # a real span's trace
                assert exemplar["labels"]["span_id"] == spans[trace_id]
        scores = {float(e["value"]) for e in found[semconv.PREDICTION_SCORE.name]}
        assert scores == {0.9}
        # one exemplar per bucket: the three pauses land in different duration buckets
        durations = sorted(float(e["value"]) for e in found[semconv.INFERENCE_DURATION.name])
        assert len(durations) >= 2 and durations[-1] >= 0.03
    finally:
        mlotel.shutdown()


@pytest.mark.parametrize("protocol", ["http/protobuf", "grpc"])
def test_otlp_histograms_carry_exemplars_of_sampled_spans(protocol: str) -> None:
    with OTLPReceiver() as receiver:
        endpoint = receiver.grpc_endpoint if protocol == "grpc" else receiver.http_endpoint
        mlotel.configure(
            exporter="otlp", otlp_endpoint=endpoint, otlp_protocol=protocol, set_global=False
        )
        try:
            predict = mlotel.instrument(_slow_classifier, model_name="otlp-linked")
            _predict_a_few(predict)
        finally:
            assert mlotel.shutdown(timeout=10.0)
        spans = {span.trace_id: span.span_id for _, span in receiver.spans()}
        assert len(spans) == 9
        seen: dict[str, int] = {}
        for _, metric in receiver.metrics():
            if metric.name not in (semconv.INFERENCE_DURATION.name, semconv.PREDICTION_SCORE.name):
                continue
            for point in metric.histogram.data_points:
                for exemplar in point.exemplars:
                    assert spans[exemplar.trace_id] == exemplar.span_id
                    seen[metric.name] = seen.get(metric.name, 0) + 1
        assert seen.get(semconv.INFERENCE_DURATION.name, 0) >= 2
        assert seen.get(semconv.PREDICTION_SCORE.name, 0) >= 1


def test_unsampled_calls_give_no_exemplars() -> None:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.sampling import ALWAYS_OFF

    with mlotel.testing.capture_telemetry() as captured:
        captured.runtime.tracer = TracerProvider(sampler=ALWAYS_OFF).get_tracer("off")
        predict = mlotel.instrument(_slow_classifier, model_name="unsampled")
        _predict_a_few(predict)
        points = captured.points(semconv.INFERENCE_DURATION.name, {"ml.model.name": "unsampled"})
        assert sum(p.count for p in points) == 9
        assert all(not p.exemplars for p in points)
