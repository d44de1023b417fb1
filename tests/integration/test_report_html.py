"""`mlotel report` as a user runs it (a subprocess on CSV files), and its HTML page as a real
browser renders it: headless Chromium loads the file, and the checks read the rendered DOM."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

ROWS = 2000


def _chromium() -> str:
    """The chromium binary, or fail (never skip): scripts/test.sh installs it."""
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        pytest.fail(
            "chromium not found: apt-get install chromium (scripts/test.sh does)", pytrace=False
        )
    return found


def _write_csvs(tmp_path: Path) -> tuple[Path, Path]:
    rng = np.random.default_rng(11)
    ref = pd.DataFrame(
        {
            "age": rng.normal(40, 10, ROWS),
            "balance": rng.lognormal(8, 1, ROWS),
            "tenure": rng.integers(0, 60, ROWS),
            "plan": rng.choice(["basic", "pro", "team"], ROWS),
        }
    )
    cur = pd.DataFrame(
        {
            "age": rng.normal(47, 10, ROWS),
            "balance": rng.lognormal(8, 1, ROWS),
            "tenure": rng.integers(0, 60, ROWS),
            "plan": rng.choice(["basic", "pro", "team", "enterprise"], ROWS),
        }
    )
    ref["legacy"] = 1.0  # only in the reference: a status row, no plot
    paths = tmp_path / "ref.csv", tmp_path / "cur.csv"
    ref.to_csv(paths[0], index=False)
    cur.to_csv(paths[1], index=False)
    return paths


def _mlotel_report(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mlotel.cli", "report", *args],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=cwd,
    )


class _RenderedPage(HTMLParser):
    """Collects the summary table's rows and the plots from a rendered DOM."""

    def __init__(self) -> None:
        super().__init__()
        self.summary_rows: list[str] = []
        self.plots: list[str] = []
        self.bars = 0
        self.scripts = 0
        self._in_summary = False
        self._order: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        if tag == "table" and attributes.get("id") == "drift-summary":
            self._in_summary = True
            self._order.append("summary")
        elif tag == "tr" and self._in_summary and "data-column" in attributes:
            self.summary_rows.append(attributes["data-column"] or "")
        elif tag == "svg" and "dist-plot" in (attributes.get("class") or ""):
            self.plots.append(attributes.get("data-column") or "")
            self._order.append("plot")
        elif tag == "rect" and "bar" in (attributes.get("class") or ""):
            self.bars += 1
        elif tag == "script":
            self.scripts += 1

    def handle_endtag(self, tag: str) -> None:
        if tag == "table":
            self._in_summary = False

    @property
    def summary_first(self) -> bool:
        return bool(self._order) and self._order[0] == "summary"


def _render(chromium: str, page: Path, tmp_path: Path) -> str:
    """The DOM Chromium builds from ``page`` (JavaScript off: the page must not need it)."""
    proc = subprocess.run(
        [
            chromium,
            "--headless",
            "--no-sandbox",  # tests may run as root in CI containers
            "--disable-gpu",
            "--disable-javascript",
            "--no-first-run",
            f"--user-data-dir={tmp_path / 'chromium-profile'}",
            "--dump-dom",
            page.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=90,
        env={**os.environ, "HOME": str(tmp_path)},
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout


def test_cli_report_renders_in_chromium_with_summary_table_and_one_plot_per_feature(
    tmp_path: Path,
) -> None:
    chromium = _chromium()
    ref, cur = _write_csvs(tmp_path)
    html, out_json = tmp_path / "report.html", tmp_path / "report.json"
    proc = _mlotel_report(
        "--reference", str(ref), "--current", str(cur), "--html", str(html), "--json",
        str(out_json), cwd=tmp_path,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""  # not a terminal: no progress output
    assert "drift: age" in proc.stdout and "drift: plan" in proc.stdout
    assert "missing_in_current: column 'legacy'" in proc.stdout

    dom = _render(chromium, html, tmp_path)
    page = _RenderedPage()
    page.feed(dom)
    assert page.summary_rows == ["age", "balance", "tenure", "plan", "legacy"]
    assert page.summary_first
    assert page.plots == ["age", "balance", "tenure", "plan"]  # one per tested feature
    assert page.bars >= 2 * (3 + 4)  # reference + current bars: >= 3 bins / 4 categories
    assert page.scripts == 0

    data = json.loads(out_json.read_text())
    assert data["columns"]["age"]["drift_detected"] is True
    assert data["columns"]["legacy"]["status"] == "missing_in_current"
    assert data["columns"]["tenure"]["stattest"] == "wasserstein"


def test_cli_report_json_to_stdout(tmp_path: Path) -> None:
    ref, cur = _write_csvs(tmp_path)
    proc = _mlotel_report("--reference", str(ref), "--current", str(cur), "--json", "-",
                          cwd=tmp_path)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["number_of_tested_columns"] == 4
    assert json.loads(proc.stdout)["method"] == "evidently"


def test_cli_report_calibrated_method(tmp_path: Path) -> None:
    ref, cur = _write_csvs(tmp_path)
    proc = _mlotel_report("--reference", str(ref), "--current", str(cur), "--method",
                          "calibrated", "--html", "r.html", cwd=tmp_path)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "calibrated decision, false-alarm rate 0.01: any column" in proc.stdout
    assert "drift: age (calibrated " in proc.stdout and "drift: balance" not in proc.stdout
    assert "decision: mlotel calibrated tests" in (tmp_path / "r.html").read_text()


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (None, "no such file"),
        (b"", "the file is empty"),
        (b'a,b\n1,2,3,4\n"unterminated', "not a readable CSV file"),
        (b"\xff\xfe\x00\x01", "not UTF-8 text"),
    ],
)
def test_cli_report_unreadable_csv_is_a_clear_error_not_a_traceback(
    tmp_path: Path, content: bytes | None, problem: str
) -> None:
    _, cur = _write_csvs(tmp_path)
    bad = tmp_path / "bad.csv"
    if content is not None:
        bad.write_bytes(content)
    proc = _mlotel_report("--reference", str(bad), "--current", str(cur), cwd=tmp_path)
    assert proc.returncode == 2
    assert f"mlotel report: --reference {bad}: {problem}" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_cli_report_header_only_current_file_reports_empty_columns(tmp_path: Path) -> None:
    ref, cur = _write_csvs(tmp_path)
    header_only = tmp_path / "header.csv"
    header_only.write_text(cur.read_text().splitlines()[0] + "\n")
    proc = _mlotel_report("--reference", str(ref), "--current", str(header_only), "--json", "-",
                          cwd=tmp_path)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    statuses = {n: c["status"] for n, c in json.loads(proc.stdout)["columns"].items()}
    assert statuses == {
        "age": "empty_current",
        "balance": "empty_current",
        "tenure": "empty_current",
        "plan": "empty_current",
        "legacy": "missing_in_current",
    }


def test_cli_report_shows_progress_only_on_a_terminal(tmp_path: Path) -> None:
    import os
    import pty

    ref, cur = _write_csvs(tmp_path)
    command = [sys.executable, "-m", "mlotel.cli", "report"]
    command += ["--reference", str(ref), "--current", str(cur)]
    leader, follower = pty.openpty()  # stderr is a real terminal for the child
    try:
        proc = subprocess.run(
            command,
            stdout=subprocess.PIPE,
            stderr=follower,
            timeout=120,
            cwd=tmp_path,
        )
        os.close(follower)
        follower = -1
        shown = b""
        while True:  # bounded: the child has exited, the buffer holds all it wrote
            try:
                chunk = os.read(leader, 65536)
            except OSError:  # EIO once the buffer is drained
                break
            if not chunk:
                break
            shown += chunk
    finally:
        if follower != -1:
            os.close(follower)
        os.close(leader)
    assert proc.returncode == 0
    text = shown.decode()
    # CSV files have no row count before reading: rows and rows/s, no percentage.
    assert "mlotel report: pass 1, reference: 2,000 rows, " in text and " rows/s" in text
    assert "column 5/5" in text  # a progress line per column (4 shared + 1 reference-only)
