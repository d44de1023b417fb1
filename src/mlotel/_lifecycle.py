"""configure(), shutdown() and force_flush(), the current runtime, and what happens on
fork and at exit.

``current`` is the runtime instrumented calls report to: read once per call (a module
attribute), replaced atomically by :func:`configure` / :func:`install`.
"""

from __future__ import annotations

import atexit
import os
import threading
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from ._config import Settings, resolve_settings
from ._providers import build_providers
from ._runtime import Runtime
from ._self_telemetry import logger, tally

if TYPE_CHECKING:
    from typing_extensions import Unpack

    from ._config import ConfigureOptions

__all__ = [
    "Configuration",
    "build_runtime",
    "configure",
    "current",
    "force_flush",
    "install",
    "lazy_runtime",
    "shutdown",
]

current: Runtime | None = None
"""The runtime of the current configuration (None before the first call or configure())."""

_install_lock = threading.RLock()


@dataclass(frozen=True)
class Configuration:
    """What :func:`configure` set up: the resolved settings and where data goes.

    >>> import mlotel, tempfile
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     cfg = mlotel.configure(exporter="none", local_sink="files", output_dir=folder,
    ...                            set_global=False)
    ...     (cfg.settings.sink, cfg.output_dir == folder, cfg.metrics_url, mlotel.shutdown())
    ('files', True, None, True)
    """

    settings: Settings
    metrics_url: str | None
    """The embedded Prometheus endpoint, when one is being served."""
    output_dir: str | None
    """Where the local sink writes ``traces.jsonl`` and ``logs.jsonl``, when it is on."""


def _describe(runtime: Runtime) -> Configuration:
    url = None
    if runtime.prometheus_address is not None:
        host, port = runtime.prometheus_address
        host = f"[{host}]" if ":" in host else host  # IPv6 literal
        url = f"http://{host}:{port}/metrics"
    return Configuration(runtime.settings, url, runtime.output_dir)


def build_runtime(settings: Settings, **provider_options: Any) -> Runtime:
    """A runtime for ``settings`` with its providers (``provider_options`` go to
    :func:`mlotel._providers.build_providers`); disabled settings build none."""
    runtime = Runtime(settings)
    if settings.disabled:
        return runtime
    tally.store = runtime.store
    tally.hide_messages = not settings.exception_messages
    runtime.connect(
        build_providers(settings, runtime.store, runtime.flush_aggregators, **provider_options)
    )
    return runtime


def install(runtime: Runtime | None) -> Runtime | None:
    """Make ``runtime`` current; returns the previous one (not shut down)."""
    global current
    with _install_lock:
        previous = current
        current = runtime
        return previous


def lazy_runtime() -> Runtime:
    """The current runtime, configuring from the environment on first use.

    A configuration error here must not break the caller's predict call: it is
    logged and mlotel runs disabled until configure() is called.
    """
    runtime = current
    if runtime is not None and not runtime.stale:
        return runtime
    with _install_lock:
        runtime = current
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


def configure(
    *,
    tracer_provider: Any = None,
    meter_provider: Any = None,
    logger_provider: Any = None,
    metric_readers: Sequence[Any] | None = None,
    **settings: Unpack[ConfigureOptions],
) -> Configuration:
    """Set up mlotel; optional (the first observed call configures from the environment).

    Settings resolve as keyword arguments > ``MLOTEL_*`` env > ``OTEL_*`` env >
    defaults (docs/configuration.md lists them; every one is a typed keyword,
    :class:`mlotel._config.ConfigureOptions`). Global providers that the
    application or ``opentelemetry-instrument`` already set are used, never
    replaced. Calling it again replaces the previous configuration.

    >>> import mlotel
    >>> cfg = mlotel.configure(service_name="doc-example", exporter="none", set_global=False)
    >>> cfg.settings.service_name, cfg.metrics_url
    ('doc-example', None)
    >>> mlotel.shutdown()
    True
    """
    resolved = resolve_settings(dict(settings))
    previous = current
    ignore: tuple[Any, ...] = tuple(previous.owned) if previous is not None else ()
    forked = previous is not None and previous.stale
    if previous is not None and previous.stale:
        # Inherited through fork (e.g. a post-fork hook): the parent exports its data.
        previous.discard()
        previous = None
    elif previous is not None:
        previous.stop_endpoint()  # free the port for the new configuration
    runtime = build_runtime(
        resolved,
        tracer_provider=tracer_provider,
        meter_provider=meter_provider,
        logger_provider=logger_provider,
        metric_readers=list(metric_readers or []),
        ignore=ignore,
        warn_globals=not forked,
    )
    # Install first, then close the old one: calls made meanwhile go to the new runtime.
    install(runtime)
    if previous is not None:
        previous.shutdown()
    return _describe(runtime)


def force_flush(timeout: float | None = None) -> bool:
    """Push everything buffered so far through the exporters (bounded by ``timeout`` s).

    >>> import mlotel
    >>> mlotel.force_flush()
    True
    """
    runtime = current
    return True if runtime is None else runtime.force_flush(timeout)


def shutdown(timeout: float | None = None) -> bool:
    """Flush and stop mlotel; returns within ``timeout`` seconds (default
    ``shutdown_timeout``, 5) even when the collector is unreachable, and even from a
    signal handler that interrupted mlotel. Returns False when exporters did not finish
    in time; that wait is then taken off what process exit waits (one bound for both).

    >>> import mlotel
    >>> _ = mlotel.configure(exporter="none", set_global=False)
    >>> mlotel.shutdown(timeout=1.0)
    True
    """
    runtime = current
    if runtime is None:
        return True
    if runtime.stale:  # a forked child that never predicted: nothing of its own to flush
        runtime.discard()
        install(Runtime(Settings(disabled=True)))
        return True
    finished = runtime.shutdown(timeout)
    # Later calls pass straight through until configure() is called again.
    install(Runtime(Settings(disabled=True)))
    return finished


# --- fork ----------------------------------------------------------------------------


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
    owned = set(map(id, parent.owned))
    kwargs: dict[str, Any] = {}
    if id(parent.tracer_provider) not in owned:
        kwargs["tracer_provider"] = parent.tracer_provider
    if id(parent.logger_provider) not in owned:
        kwargs["logger_provider"] = parent.logger_provider
    if id(parent.meter_provider) not in owned:
        kwargs["meter_provider"] = parent.meter_provider
    if id(parent.meter_provider) in owned and parent.providers is not None:
        # The application's readers (configure(metric_readers=...)) serve the child too.
        kwargs["metric_readers"] = list(parent.providers.app_readers)
        kwargs["reclaim_readers"] = True
    child_settings = replace(settings, prometheus=False, set_global=False)
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
    if current is not None:
        current.stale = True


os.register_at_fork(after_in_child=_mark_forked)
atexit.register(shutdown)
