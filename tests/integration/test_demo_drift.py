"""`mlotel demo` injects a drift halfway and shows which features drifted."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path


def test_demo_reports_the_injected_drift(tmp_path: Path) -> None:
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "mlotel.cli",
            "demo",
            "--port",
            "0",
            "--duration",
            "4",
            "--report-every",
            "1",
            "--output-dir",
            str(tmp_path / "telemetry"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    injected = re.search(r"drift injected after 50% of the run: (.*) shifted by", proc.stdout)
    assert injected, proc.stdout
    expected = set(injected.group(1).split(", "))
    assert expected == {"mean_radius", "mean_texture", "worst_concavity"}
    reports = re.findall(
        r"drifted features \(PSI >= 0\.2\): (.*) \| dataset drift share (\d+)%", proc.stdout
    )
    assert reports, proc.stdout
    listed, share = reports[-1]  # read back from the demo's own /metrics at the end
    drifted = {item.rsplit(" ", 1)[0] for item in listed.split(", ")}
    assert expected <= drifted, proc.stdout
    # Only the injected features drift (resampling noise alone stays under 0.2 PSI).
    assert len(drifted - expected) <= 1, proc.stdout
    assert int(share) == round(100 * len(drifted) / 30)
    # The offline report of training vs served-after-drift data, written at the end.
    written = re.search(
        r"offline drift report: (\d+) of (\d+) columns drifted \(PSI >= 0\.2\) -> (.*)", proc.stdout
    )
    assert written, proc.stdout
    assert int(written.group(1)) >= len(expected)
    html = Path(written.group(3))
    assert html == tmp_path / "telemetry" / "drift-report.html"
    page = html.read_text()
    assert "<svg" in page
    # The page states the test the demo forced, and claims no Evidently defaults for it.
    assert '<p id="tests" class="muted">Tests: psi ≥ 0.2 (30 columns).</p>' in page
    assert "Evidently" not in page
