"""The OpenTelemetry providers, exporters and the embedded Prometheus endpoint of one
configuration.

Provider selection: an explicit provider argument wins; otherwise a provider the
application or ``opentelemetry-instrument`` already set globally is used as is
(mlotel adds nothing to it but its metric bridge); otherwise mlotel builds its
own and, unless ``set_global=False``, makes it the global one.
"""

from __future__ import annotations

import importlib
import os
import uuid
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from opentelemetry import metrics as metrics_api
from opentelemetry import trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import MetricReader, PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter

from . import _otel_logs as logs
from . import semconv
from ._config import Settings
from ._metric_store import MetricStore, PrometheusExemplars, attach_store
from ._self_telemetry import logger, tally
from ._sinks import JsonLinesLogExporter, JsonLinesSpanExporter
from ._version import VERSION

__all__ = ["Providers", "build_providers", "is_global", "kept_globals"]

_KNOWN_SIGNAL_EXPORTERS = frozenset({"otlp", "console", "prometheus", "none"})


@dataclass
class Providers:
    """What :func:`build_providers` set up for one configuration."""

    tracer_provider: Any
    logger_provider: Any
    meter_provider: Any
    tracer: trace.Tracer
    logger: logs.Logger | None
    resource: Resource
    readers: list[MetricReader] = field(default_factory=list)
    app_readers: list[MetricReader] = field(default_factory=list)
    """The readers ``configure(metric_readers=...)`` gave to a MeterProvider mlotel built
    (a forked child registers them with its own provider)."""
    owned: list[Any] = field(default_factory=list)
    """Providers mlotel built (and shuts down), as opposed to the application's."""
    detach: list[Callable[[], None]] = field(default_factory=list)
    """Undo the metric-store bridge of each reader."""
    prometheus_address: tuple[str, int] | None = None
    output_dir: str | None = None
    endpoint_failed: bool = False
    http_server: Any = None

    def force_flush(self, millis: int) -> bool:
        """Flush every provider and push reader mlotel can reach; False if one failed."""
        ok = True
        flushers: list[Any] = [self.tracer_provider, self.logger_provider]
        # Pull readers (Prometheus) are skipped: a collect outside a scrape queues a second
        # copy of every series in the exporter, which the next scrape would serve twice.
        flushers += [r for r in self.readers if "Prometheus" not in type(r).__name__]
        for target in flushers:
            flush = getattr(target, "force_flush", None)
            if flush is None:
                continue
            try:
                result = flush(millis)
                ok = ok and result is not False
            except Exception as exc:
                tally.error("force_flush", exc)
                ok = False
        return ok

    def stop_endpoint(self) -> None:
        """Stop serving the embedded Prometheus endpoint (frees the port)."""
        server, self.http_server = self.http_server, None
        if server is not None:
            try:
                server.shutdown()
                server.server_close()
            except Exception as exc:
                tally.error("prometheus_endpoint", exc)

    def detach_store(self) -> None:
        for detach in self.detach:
            try:
                detach()
            except Exception as exc:
                tally.error("shutdown", exc)
        self.detach = []


_built: weakref.WeakSet[Any] = weakref.WeakSet()
"""Every provider mlotel ever built: never adopted later as "the application's"."""

_kept_globals: list[Any] = []
"""Providers of closed configurations kept alive because they are the OTel globals; every
later shutdown flushes them (nothing else would: mlotel disabled their atexit hook)."""


def kept_globals() -> list[Any]:
    """Providers of closed configurations that stay alive as the OTel globals."""
    return _kept_globals


def is_global(provider: Any) -> bool:
    """Whether ``provider`` is one of the OTel global providers."""
    return provider is not None and provider in (
        trace.get_tracer_provider(),
        metrics_api.get_meter_provider(),
        logs.get_logger_provider(),
    )


def _is_configured(provider: Any) -> bool:
    name = type(provider).__name__
    return not (name.startswith(("Proxy", "_Proxy", "NoOp", "_NoOp", "Default")))


def _resource(settings: Settings) -> Resource:
    defaults = Resource(
        {
            "service.instance.id": str(uuid.uuid4()),
            "process.pid": os.getpid(),
            "telemetry.distro.name": "mlotel",
            "telemetry.distro.version": VERSION,
        }
    )
    # Resource.create reads OTEL_RESOURCE_ATTRIBUTES and OTEL_SERVICE_NAME: they win over
    # our defaults (e.g. a pod name as service.instance.id); the service_name setting wins
    # over everything.
    resource = defaults.merge(Resource.create({}))
    if settings.service_name:
        resource = resource.merge(Resource({"service.name": settings.service_name}))
    return resource


def _reclaim(readers: list[MetricReader]) -> None:
    """Let a forked child register the application's metric readers with its own
    MeterProvider. The SDK refuses a reader another MeterProvider registered (a
    class-level set; in the child that is the parent's provider, which never runs there)
    and has no public way to release one: the one other private SDK touch-point besides
    the collect bridge (mlotel._metric_store)."""
    registered = getattr(MeterProvider, "_all_metric_readers", None)
    if registered is None:  # a future SDK: the provider's own check decides
        return
    for reader in readers:
        registered.discard(reader)


def _signal_plan(signal: str, settings: Settings) -> set[str]:
    """Exporters for one signal: ``OTEL_<SIGNAL>_EXPORTER`` (otlp, console, prometheus,
    none) when set, else the exporter/sink settings."""
    names = settings.signal_exporters(signal)
    if names is not None:
        unknown = names - _KNOWN_SIGNAL_EXPORTERS
        if unknown:
            logger.warning(
                "mlotel: OTEL_%s_EXPORTER=%s: mlotel builds only otlp, console, prometheus "
                "(metrics) and none; ignoring %s",
                signal.upper(),
                ",".join(sorted(names)),
                ", ".join(sorted(unknown)),
            )
        return set() if "none" in names else set(names - unknown)
    if settings.uses_otlp:
        return {"otlp"}
    return {settings.sink} - {"none"}


# signal -> (gRPC exporter module, HTTP exporter module, class name, HTTP path)
_OTLP_EXPORTERS: dict[str, tuple[str, str, str, str]] = {
    "traces": (
        "opentelemetry.exporter.otlp.proto.grpc.trace_exporter",
        "opentelemetry.exporter.otlp.proto.http.trace_exporter",
        "OTLPSpanExporter",
        "/v1/traces",
    ),
    "metrics": (
        "opentelemetry.exporter.otlp.proto.grpc.metric_exporter",
        "opentelemetry.exporter.otlp.proto.http.metric_exporter",
        "OTLPMetricExporter",
        "/v1/metrics",
    ),
    "logs": (*logs.OTLP_LOG_EXPORTER_MODULES, "OTLPLogExporter", "/v1/logs"),
}


def _otlp_exporter(signal: str, settings: Settings) -> Any:
    """The OTLP exporter of one signal for the configured protocol. Without an explicit
    endpoint the exporter reads the ``OTEL_EXPORTER_OTLP_[SIGNAL_]ENDPOINT`` variables."""
    grpc_module, http_module, class_name, path = _OTLP_EXPORTERS[signal]
    grpc = settings.otlp_protocol == "grpc"
    exporter_class = getattr(
        importlib.import_module(grpc_module if grpc else http_module), class_name
    )
    endpoint = settings.otlp_endpoint
    if not endpoint:
        return exporter_class()
    return exporter_class(endpoint=endpoint if grpc else endpoint.rstrip("/") + path)


def _start_prometheus(
    providers: Providers, settings: Settings, store: MetricStore
) -> MetricReader | None:
    from opentelemetry.exporter.prometheus import PrometheusMetricReader
    from prometheus_client import CollectorRegistry, start_http_server

    registry = CollectorRegistry(auto_describe=True)
    # The reader's families are served through PrometheusExemplars, which adds the
    # store's exemplars (the exporter drops them).
    source = CollectorRegistry(auto_describe=False)
    try:
        server, _thread = start_http_server(
            settings.prometheus_port, addr=settings.prometheus_host, registry=registry
        )
    except OSError as exc:
        providers.endpoint_failed = True
        logger.error(
            "mlotel: cannot serve Prometheus metrics on %s:%s (%s). Another process (a second "
            "worker?) holds the port. Give each worker its own MLOTEL_PROMETHEUS_PORT, or export "
            "over OTLP to a collector (OTEL_EXPORTER_OTLP_ENDPOINT). Predictions continue; "
            "metrics of this process are not served.",
            settings.prometheus_host,
            settings.prometheus_port,
            exc,
        )
        return None
    providers.http_server = server
    providers.prometheus_address = (settings.prometheus_host, int(server.server_address[1]))
    reader = PrometheusMetricReader(registry=source)
    registry.register(PrometheusExemplars(source, store, id(reader)))
    return reader


def build_providers(
    settings: Settings,
    store: MetricStore,
    before_collect: Callable[[], None],
    *,
    tracer_provider: Any = None,
    meter_provider: Any = None,
    logger_provider: Any = None,
    metric_readers: list[MetricReader] | None = None,
    use_globals: bool = True,
    ignore: tuple[Any, ...] = (),
    file_tag: str = "",
    warn_globals: bool = True,
    reclaim_readers: bool = False,
) -> Providers:
    """Providers for ``settings`` (see the module docstring), with ``store`` bridged into
    every metric reader (``before_collect`` runs before each collection).

    ``reclaim_readers``: ``metric_readers`` were registered with a MeterProvider of the
    parent process (this is a forked child): register them with the child's provider."""
    if (
        warn_globals
        and settings.set_global
        and any(
            any(g is p for p in ignore)
            for g in (trace.get_tracer_provider(), metrics_api.get_meter_provider())
        )
    ):
        logger.warning(
            "mlotel.configure: the OTel global providers were registered by an earlier mlotel "
            "configuration (e.g. lazily, by a call before configure()) and cannot be replaced; "
            "they stay alive for other instrumentation. Call mlotel.configure() before the "
            "first prediction to set them up with these settings."
        )

    def usable_global(provider: Any) -> bool:
        # A provider of an earlier mlotel configuration is shut down: never reuse it.
        return (
            use_globals
            and _is_configured(provider)
            and provider not in _built
            and all(provider is not p for p in ignore)
        )

    resource = _resource(settings)
    set_global = settings.set_global
    owned: list[Any] = []
    output_dir: str | None = None

    # --- traces ---
    if tracer_provider is None and usable_global(trace.get_tracer_provider()):
        tracer_provider = trace.get_tracer_provider()
    if tracer_provider is None:
        # shutdown_on_exit=False: the SDK's own atexit shutdown is unbounded (it waits out
        # exporter retries); mlotel's atexit shutdown() is bounded by shutdown_timeout.
        tracer_provider = TracerProvider(resource=resource, shutdown_on_exit=False)
        plan = _signal_plan("traces", settings)
        if "otlp" in plan:
            tracer_provider.add_span_processor(
                BatchSpanProcessor(_otlp_exporter("traces", settings))
            )
        if "files" in plan:
            path = os.path.join(settings.output_dir, f"traces{file_tag}.jsonl")
            tracer_provider.add_span_processor(
                BatchSpanProcessor(JsonLinesSpanExporter(path, settings.output_max_bytes))
            )
            output_dir = settings.output_dir
        if "console" in plan:
            tracer_provider.add_span_processor(BatchSpanProcessor(ConsoleSpanExporter()))
        owned.append(tracer_provider)
        _built.add(tracer_provider)
        if set_global and not _is_configured(trace.get_tracer_provider()):
            trace.set_tracer_provider(tracer_provider)
    tracer = tracer_provider.get_tracer(semconv.SCOPE_NAME, VERSION)

    # --- logs ---
    if logger_provider is None and usable_global(logs.get_logger_provider()):
        logger_provider = logs.get_logger_provider()
    if logger_provider is None:
        logger_provider = logs.SDKLoggerProvider(resource=resource, shutdown_on_exit=False)
        plan = _signal_plan("logs", settings)
        if "otlp" in plan:
            logger_provider.add_log_record_processor(
                logs.BatchLogRecordProcessor(_otlp_exporter("logs", settings))
            )
        if "files" in plan:
            path = os.path.join(settings.output_dir, f"logs{file_tag}.jsonl")
            logger_provider.add_log_record_processor(
                logs.BatchLogRecordProcessor(JsonLinesLogExporter(path, settings.output_max_bytes))
            )
        if "console" in plan:
            logger_provider.add_log_record_processor(
                logs.BatchLogRecordProcessor(logs.ConsoleLogExporter())
            )
        owned.append(logger_provider)
        _built.add(logger_provider)
        if set_global and not _is_configured(logs.get_logger_provider()):
            logs.set_logger_provider(logger_provider)
    otel_logger = (
        logger_provider.get_logger(semconv.SCOPE_NAME, VERSION)
        if settings.payload_enabled
        else None
    )
    providers = Providers(
        tracer_provider, logger_provider, None, tracer, otel_logger, resource, owned=owned
    )
    providers.output_dir = output_dir

    # --- metrics ---
    if meter_provider is None and usable_global(metrics_api.get_meter_provider()):
        meter_provider = metrics_api.get_meter_provider()
    readers: list[MetricReader] = list(metric_readers or [])
    if meter_provider is None:
        providers.app_readers = list(readers)
        if reclaim_readers:
            _reclaim(readers)
        plan = _signal_plan("metrics", settings)
        if "otlp" in plan:
            interval = settings.metric_export_interval
            readers.append(
                PeriodicExportingMetricReader(
                    _otlp_exporter("metrics", settings),
                    export_interval_millis=interval * 1000 if interval else None,
                )
            )
        if "console" in plan:
            from opentelemetry.sdk.metrics.export import ConsoleMetricExporter

            readers.append(PeriodicExportingMetricReader(ConsoleMetricExporter()))
        if settings.prometheus is not False and (
            settings.prometheus_enabled or "prometheus" in plan
        ):
            prometheus_reader = _start_prometheus(providers, settings, store)
            if prometheus_reader is not None:
                readers.append(prometheus_reader)
        meter_provider = MeterProvider(
            resource=resource, metric_readers=readers, shutdown_on_exit=False
        )
        owned.append(meter_provider)
        _built.add(meter_provider)
        if set_global and not _is_configured(metrics_api.get_meter_provider()):
            metrics_api.set_meter_provider(meter_provider)
    else:
        sdk_config = getattr(meter_provider, "_sdk_config", None)
        found = getattr(meter_provider, "_metric_readers", None)
        if found is None:
            found = getattr(sdk_config, "metric_readers", ())
        readers = list(found or ()) + readers
        resource = getattr(sdk_config, "resource", resource)
        if not readers and "none" in (settings.metrics_exporter or ()):
            # The user chose no metrics exporter (OTEL_METRICS_EXPORTER=none, e.g.
            # opentelemetry-instrument --metrics_exporter none): as asked, not a fault.
            logger.debug(
                "mlotel: OTEL_METRICS_EXPORTER=none: the global MeterProvider (%s) has no "
                "metric readers, so mlotel's metrics are not exported (spans and logs are)",
                type(meter_provider).__name__,
            )
        elif not readers:
            logger.warning(
                "mlotel: the global MeterProvider (%s) exposes no SDK metric readers; "
                "mlotel's metrics cannot be exported through it",
                type(meter_provider).__name__,
            )
    providers.meter_provider = meter_provider
    providers.readers = readers
    for reader in readers:
        try:
            providers.detach.append(attach_store(reader, store, resource, before_collect))
        except Exception as exc:
            tally.error("metrics.bridge", exc)
    if providers.endpoint_failed:  # counted now that readers can export it; logged above
        tally.error("prometheus_endpoint", log=False)
    return providers
