"""Settings: keyword arguments > ``MLOTEL_*`` env > ``OTEL_*`` env > defaults.

Every environment variable mlotel reads goes through one table (``_SPEC``), including
the ones only auto-instrumentation and the exporter plan use
(``OTEL_<SIGNAL>_EXPORTER``, ``MLOTEL_REFERENCES``,
``OTEL_PYTHON_DISABLED_INSTRUMENTATIONS``). Every field is documented in
docs/configuration.md; a test keeps the two in step (tests/unit/test_config.py), and
another keeps :class:`ConfigureOptions` (the typed keywords of ``configure()``) equal to
the configurable fields.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, fields
from typing import Any, TypedDict

from .exceptions import ConfigError

__all__ = [
    "ENV_ONLY_SETTINGS",
    "ENV_VARS",
    "ConfigError",
    "ConfigureOptions",
    "Settings",
    "resolve_settings",
    "setting_from_env",
]


_EXPORTERS = ("auto", "otlp", "embedded", "none")
_SINKS = ("files", "console", "none")
_PROTOCOLS = ("grpc", "http/protobuf")
_OUTCOME_LOGS = ("sampled", "all", "none")


@dataclass(frozen=True)
class Settings:
    """Resolved configuration. Build it with :func:`resolve_settings`.

    >>> settings = resolve_settings({"exporter": "embedded"}, environ={})
    >>> settings.exporter, settings.prometheus_enabled, settings.sink
    ('embedded', True, 'files')
    """

    service_name: str | None = None
    exporter: str = "auto"
    otlp_endpoint: str | None = None
    otlp_protocol: str = "http/protobuf"
    prometheus: bool | None = None
    prometheus_host: str = "127.0.0.1"
    prometheus_port: int = 9464
    local_sink: str | None = None
    output_dir: str = "mlotel-telemetry"
    output_max_bytes: int = 64 * 1024 * 1024
    payload_enabled: bool = True
    # Production-affordable: one call in ten logs its payload (failed calls always do);
    # benchmarks/log_volume.py measures the bytes (see docs/configuration.md).
    payload_sample_rate: float = 0.1
    payload_max_bytes: int = 8192
    payload_location: str = "body"
    payload_redact: frozenset[str] = field(default_factory=frozenset)
    payload_allow: frozenset[str] | None = None
    record_exception_messages: bool | None = None
    max_classes: int = 100
    max_models: int = 100
    max_features: int = 512
    max_operations: int = 16
    max_error_types: int = 32
    flush_interval: float = 1.0
    buffer_size: int = 1024
    shutdown_timeout: float = 5.0
    metric_export_interval: float | None = None
    outcome_store_size: int = 100_000
    outcome_ttl: float = 7 * 86_400.0
    outcome_window_size: int = 10_000
    outcome_window_seconds: float = 86_400.0
    outcome_min_samples: int = 100
    outcome_log: str = "sampled"
    performance_estimate: bool = True
    disabled: bool = False
    set_global: bool = True
    traces_exporter: frozenset[str] | None = None
    metrics_exporter: frozenset[str] | None = None
    logs_exporter: frozenset[str] | None = None
    references: Mapping[str, str] = field(default_factory=dict)
    disabled_instrumentations: frozenset[str] = field(default_factory=frozenset)
    # True when exporter/local_sink came from a keyword or MLOTEL_* variable: then the
    # generic OTEL_<SIGNAL>_EXPORTER variables do not override that choice.
    _explicit_exporter: bool = field(default=False, repr=False)

    def signal_exporters(self, signal: str) -> frozenset[str] | None:
        """``OTEL_<SIGNAL>_EXPORTER`` names for ``traces``, ``metrics`` or ``logs``, unless
        an explicit ``exporter`` / ``local_sink`` setting overrides them (then None)."""
        if self._explicit_exporter:
            return None
        found: frozenset[str] | None = getattr(self, f"{signal}_exporter")
        return found

    @property
    def uses_otlp(self) -> bool:
        """True when telemetry is exported over OTLP."""
        return self.exporter == "otlp"

    @property
    def exception_messages(self) -> bool:
        """Whether a failed call's span carries the exception's message (its status
        description and exception event). Default (``record_exception_messages`` unset):
        yes, unless ``payload_redact`` or ``payload_allow`` is set, since a message may
        quote the input.

        >>> redacting = Settings(payload_redact=frozenset({"ssn"}))
        >>> Settings().exception_messages, redacting.exception_messages
        (True, False)
        """
        if self.record_exception_messages is not None:
            return self.record_exception_messages
        return not (self.payload_redact or self.payload_allow is not None)

    @property
    def prometheus_enabled(self) -> bool:
        """True when the embedded Prometheus endpoint is served (default: with ``embedded``)."""
        if self.prometheus is not None:
            return self.prometheus
        return self.exporter == "embedded"

    @property
    def sink(self) -> str:
        """The local sink in effect: ``files``, ``console`` or ``none`` (default by exporter)."""
        if self.local_sink is not None:
            return self.local_sink
        return "files" if self.exporter == "embedded" else "none"


# --- parsers -------------------------------------------------------------------


def _bool(name: str, raw: Any) -> bool:
    if isinstance(raw, bool):
        return raw
    text = str(raw).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off", ""):
        return False
    raise ConfigError(f"{name}={raw!r} is not a boolean (use true or false)")


def _auto_bool(name: str, raw: Any) -> bool | None:
    if isinstance(raw, str) and raw.strip().lower() == "auto":
        return None
    return _bool(name, raw)


def _int(minimum: int) -> Callable[[str, Any], int]:
    def parse(name: str, raw: Any) -> int:
        try:
            value = int(raw)
        except (TypeError, ValueError):
            raise ConfigError(f"{name}={raw!r} is not an integer") from None
        if value < minimum:
            raise ConfigError(f"{name}={raw!r} must be >= {minimum}")
        return value

    return parse


def _float(low: float, high: float) -> Callable[[str, Any], float]:
    def parse(name: str, raw: Any) -> float:
        try:
            value = float(raw)
        except (TypeError, ValueError):
            raise ConfigError(f"{name}={raw!r} is not a number") from None
        if not (low <= value <= high) or math.isnan(value):
            raise ConfigError(f"{name}={raw!r} must be between {low} and {high}")
        return value

    return parse


def _choice(options: tuple[str, ...]) -> Callable[[str, Any], str]:
    def parse(name: str, raw: Any) -> str:
        value = str(raw).strip().lower()
        if value not in options:
            raise ConfigError(f"{name}={raw!r} must be one of {', '.join(options)}")
        return value

    return parse


def _names(name: str, raw: Any) -> frozenset[str]:
    if isinstance(raw, str):
        items: Iterable[Any] = raw.split(",")
    elif isinstance(raw, Iterable):
        items = raw
    else:
        raise ConfigError(f"{name}={raw!r} must be a comma-separated list or an iterable of names")
    return frozenset(str(item).strip() for item in items if str(item).strip())


def _text(name: str, raw: Any) -> str:
    return str(raw)


def _port(name: str, raw: Any) -> int:
    value = _int(0)(name, raw)
    if value > 65535:
        raise ConfigError(f"{name}={raw!r} must be a TCP port between 0 and 65535")
    return value


def _exporter_names(name: str, raw: Any) -> frozenset[str]:
    # Unknown names are kept and warned about when the providers are built: these
    # variables are shared with other OTel tooling, so they must not stop mlotel.
    return frozenset(part.lower() for part in _names(name, raw))


def _references(name: str, raw: Any) -> dict[str, str]:
    if isinstance(raw, Mapping):
        return {str(k): str(v) for k, v in raw.items()}
    found: dict[str, str] = {}
    for part in filter(None, (p.strip() for p in str(raw).split(","))):
        model, sep, path = part.partition("=")
        if not sep or not model.strip() or not path.strip():
            raise ConfigError(f"{name}: expected MODEL=PATH[,MODEL=PATH...], got {part!r}")
        found[model.strip()] = path.strip()
    return found


def _millis_to_seconds(name: str, raw: Any) -> float:
    return _float(0.001, 86_400_000)(name, raw) / 1000.0


# field -> (parser, MLOTEL_* variable or None, OTEL_* variables in priority order)
_SPEC: dict[str, tuple[Callable[[str, Any], Any], str | None, tuple[str, ...]]] = {
    "service_name": (_text, "MLOTEL_SERVICE_NAME", ("OTEL_SERVICE_NAME",)),
    "exporter": (_choice(_EXPORTERS), "MLOTEL_EXPORTER", ()),
    # OTEL_EXPORTER_OTLP_[SIGNAL_]ENDPOINT are left to the exporters, which read the
    # per-signal variables too; this setting only carries an explicit endpoint.
    "otlp_endpoint": (_text, "MLOTEL_OTLP_ENDPOINT", ()),
    "otlp_protocol": (
        _choice(_PROTOCOLS),
        "MLOTEL_OTLP_PROTOCOL",
        (
            "OTEL_EXPORTER_OTLP_PROTOCOL",
            # a per-signal variable serves all signals when the generic one is absent
            "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
            "OTEL_EXPORTER_OTLP_METRICS_PROTOCOL",
        ),
    ),
    "prometheus": (_bool, "MLOTEL_PROMETHEUS", ()),
    "prometheus_host": (_text, "MLOTEL_PROMETHEUS_HOST", ("OTEL_EXPORTER_PROMETHEUS_HOST",)),
    "prometheus_port": (_port, "MLOTEL_PROMETHEUS_PORT", ("OTEL_EXPORTER_PROMETHEUS_PORT",)),
    "local_sink": (_choice(_SINKS), "MLOTEL_LOCAL_SINK", ()),
    "output_dir": (_text, "MLOTEL_OUTPUT_DIR", ()),
    "output_max_bytes": (_int(1024), "MLOTEL_OUTPUT_MAX_BYTES", ()),
    "payload_enabled": (_bool, "MLOTEL_PAYLOAD_ENABLED", ()),
    "payload_sample_rate": (_float(0.0, 1.0), "MLOTEL_PAYLOAD_SAMPLE_RATE", ()),
    "payload_max_bytes": (_int(256), "MLOTEL_PAYLOAD_MAX_BYTES", ()),
    "payload_location": (_choice(("body", "attributes")), "MLOTEL_PAYLOAD_LOCATION", ()),
    "payload_redact": (_names, "MLOTEL_PAYLOAD_REDACT", ()),
    "payload_allow": (_names, "MLOTEL_PAYLOAD_ALLOW", ()),
    "record_exception_messages": (_auto_bool, "MLOTEL_RECORD_EXCEPTION_MESSAGES", ()),
    "max_classes": (_int(1), "MLOTEL_MAX_CLASSES", ()),
    "max_models": (_int(1), "MLOTEL_MAX_MODELS", ()),
    "max_features": (_int(1), "MLOTEL_MAX_FEATURES", ()),
    "max_operations": (_int(1), "MLOTEL_MAX_OPERATIONS", ()),
    "max_error_types": (_int(1), "MLOTEL_MAX_ERROR_TYPES", ()),
    "flush_interval": (_float(0.01, 3600.0), "MLOTEL_FLUSH_INTERVAL", ()),
    "buffer_size": (_int(1), "MLOTEL_BUFFER_SIZE", ()),
    "shutdown_timeout": (_float(0.0, 600.0), "MLOTEL_SHUTDOWN_TIMEOUT", ()),
    "metric_export_interval": (
        _float(0.001, 86_400.0),
        "MLOTEL_METRIC_EXPORT_INTERVAL",
        (),
    ),
    "outcome_store_size": (_int(0), "MLOTEL_OUTCOME_STORE_SIZE", ()),
    "outcome_ttl": (_float(0.001, 365 * 86_400.0), "MLOTEL_OUTCOME_TTL", ()),
    "outcome_window_size": (_int(1), "MLOTEL_OUTCOME_WINDOW_SIZE", ()),
    "outcome_window_seconds": (_float(0.001, 365 * 86_400.0), "MLOTEL_OUTCOME_WINDOW_SECONDS", ()),
    "outcome_min_samples": (_int(1), "MLOTEL_OUTCOME_MIN_SAMPLES", ()),
    "outcome_log": (_choice(_OUTCOME_LOGS), "MLOTEL_OUTCOME_LOG", ()),
    "performance_estimate": (_bool, "MLOTEL_PERFORMANCE_ESTIMATE", ()),
    "disabled": (_bool, "MLOTEL_DISABLED", ("OTEL_SDK_DISABLED",)),
    "set_global": (_bool, "MLOTEL_SET_GLOBAL", ()),
    # Read from the environment only (not configure() keywords):
    "traces_exporter": (_exporter_names, None, ("OTEL_TRACES_EXPORTER",)),
    "metrics_exporter": (_exporter_names, None, ("OTEL_METRICS_EXPORTER",)),
    "logs_exporter": (_exporter_names, None, ("OTEL_LOGS_EXPORTER",)),
    "references": (_references, "MLOTEL_REFERENCES", ()),
    "disabled_instrumentations": (_names, None, ("OTEL_PYTHON_DISABLED_INSTRUMENTATIONS",)),
}

ENV_ONLY_SETTINGS = frozenset(
    {
        "traces_exporter",
        "metrics_exporter",
        "logs_exporter",
        "references",
        "disabled_instrumentations",
    }
)
"""Settings read from the environment only: ``configure()`` does not take them."""

ENV_VARS: tuple[str, ...] = tuple(spec[1] for spec in _SPEC.values() if spec[1] is not None)
"""Every ``MLOTEL_*`` variable mlotel reads."""


class ConfigureOptions(TypedDict, total=False):
    """The settings ``mlotel.configure()`` and ``mlotel.testing.capture_telemetry()``
    take as keyword arguments (every field of :class:`Settings` but the environment-only
    ones); None or absent: from the environment, else the default."""

    service_name: str | None
    exporter: str | None
    otlp_endpoint: str | None
    otlp_protocol: str | None
    prometheus: bool | None
    prometheus_host: str | None
    prometheus_port: int | None
    local_sink: str | None
    output_dir: str | None
    output_max_bytes: int | None
    payload_enabled: bool | None
    payload_sample_rate: float | None
    payload_max_bytes: int | None
    payload_location: str | None
    payload_redact: Iterable[str] | str | None
    payload_allow: Iterable[str] | str | None
    record_exception_messages: bool | str | None
    max_classes: int | None
    max_models: int | None
    max_features: int | None
    max_operations: int | None
    max_error_types: int | None
    flush_interval: float | None
    buffer_size: int | None
    shutdown_timeout: float | None
    metric_export_interval: float | None
    outcome_store_size: int | None
    outcome_ttl: float | None
    outcome_window_size: int | None
    outcome_window_seconds: float | None
    outcome_min_samples: int | None
    outcome_log: str | None
    performance_estimate: bool | None
    disabled: bool | None
    set_global: bool | None


def setting_from_env(name: str, environ: Mapping[str, str] | None = None) -> Any:
    """One setting read from the environment alone (its default when unset).

    >>> setting_from_env("references", {"MLOTEL_REFERENCES": "churn=/m/ref.json"})
    {'churn': '/m/ref.json'}
    >>> setting_from_env("disabled_instrumentations", {})
    frozenset()
    """
    env = os.environ if environ is None else environ
    parse, mlotel_var, otel_vars = _SPEC[name]
    for var in (mlotel_var, *otel_vars):
        if var is None:
            continue
        raw = env.get(var)
        if raw is not None and raw.strip() != "":
            return parse(var, raw)
    default = next(f for f in fields(Settings) if f.name == name)
    if callable(default.default_factory):
        return default.default_factory()
    return default.default

_OTLP_ENDPOINT_VARS = (
    "OTEL_EXPORTER_OTLP_ENDPOINT",
    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
    "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT",
    "OTEL_EXPORTER_OTLP_LOGS_ENDPOINT",
)


def resolve_settings(
    overrides: Mapping[str, Any] | None = None, environ: Mapping[str, str] | None = None
) -> Settings:
    """Resolve settings from keyword overrides, then the environment, then defaults.

    >>> resolve_settings({"payload_sample_rate": 0.5}, environ={}).payload_sample_rate
    0.5
    >>> resolve_settings(environ={"MLOTEL_PROMETHEUS_PORT": "9100"}).prometheus_port
    9100
    """
    env = os.environ if environ is None else environ
    overrides = dict(overrides or {})
    known = {f.name for f in fields(Settings)}
    unknown = sorted(set(overrides) - known)
    if unknown:
        raise ConfigError(f"unknown setting(s): {', '.join(unknown)}")
    values: dict[str, Any] = {}
    for name, (parse, mlotel_var, otel_vars) in _SPEC.items():
        if overrides.get(name) is not None:
            values[name] = parse(name, overrides[name])
            continue
        for var in (mlotel_var, *otel_vars):
            if var is None:
                continue
            raw = env.get(var)
            if raw is not None and raw.strip() != "":
                values[name] = parse(var, raw)
                break
    values["_explicit_exporter"] = any(
        overrides.get(name) is not None or env.get(_SPEC[name][1] or "", "").strip()
        for name in ("exporter", "local_sink")
    )
    if values.get("exporter", "auto") == "auto":
        otlp_wanted = values.get("otlp_endpoint") is not None or any(
            env.get(var, "").strip() for var in _OTLP_ENDPOINT_VARS
        )
        values["exporter"] = "otlp" if otlp_wanted else "embedded"
    if "metric_export_interval" not in values and env.get("OTEL_METRIC_EXPORT_INTERVAL", ""):
        values["metric_export_interval"] = _millis_to_seconds(
            "OTEL_METRIC_EXPORT_INTERVAL", env["OTEL_METRIC_EXPORT_INTERVAL"]
        )
    return Settings(**values)
