"""`mlotel demo` end to end, as a user runs it: a subprocess on the embedded default."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest


def _demo(
    cwd: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """`mlotel demo ARGS` as a user runs it, on any free port."""
    return subprocess.run(
        [sys.executable, "-m", "mlotel.cli", "demo", "--port", "0", *args],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=cwd,
        env=env,
    )


def test_demo_serves_metrics_and_writes_spans_and_logs(tmp_path: Path) -> None:
    out = tmp_path / "telemetry"
    proc = _demo(tmp_path, "--duration", "4", "--report-every", "1", "--output-dir", str(out))
    assert proc.returncode == 0, proc.stderr
    text = proc.stdout
    assert re.search(r"metrics \(Prometheus\): http://127\.0\.0\.1:\d+/metrics", text)
    reports = re.findall(
        r"calls made\s+(\d+) \(model errors\s+(\d+)\).*inferences\s+(\d+)\D.*\n"
        r"\s+error ratio\s+([\d.]+)% \| class shares (.*) \| mean top score ([\d.]+)",
        text,
    )
    assert reports, text
    made, errors, exported = map(int, reports[-1][:3])
    assert made > 0 and exported == made  # every call reached the endpoint, none twice
    assert float(reports[-1][3]) == pytest.approx(100.0 * errors / made, abs=0.01)
    assert "0: " in reports[-1][4] and "1: " in reports[-1][4]
    assert 0.5 <= float(reports[-1][5]) <= 1.0
    # The labelled stream: accuracy read back from ml_model_performance falls after the
    # degradation injected at the midpoint; the label-free estimate is published too.
    accuracy = [float(a) for a in re.findall(r"accuracy \(last 300 labels\) ([\d.]+)", text)]
    assert accuracy and max(accuracy) > 0.9, text
    assert accuracy[-1] < 0.85, text
    assert re.search(r"estimated accuracy \(no labels\) 0\.\d+", text), text
    spans = [json.loads(line) for line in (out / "traces.jsonl").read_text().splitlines()]
    names = {
        s["name"]
        for req in spans
        for rs in req["resourceSpans"]
        for ss in rs["scopeSpans"]
        for s in ss["spans"]
    }
    assert names <= {"predict breast-cancer", "predict_proba breast-cancer"} and names
    assert (out / "logs.jsonl").stat().st_size > 0


def test_version_command() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "mlotel.cli", "version"], capture_output=True, text=True, timeout=60
    )
    assert json.loads(proc.stdout)["mlotel"]


def test_demo_exports_to_a_collector_when_an_endpoint_is_set(tmp_path: Path) -> None:
    import os

    from support.otlp_receiver import OTLPReceiver

    with OTLPReceiver() as rx:
        env = {**os.environ, "OTEL_EXPORTER_OTLP_ENDPOINT": rx.http_endpoint}
        proc = _demo(tmp_path, "--duration", "2", "--output-dir", str(tmp_path / "never"), env=env)
        assert proc.returncode == 0, proc.stderr
        assert "OTLP to OTEL_EXPORTER_OTLP_ENDPOINT" in proc.stdout
        assert rx.wait_for(lambda: rx.spans() and rx.logs() and rx.metrics())
        resource, span = rx.spans()[0]
        assert resource["service.name"] == "mlotel-demo"
        assert span.name.endswith("breast-cancer")
    assert not (tmp_path / "never").exists()
