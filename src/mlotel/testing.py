"""In-memory capture of mlotel's spans, metrics and log records, for your own tests.

Modelled on structlog's ``capture_logs``: inside the block every instrumented
call reports to in-memory exporters instead of the configured ones; the
previous configuration comes back afterwards.

>>> import mlotel
>>> from mlotel.testing import capture_telemetry
>>> with capture_telemetry() as captured:
...     clf = mlotel.instrument(lambda rows: [1 for _ in rows], model_name="ones")
...     _ = clf([[0.5], [0.7]])
>>> captured.counter_value("ml.predictions", {"ml.prediction.class": "1"})
2
>>> captured.histogram_count("ml.inference.duration")
1
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader, Metric
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from . import _lifecycle, semconv
from . import _otel_logs as logs
from ._config import resolve_settings
from ._runtime import Runtime
from ._self_telemetry import tally

if TYPE_CHECKING:
    from typing_extensions import Unpack

    from ._config import ConfigureOptions

__all__ = ["CapturedTelemetry", "capture_telemetry", "log_payload"]


class CapturedTelemetry:
    """What instrumented code emitted inside :func:`capture_telemetry`.

    >>> import mlotel
    >>> with capture_telemetry() as captured:
    ...     predict = mlotel.instrument(lambda rows: [0.5 for _ in rows], model_name="half")
    ...     _ = predict([[1.0]])
    ...     captured.clear()  # forget the first call's span and log record
    ...     _ = predict([[2.0], [3.0]])
    >>> len(captured.spans), len(captured.logs), captured.histogram_count("ml.inference.duration")
    (1, 1, 2)
    """

    def __init__(
        self,
        runtime: Runtime,
        spans: InMemorySpanExporter,
        logs_exporter: Any,
        reader: InMemoryMetricReader,
    ) -> None:
        self.runtime = runtime
        self._spans = spans
        self._logs = logs_exporter
        self._reader = reader
        self._final: dict[str, Metric] | None = None

    def _freeze(self) -> None:
        """Keep the last collection readable after the block ends."""
        self.flush()
        self._final = self.metrics()

    def flush(self) -> None:
        """Hand every buffered call to the exporters (properties below call it)."""
        self.runtime.flush_aggregators()
        self.runtime.logger_provider.force_flush()

    @property
    def spans(self) -> list[ReadableSpan]:
        """Finished spans, in end order."""
        self.flush()
        return list(self._spans.get_finished_spans())

    @property
    def logs(self) -> list[Any]:
        """Emitted log records (the API-level records: ``.attributes``, ``.trace_id`` …)."""
        self.flush()
        return [logs.record_fields(r) for r in self._logs.get_finished_logs()]

    def metrics(self) -> dict[str, Metric]:
        """Collect now and return every metric by name (cumulative)."""
        if self._final is not None:
            return self._final
        data = self._reader.get_metrics_data()
        found: dict[str, Metric] = {}
        if data is None:
            return found
        for resource_metrics in data.resource_metrics:
            for scope_metrics in resource_metrics.scope_metrics:
                for metric in scope_metrics.metrics:
                    found[metric.name] = metric
        return found

    def points(self, name: str, attributes: Mapping[str, Any] | None = None) -> list[Any]:
        """Data points of metric ``name`` whose attributes include ``attributes``."""
        metric = self.metrics().get(name)
        if metric is None:
            return []
        wanted = dict(attributes or {})
        return [
            p
            for p in metric.data.data_points
            if all(dict(p.attributes or {}).get(k) == v for k, v in wanted.items())
        ]

    def counter_value(self, name: str, attributes: Mapping[str, Any] | None = None) -> float:
        """Sum of a counter's points matching ``attributes`` (0 when none)."""
        total: float = sum(p.value for p in self.points(name, attributes))
        return total

    def histogram_count(self, name: str, attributes: Mapping[str, Any] | None = None) -> int:
        """Number of values recorded into a histogram's matching points."""
        return sum(p.count for p in self.points(name, attributes))

    def internal_errors(self, component: str | None = None) -> float:
        """Contained faults counted in ``mlotel.internal.errors`` (one component, or all).

        >>> import mlotel
        >>> with capture_telemetry() as captured:
        ...     _ = mlotel.instrument(lambda rows: [1], model_name="m")([[1.0]])
        >>> captured.internal_errors()
        0
        """
        attributes = {} if component is None else {semconv.ATTR_COMPONENT: component}
        return self.counter_value(semconv.INTERNAL_ERRORS.name, attributes)

    def dropped(self, component: str, reason: str) -> float:
        """Values dropped on purpose: ``mlotel.internal.dropped{component, reason}``.

        >>> import mlotel
        >>> with capture_telemetry(max_classes=1) as captured:
        ...     _ = mlotel.instrument(lambda rows: ["a", "b", "c"], model_name="m")([[1.0]] * 3)
        >>> captured.dropped("classes", "max_classes")
        2
        """
        return self.counter_value(
            semconv.INTERNAL_DROPPED.name,
            {semconv.ATTR_COMPONENT: component, semconv.ATTR_DROP_REASON: reason},
        )

    def clear(self) -> None:
        """Forget the spans and log records captured so far (metrics are cumulative, kept)."""
        self.flush()
        self._spans.clear()
        self._logs.clear()


def log_payload(record: Any) -> dict[str, Any]:
    """A log record's attributes and map body as one dict (the payload lives in the body
    by default, in the attributes with ``payload_location="attributes"``).

    >>> import mlotel
    >>> with capture_telemetry(payload_location="attributes") as captured:
    ...     _ = mlotel.instrument(lambda rows: [7 for _ in rows], model_name="seven")([[1.0]])
    >>> record = captured.logs[0]
    >>> record.body is None, log_payload(record)["ml.prediction"]
    (True, 7)
    """
    fields = dict(record.attributes or {})
    if isinstance(record.body, Mapping):
        fields.update(record.body)
    return fields


@contextmanager
def capture_telemetry(**settings: Unpack[ConfigureOptions]) -> Iterator[CapturedTelemetry]:
    """Capture everything mlotel emits inside the block, in memory.

    Keyword arguments are mlotel settings (e.g. ``payload_sample_rate=0.5``);
    exporters, the Prometheus endpoint and global providers are not touched, and the
    environment is not read. Unlike production (default ``0.1``), every call's payload
    is logged unless you pass ``payload_sample_rate``: a test sees the same records on
    every run.

    >>> import mlotel
    >>> with capture_telemetry(payload_sample_rate=0.0) as captured:  # no payload logs
    ...     _ = mlotel.instrument(lambda rows: [1 for _ in rows], model_name="m")([[1.0]])
    >>> len(captured.spans), len(captured.logs)
    (1, 0)
    """
    options: dict[str, Any] = {
        "exporter": "none",
        "set_global": False,
        "prometheus": False,
        "local_sink": "none",
        "payload_sample_rate": 1.0,
        **settings,
    }
    resolved = resolve_settings(options, environ={})
    span_exporter = InMemorySpanExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(span_exporter))
    log_exporter = logs.InMemoryLogExporter()
    logger_provider = logs.SDKLoggerProvider()
    logger_provider.add_log_record_processor(logs.SimpleLogRecordProcessor(log_exporter))
    reader = InMemoryMetricReader()
    meter_provider = MeterProvider(metric_readers=[reader])
    # build_runtime points the process-wide tally at the new runtime: point it back after.
    previous_tally = (tally.store, tally.hide_messages)
    runtime = _lifecycle.build_runtime(
        resolved,
        tracer_provider=tracer_provider,
        meter_provider=meter_provider,
        logger_provider=logger_provider,
    )
    previous = _lifecycle.install(runtime)
    captured = CapturedTelemetry(runtime, span_exporter, log_exporter, reader)
    try:
        yield captured
    finally:
        captured._freeze()
        _lifecycle.install(previous)
        tally.store, tally.hide_messages = previous_tally
        runtime.shutdown(timeout=2.0)
        for provider in (tracer_provider, logger_provider, meter_provider):
            provider.shutdown()
