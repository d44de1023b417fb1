"""Process and configuration lifecycle: fork, reconfigure, exit order, resource identity."""

from __future__ import annotations

import os
import subprocess
import threading
import time
from pathlib import Path

import pytest
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

import mlotel
from mlotel import _lifecycle
from support.scripts import run_script


def _run(script: str, tmp_path: Path, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    return run_script(
        script,
        tmp_path,
        timeout=timeout,
        MLOTEL_OUTPUT_DIR=str(tmp_path / "telemetry"),
        MLOTEL_PAYLOAD_SAMPLE_RATE="1",  # the scripts count every call's log record
    )


def test_forked_child_can_configure_and_exit_without_predicting(tmp_path: Path) -> None:
    proc = _run(
        """
        import os, sys, time
        import mlotel
        mlotel.configure(exporter="embedded", prometheus_port=0)
        mlotel.instrument(lambda x: [1], model_name="m")([[1.0]])
        pid = os.fork()
        if pid == 0:  # the documented post-fork hook: configure again in the worker
            started = time.monotonic()
            cfg = mlotel.configure(exporter="embedded", prometheus_port=0)
            mlotel.instrument(lambda x: [1], model_name="m")([[1.0]])
            print("child", cfg.metrics_url is not None, round(time.monotonic() - started, 1))
            sys.exit(0)  # atexit runs mlotel.shutdown in the child
        second = os.fork()
        if second == 0:
            sys.exit(0)  # a worker that never predicted
        for child in (pid, second):
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and os.waitpid(child, os.WNOHANG) == (0, 0):
                time.sleep(0.05)
        print("parent done")
        """,
        tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    assert "child True" in proc.stdout
    assert "parent done" in proc.stdout


def test_calls_in_flight_during_reconfigure_are_kept() -> None:
    first, second = InMemoryMetricReader(), InMemoryMetricReader()
    mlotel.configure(exporter="none", metric_readers=[first], set_global=False)

    @mlotel.instrument(model_name="slow")
    def predict(x: object) -> list[int]:
        time.sleep(0.3)
        return [1]

    threads = [threading.Thread(target=predict, args=([[1.0]],)) for _ in range(5)]
    for t in threads:
        t.start()
    time.sleep(0.1)
    mlotel.configure(exporter="none", metric_readers=[second], set_global=False)
    for t in threads:
        t.join()
    mlotel.force_flush()
    assert _duration_count(first) + _duration_count(second) == 5
    mlotel.shutdown()


def _duration_count(reader: InMemoryMetricReader) -> int:
    data = reader.get_metrics_data()
    return sum(
        p.count
        for rm in (data.resource_metrics if data else [])
        for sm in rm.scope_metrics
        for m in sm.metrics
        if m.name == "ml.inference.duration"
        for p in m.data.data_points
    )


def test_global_providers_stay_alive_after_reconfigure(tmp_path: Path) -> None:
    proc = _run(
        """
        from opentelemetry import trace, metrics
        import mlotel
        mlotel.instrument(lambda x: [1], model_name="m")([[1.0]])  # lazy: sets globals
        first = trace.get_tracer_provider()
        mlotel.configure(service_name="api", exporter="none")
        alive = trace.get_tracer_provider() is first and not first._active_span_processor \\
            ._span_processors[0]._batch_processor._shutdown
        print("global alive", alive, "meter alive", not metrics.get_meter_provider()._shutdown)
        """,
        tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    assert "global alive True meter alive True" in proc.stdout
    assert "cannot be replaced" in proc.stderr


def test_app_providers_set_after_import_still_get_the_last_calls(tmp_path: Path) -> None:
    proc = _run(
        """
        import mlotel  # registers mlotel's atexit first
        from opentelemetry import _logs
        from opentelemetry.sdk._logs import LoggerProvider
        from opentelemetry.sdk._logs.export import SimpleLogRecordProcessor, LogRecordExporter

        class Print(LogRecordExporter):
            def export(self, batch):
                print("EXPORTED", len(batch))
            def shutdown(self):
                pass
            def force_flush(self, timeout_millis=0):
                return True

        provider = LoggerProvider()
        provider.add_log_record_processor(SimpleLogRecordProcessor(Print()))
        _logs.set_logger_provider(provider)  # the SDK's atexit now runs before mlotel's
        predict = mlotel.instrument(lambda x: [1], model_name="m")
        for _ in range(3):
            predict([[1.0]])
        """,
        tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.count("EXPORTED") >= 1
    exported = sum(int(line.split()[1]) for line in proc.stdout.splitlines())
    assert exported == 3


def test_app_providers_still_export_at_exit_when_the_collector_is_up(tmp_path: Path) -> None:
    """mlotel takes over the exit shutdown of the application's providers (issue 13,
    item 13): with a reachable collector their last telemetry, including what the app
    emitted after mlotel.shutdown(), still goes out at exit."""
    from support.otlp_receiver import OTLPReceiver

    with OTLPReceiver() as receiver:
        proc = _run(
            f"""
            from opentelemetry import metrics, trace
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
            from opentelemetry.sdk.metrics import MeterProvider
            from opentelemetry.sdk.trace import TracerProvider
            from opentelemetry.sdk.trace.export import BatchSpanProcessor

            provider = TracerProvider()
            provider.add_span_processor(BatchSpanProcessor(
                OTLPSpanExporter(endpoint="{receiver.http_endpoint}/v1/traces"),
                schedule_delay_millis=60_000,  # nothing leaves before exit
            ))
            trace.set_tracer_provider(provider)
            metrics.set_meter_provider(MeterProvider())
            import mlotel
            mlotel.configure(shutdown_timeout=5.0, exporter="none")
            predict = mlotel.instrument(lambda x: [1], model_name="m")
            predict([[1.0]])
            assert mlotel.shutdown() is True
            with trace.get_tracer("app").start_as_current_span("after mlotel"):
                pass
            """,
            tmp_path,
        )
        assert proc.returncode == 0, proc.stderr
        names = sorted(span.name for _, span in receiver.spans())
    assert names == ["after mlotel", "predict m"], proc.stderr[-2000:]


def test_resource_attributes_from_env_win(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_RESOURCE_ATTRIBUTES", "service.instance.id=pod-abc,team=ml")
    mlotel.configure(service_name="churn", exporter="none", set_global=False)
    runtime = _lifecycle.current
    assert runtime is not None
    attrs = runtime.resource.attributes
    assert attrs["service.instance.id"] == "pod-abc"
    assert attrs["team"] == "ml"
    assert attrs["service.name"] == "churn"
    assert attrs["process.pid"] == os.getpid()
    mlotel.shutdown()


def test_forked_workers_write_their_own_files(tmp_path: Path) -> None:
    proc = _run(
        """
        import os, sys
        import mlotel
        mlotel.configure(exporter="embedded", prometheus=False)
        predict = mlotel.instrument(lambda x: [1], model_name="m")
        predict([[1.0]])
        pid = os.fork()
        if pid == 0:
            predict([[2.0]])
            mlotel.shutdown()
            print("child", os.getpid(), flush=True)
            os._exit(0)
        os.waitpid(pid, 0)
        mlotel.shutdown()
        """,
        tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    child = proc.stdout.split()[1]
    out = tmp_path / "telemetry"
    assert (out / "traces.jsonl").read_text().count("predict m") == 1
    assert (out / f"traces.{child}.jsonl").read_text().count("predict m") == 1
    assert (out / f"logs.{child}.jsonl").exists()


def test_third_configure_builds_its_own_providers(tmp_path: Path) -> None:
    proc = _run(
        """
        import tempfile
        from opentelemetry import trace
        import mlotel
        dirs = [tempfile.mkdtemp() for _ in range(3)]
        providers = []
        from mlotel import _lifecycle
        for d in dirs:
            mlotel.configure(exporter="embedded", prometheus=False, output_dir=d)
            providers.append(_lifecycle.current.tracer_provider)
            mlotel.instrument(lambda x: [1], model_name="m")([[1.0]])
        mlotel.shutdown()
        import os
        print("distinct", len({id(p) for p in providers}) == 3)
        print("files", [sorted(os.listdir(d)) for d in dirs])
        """,
        tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    assert "distinct True" in proc.stdout
    assert proc.stdout.count("'traces.jsonl'") == 3
