"""configure(), shutdown() and force_flush(): the process-level entry points."""

from __future__ import annotations

import atexit
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from . import _runtime
from ._config import Settings, resolve_settings

__all__ = ["Configuration", "configure", "force_flush", "shutdown"]


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


def _describe(runtime: _runtime.Runtime) -> Configuration:
    url = None
    if runtime.prometheus_address is not None:
        host, port = runtime.prometheus_address
        host = f"[{host}]" if ":" in host else host  # IPv6 literal
        url = f"http://{host}:{port}/metrics"
    return Configuration(runtime.settings, url, runtime.output_dir)


def configure(
    *,
    tracer_provider: Any = None,
    meter_provider: Any = None,
    logger_provider: Any = None,
    metric_readers: Sequence[Any] | None = None,
    **settings: Any,
) -> Configuration:
    """Set up mlotel; optional (the first observed call configures from the environment).

    Settings resolve as keyword arguments > ``MLOTEL_*`` env > ``OTEL_*`` env >
    defaults (docs/configuration.md lists them). Global providers that the
    application or ``opentelemetry-instrument`` already set are used, never
    replaced. Calling it again replaces the previous configuration.

    >>> import mlotel
    >>> cfg = mlotel.configure(service_name="doc-example", exporter="none", set_global=False)
    >>> cfg.settings.service_name, cfg.metrics_url
    ('doc-example', None)
    >>> mlotel.shutdown()
    True
    """
    resolved = resolve_settings(settings)
    previous = _runtime.current()
    ignore: tuple[Any, ...] = tuple(previous._owned) if previous is not None else ()
    forked = previous is not None and previous.stale
    if previous is not None and previous.stale:
        # Inherited through fork (e.g. a post-fork hook): the parent exports its data.
        previous.discard()
        previous = None
    elif previous is not None:
        previous.stop_endpoint()  # free the port for the new configuration
    runtime = _runtime.build_runtime(
        resolved,
        tracer_provider=tracer_provider,
        meter_provider=meter_provider,
        logger_provider=logger_provider,
        metric_readers=list(metric_readers or []),
        ignore=ignore,
        warn_globals=not forked,
    )
    # Install first, then close the old one: calls made meanwhile go to the new runtime.
    _runtime.install(runtime)
    if previous is not None:
        previous.shutdown()
    return _describe(runtime)


def force_flush(timeout: float | None = None) -> bool:
    """Push everything buffered so far through the exporters (bounded by ``timeout`` s).

    >>> import mlotel
    >>> mlotel.force_flush()
    True
    """
    runtime = _runtime.current()
    return True if runtime is None else runtime.force_flush(timeout)


def shutdown(timeout: float | None = None) -> bool:
    """Flush and stop mlotel; returns within ``timeout`` seconds (default 5) even when the
    collector is unreachable. Returns False when exporters did not finish in time.

    >>> import mlotel
    >>> _ = mlotel.configure(exporter="none", set_global=False)
    >>> mlotel.shutdown(timeout=1.0)
    True
    """
    runtime = _runtime.current()
    if runtime is None:
        return True
    if runtime.stale:  # a forked child that never predicted: nothing of its own to flush
        runtime.discard()
        _runtime.replace(_runtime.Runtime(Settings(disabled=True)))
        return True
    finished = runtime.shutdown(timeout)
    # Later calls pass straight through until configure() is called again.
    _runtime.replace(_runtime.Runtime(Settings(disabled=True)))
    return finished


atexit.register(shutdown)
