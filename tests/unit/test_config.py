"""Settings resolution order, validation messages, and the configuration doc."""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path

import pytest

from mlotel._config import (
    ENV_ONLY_SETTINGS,
    ENV_VARS,
    ConfigError,
    ConfigureOptions,
    Settings,
    resolve_settings,
)

DOC = Path(__file__).resolve().parents[2] / "docs" / "configuration.md"


def test_kwargs_beat_mlotel_env_beat_otel_env_beat_defaults() -> None:
    env = {"MLOTEL_SERVICE_NAME": "from-mlotel", "OTEL_SERVICE_NAME": "from-otel"}
    assert resolve_settings({"service_name": "kw"}, env).service_name == "kw"
    assert resolve_settings({}, env).service_name == "from-mlotel"
    assert resolve_settings({}, {"OTEL_SERVICE_NAME": "from-otel"}).service_name == "from-otel"
    assert resolve_settings({}, {}).service_name is None


def test_exporter_auto_follows_otlp_endpoint() -> None:
    assert resolve_settings({}, {}).exporter == "embedded"
    otlp = resolve_settings({}, {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"})
    assert otlp.exporter == "otlp"
    assert not otlp.prometheus_enabled and otlp.sink == "none"
    embedded = resolve_settings({}, {})
    assert embedded.prometheus_enabled and embedded.sink == "files"
    assert embedded.prometheus_host == "127.0.0.1" and embedded.prometheus_port == 9464
    grpc = resolve_settings({}, {"OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"})
    assert grpc.otlp_protocol == "grpc"
    assert resolve_settings({}, {}).otlp_protocol == "http/protobuf"


def test_log_volume_defaults() -> None:
    # Production-affordable (docs/configuration.md#log-volume-what-the-defaults-cost):
    # one call in ten logs its payload, and only those calls' outcomes are logged.
    defaults = resolve_settings({}, {})
    assert defaults.payload_sample_rate == 0.1
    assert defaults.outcome_log == "sampled"
    every = resolve_settings({}, {"MLOTEL_PAYLOAD_SAMPLE_RATE": "1", "MLOTEL_OUTCOME_LOG": "ALL"})
    assert every.payload_sample_rate == 1.0 and every.outcome_log == "all"


def test_otel_sdk_disabled_and_metric_interval() -> None:
    assert resolve_settings({}, {"OTEL_SDK_DISABLED": "true"}).disabled
    interval = resolve_settings({}, {"OTEL_METRIC_EXPORT_INTERVAL": "1500"})
    assert interval.metric_export_interval == 1.5


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"MLOTEL_PAYLOAD_SAMPLE_RATE": "2"}, "MLOTEL_PAYLOAD_SAMPLE_RATE='2' must be between"),
        ({"MLOTEL_PROMETHEUS_PORT": "http"}, "MLOTEL_PROMETHEUS_PORT='http' is not an integer"),
        ({"MLOTEL_EXPORTER": "kafka"}, "MLOTEL_EXPORTER='kafka' must be one of"),
        ({"OTEL_SDK_DISABLED": "maybe"}, "OTEL_SDK_DISABLED='maybe' is not a boolean"),
        ({"MLOTEL_OUTCOME_LOG": "some"}, "MLOTEL_OUTCOME_LOG='some' must be one of"),
    ],
)
def test_bad_values_name_the_setting(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("(", r"\(")):
        resolve_settings({}, env)


def test_unknown_keyword_is_rejected() -> None:
    with pytest.raises(ConfigError, match="unknown setting"):
        resolve_settings({"sample_rate": 1.0}, {})


def test_lists_parse_from_env_and_kwargs() -> None:
    s = resolve_settings({}, {"MLOTEL_PAYLOAD_REDACT": "ssn, email ,"})
    assert s.payload_redact == frozenset({"ssn", "email"})
    assert resolve_settings({"payload_allow": ["a"]}, {}).payload_allow == frozenset({"a"})


def test_every_setting_and_variable_is_documented() -> None:
    text = DOC.read_text()
    for f in fields(Settings):
        if not f.name.startswith("_"):
            assert f"| `{f.name}` |" in text, f.name
    for var in ENV_VARS:
        assert f"`{var}`" in text, var


def test_configure_types_every_setting_but_the_environment_only_ones() -> None:
    configurable = {f.name for f in fields(Settings) if not f.name.startswith("_")}
    assert set(ConfigureOptions.__annotations__) == configurable - ENV_ONLY_SETTINGS


def test_environment_only_settings_parse_through_the_table() -> None:
    env = {
        "OTEL_TRACES_EXPORTER": "OTLP,console",
        "MLOTEL_REFERENCES": "churn=/m/churn.json, fraud=/m/fraud.json",
        "OTEL_PYTHON_DISABLED_INSTRUMENTATIONS": "sklearn,torch",
    }
    settings = resolve_settings({}, env)
    assert settings.traces_exporter == frozenset({"otlp", "console"})
    assert settings.references == {"churn": "/m/churn.json", "fraud": "/m/fraud.json"}
    assert settings.disabled_instrumentations == frozenset({"sklearn", "torch"})
    assert settings.signal_exporters("traces") == frozenset({"otlp", "console"})
    explicit = resolve_settings({"exporter": "none"}, env)
    assert explicit.signal_exporters("traces") is None  # an explicit exporter wins
    with pytest.raises(ConfigError, match="MLOTEL_REFERENCES: expected MODEL=PATH"):
        resolve_settings({}, {"MLOTEL_REFERENCES": "churn"})


def test_configure_rejects_bad_values_with_clear_error() -> None:
    import mlotel

    with pytest.raises(ConfigError, match="max_classes"):
        mlotel.configure(max_classes=0, exporter="none")


def test_lazy_configuration_error_never_breaks_predict(monkeypatch: pytest.MonkeyPatch) -> None:
    import mlotel
    from mlotel import _lifecycle

    monkeypatch.setenv("MLOTEL_PAYLOAD_SAMPLE_RATE", "lots")
    _lifecycle.install(None)
    predict = mlotel.instrument(lambda x: x * 2, model_name="lazy")
    assert predict(21) == 42
    runtime = _lifecycle.current
    assert runtime is not None and runtime.disabled


def test_per_signal_otlp_endpoints_reach_the_exporters(monkeypatch: pytest.MonkeyPatch) -> None:
    import mlotel
    from mlotel import _lifecycle

    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4318")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://127.0.0.1:4999/v1/traces")
    mlotel.configure(set_global=False)
    runtime = _lifecycle.current
    assert runtime is not None and runtime.settings.exporter == "otlp"
    processor = runtime.tracer_provider._active_span_processor._span_processors[0]
    exporter = processor._batch_processor._exporter
    assert exporter._endpoint == "http://127.0.0.1:4999/v1/traces"
    mlotel.shutdown(timeout=0.5)


def test_lazy_default_configuration_is_the_embedded_default() -> None:
    import json
    import os
    import urllib.request
    from pathlib import Path

    import mlotel
    from mlotel import _lifecycle

    _lifecycle.install(None)
    predict = mlotel.instrument(lambda x: [1], model_name="lazy-ok")
    assert predict([[1.0]]) == [1]  # no configure() call anywhere
    runtime = _lifecycle.current
    assert runtime is not None and not runtime.disabled
    assert runtime.settings.exporter == "embedded"
    assert runtime.prometheus_address is not None
    host, port = runtime.prometheus_address
    assert host == "127.0.0.1"
    with urllib.request.urlopen(f"http://{host}:{port}/metrics", timeout=5) as response:
        assert "ml_inference_duration_seconds_count{" in response.read().decode()
    assert mlotel.shutdown()
    traces = Path(os.environ["MLOTEL_OUTPUT_DIR"]) / "traces.jsonl"
    assert json.loads(traces.read_text().splitlines()[0])["resourceSpans"]


@pytest.mark.parametrize(
    ("variable", "value"),
    [("MLOTEL_PROMETHEUS_PORT", "99999"), ("OTEL_EXPORTER_PROMETHEUS_PORT", "70000")],
)
def test_out_of_range_prometheus_port_is_a_config_error_and_lazy_mode_says_so(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, variable: str, value: str
) -> None:
    """Issue 13, item 12: validated at parse time (ConfigError naming the variable), never
    an OverflowError from the socket; in lazy mode predict goes on and telemetry is off."""
    import logging

    import mlotel
    from mlotel import _lifecycle

    monkeypatch.delenv("MLOTEL_PROMETHEUS_PORT", raising=False)
    monkeypatch.setenv(variable, value)
    monkeypatch.setenv("MLOTEL_EXPORTER", "embedded")
    with pytest.raises(ConfigError, match=f"{variable}='{value}' must be a TCP port"):
        mlotel.configure()
    with pytest.raises(ConfigError, match="prometheus_port=99999 must be a TCP port"):
        mlotel.configure(prometheus_port=99999, exporter="none")
    _lifecycle.install(None)
    with caplog.at_level(logging.ERROR, logger="mlotel"):
        predict = mlotel.instrument(lambda x: x * 2, model_name="bad-port")
        assert predict(21) == 42
        assert predict(4) == 8
    runtime = _lifecycle.current
    assert runtime is not None and runtime.disabled
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1, errors  # logged once, not per call
    assert "telemetry is disabled" in errors[0] and f"{variable}='{value}'" in errors[0]
