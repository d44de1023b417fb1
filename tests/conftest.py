"""Shared fixtures: isolate mlotel's process state between tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from mlotel import _lifecycle
from mlotel._self_telemetry import tally


@pytest.fixture(autouse=True)
def _isolated_mlotel(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    # A lazily configured runtime must never take port 9464 or write into the checkout.
    monkeypatch.setenv("MLOTEL_PROMETHEUS_PORT", "0")
    monkeypatch.setenv("MLOTEL_OUTPUT_DIR", str(tmp_path / "telemetry"))
    monkeypatch.setenv("MLOTEL_SET_GLOBAL", "false")
    for var in ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_SDK_DISABLED", "OTEL_SERVICE_NAME"):
        monkeypatch.delenv(var, raising=False)
    before = _lifecycle.current
    tally.reset()
    yield
    after = _lifecycle.current
    if after is not before and after is not None:
        after.shutdown(timeout=2.0)
    _lifecycle.install(before)
