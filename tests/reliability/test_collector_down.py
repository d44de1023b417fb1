"""The collector is unreachable: predictions are unaffected and shutdown/exit stay bounded.

The OTLP exporters point at a closed loopback port (connection refused), so
every export fails and the exporters retry with backoff. These are bound
checks of behaviour, not benchmarks: the margins are generous.
"""

from __future__ import annotations

import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

import mlotel
from support.prometheus_server import free_port
from support.scripts import json_lines, run_script

PROTOCOLS = ["http/protobuf", "grpc"]
CALLS = 1_000
SHUTDOWN_TIMEOUT = 2.0
MARGIN = 4.0  # scheduling slack on a slow, loaded 2-core machine


def _closed_endpoint() -> str:
    # free_port() binds and closes: nothing listens there afterwards.
    return f"http://127.0.0.1:{free_port()}"


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_predictions_unaffected_and_shutdown_bounded(protocol: str) -> None:
    mlotel.configure(
        exporter="otlp",
        otlp_endpoint=_closed_endpoint(),
        otlp_protocol=protocol,
        set_global=False,
        metric_export_interval=0.2,  # metric exports are failing/retrying all along
    )
    finished: bool | None = None
    elapsed = float("inf")
    try:

        @mlotel.instrument(model_name="down", model_version="1")
        def predict(rows: np.ndarray) -> np.ndarray:
            return rows[:, 0] * 2.0 + 1.0

        started = time.monotonic()
        for i in range(CALLS):
            rows = np.array([[float(i), 0.5]])
            result = predict(rows)
            assert result.tolist() == [2.0 * i + 1.0]
        calls_elapsed = time.monotonic() - started
        # Exports happen off the caller's thread: 1,000 calls never wait on a dead collector
        # (each failed export retries for seconds; even a few on the hot path would show).
        assert calls_elapsed < 30.0, calls_elapsed
    finally:
        t0 = time.monotonic()
        finished = mlotel.shutdown(timeout=SHUTDOWN_TIMEOUT)
        elapsed = time.monotonic() - t0
    assert elapsed < SHUTDOWN_TIMEOUT + MARGIN, f"shutdown took {elapsed:.2f}s"
    assert isinstance(finished, bool)

    # After shutdown, calls pass straight through.
    @mlotel.instrument(model_name="after")
    def after(rows: list[float]) -> list[float]:
        return rows

    payload = [1.0, 2.0]
    assert after(payload) is payload


_EXIT_SCRIPT = textwrap.dedent(
    """
    import json, sys, time
    import numpy as np
    import mlotel

    endpoint, protocol, mode, calls = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    mlotel.configure(
        exporter="otlp",
        otlp_endpoint=endpoint,
        otlp_protocol=protocol,
        set_global=False,
        metric_export_interval=0.2,
        shutdown_timeout=2.0,
    )

    @mlotel.instrument(model_name="down-exit")
    def predict(rows):
        return rows.sum(axis=1)

    for i in range(calls):
        out = predict(np.array([[float(i), 1.0]]))
        assert out.tolist() == [i + 1.0], out
    time.sleep(0.5)  # let exports start failing and retrying
    marker = {"calls_done": time.monotonic()}
    if mode == "explicit":
        t0 = time.monotonic()
        marker["finished"] = mlotel.shutdown(timeout=2.0)
        marker["shutdown_s"] = time.monotonic() - t0
    print(json.dumps(marker), flush=True)
    # mode == "atexit": mlotel's atexit hook is the only shutdown
    """
)


@pytest.mark.parametrize("mode", ["explicit", "atexit"])
@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_process_exits_promptly_with_collector_down(
    protocol: str, mode: str, tmp_path: Path
) -> None:
    """shutdown_timeout bounds how long a process lingers at exit, not just shutdown()."""
    proc = run_script(
        _EXIT_SCRIPT,
        tmp_path,
        _closed_endpoint(),
        protocol,
        mode,
        str(CALLS),
        name="exit_with_collector_down.py",
    )
    exited = time.monotonic()  # CLOCK_MONOTONIC is system-wide on Linux
    assert proc.returncode == 0, proc.stderr[-4000:]
    markers = json_lines(proc.stdout)
    assert markers, proc.stdout + proc.stderr[-4000:]
    marker = markers[-1]
    if mode == "explicit":
        assert marker["shutdown_s"] < SHUTDOWN_TIMEOUT + MARGIN
    lingered = exited - marker["calls_done"]
    assert lingered < SHUTDOWN_TIMEOUT + MARGIN, (
        f"process took {lingered:.1f}s to exit after its last call with shutdown_timeout=2 "
        f"({mode}, {protocol})\n{proc.stderr[-2000:]}"
    )


_APP_EXIT_SCRIPT = textwrap.dedent(
    """
    import importlib, json, sys, time
    import numpy as np
    from opentelemetry import metrics, trace
    from opentelemetry.sdk._logs import LoggerProvider
    from opentelemetry.sdk._logs.export import BatchLogRecordProcessor
    from opentelemetry._logs import set_logger_provider
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    endpoint, protocol, mode, timeout = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])
    kind = "grpc" if protocol == "grpc" else "http"

    def exporter(signal, name):
        module = importlib.import_module(f"opentelemetry.exporter.otlp.proto.{kind}.{signal}")
        path = {"trace_exporter": "/v1/traces", "metric_exporter": "/v1/metrics",
                "_log_exporter": "/v1/logs"}[signal]
        return getattr(module, name)(endpoint=endpoint if kind == "grpc" else endpoint + path)

    # The application's own providers (as opentelemetry-instrument would set them up),
    # with the SDK's default atexit shutdown.
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(
        BatchSpanProcessor(exporter("trace_exporter", "OTLPSpanExporter"))
    )
    trace.set_tracer_provider(tracer_provider)
    logger_provider = LoggerProvider()
    logger_provider.add_log_record_processor(
        BatchLogRecordProcessor(exporter("_log_exporter", "OTLPLogExporter"))
    )
    set_logger_provider(logger_provider)
    reader = PeriodicExportingMetricReader(
        exporter("metric_exporter", "OTLPMetricExporter"), export_interval_millis=200
    )
    metrics.set_meter_provider(MeterProvider(metric_readers=[reader]))

    import mlotel
    mlotel.configure(shutdown_timeout=timeout)

    @mlotel.instrument(model_name="app-providers")
    def predict(rows):
        return rows.sum(axis=1)

    for i in range(200):
        out = predict(np.array([[float(i), 1.0]]))
        assert out.tolist() == [i + 1.0], out
    time.sleep(0.5)  # let exports start failing and retrying
    marker = {"calls_done": time.monotonic()}
    if mode == "explicit":
        t0 = time.monotonic()
        marker["finished"] = mlotel.shutdown()
        marker["shutdown_s"] = time.monotonic() - t0
    print(json.dumps(marker), flush=True)
    """
)


@pytest.mark.parametrize("mode", ["explicit", "atexit"])
@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_exit_with_the_applications_providers_is_bounded_once(
    protocol: str, mode: str, tmp_path: Path
) -> None:
    """Issue 13, item 13: with the application's own providers (their SDK atexit hooks
    wait out exporter retries), shutdown() and process exit share one shutdown_timeout,
    not one each (before: 2 + 5.4 s explicit, 22 s at exit, for a 2 s timeout)."""
    timeout = 1.0
    proc = run_script(
        _APP_EXIT_SCRIPT,
        tmp_path,
        _closed_endpoint(),
        protocol,
        mode,
        str(timeout),
        name="app_providers_exit.py",
    )
    exited = time.monotonic()
    assert proc.returncode == 0, proc.stderr[-4000:]
    markers = json_lines(proc.stdout)
    assert markers, proc.stdout + proc.stderr[-4000:]
    marker = markers[-1]
    if mode == "explicit":
        assert marker["finished"] is False  # the collector is down: it did not finish
        assert marker["shutdown_s"] < timeout + 1.0
    lingered = exited - marker["calls_done"]
    assert lingered < timeout + 3.0, (
        f"process took {lingered:.1f}s to exit after its last call with shutdown_timeout="
        f"{timeout} ({mode}, {protocol})\n{proc.stderr[-2000:]}"
    )
    assert "shutdown can only be called once" not in proc.stderr
