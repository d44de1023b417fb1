"""A :class:`Runtime`: everything one configuration runs — its providers, the metric
store, one :class:`~mlotel._aggregator.ModelAggregator` per model, the outcome trackers
and the background flusher.

Instrumented calls find the current runtime through :mod:`mlotel._lifecycle` (one
module attribute read), so re-configuring (or ``mlotel.testing``) swaps it atomically.
"""

from __future__ import annotations

import atexit
import contextlib
import threading
import time
import weakref
from typing import Any

from opentelemetry import trace
from opentelemetry.sdk.resources import Resource

from . import _otel_logs as logs
from . import semconv
from ._aggregator import ModelAggregator
from ._config import Settings
from ._metric_store import MetricStore
from ._providers import Providers, is_global, kept_globals
from ._self_telemetry import logger, tally
from ._version import VERSION
from .outcomes._tracker import OutcomeTracker

__all__ = ["Runtime"]


class Runtime:
    """Providers, the metric store, the aggregators and the background flusher of one
    configuration. A runtime without providers is disabled: calls pass straight through."""

    def __init__(self, settings: Settings, providers: Providers | None = None) -> None:
        self.settings = settings
        self.disabled = settings.disabled or providers is None
        self.providers = providers
        self.tracer: trace.Tracer = providers.tracer if providers else trace.NoOpTracer()
        self.logger: logs.Logger | None = providers.logger if providers else None
        self.store = MetricStore(VERSION)
        self.aggregators: dict[tuple[str, str | None], ModelAggregator] = {}
        # One outcome join per model (not for the max_models overflow aggregator).
        self.outcome_trackers: dict[tuple[str, str | None], OutcomeTracker] = {}
        self._lock = threading.RLock()  # re-entrant: a signal handler on this thread
        self._wake_event = threading.Event()
        self._stop_event = threading.Event()
        self._flusher: threading.Thread | None = None
        self.stale = False  # set in a forked child: rebuild before use
        self.closed = False

    def connect(self, providers: Providers) -> None:
        """Use ``providers`` (built around this runtime's store)."""
        self.providers = providers
        self.tracer = providers.tracer
        self.logger = providers.logger
        self.disabled = self.settings.disabled
        used = (providers.tracer_provider, providers.logger_provider, providers.meter_provider)
        foreign = [p for p in used if p is not None and p not in providers.owned]
        if foreign:
            _at_exit.watch(self, foreign)

    # --- what the providers expose ---------------------------------------------
    @property
    def tracer_provider(self) -> Any:
        return None if self.providers is None else self.providers.tracer_provider

    @property
    def logger_provider(self) -> Any:
        return None if self.providers is None else self.providers.logger_provider

    @property
    def meter_provider(self) -> Any:
        return None if self.providers is None else self.providers.meter_provider

    @property
    def resource(self) -> Resource:
        return Resource.get_empty() if self.providers is None else self.providers.resource

    @property
    def prometheus_address(self) -> tuple[str, int] | None:
        return None if self.providers is None else self.providers.prometheus_address

    @property
    def output_dir(self) -> str | None:
        return None if self.providers is None else self.providers.output_dir

    @property
    def owned(self) -> list[Any]:
        """Providers this runtime built (and shuts down)."""
        return [] if self.providers is None else self.providers.owned

    # --- aggregators -------------------------------------------------------------
    def aggregator(self, name: str, version: str | None, framework: str | None) -> ModelAggregator:
        """The aggregator of model ``name`` / ``version``, created on first use."""
        key = (name, version)
        found = self.aggregators.get(key)
        if found is not None:
            return found
        with self._lock:
            found = self.aggregators.get(key)
            if found is None and len(self.aggregators) >= self.settings.max_models:
                # Cardinality guard (e.g. a version string per request): later models share
                # one overflow aggregator; their spans keep their real names.
                tally.drop("models", "max_models")
                key = (semconv.OTHER_CLASS, None)
                found = self.aggregators.get(key)
                name, version, framework = semconv.OTHER_CLASS, None, None
            if found is None:
                found = ModelAggregator(
                    name, version, framework, self.settings, self.store, self.logger, self.wake
                )
                if self.settings.outcome_store_size and name != semconv.OTHER_CLASS:
                    tracker = OutcomeTracker(found, self.store, self.settings)
                    found.attach(tracker)
                    self.outcome_trackers[key] = tracker
                self.aggregators[key] = found
                self._start_flusher()
            return found

    def flush_aggregators(self) -> None:
        """Aggregate every buffered call now (thread-safe)."""
        for aggregator in list(self.aggregators.values()):
            aggregator.flush()

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
                self.flush_aggregators()
            except Exception as exc:  # pragma: no cover - aggregators contain their faults
                tally.error("flusher", exc)

    # --- lifecycle ------------------------------------------------------------
    def force_flush(self, timeout: float | None = None) -> bool:
        """Flush aggregators, then every provider mlotel can reach, within ``timeout`` s."""
        self.flush_aggregators()
        if self.disabled or self.providers is None:
            return True
        limit = timeout if timeout is not None else self.settings.shutdown_timeout
        return self.providers.force_flush(int(limit * 1000))

    def shutdown(self, timeout: float | None = None) -> bool:
        """Flush and stop what this runtime owns; returns within ``timeout`` (default 5 s)."""
        if self.closed:
            return True
        self.closed = True
        limit = self.settings.shutdown_timeout if timeout is None else timeout
        deadline = time.monotonic() + limit
        self._stop_event.set()
        self._wake_event.set()
        _at_exit.runtimes.discard(self)
        providers = self.providers
        # Called from a signal handler that interrupted a flush on this thread, the final
        # flush skips that model (its flush is below us on the stack) instead of waiting.
        caller = threading.get_ident()

        def flush_all() -> None:
            for aggregator in list(self.aggregators.values()):
                aggregator.flush(max(0.0, deadline - time.monotonic()), skip_thread=caller)

        if providers is None:
            flush_all()
            return True
        # A provider that is the OTel global outlives this configuration (globals cannot be
        # replaced): other instrumentation keeps exporting through it.
        closing = [p for p in providers.owned if not is_global(p)]
        kept = kept_globals()
        kept.extend(p for p in providers.owned if p not in closing and p not in kept)
        done = threading.Event()

        def work() -> None:
            try:
                flush_all()
                if any(p not in closing for p in (providers.meter_provider, self.logger_provider)):
                    # Providers that stay alive: push our last data through them before the
                    # bridge is detached.
                    providers.force_flush(int(limit * 1000))
                for provider in closing:
                    try:
                        provider.shutdown()
                    except Exception as exc:
                        tally.error("shutdown", exc)
                for provider in list(kept):
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
        waited_from = time.monotonic()
        finished = done.wait(max(0.0, deadline - waited_from))
        if not finished:  # counts against the exit's wait: one bound for both
            _at_exit.waited += time.monotonic() - waited_from
        providers.detach_store()
        providers.stop_endpoint()
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
        if self.providers is not None:
            self.providers.stop_endpoint()

    def discard(self) -> None:
        """Drop a runtime inherited through fork without touching it: its threads do not
        exist in this process and its buffers belong to the parent, which exports them."""
        self.closed = True
        if self.providers is not None:
            self.providers.http_server = None
        _at_exit.runtimes.discard(self)


class _ExitBound:
    """Process exit with the application's providers: within one ``shutdown_timeout``.

    The OTel SDK registers each provider's ``shutdown`` with ``atexit``; with the
    collector down it waits out the exporters' retries (30 s joins). For providers a
    runtime used but did not build (the application's, ``opentelemetry-instrument``'s),
    one hook, registered again after each such runtime connects so that it runs before
    their SDK hooks, shuts down the runtimes still open (final flush), then takes over
    those providers' exit shutdown: their SDK hooks are unregistered and the shutdowns
    run in a daemon thread, waited for at most what is left of ``shutdown_timeout``
    after the time earlier shutdowns already spent waiting on exporters that did not
    finish.
    """

    def __init__(self) -> None:
        self.runtimes: weakref.WeakSet[Runtime] = weakref.WeakSet()
        self.providers: weakref.WeakSet[Any] = weakref.WeakSet()
        self.waited = 0.0  # seconds shutdowns waited for exporters that did not finish
        self.timeout = Settings().shutdown_timeout

    def watch(self, runtime: Runtime, providers: list[Any]) -> None:
        self.runtimes.add(runtime)
        for provider in providers:
            with contextlib.suppress(TypeError):  # not weak-referenceable: left to its own hook
                self.providers.add(provider)
        self.timeout = runtime.settings.shutdown_timeout
        atexit.unregister(self.run)
        atexit.register(self.run)  # after the providers' own hooks: runs before them

    def run(self) -> None:
        for runtime in list(self.runtimes):
            if not runtime.closed and not runtime.stale:
                runtime.shutdown(max(0.0, self.timeout - self.waited))
        budget = max(0.0, self.timeout - self.waited)
        closing = [
            p
            for p in list(self.providers)
            # (a MeterProvider warns when shut down twice)
            if callable(getattr(p, "shutdown", None)) and not getattr(p, "_shutdown", False)
        ]
        if not closing:
            return
        for provider in closing:
            atexit.unregister(provider.shutdown)
        done = threading.Event()

        def close() -> None:
            for provider in closing:
                try:
                    provider.shutdown()
                except Exception as exc:
                    tally.error("shutdown", exc)
            done.set()

        try:
            threading.Thread(target=close, name="mlotel-exit", daemon=True).start()
        except RuntimeError:  # no new threads at exit (Python 3.12.0/3.12.1)
            return
        if not done.wait(budget):
            logger.warning(
                "mlotel: at exit, the application's OTel providers did not shut down within "
                "%.1f s (what was left of MLOTEL_SHUTDOWN_TIMEOUT=%.1f; collector unreachable?); "
                "unsent telemetry was dropped.",
                budget,
                self.timeout,
            )


_at_exit = _ExitBound()
