"""Self-check of tests/support: real exporters, real sockets, real Prometheus."""

from __future__ import annotations

import gzip
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import grpc
import pytest
from opentelemetry.exporter.otlp.proto.grpc._log_exporter import (
    OTLPLogExporter as GrpcLogExporter,
)
from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import (
    OTLPMetricExporter as GrpcMetricExporter,
)
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import (
    OTLPSpanExporter as GrpcSpanExporter,
)
from opentelemetry.exporter.otlp.proto.http import Compression as HttpCompression
from opentelemetry.exporter.otlp.proto.http._log_exporter import (
    OTLPLogExporter as HttpLogExporter,
)
from opentelemetry.exporter.otlp.proto.http.metric_exporter import (
    OTLPMetricExporter as HttpMetricExporter,
)
from opentelemetry.exporter.otlp.proto.http.trace_exporter import (
    OTLPSpanExporter as HttpSpanExporter,
)
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, ArrayValue, KeyValue
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import LogRecordExporter, SimpleLogRecordProcessor
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import MetricExporter, PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter
from prometheus_client import CollectorRegistry, Counter, start_http_server

from support.otlp_receiver import OTLPReceiver, anyvalue_to_python
from support.prometheus_server import PrometheusServer

RESOURCE = Resource.create({"service.name": "selfcheck", "deployment.environment": "test"})


@pytest.fixture
def receiver() -> Iterator[OTLPReceiver]:
    with OTLPReceiver() as rx:
        yield rx


def _emit_all(
    span_exporter: SpanExporter, metric_exporter: MetricExporter, log_exporter: LogRecordExporter
) -> None:
    """Emit one span, one counter and one log record through local SDK providers."""
    tracer_provider = TracerProvider(resource=RESOURCE)
    tracer_provider.add_span_processor(SimpleSpanProcessor(span_exporter))
    with tracer_provider.get_tracer("selfcheck").start_as_current_span(
        "infer", attributes={"model": "tiny", "tokens": 5, "ok": True, "tags": ["a", "b"]}
    ):
        pass
    tracer_provider.shutdown()

    reader = PeriodicExportingMetricReader(metric_exporter, export_interval_millis=60_000)
    meter_provider = MeterProvider(resource=RESOURCE, metric_readers=[reader])
    counter = meter_provider.get_meter("selfcheck").create_counter("selfcheck.requests")
    counter.add(3, {"model": "tiny"})
    meter_provider.shutdown()  # final collection is exported here

    logger_provider = LoggerProvider(resource=RESOURCE)
    logger_provider.add_log_record_processor(SimpleLogRecordProcessor(log_exporter))
    logger_provider.get_logger("selfcheck").emit(
        body="hello", attributes={"request": {"id": "r1", "n": 2, "scores": [0.5, 1.5]}}
    )
    logger_provider.shutdown()


def _assert_all_received(rx: OTLPReceiver, transport: str) -> None:
    assert rx.wait_for(lambda: rx.spans() and rx.metric_points("selfcheck.requests") and rx.logs())
    assert {r.transport for r in rx.requests()} == {transport}
    assert rx.errors == []

    [(resource, span)] = rx.spans()
    assert resource["service.name"] == "selfcheck"
    assert span.name == "infer"
    assert rx.attributes_to_dict(span.attributes) == {
        "model": "tiny",
        "tokens": 5,
        "ok": True,
        "tags": ["a", "b"],
    }

    [(resource, metric)] = rx.metrics()
    assert resource["deployment.environment"] == "test"
    assert metric.WhichOneof("data") == "sum"
    [point] = rx.metric_points("selfcheck.requests")
    assert point.as_int == 3
    assert rx.attributes_to_dict(point.attributes) == {"model": "tiny"}

    [(resource, record)] = rx.logs()
    assert resource["service.name"] == "selfcheck"
    assert anyvalue_to_python(record.body) == "hello"
    [attr] = record.attributes
    assert attr.key == "request"
    assert attr.value.WhichOneof("value") == "kvlist_value"
    assert OTLPReceiver.anyvalue_to_python(attr.value) == {
        "id": "r1",
        "n": 2,
        "scores": [0.5, 1.5],
    }


def test_http_exporters_reach_receiver(receiver: OTLPReceiver) -> None:
    _emit_all(
        HttpSpanExporter(endpoint=receiver.http_url("traces"), compression=HttpCompression.Gzip),
        HttpMetricExporter(endpoint=receiver.http_url("metrics")),
        HttpLogExporter(endpoint=receiver.http_url("logs"), compression=HttpCompression.Deflate),
    )
    _assert_all_received(receiver, "http")
    [trace_request] = receiver.requests("traces")
    assert trace_request.headers["content-encoding"] == "gzip"


def test_grpc_exporters_reach_receiver(receiver: OTLPReceiver) -> None:
    _emit_all(
        GrpcSpanExporter(
            endpoint=receiver.grpc_endpoint, insecure=True, compression=grpc.Compression.Gzip
        ),
        GrpcMetricExporter(endpoint=receiver.grpc_endpoint, insecure=True),
        GrpcLogExporter(endpoint=receiver.grpc_endpoint, insecure=True),
    )
    _assert_all_received(receiver, "grpc")


def test_http_protocol_details(receiver: OTLPReceiver) -> None:
    body = trace_service_pb2.ExportTraceServiceRequest().SerializeToString()
    request = urllib.request.Request(
        receiver.http_url("traces"),
        data=gzip.compress(body),
        headers={"Content-Type": "application/x-protobuf", "Content-Encoding": "gzip"},
    )
    with urllib.request.urlopen(request, timeout=5) as resp:
        assert resp.status == 200
        assert resp.headers["Content-Type"] == "application/x-protobuf"
        trace_service_pb2.ExportTraceServiceResponse.FromString(resp.read())
    assert len(receiver.trace_requests) == 1

    bad = [
        ("/v1/other", "application/x-protobuf", body, 404),
        ("/v1/traces", "application/json", b"{}", 415),
        ("/v1/traces", "application/x-protobuf", b"\xff\xff\xff", 400),
    ]
    for path, content_type, data, status in bad:
        request = urllib.request.Request(
            receiver.http_endpoint + path, data=data, headers={"Content-Type": content_type}
        )
        with pytest.raises(urllib.error.HTTPError) as excinfo:
            urllib.request.urlopen(request, timeout=5)
        assert excinfo.value.code == status
        excinfo.value.close()
    assert len(receiver.trace_requests) == 1


def test_anyvalue_conversion() -> None:
    value = AnyValue(
        array_value=ArrayValue(
            values=[AnyValue(bytes_value=b"\x01"), AnyValue(double_value=2.5), AnyValue()]
        )
    )
    assert anyvalue_to_python(value) == [b"\x01", 2.5, None]
    flag = KeyValue(key="k", value=AnyValue(bool_value=False))
    assert OTLPReceiver.attributes_to_dict([flag]) == {"k": False}


def test_wait_for_is_bounded(receiver: OTLPReceiver) -> None:
    start = time.monotonic()
    assert receiver.wait_for(lambda: receiver.spans(), timeout=0.3) is False
    assert time.monotonic() - start < 2.0


def test_receiver_stops_promptly_without_leaking_threads() -> None:
    before = set(threading.enumerate())
    rx = OTLPReceiver().start()
    urllib.request.urlopen(
        urllib.request.Request(
            rx.http_url("traces"),
            data=b"",
            headers={"Content-Type": "application/x-protobuf"},
        ),
        timeout=5,
    ).close()
    with grpc.insecure_channel(rx.grpc_endpoint.removeprefix("http://")) as channel:
        stub = trace_service_pb2_grpc.TraceServiceStub(channel)
        stub.Export(trace_service_pb2.ExportTraceServiceRequest(), timeout=5)
    assert len(rx.requests()) == 2

    start = time.monotonic()
    rx.stop()
    assert time.monotonic() - start < 5.0
    leaked: list[Any] = []
    deadline = time.monotonic() + 5.0
    while time.monotonic() < deadline:
        leaked = [t for t in threading.enumerate() if t not in before and t.is_alive()]
        if not leaked:
            break
        time.sleep(0.05)
    assert leaked == []


def test_prometheus_scrapes_prometheus_client() -> None:
    registry = CollectorRegistry()
    counter = Counter("selfcheck_requests", "Self-check requests.", ["model"], registry=registry)
    counter.labels(model="tiny").inc(3)
    server, thread = start_http_server(0, addr="127.0.0.1", registry=registry)
    try:
        target = f"127.0.0.1:{server.server_port}"
        with PrometheusServer([target]) as prom:
            result = prom.wait_for_query(
                'selfcheck_requests_total{job="test",model="tiny"}',
                predicate=lambda r: bool(r) and float(r[0]["value"][1]) == 3.0,
            )
            assert result[0]["metric"]["instance"] == target
            [active] = prom.targets()["activeTargets"]
            assert active["health"] == "up"
            assert "Server is ready" in prom.log_tail(200)
            with pytest.raises(AssertionError, match="prometheus log tail"):
                prom.wait_for_query("absent_metric_xyz", timeout=0.5)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
