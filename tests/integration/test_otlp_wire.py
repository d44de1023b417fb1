"""mlotel -> real OTLP exporters -> an in-process OTLP receiver, over real sockets.

Both transports (OTLP/HTTP protobuf and OTLP/gRPC) must deliver the span, the
inference metrics and the ``ml.prediction`` log record of one predict call,
correlated with each other and carrying the configured resource.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

import mlotel
from mlotel import semconv
from support.otlp_receiver import OTLPReceiver, attributes_to_dict, log_fields

SERVICE = "churn-service-wire-test"


@pytest.fixture
def receiver() -> Iterator[OTLPReceiver]:
    with OTLPReceiver() as rx:
        yield rx


def _point_attrs(point: Any) -> dict[str, Any]:
    return attributes_to_dict(point.attributes)


def _latest(points: list[Any]) -> Any:
    """The most recent cumulative point (periodic exports repeat the running total)."""
    assert points, "no data points received"
    return max(points, key=lambda p: p.time_unix_nano)


def _metric(rx: OTLPReceiver, name: str) -> Any:
    found = [m for _, m in rx.metrics() if m.name == name]
    assert found, f"metric {name} not received; got {sorted({m.name for _, m in rx.metrics()})}"
    return found[-1]


def _predict_once_and_check(rx: OTLPReceiver, endpoint: str, protocol: str) -> None:
    transport = "grpc" if protocol == "grpc" else "http"
    cfg = mlotel.configure(
        exporter="otlp",
        otlp_endpoint=endpoint,
        otlp_protocol=protocol,
        service_name=SERVICE,
        set_global=False,
        metric_export_interval=0.2,
        payload_sample_rate=1.0,  # the call's log record is checked on the wire
    )
    try:
        assert cfg.settings.exporter == "otlp"
        assert cfg.settings.otlp_protocol == protocol
        assert cfg.metrics_url is None  # no embedded Prometheus on the OTLP path

        @mlotel.instrument(model_name="churn", model_version="3.1.0")
        def predict(features: np.ndarray) -> np.ndarray:
            return np.array([[0.2, 0.8]])

        features = np.array([[1.5, -2.0]])
        result = predict(features)
        np.testing.assert_array_equal(result, [[0.2, 0.8]])
        assert mlotel.force_flush(timeout=10.0) is True

        def everything_arrived() -> bool:
            return bool(
                rx.spans()
                and rx.logs()
                and rx.metric_points(semconv.INFERENCE_DURATION.name)
                and rx.metric_points(semconv.INFERENCE_BATCH_SIZE.name)
                and rx.metric_points(semconv.PREDICTIONS.name)
            )

        assert rx.wait_for(everything_arrived, timeout=15.0), (
            f"spans={len(rx.spans())} logs={len(rx.logs())} "
            f"metrics={sorted({m.name for _, m in rx.metrics()})} errors={rx.errors}"
        )
    finally:
        mlotel.shutdown(timeout=5.0)

    assert rx.errors == []
    assert {r.transport for r in rx.requests()} == {transport}

    # --- the span ---
    [(span_resource, span)] = rx.spans()
    assert span.name == "predict churn"
    span_attrs = attributes_to_dict(span.attributes)
    assert span_attrs[semconv.ATTR_MODEL_NAME] == "churn"
    assert span_attrs[semconv.ATTR_MODEL_VERSION] == "3.1.0"
    assert span_attrs[semconv.ATTR_OPERATION_NAME] == "predict"
    assert span_attrs[semconv.ATTR_BATCH_SIZE] == 1
    prediction_id = span_attrs[semconv.ATTR_PREDICTION_ID]
    assert isinstance(prediction_id, str)
    assert len(prediction_id) == 16
    int(prediction_id, 16)  # hex
    assert span_resource["service.name"] == SERVICE
    assert span_resource["telemetry.distro.name"] == "mlotel"
    assert len(span.trace_id) == 16 and any(span.trace_id)
    assert len(span.span_id) == 8 and any(span.span_id)

    # --- metrics ---
    for resource, _ in rx.metrics():
        assert resource["service.name"] == SERVICE
    duration = _metric(rx, semconv.INFERENCE_DURATION.name)
    assert duration.unit == "s" == semconv.INFERENCE_DURATION.unit
    assert duration.WhichOneof("data") == "histogram"
    point = _latest(rx.metric_points(semconv.INFERENCE_DURATION.name))
    assert point.count == 1
    assert list(point.explicit_bounds) == list(semconv.DURATION_BUCKETS)
    assert len(point.bucket_counts) == len(semconv.DURATION_BUCKETS) + 1
    assert sum(point.bucket_counts) == 1
    assert 0.0 <= point.sum < 10.0
    assert _point_attrs(point) == {
        semconv.ATTR_MODEL_NAME: "churn",
        semconv.ATTR_MODEL_VERSION: "3.1.0",
        semconv.ATTR_OPERATION_NAME: "predict",
    }
    # every exported duration point is the same cumulative single call
    assert all(p.count == 1 for p in rx.metric_points(semconv.INFERENCE_DURATION.name))

    batch = _metric(rx, semconv.INFERENCE_BATCH_SIZE.name)
    assert batch.WhichOneof("data") == "histogram"
    assert batch.unit == semconv.INFERENCE_BATCH_SIZE.unit
    batch_point = _latest(rx.metric_points(semconv.INFERENCE_BATCH_SIZE.name))
    assert batch_point.count == 1
    assert batch_point.sum == 1.0
    assert list(batch_point.explicit_bounds) == list(semconv.BATCH_SIZE_BUCKETS)

    predictions = _metric(rx, semconv.PREDICTIONS.name)
    assert predictions.WhichOneof("data") == "sum"
    assert predictions.sum.is_monotonic
    pred_points = rx.metric_points(semconv.PREDICTIONS.name)
    latest_total = _latest(pred_points)
    assert latest_total.as_int == 1
    # [[0.2, 0.8]] reads as class probabilities: column 1 wins
    assert _point_attrs(latest_total)[semconv.ATTR_PREDICTION_CLASS] == "1"

    # --- the log record ---
    [(log_resource, record)] = rx.logs()
    assert log_resource["service.name"] == SERVICE
    assert record.event_name == semconv.EVENT_PREDICTION
    assert record.trace_id == span.trace_id
    assert record.span_id == span.span_id
    features_kv = next(
        kv for kv in record.body.kvlist_value.values if kv.key == semconv.ATTR_FEATURES
    )
    assert features_kv.value.WhichOneof("value") == "kvlist_value"
    log_attrs = log_fields(record)
    assert log_attrs[semconv.ATTR_FEATURES] == {"f0": 1.5, "f1": -2.0}
    assert log_attrs[semconv.ATTR_PREDICTION_ID] == prediction_id
    assert log_attrs[semconv.ATTR_MODEL_NAME] == "churn"
    assert log_attrs[semconv.ATTR_MODEL_VERSION] == "3.1.0"
    assert log_attrs[semconv.ATTR_PREDICTION] == 1
    assert log_attrs[semconv.ATTR_PREDICTION_SCORE] == pytest.approx(0.8)
    assert semconv.ATTR_PAYLOAD_TRUNCATED not in log_attrs
    # the record carries the call's own end time, inside the span
    assert span.start_time_unix_nano <= record.time_unix_nano <= span.end_time_unix_nano + 10**9


def test_http_protobuf_delivers_span_metrics_and_log(receiver: OTLPReceiver) -> None:
    _predict_once_and_check(receiver, receiver.http_endpoint, "http/protobuf")


def test_grpc_delivers_span_metrics_and_log(receiver: OTLPReceiver) -> None:
    _predict_once_and_check(receiver, receiver.grpc_endpoint, "grpc")


def test_otel_exporter_otlp_endpoint_env_alone_selects_otlp(
    receiver: OTLPReceiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    for var in (
        "MLOTEL_EXPORTER",
        "MLOTEL_OTLP_ENDPOINT",
        "MLOTEL_OTLP_PROTOCOL",
        "OTEL_EXPORTER_OTLP_PROTOCOL",
        "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
        "OTEL_EXPORTER_OTLP_METRICS_PROTOCOL",
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
        "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT",
        "OTEL_EXPORTER_OTLP_LOGS_ENDPOINT",
        "MLOTEL_PROMETHEUS",
        "MLOTEL_DISABLED",
        "OTEL_SDK_DISABLED",
    ):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.http_endpoint)

    cfg = mlotel.configure(set_global=False, payload_sample_rate=1.0)
    try:
        assert cfg.settings.exporter == "otlp"
        assert cfg.settings.otlp_protocol == "http/protobuf"
        assert cfg.settings.otlp_endpoint is None  # the exporters read the variable
        assert cfg.metrics_url is None
        assert cfg.output_dir is None

        @mlotel.instrument(model_name="envonly", model_version="1")
        def predict(features: np.ndarray) -> list[int]:
            return [7]

        assert predict(np.array([[3.0, 4.0]])) == [7]
        assert mlotel.force_flush(timeout=10.0) is True
        assert receiver.wait_for(
            lambda: (
                receiver.spans()
                and receiver.logs()
                and receiver.metric_points(semconv.INFERENCE_DURATION.name)
            ),
            timeout=15.0,
        ), f"errors={receiver.errors}"
    finally:
        mlotel.shutdown(timeout=5.0)

    assert {r.transport for r in receiver.requests()} == {"http"}
    [(_, span)] = receiver.spans()
    assert span.name == "predict envonly"
    [(_, record)] = receiver.logs()
    assert record.span_id == span.span_id
    assert log_fields(record)[semconv.ATTR_FEATURES] == {"f0": 3.0, "f1": 4.0}
    assert _latest(receiver.metric_points(semconv.INFERENCE_DURATION.name)).count == 1
