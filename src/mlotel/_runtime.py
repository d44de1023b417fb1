"""configure() / shutdown(): providers, readers, exporters, monitors and the flusher.

A :class:`Runtime` is everything one configuration built. Instrumented calls
read the current runtime from a module global (one attribute read), so
re-configuring (or ``mlotel.testing``) swaps it atomically.

Providers: an explicit provider argument wins; otherwise a provider the
application or ``opentelemetry-instrument`` already set globally is used as is
(mlotel adds nothing to it but its metric bridge); otherwise mlotel builds its
own and, unless ``set_global=False``, makes it the global one.
"""

from __future__ import annotations

import atexit
import importlib
import os
import threading
import uuid
import weakref
from collections.abc import Callable
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
from ._aggregation import MetricStore, attach_store
from ._config import Settings, resolve_settings
from ._errors import logger, tally
from ._monitor import Monitor
from ._outcomes import OutcomeTracker
from ._sinks import JsonLinesLogExporter, JsonLinesSpanExporter

__all__ = ["Runtime", "build_runtime", "current", "install", "lazy_runtime", "replace"]

VERSION = "0.1.0"


class Runtime:
    """Providers, the metric store, the monitors and the background flusher of one configuration."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.disabled = settings.disabled
        self.tracer: trace.Tracer = trace.NoOpTracer()
        self.logger: logs.Logger | None = None
        self.store = MetricStore(VERSION)
        self.resource = Resource.get_empty()
        self.monitors: dict[tuple[str, str | None], Monitor] = {}
        # One outcome join per model (not for the max_models overflow monitor).
        self.outcome_trackers: dict[tuple[str, str | None], OutcomeTracker] = {}
        self.prometheus_address: tuple[str, int] | None = None
        self.endpoint_failed = False
        self.output_dir: str | None = None
        self.tracer_provider: Any = None
        self.meter_provider: Any = None
        self.logger_provider: Any = None
        self.readers: list[MetricReader] = []
        self._owned: list[Any] = []
        self._detach: list[Callable[[], None]] = []
        self._http_server: Any = None
        self._lock = threading.Lock()
        self._wake_event = threading.Event()
        self._stop_event = threading.Event()
        self._flusher: threading.Thread | None = None
        self.stale = False  # set in a forked child: rebuild before use
        self.closed = False
        self._exit_hook = False

    # --- monitors -------------------------------------------------------------
    def monitor(self, name: str, version: str | None, framework: str | None) -> Monitor:
        key = (name, version)
        found = self.monitors.get(key)
        if found is not None:
            return found
        with self._lock:
            found = self.monitors.get(key)
            if found is None and len(self.monitors) >= self.settings.max_models:
                # Cardinality guard (e.g. a version string per request): later models share
                # one overflow monitor; their spans keep their real names.
                tally.drop("models", "max_models")
                key = (semconv.OTHER_CLASS, None)
                found = self.monitors.get(key)
                name, version, framework = semconv.OTHER_CLASS, None, None
            if found is None:
                found = Monitor(
                    name, version, framework, self.settings, self.store, self.logger, self.wake
                )
                if self.settings.outcome_store_size and name != semconv.OTHER_CLASS:
                    tracker = OutcomeTracker(found, self.store, self.settings)
                    found.attach(tracker)
                    self.outcome_trackers[key] = tracker
                self.monitors[key] = found
                self._start_flusher()
            return found

    def flush_monitors(self) -> None:
        for monitor in list(self.monitors.values()):
            monitor.flush()

    # --- background flusher ------------------------------------------------------
    def wake(self) -> None:
        self._wake_event.set()

    def _start_flusher(self) -> None:
        if self._flusher is not None or self.closed:
            return
        thread = threading.Thread(target=self._run_flusher, name="mlotel-flusher", daemon=True)
        self._flusher = thread
        thread.start()

    def _run_flusher(self) -> None:
        interval = self.settings.flush_interval
        while not self._stop_event.is_set():
            self._wake_event.wait(interval)
            self._wake_event.clear()
            try:
                self.flush_monitors()
            except Exception as exc:  # pragma: no cover - flush_monitors already contains faults
                tally.error("flusher", exc)

    # --- lifecycle ------------------------------------------------------------
    def force_flush(self, timeout: float | None = None) -> bool:
        """Flush monitors, then every provider mlotel can reach, within ``timeout`` seconds."""
        self.flush_monitors()
        if self.disabled:
            return True
        millis = int((timeout if timeout is not None else self.settings.shutdown_timeout) * 1000)
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

    def shutdown(self, timeout: float | None = None) -> bool:
        """Flush and stop what this runtime owns; returns within ``timeout`` (default 5 s)."""
        if self.closed:
            return True
        self.closed = True
        limit = self.settings.shutdown_timeout if timeout is None else timeout
        self._stop_event.set()
        self._wake_event.set()
        self.flush_monitors()
        done = threading.Event()

        self._unregister_exit_hook()
        # A provider that is the OTel global outlives this configuration (globals cannot be
        # replaced): other instrumentation keeps exporting through it.
        closing = [p for p in self._owned if not _is_global(p)]
        _kept_globals.extend(p for p in self._owned if p not in closing and p not in _kept_globals)

        def work() -> None:
            try:
                if any(p not in closing for p in (self.meter_provider, self.logger_provider)):
                    # Providers that stay alive: push our last data through them before the
                    # bridge is detached.
                    self.force_flush(limit)
                for provider in closing:
                    try:
                        provider.shutdown()
                    except Exception as exc:
                        tally.error("shutdown", exc)
                for provider in list(_kept_globals):
                    try:
                        provider.force_flush(int(limit * 1000))
                    except Exception as exc:
                        tally.error("shutdown", exc)
            finally:
                done.set()

        # Exporters retry with backoff when the collector is down: run their shutdown in a
        # daemon thread and stop waiting at the bound, so the application can exit.
        worker = threading.Thread(target=work, name="mlotel-shutdown", daemon=True)
        try:
            worker.start()
        except RuntimeError:  # Python 3.12.0/3.12.1 refuse new threads in atexit handlers
            work()
        finished = done.wait(limit)
        for detach in self._detach:
            try:
                detach()
            except Exception as exc:
                tally.error("shutdown", exc)
        self.stop_endpoint()
        if not finished:
            logger.warning(
                "mlotel.shutdown: exporters did not finish within %.1f s (collector unreachable?); "
                "unsent telemetry was dropped. Raise MLOTEL_SHUTDOWN_TIMEOUT to wait longer.",
                limit,
            )
        if tally.store is self.store:
            tally.store = None
        return finished

    def stop_endpoint(self) -> None:
        """Stop serving the embedded Prometheus endpoint (frees the port)."""
        server, self._http_server = self._http_server, None
        if server is not None:
            try:
                server.shutdown()
                server.server_close()
            except Exception as exc:
                tally.error("prometheus_endpoint", exc)

    def discard(self) -> None:
        """Drop a runtime inherited through fork without touching it: its threads do not
        exist in this process and its buffers belong to the parent, which exports them."""
        self.closed = True
        self._http_server = None
        self._unregister_exit_hook()

    # An app that sets up its own providers after importing mlotel registers the SDK's
    # atexit shutdown after ours, so it would run first and close the providers before our
    # final flush: a runtime using such providers registers its own flush hook, later.
    def _register_exit_hook(self) -> None:
        atexit.register(self._exit_flush)
        self._exit_hook = True

    def _unregister_exit_hook(self) -> None:
        if self._exit_hook:
            atexit.unregister(self._exit_flush)
            self._exit_hook = False

    def _exit_flush(self) -> None:
        if not self.closed and not self.stale:
            self.force_flush(self.settings.shutdown_timeout)


# --- building ---------------------------------------------------------------------


_built: weakref.WeakSet[Any] = weakref.WeakSet()
"""Every provider mlotel ever built: never adopted later as "the application's"."""

_kept_globals: list[Any] = []
"""Providers of closed configurations kept alive because they are the OTel globals; every
later shutdown flushes them (nothing else would: mlotel disabled their atexit hook)."""


def _is_global(provider: Any) -> bool:
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


def _signal_plan(signal: str, settings: Settings) -> set[str]:
    """Exporters for one signal: ``OTEL_<SIGNAL>_EXPORTER`` (otlp, console, prometheus,
    none) when set, else the exporter/sink settings."""
    raw = os.environ.get(f"OTEL_{signal}_EXPORTER", "").strip()
    if raw and not settings._explicit_exporter:
        names = {part.strip().lower() for part in raw.split(",")} - {""}
        unknown = names - {"otlp", "console", "prometheus", "none"}
        if unknown:
            logger.warning(
                "mlotel: OTEL_%s_EXPORTER=%s: mlotel builds only otlp, console, prometheus "
                "(metrics) and none; ignoring %s",
                signal,
                raw,
                ", ".join(sorted(unknown)),
            )
        return set() if "none" in names else names - unknown
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


def _start_prometheus(runtime: Runtime, settings: Settings) -> MetricReader | None:
    from opentelemetry.exporter.prometheus import PrometheusMetricReader
    from prometheus_client import CollectorRegistry, start_http_server

    registry = CollectorRegistry(auto_describe=True)
    try:
        server, _thread = start_http_server(
            settings.prometheus_port, addr=settings.prometheus_host, registry=registry
        )
    except OSError as exc:
        runtime.endpoint_failed = True
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
    runtime._http_server = server
    runtime.prometheus_address = (settings.prometheus_host, int(server.server_address[1]))
    return PrometheusMetricReader(registry=registry)


def build_runtime(
    settings: Settings,
    *,
    tracer_provider: Any = None,
    meter_provider: Any = None,
    logger_provider: Any = None,
    metric_readers: list[MetricReader] | None = None,
    use_globals: bool = True,
    ignore: tuple[Any, ...] = (),
    file_tag: str = "",
    warn_globals: bool = True,
) -> Runtime:
    """Build a runtime for ``settings``; see the module docstring for provider selection."""
    runtime = Runtime(settings)
    if settings.disabled:
        return runtime

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
    runtime.resource = resource
    tally.store = runtime.store
    set_global = settings.set_global

    # --- traces ---
    if tracer_provider is None and usable_global(trace.get_tracer_provider()):
        tracer_provider = trace.get_tracer_provider()
    if tracer_provider is None:
        # shutdown_on_exit=False: the SDK's own atexit shutdown is unbounded (it waits out
        # exporter retries); mlotel's atexit shutdown() is bounded by shutdown_timeout.
        tracer_provider = TracerProvider(resource=resource, shutdown_on_exit=False)
        plan = _signal_plan("TRACES", settings)
        if "otlp" in plan:
            tracer_provider.add_span_processor(
                BatchSpanProcessor(_otlp_exporter("traces", settings))
            )
        if "files" in plan:
            path = os.path.join(settings.output_dir, f"traces{file_tag}.jsonl")
            tracer_provider.add_span_processor(
                BatchSpanProcessor(JsonLinesSpanExporter(path, settings.output_max_bytes))
            )
            runtime.output_dir = settings.output_dir
        if "console" in plan:
            tracer_provider.add_span_processor(BatchSpanProcessor(ConsoleSpanExporter()))
        runtime._owned.append(tracer_provider)
        _built.add(tracer_provider)
        if set_global and not _is_configured(trace.get_tracer_provider()):
            trace.set_tracer_provider(tracer_provider)
    runtime.tracer_provider = tracer_provider
    runtime.tracer = tracer_provider.get_tracer(semconv.SCOPE_NAME, VERSION)

    # --- logs ---
    if logger_provider is None and usable_global(logs.get_logger_provider()):
        logger_provider = logs.get_logger_provider()
    if logger_provider is None:
        logger_provider = logs.SDKLoggerProvider(resource=resource, shutdown_on_exit=False)
        plan = _signal_plan("LOGS", settings)
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
        runtime._owned.append(logger_provider)
        _built.add(logger_provider)
        if set_global and not _is_configured(logs.get_logger_provider()):
            logs.set_logger_provider(logger_provider)
    runtime.logger_provider = logger_provider
    if settings.payload_enabled:
        runtime.logger = logger_provider.get_logger(semconv.SCOPE_NAME, VERSION)

    # --- metrics ---
    if meter_provider is None and usable_global(metrics_api.get_meter_provider()):
        meter_provider = metrics_api.get_meter_provider()
    readers: list[MetricReader] = list(metric_readers or [])
    if meter_provider is None:
        plan = _signal_plan("METRICS", settings)
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
            prometheus_reader = _start_prometheus(runtime, settings)
            if prometheus_reader is not None:
                readers.append(prometheus_reader)
        meter_provider = MeterProvider(
            resource=resource, metric_readers=readers, shutdown_on_exit=False
        )
        runtime._owned.append(meter_provider)
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
        if not readers:
            logger.warning(
                "mlotel: the global MeterProvider (%s) exposes no SDK metric readers; "
                "mlotel's metrics cannot be exported through it",
                type(meter_provider).__name__,
            )
    runtime.meter_provider = meter_provider
    runtime.readers = readers
    for reader in readers:
        try:
            runtime._detach.append(
                attach_store(reader, runtime.store, resource, runtime.flush_monitors)
            )
        except Exception as exc:
            tally.error("metrics.bridge", exc)
    if runtime.endpoint_failed:  # counted now that readers can export it; logged above
        tally.error("prometheus_endpoint", log=False)
    if any(
        p not in runtime._owned
        for p in (runtime.tracer_provider, runtime.logger_provider, runtime.meter_provider)
    ):
        runtime._register_exit_hook()
    return runtime


# --- the current runtime -----------------------------------------------------------

_current: Runtime | None = None
_install_lock = threading.RLock()


def current() -> Runtime | None:
    return _current


def install(runtime: Runtime) -> Runtime | None:
    """Make ``runtime`` current; returns the previous one (not shut down)."""
    global _current
    with _install_lock:
        previous = _current
        _current = runtime
        return previous


def replace(runtime: Runtime | None) -> None:
    global _current
    with _install_lock:
        _current = runtime


def lazy_runtime() -> Runtime:
    """The current runtime, configuring from the environment on first use.

    A configuration error here must not break the caller's predict call: it is
    logged and mlotel runs disabled until configure() is called.
    """
    runtime = _current
    if runtime is not None and not runtime.stale:
        return runtime
    with _install_lock:
        runtime = _current
        if runtime is not None and not runtime.stale:
            return runtime
        if runtime is not None:
            runtime = _after_fork(runtime)
        else:
            try:
                runtime = build_runtime(resolve_settings())
            except Exception as exc:
                logger.error("mlotel: configuration failed, telemetry is disabled: %s", exc)
                tally.error("configure", exc)
                runtime = Runtime(Settings(disabled=True))
        install(runtime)
        return runtime


def _after_fork(parent: Runtime) -> Runtime:
    """A fresh runtime for a forked child: its own buffers, threads, locks and counts.

    When mlotel owns the providers it builds new ones (a new resource with the
    child's pid and instance id; the embedded Prometheus endpoint stays with the
    parent, which holds the port). Providers owned by the application are kept:
    the OTel SDK restarts their export threads after fork itself.
    """
    settings = parent.settings
    if parent.disabled:
        return Runtime(settings)
    owned = set(map(id, parent._owned))
    kwargs: dict[str, Any] = {}
    if id(parent.tracer_provider) not in owned:
        kwargs["tracer_provider"] = parent.tracer_provider
    if id(parent.logger_provider) not in owned:
        kwargs["logger_provider"] = parent.logger_provider
    if id(parent.meter_provider) not in owned:
        kwargs["meter_provider"] = parent.meter_provider
    child_settings = Settings(**{**settings.__dict__, "prometheus": False, "set_global": False})
    if settings.prometheus_enabled and id(parent.meter_provider) in owned:
        logger.info(
            "mlotel: forked worker %s does not serve the embedded Prometheus endpoint (the parent "
            "holds the port); configure MLOTEL_PROMETHEUS_PORT per worker or use OTLP",
            os.getpid(),
        )
    # Each worker writes its own files: rotation renames cannot race between processes.
    return build_runtime(child_settings, use_globals=False, file_tag=f".{os.getpid()}", **kwargs)


def _mark_forked() -> None:
    global _install_lock
    _install_lock = threading.RLock()
    tally.after_fork()
    if _current is not None:
        _current.stale = True


os.register_at_fork(after_in_child=_mark_forked)
