"""`mlotel demo` end to end, as a user runs it: a subprocess on the embedded default."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from support.file_sink import file_spans


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
    proc = _demo(
        tmp_path, "--duration", "4", "--rate", "100", "--report-every", "1",
        "--output-dir", str(out),
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    text = proc.stdout
    assert re.search(r"metrics \(Prometheus\): http://127\.0\.0\.1:\d+/metrics", text)
    # The malformed calls are announced as injected, not left as unexplained errors.
    assert "2% of the calls are malformed on purpose (5 of 30 features)" in text
    reports = re.findall(
        r"calls made\s+(\d+) \(\s*([\d.]+)/s; failed: injected malformed\s+(\d+)\).*"
        r"inferences\s+(\d+)\D.*predicted rows\s+(\d+)\D.*\n"
        r"\s+error ratio\s+([\d.]+)% \(the malformed calls\) \| class shares (.*) \| "
        r"mean top score ([\d.]+)",
        text,
    )
    assert len(reports) >= 2, text
    made, rate, errors, exported, rows = reports[-1][:5]
    assert int(made) > 0 and int(exported) == int(made)  # every call exported, none twice
    assert float(reports[-1][5]) == pytest.approx(100.0 * int(errors) / int(made), abs=0.01)
    assert "0: " in reports[-1][6] and "1: " in reports[-1][6]
    assert 0.5 <= float(reports[-1][7]) <= 1.0
    assert "other failures" not in text  # only the injected calls failed
    # The last status block is printed once: after the periodic ones, at the end.
    assert text.count("at the end (every label delivered):") == 1
    assert text.index("at the end") < text.rindex("calls made")
    counts = [int(r[0]) for r in reports]
    assert counts == sorted(set(counts)), counts  # no block repeated
    # The rate it announces is a target; the rate it states is the one it made.
    assert "at a target of 100 calls/s" in text
    done = re.search(
        r"traffic done: (\d+) calls \((\d+) rows\) in ([\d.]+) s = ([\d.]+) calls/s "
        r"\(target 100 calls/s(; this machine did not keep up)?\)",
        text,
    )
    assert done, text
    calls, served_rows, seconds, achieved = map(float, done.groups()[:4])
    assert calls == int(made) and served_rows == int(rows)  # what the endpoint counted
    assert achieved == pytest.approx(calls / seconds, rel=0.03)  # rounding of the seconds
    assert float(rate) == pytest.approx(achieved, abs=0.1)  # the end block says the same
    assert (done.group(5) is not None) == (achieved < 90)  # short of the target: it says so
    # No hint at an endpoint that closed with the process.
    assert "curl -s" not in text
    assert "run with --serve-after SECONDS" in text
    # The labelled stream: accuracy read back from ml_model_performance falls after the
    # degradation injected at the midpoint; the label-free estimate is published too.
    accuracy = [float(a) for a in re.findall(r"accuracy \(last 300 labels\) ([\d.]+)", text)]
    assert accuracy and max(accuracy) > 0.9, text
    assert accuracy[-1] < 0.85, text
    assert re.search(r"estimated accuracy \(no labels\) 0\.\d+", text), text
    names = {span["name"] for _, span in file_spans(out, "traces.jsonl")}
    assert names <= {"predict breast-cancer", "predict_proba breast-cancer"} and names
    assert (out / "logs.jsonl").stat().st_size > 0


def test_demo_hints_curl_only_while_it_serves(tmp_path: Path) -> None:
    import os
    import signal
    import urllib.request

    proc = subprocess.Popen(
        [sys.executable, "-m", "mlotel.cli", "demo", "--port", "0", "--duration", "1",
         "--serve-after", "60", "--output-dir", str(tmp_path / "t")],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )  # fmt: skip
    assert proc.stdout is not None
    try:
        lines = []
        for line in proc.stdout:
            lines.append(line)
            if "more s (Ctrl-C stops)" in line:
                break
        hint = next((line for line in lines if "curl -s" in line), None)
        assert hint, "".join(lines)
        url = re.search(r"curl -s (\S+)", hint)
        assert url
        with urllib.request.urlopen(url.group(1), timeout=10) as response:  # served now
            assert b"ml_inference_duration_seconds_count" in response.read()
        proc.send_signal(signal.SIGINT)  # Ctrl-C ends the serving time
        proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 0


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
