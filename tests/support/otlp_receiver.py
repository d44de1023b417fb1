"""In-process OTLP receiver (HTTP/protobuf and gRPC) on 127.0.0.1 for tests."""

from __future__ import annotations

import gzip
import http.server
import threading
import time
import zlib
from collections.abc import Callable, Iterable
from concurrent import futures
from dataclasses import dataclass, field
from typing import Any, Literal

import grpc
from google.protobuf.message import DecodeError, Message
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2, logs_service_pb2_grpc
from opentelemetry.proto.collector.metrics.v1 import (
    metrics_service_pb2,
    metrics_service_pb2_grpc,
)
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord
from opentelemetry.proto.metrics.v1.metrics_pb2 import Metric
from opentelemetry.proto.trace.v1.trace_pb2 import Span

Signal = Literal["traces", "metrics", "logs"]
Transport = Literal["http", "grpc"]

_HOST = "127.0.0.1"
_PROTOBUF = "application/x-protobuf"
_MAX_BODY = 64 * 1024 * 1024
_STOP_TIMEOUT_S = 5.0

# signal -> (request type, response type)
_MESSAGES: dict[Signal, tuple[type[Message], type[Message]]] = {
    "traces": (
        trace_service_pb2.ExportTraceServiceRequest,
        trace_service_pb2.ExportTraceServiceResponse,
    ),
    "metrics": (
        metrics_service_pb2.ExportMetricsServiceRequest,
        metrics_service_pb2.ExportMetricsServiceResponse,
    ),
    "logs": (
        logs_service_pb2.ExportLogsServiceRequest,
        logs_service_pb2.ExportLogsServiceResponse,
    ),
}
_HTTP_PATHS: dict[str, Signal] = {f"/v1/{signal}": signal for signal in _MESSAGES}


@dataclass(frozen=True)
class ReceivedRequest:
    """One decoded export request and how it arrived."""

    signal: Signal
    transport: Transport
    message: Any  # Export{Trace,Metrics,Logs}ServiceRequest
    headers: dict[str, str] = field(default_factory=dict)  # lower-cased names


def anyvalue_to_python(value: AnyValue) -> Any:
    """Convert an OTLP AnyValue into plain Python (an empty value becomes None)."""
    kind = value.WhichOneof("value")
    if kind is None:
        return None
    if kind == "array_value":
        return [anyvalue_to_python(item) for item in value.array_value.values]
    if kind == "kvlist_value":
        return attributes_to_dict(value.kvlist_value.values)
    if kind == "string_value_strindex":
        raise ValueError("string_value_strindex needs a profiles dictionary to resolve")
    return getattr(value, kind)


def attributes_to_dict(attributes: Iterable[KeyValue]) -> dict[str, Any]:
    """Convert repeated KeyValue into a dict of plain Python values."""
    return {kv.key: anyvalue_to_python(kv.value) for kv in attributes}


def _decompress(body: bytes, encoding: str) -> bytes:
    encoding = encoding.strip().lower()
    if encoding in ("", "identity"):
        return body
    if encoding == "gzip":
        return gzip.decompress(body)
    if encoding == "deflate":
        return zlib.decompress(body)
    raise ValueError(f"unsupported Content-Encoding {encoding!r}")


class _HTTPServer(http.server.ThreadingHTTPServer):
    # Join handler threads on close so none outlive the receiver.
    daemon_threads = False
    block_on_close = True

    def __init__(self, receiver: OTLPReceiver) -> None:
        self.receiver = receiver
        super().__init__((_HOST, 0), _Handler)


class _Handler(http.server.BaseHTTPRequestHandler):
    server: _HTTPServer
    timeout = _STOP_TIMEOUT_S  # bounds reads from a stalled client

    def do_POST(self) -> None:
        signal = _HTTP_PATHS.get(self.path.split("?", 1)[0])
        if signal is None:
            self._reply(404, b"unknown OTLP path", "text/plain")
            return
        content_type = self.headers.get("Content-Type", "").split(";", 1)[0].strip()
        if content_type != _PROTOBUF:
            self._reply(415, f"only {_PROTOBUF} is supported".encode(), "text/plain")
            return
        request_type, response_type = _MESSAGES[signal]
        try:
            body = _decompress(self._read_body(), self.headers.get("Content-Encoding", ""))
            message = request_type.FromString(body)
        except (ValueError, OSError, EOFError, zlib.error, DecodeError) as exc:
            self.server.receiver._record_error(f"POST {self.path}: {exc!r}")
            self._reply(400, str(exc).encode(), "text/plain")
            return
        headers = {name.lower(): value for name, value in self.headers.items()}
        self.server.receiver._record(ReceivedRequest(signal, "http", message, headers))
        self._reply(200, response_type().SerializeToString(), _PROTOBUF)

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks: list[bytes] = []
            total = 0
            while True:
                size = int(self.rfile.readline().split(b";", 1)[0].strip(), 16)
                if size == 0:
                    self.rfile.readline()  # trailing CRLF (no trailers expected)
                    return b"".join(chunks)
                total += size
                if total > _MAX_BODY:
                    raise ValueError("request body too large")
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length", "0"))
        if length > _MAX_BODY:
            raise ValueError("request body too large")
        return self.rfile.read(length)

    def _reply(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        """Keep test output quiet."""


def _grpc_headers(context: grpc.ServicerContext) -> dict[str, str]:
    return {
        key.lower(): value if isinstance(value, str) else value.decode("latin-1")
        for key, value in context.invocation_metadata()
    }


class _TraceServicer(trace_service_pb2_grpc.TraceServiceServicer):
    def __init__(self, receiver: OTLPReceiver) -> None:
        self._receiver = receiver

    def Export(self, request: Any, context: grpc.ServicerContext) -> Any:
        self._receiver._record(ReceivedRequest("traces", "grpc", request, _grpc_headers(context)))
        return trace_service_pb2.ExportTraceServiceResponse()


class _MetricsServicer(metrics_service_pb2_grpc.MetricsServiceServicer):
    def __init__(self, receiver: OTLPReceiver) -> None:
        self._receiver = receiver

    def Export(self, request: Any, context: grpc.ServicerContext) -> Any:
        self._receiver._record(ReceivedRequest("metrics", "grpc", request, _grpc_headers(context)))
        return metrics_service_pb2.ExportMetricsServiceResponse()


class _LogsServicer(logs_service_pb2_grpc.LogsServiceServicer):
    def __init__(self, receiver: OTLPReceiver) -> None:
        self._receiver = receiver

    def Export(self, request: Any, context: grpc.ServicerContext) -> Any:
        self._receiver._record(ReceivedRequest("logs", "grpc", request, _grpc_headers(context)))
        return logs_service_pb2.ExportLogsServiceResponse()


class OTLPReceiver:
    """OTLP/HTTP and OTLP/gRPC receiver on loopback; use as a context manager."""

    anyvalue_to_python = staticmethod(anyvalue_to_python)
    attributes_to_dict = staticmethod(attributes_to_dict)

    def __init__(self) -> None:
        self._lock = threading.Condition()
        self._requests: list[ReceivedRequest] = []
        self._errors: list[str] = []
        self._http: _HTTPServer | None = None
        self._http_thread: threading.Thread | None = None
        self._grpc: grpc.Server | None = None
        self._grpc_pool: futures.ThreadPoolExecutor | None = None
        self._http_port = 0
        self._grpc_port = 0

    # -- lifecycle ---------------------------------------------------------

    def start(self) -> OTLPReceiver:
        """Start both servers; idempotent."""
        if self._http is not None:
            return self
        try:
            self._http = _HTTPServer(self)
            self._http_port = self._http.server_address[1]
            self._http_thread = threading.Thread(
                target=self._http.serve_forever,
                kwargs={"poll_interval": 0.05},
                name=f"otlp-rx-http-{self._http_port}",
                daemon=True,
            )
            self._http_thread.start()

            self._grpc_pool = futures.ThreadPoolExecutor(
                max_workers=4, thread_name_prefix="otlp-rx-grpc"
            )
            self._grpc = grpc.server(self._grpc_pool, options=[("grpc.so_reuseport", 0)])
            trace_service_pb2_grpc.add_TraceServiceServicer_to_server(
                _TraceServicer(self), self._grpc
            )
            metrics_service_pb2_grpc.add_MetricsServiceServicer_to_server(
                _MetricsServicer(self), self._grpc
            )
            logs_service_pb2_grpc.add_LogsServiceServicer_to_server(_LogsServicer(self), self._grpc)
            self._grpc_port = self._grpc.add_insecure_port(f"{_HOST}:0")
            if not self._grpc_port:
                raise RuntimeError("gRPC server could not bind a loopback port")
            self._grpc.start()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Stop both servers and join their threads (bounded)."""
        if self._grpc is not None:
            self._grpc.stop(grace=1.0).wait(_STOP_TIMEOUT_S)
            self._grpc = None
        if self._grpc_pool is not None:
            self._grpc_pool.shutdown(wait=True, cancel_futures=True)
            self._grpc_pool = None
        if self._http is not None:
            if self._http_thread is not None and self._http_thread.is_alive():
                self._http.shutdown()
            self._http.server_close()  # joins handler threads
            if self._http_thread is not None:
                self._http_thread.join(_STOP_TIMEOUT_S)
            self._http = None
            self._http_thread = None

    def __enter__(self) -> OTLPReceiver:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # -- endpoints ---------------------------------------------------------

    @property
    def http_endpoint(self) -> str:
        """Base URL of the OTLP/HTTP receiver, e.g. http://127.0.0.1:4318."""
        return f"http://{_HOST}:{self._require_port(self._http_port)}"

    @property
    def grpc_endpoint(self) -> str:
        """Endpoint of the OTLP/gRPC receiver, e.g. http://127.0.0.1:4317."""
        return f"http://{_HOST}:{self._require_port(self._grpc_port)}"

    def http_url(self, signal: Signal) -> str:
        """Full per-signal OTLP/HTTP URL, e.g. http://127.0.0.1:4318/v1/traces."""
        if signal not in _MESSAGES:
            raise ValueError(f"unknown signal {signal!r}")
        return f"{self.http_endpoint}/v1/{signal}"

    @staticmethod
    def _require_port(port: int) -> int:
        if not port:
            raise RuntimeError("OTLPReceiver is not started")
        return port

    # -- recording ---------------------------------------------------------

    def _record(self, request: ReceivedRequest) -> None:
        with self._lock:
            self._requests.append(request)
            self._lock.notify_all()

    def _record_error(self, error: str) -> None:
        with self._lock:
            self._errors.append(error)

    def requests(
        self, signal: Signal | None = None, transport: Transport | None = None
    ) -> list[ReceivedRequest]:
        """Snapshot of received requests, optionally filtered."""
        with self._lock:
            snapshot = list(self._requests)
        return [
            r
            for r in snapshot
            if (signal is None or r.signal == signal)
            and (transport is None or r.transport == transport)
        ]

    @property
    def trace_requests(self) -> list[Any]:
        """Received ExportTraceServiceRequest messages."""
        return [r.message for r in self.requests("traces")]

    @property
    def metric_requests(self) -> list[Any]:
        """Received ExportMetricsServiceRequest messages."""
        return [r.message for r in self.requests("metrics")]

    @property
    def log_requests(self) -> list[Any]:
        """Received ExportLogsServiceRequest messages."""
        return [r.message for r in self.requests("logs")]

    @property
    def errors(self) -> list[str]:
        """HTTP requests rejected as undecodable (for debugging failures)."""
        with self._lock:
            return list(self._errors)

    def clear(self) -> None:
        """Forget everything received so far."""
        with self._lock:
            self._requests.clear()
            self._errors.clear()

    # -- flattened views ---------------------------------------------------

    def spans(self) -> list[tuple[dict[str, Any], Span]]:
        """All received spans as (resource attributes, Span)."""
        return [
            (attributes_to_dict(rs.resource.attributes), span)
            for req in self.trace_requests
            for rs in req.resource_spans
            for ss in rs.scope_spans
            for span in ss.spans
        ]

    def metrics(self) -> list[tuple[dict[str, Any], Metric]]:
        """All received metrics as (resource attributes, Metric)."""
        return [
            (attributes_to_dict(rm.resource.attributes), metric)
            for req in self.metric_requests
            for rm in req.resource_metrics
            for sm in rm.scope_metrics
            for metric in sm.metrics
        ]

    def logs(self) -> list[tuple[dict[str, Any], LogRecord]]:
        """All received log records as (resource attributes, LogRecord)."""
        return [
            (attributes_to_dict(rl.resource.attributes), record)
            for req in self.log_requests
            for rl in req.resource_logs
            for sl in rl.scope_logs
            for record in sl.log_records
        ]

    def metric_points(self, name: str) -> list[Any]:
        """Data points of every received metric called `name`, in arrival order."""
        points: list[Any] = []
        for _, metric in self.metrics():
            if metric.name != name:
                continue
            kind = metric.WhichOneof("data")
            if kind is not None:
                points.extend(getattr(metric, kind).data_points)
        return points

    def wait_for(
        self, predicate: Callable[[], object], timeout: float = 10.0, interval: float = 0.05
    ) -> bool:
        """Re-check `predicate()` on each arrival or every `interval` s; False on timeout."""
        deadline = time.monotonic() + timeout
        while True:
            if predicate():
                return True
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            with self._lock:
                self._lock.wait(min(interval, remaining))


def log_fields(record: Any) -> dict[str, Any]:
    """A log record's attributes merged with its body when the body is a map."""
    fields = attributes_to_dict(record.attributes)
    body = anyvalue_to_python(record.body) if record.HasField("body") else None
    if isinstance(body, dict):
        fields.update(body)
    return fields
