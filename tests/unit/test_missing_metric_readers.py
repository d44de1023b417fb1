"""A meter provider without metric readers: a warning when nobody asked for that, a debug
line when the user chose no metrics exporter (OTEL_METRICS_EXPORTER=none)."""

from __future__ import annotations

import logging

import pytest
from opentelemetry.sdk.metrics import MeterProvider

import mlotel

MESSAGE = "MeterProvider (MeterProvider)"


@pytest.mark.parametrize(("variable", "level"), [(None, logging.WARNING), ("none", logging.DEBUG)])
def test_missing_readers_warn_unless_no_exporter_was_chosen(
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    variable: str | None,
    level: int,
) -> None:
    if variable is None:
        monkeypatch.delenv("OTEL_METRICS_EXPORTER", raising=False)
    else:
        monkeypatch.setenv("OTEL_METRICS_EXPORTER", variable)
    provider = MeterProvider()  # no readers: mlotel's metrics have nowhere to go
    with caplog.at_level(logging.DEBUG, logger="mlotel"):
        mlotel.configure(meter_provider=provider, exporter="none", set_global=False)
    mlotel.shutdown()
    provider.shutdown()
    found = [r for r in caplog.records if MESSAGE in r.getMessage()]
    assert [r.levelno for r in found] == [level], [r.getMessage() for r in caplog.records]
