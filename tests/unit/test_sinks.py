"""The embedded default's local sink: OTLP-JSON lines files, bounded by rotation."""

from __future__ import annotations

import json
import logging
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace.export import SpanExportResult

import mlotel
from mlotel._otel_logs import LogExportResult
from mlotel._self_telemetry import tally
from mlotel._sinks import JsonLinesFile, JsonLinesLogExporter, JsonLinesSpanExporter

SINK_COMPONENT = "sink.files"  # mlotel.internal.errors{mlotel.component} of a failed write


def test_files_sink_writes_otlp_json_with_hex_ids(tmp_path: Path) -> None:
    out = tmp_path / "telemetry"
    cfg = mlotel.configure(
        exporter="embedded",
        prometheus=False,
        output_dir=str(out),
        set_global=False,
        payload_sample_rate=1.0,  # this call's record is read below
    )
    assert cfg.output_dir == str(out)
    predict = mlotel.instrument(lambda x: np.array([0]), model_name="filesink")
    predict(np.array([[1.0, 2.0]]))
    assert mlotel.shutdown()
    traces = [json.loads(line) for line in (out / "traces.jsonl").read_text().splitlines()]
    logs = [json.loads(line) for line in (out / "logs.jsonl").read_text().splitlines()]
    span = traces[0]["resourceSpans"][0]["scopeSpans"][0]["spans"][0]
    record = logs[0]["resourceLogs"][0]["scopeLogs"][0]["logRecords"][0]
    assert span["name"] == "predict filesink"
    assert len(span["traceId"]) == 32 and int(span["traceId"], 16)
    assert record["traceId"] == span["traceId"] and record["spanId"] == span["spanId"]
    assert record["eventName"] == "ml.prediction"
    body = record["body"]["kvlistValue"]["values"]
    features = next(a for a in body if a["key"] == "ml.features")
    keys = [kv["key"] for kv in features["value"]["kvlistValue"]["values"]]
    assert keys == ["f0", "f1"]


def test_rotation_bounds_disk_use(tmp_path: Path) -> None:
    sink = JsonLinesFile(tmp_path / "x.jsonl", max_bytes=2048)
    for _ in range(100):
        sink.write("x" * 100)
    assert (tmp_path / "x.jsonl").stat().st_size <= 2048
    assert (tmp_path / "x.jsonl.1").stat().st_size <= 2048


def test_signal_exporter_variables(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_LOGS_EXPORTER", "none")
    out = tmp_path / "telemetry"
    mlotel.configure(prometheus=False, output_dir=str(out), set_global=False)
    mlotel.instrument(lambda x: [0], model_name="quiet")([[1.0]])
    assert mlotel.shutdown()
    assert (out / "traces.jsonl").exists()
    assert not (out / "logs.jsonl").exists()
    # an explicit exporter/sink choice wins over the generic OTel variables
    explicit = tmp_path / "explicit"
    mlotel.configure(
        local_sink="files",
        prometheus=False,
        output_dir=str(explicit),
        set_global=False,
        payload_sample_rate=1.0,
    )
    mlotel.instrument(lambda x: [0], model_name="loud")([[1.0]])
    assert mlotel.shutdown()
    assert (explicit / "logs.jsonl").exists()


# --- privacy: payload files are the user's alone, whatever the umask (issue 13, item 5) ---


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture()
def permissive_umask() -> Iterator[None]:
    previous = os.umask(0o000)  # the worst case: without care, files come out 0666
    try:
        yield
    finally:
        os.umask(previous)


@pytest.mark.usefixtures("permissive_umask")
def test_payload_files_and_created_directories_are_private(tmp_path: Path) -> None:
    out = tmp_path / "new-parent" / "telemetry"
    mlotel.configure(
        exporter="embedded",
        prometheus=False,
        output_dir=str(out),
        set_global=False,
        payload_sample_rate=1.0,
    )
    mlotel.instrument(lambda x: np.array([0]), model_name="private")(np.array([[1.0, 2.0]]))
    assert mlotel.shutdown()
    assert "ml.features" in (out / "logs.jsonl").read_text()
    assert _mode(out / "traces.jsonl") == 0o600
    assert _mode(out / "logs.jsonl") == 0o600
    assert _mode(out) == 0o700
    assert _mode(out.parent) == 0o700  # a missing parent the sink created, too


@pytest.mark.usefixtures("permissive_umask")
def test_rotated_and_pre_existing_files_become_private(tmp_path: Path) -> None:
    tmp_path.chmod(0o755)
    appended = tmp_path / "appended.jsonl"
    appended.write_text("left 0644 by an older version\n")
    appended.chmod(0o644)
    JsonLinesFile(appended, max_bytes=2048).write("y" * 100)
    assert _mode(appended) == 0o600
    # A full 0644 file is rotated by the first write: the backup is private too.
    full = tmp_path / "full.jsonl"
    full.write_text("z" * 2000)
    full.chmod(0o644)
    JsonLinesFile(full, max_bytes=2048).write("y" * 100)
    assert _mode(tmp_path / "full.jsonl.1") == 0o600 and _mode(full) == 0o600
    # Files the sink creates and rotates itself.
    sink = JsonLinesFile(tmp_path / "x.jsonl", max_bytes=2048)
    for _ in range(40):
        sink.write("x" * 100)
    assert _mode(tmp_path / "x.jsonl") == 0o600
    assert _mode(tmp_path / "x.jsonl.1") == 0o600
    assert _mode(tmp_path) == 0o755  # an existing directory is the user's: left as it is


# --- an unwritable output_dir is counted and logged once, not lost silently (item 10) ---


def _internal_errors(reader: InMemoryMetricReader, component: str) -> float:
    data = reader.get_metrics_data()
    total = 0.0
    for resource in data.resource_metrics if data else []:
        for scope in resource.scope_metrics:
            for metric in scope.metrics:
                if metric.name != "mlotel.internal.errors":
                    continue
                for point in metric.data.data_points:
                    if dict(point.attributes or {}).get("mlotel.component") == component:
                        total += point.value
    return total


def test_unwritable_output_dir_is_counted_and_logged_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # A regular file where the directory should be: unwritable even for root.
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("")
    out = blocker / "telemetry"
    reader = InMemoryMetricReader()
    mlotel.configure(
        exporter="embedded",
        prometheus=False,
        output_dir=str(out),
        metric_readers=[reader],
        set_global=False,
        payload_sample_rate=1.0,  # every call writes a log batch
    )
    predict = mlotel.instrument(lambda x: np.array([0]), model_name="nowhere")
    with caplog.at_level(logging.WARNING, logger="mlotel"):
        assert predict(np.array([[1.0]])).tolist() == [0]  # the call is unaffected
        mlotel.force_flush()
        first = tally.errors[SINK_COMPONENT]
        assert first >= 2  # the span batch and the log batch
        for _ in range(3):
            predict(np.array([[1.0]]))
            mlotel.force_flush()
        assert tally.errors[SINK_COMPONENT] >= first + 2
        assert _internal_errors(reader, SINK_COMPONENT) == tally.errors[SINK_COMPONENT]
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1, [r.getMessage() for r in warnings]
    assert SINK_COMPONENT in warnings[0].getMessage()
    logged = caplog.text
    assert str(out) in logged and "MLOTEL_OUTPUT_DIR" in logged
    mlotel.shutdown()


def test_exporters_return_failure_for_a_failed_write(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    spans = JsonLinesSpanExporter(blocker / "traces.jsonl", max_bytes=1024)
    assert spans.export([]) is SpanExportResult.FAILURE
    log_records = JsonLinesLogExporter(blocker / "logs.jsonl", max_bytes=1024)
    assert log_records.export([]) is LogExportResult.FAILURE
    assert tally.errors[SINK_COMPONENT] == 2
