"""The embedded default's local sink: OTLP-JSON lines files, bounded by rotation."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import mlotel
from mlotel._sinks import JsonLinesFile


def test_files_sink_writes_otlp_json_with_hex_ids(tmp_path: Path) -> None:
    out = tmp_path / "telemetry"
    cfg = mlotel.configure(
        exporter="embedded", prometheus=False, output_dir=str(out), set_global=False
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
        local_sink="files", prometheus=False, output_dir=str(explicit), set_global=False
    )
    mlotel.instrument(lambda x: [0], model_name="loud")([[1.0]])
    assert mlotel.shutdown()
    assert (explicit / "logs.jsonl").exists()
