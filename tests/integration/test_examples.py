"""The runnable examples run, and produce what their docstrings promise."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from support.file_sink import file_spans

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def test_batch_job(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, str(EXAMPLES / "batch_job.py"), "--output-dir", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert "scored 1780 rows" in proc.stdout
    spans = [span for _, span in file_spans(tmp_path, "traces.jsonl")]
    assert len(spans) == 7  # ceil(1780 / 256) calls
    sizes = sorted(
        int(a["value"]["intValue"])
        for s in spans
        for a in s["attributes"]
        if a["key"] == "ml.batch.size"
    )
    assert sizes == [244] + [256] * 6


def test_sklearn_service(tmp_path: Path) -> None:
    env = {"MLOTEL_PROMETHEUS_PORT": "0", "MLOTEL_OUTPUT_DIR": str(tmp_path), "PATH": ""}
    proc = subprocess.Popen(
        [sys.executable, str(EXAMPLES / "sklearn_service.py"), "--port", "0", "--duration", "20"],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        match = re.search(r"http://127\.0\.0\.1:(\d+)/predict; metrics at (\S+)", line)
        assert match, line
        url = f"http://127.0.0.1:{match.group(1)}/predict"
        body = json.dumps({"rows": [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]]}).encode()
        with urllib.request.urlopen(urllib.request.Request(url, body), timeout=10) as r:
            assert json.loads(r.read())["predictions"] == [0, 2]
        deadline = time.monotonic() + 10
        text = ""
        while time.monotonic() < deadline and "ml_predictions_total" not in text:
            with urllib.request.urlopen(match.group(2), timeout=5) as r:
                text = r.read().decode()
        assert "ml_predictions_total{" in text and 'ml_prediction_class="2"' in text
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_dask_drift_report(tmp_path: Path) -> None:
    import pytest

    pytest.importorskip("dask.dataframe", reason="the test extra installs dask")
    proc = subprocess.run(
        [sys.executable, str(EXAMPLES / "dask_drift_report.py"), "--output-dir", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert proc.returncode == 0, proc.stderr
    assert "dask report: 1 of 3 columns drifted (same as mlotel report)" in proc.stdout
