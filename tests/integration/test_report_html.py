"""`mlotel report` as a user runs it (a subprocess on CSV files), and its HTML page as a real
browser renders it: headless Chromium loads the file, and the checks read the rendered DOM."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from support.chromium import find_chromium

ROWS = 2000


def _chromium() -> str:
    """The chromium binary, or fail (never skip): scripts/test.sh installs it."""
    found = find_chromium()
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
    # Drifted columns first (furthest past the threshold first), then the others in order.
    assert set(page.summary_rows[:2]) == {"age", "plan"}
    assert page.summary_rows[2:] == ["balance", "tenure", "legacy"]
    assert page.summary_first
    assert page.plots == page.summary_rows[:4]  # one per tested feature, same order
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


# --- the page as a reader sees it: layout at desktop and laptop widths ---------------------------

WIDTHS = (1440, 1280)

_MEASURE = """JSON.stringify((() => {
  const root = document.documentElement;
  const main = document.querySelector("main").getBoundingClientRect();
  const box = e => e.getBoundingClientRect();
  const overflowing = [...document.querySelectorAll("body *")]
    .filter(e => box(e).right > root.clientWidth + 0.5 || box(e).left < -0.5)
    .map(e => e.tagName + "." + e.getAttribute("class"));
  const plots = [...document.querySelectorAll("svg.dist-plot")].map(svg => {
    const ticks = [...svg.querySelectorAll("text.tick.x")].map(box)
      .sort((a, b) => a.left - b.left);
    const overlaps = ticks.slice(1).filter((t, i) => t.left < ticks[i].right).length;
    return {
      column: svg.dataset.column,
      width: box(svg).width,
      xTicks: ticks.length,
      groups: svg.querySelectorAll("rect.bar.reference").length,
      categories: svg.querySelector("text.axis-title.x").textContent.endsWith("(category)"),
      yTicks: svg.querySelectorAll("text.tick.y").length,
      overlaps: overlaps,
      titles: [...svg.querySelectorAll("text.axis-title")].map(t => t.textContent),
      tickPx: Math.min(...[...svg.querySelectorAll("text.tick")].map(t =>
        parseFloat(t.getAttribute("font-size")) * box(svg).width / svg.viewBox.baseVal.width)),
      figure: svg.closest("figure").id,
    };
  });
  return {
    scrollWidth: root.scrollWidth, clientWidth: root.clientWidth, main: main.width,
    overflowing: overflowing.slice(0, 5),
    rows: [...document.querySelectorAll("#drift-summary tbody tr")]
      .map(r => [r.dataset.column, r.classList.contains("drifted")]),
    plots: plots,
    stats: [...document.querySelectorAll("figure.feature")].map(f =>
      [f.id, [...f.querySelectorAll("table.stats tbody tr")].map(r => r.dataset.side)]),
    metrics: [...document.querySelectorAll("#performance-metrics tr[data-metric]")]
      .map(r => r.dataset.metric),
    matrices: document.querySelectorAll("table.matrix").length,
    cards: [...document.querySelectorAll("#overview .card .label")].map(e => e.textContent),
    height: root.scrollHeight,
  };
})())"""


def _png_size(path: Path) -> tuple[int, int]:
    header = path.read_bytes()[:24]
    assert header[:8] == b"\x89PNG\r\n\x1a\n"
    return int.from_bytes(header[16:20], "big"), int.from_bytes(header[20:24], "big")


def _scored_parquet(tmp_path: Path) -> tuple[Path, Path]:
    """A scored classifier's reference and current data (Parquet): features (one drifted,
    one log-normal, one categorical with a new category), label, prediction and score."""
    rng = np.random.default_rng(31)
    paths = []
    for name, shift in (("ref", 0.0), ("cur", 0.6)):
        n = 4000
        x = rng.normal(shift, 1.0, n)
        score = 1.0 / (1.0 + np.exp(-(x + rng.normal(0.0, 1.0, n))))
        frame = pd.DataFrame(
            {
                "age": 40 + 10 * x,
                "balance": rng.lognormal(8, 1.2, n),
                "tenure": rng.integers(0, 60, n),
                "plan": rng.choice(["basic", "pro", "team"] + (["enterprise"] if shift else []), n),
                "churned": (rng.random(n) < 1.0 / (1.0 + np.exp(-x))).astype(int),
                "predicted": (score > 0.5).astype(int),
                "probability": score,
            }
        )
        frame.to_parquet(tmp_path / f"{name}.parquet")
        paths.append(tmp_path / f"{name}.parquet")
    return paths[0], paths[1]


def test_monitoring_report_page_in_chromium_at_desktop_and_laptop_widths(
    tmp_path: Path,
) -> None:
    from mlotel.drift._html import render_html
    from support.chromium import Browser

    chromium = _chromium()
    ref, cur = _scored_parquet(tmp_path)
    (tmp_path / "mapping.yaml").write_text(
        "target: churned\nprediction: predicted\nscore: probability\n"
    )
    html, out_json = tmp_path / "report.html", tmp_path / "report.json"
    proc = _mlotel_report(
        "--reference", str(ref), "--current", str(cur), "--mapping", "mapping.yaml",
        "--html", str(html), "--json", str(out_json), cwd=tmp_path,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "performance (classification, reference -> current): accuracy" in proc.stdout
    text = html.read_text()
    # One file rendered from the JSON it came with; nothing to fetch, nothing to run.
    assert text == render_html(json.loads(out_json.read_text()))
    assert "Content-Security-Policy" in text and "default-src 'none'" in text
    assert "<script" not in text and "<link" not in text and "url(" not in text
    assert "http:" not in text.replace('xmlns="http://www.w3.org/2000/svg"', "")
    assert "https:" not in text and "//" not in text.replace("http://www.w3.org/2000/svg", "")

    with Browser(chromium, tmp_path) as browser:
        for width in WIDTHS:
            requests = browser.open(html.as_uri(), width=width)
            assert requests == [html.as_uri()]  # the page itself, no other request
            page = json.loads(browser.evaluate(_MEASURE))
            where = f"at {width} px"
            assert page["scrollWidth"] <= page["clientWidth"] == width, where
            assert page["overflowing"] == [], where
            flags = [drifted for _, drifted in page["rows"]]
            assert flags == sorted(flags, reverse=True) and flags[0], where  # drifted first
            assert page["cards"][:2] == ["Dataset drift", "Decision"], where
            assert {"Target drift", "Prediction drift", "Score drift"} <= set(page["cards"])
            plotted = [p["column"] for p in page["plots"] if p["figure"].startswith("column")]
            assert plotted == [name for name, _ in page["rows"]], where
            roles = {p["figure"]: p["column"] for p in page["plots"]}
            assert roles["target-drift"] == "churned" and roles["score-drift"] == "probability"
            for plot in page["plots"]:
                name = f"{plot['column']} {where}"
                assert plot["width"] >= 0.9 * page["main"] - 80, name  # full width
                # Histograms: at least 3 value ticks; categories: every category labelled.
                ticks = plot["groups"] if plot["categories"] else 3
                assert plot["xTicks"] >= ticks and plot["yTicks"] >= 3, name
                assert plot["overlaps"] == 0, name  # x labels readable, not on each other
                assert plot["tickPx"] >= 12, name  # tick labels of at least 12 px
                assert plot["titles"][1] == "share of rows", name
                assert plot["titles"][0].startswith(plot["column"]), name
            assert all(sides == ["reference", "current"] for _, sides in page["stats"]), where
            assert page["metrics"] == [
                "accuracy", "precision", "recall", "f1", "f1_macro", "log_loss", "roc_auc"
            ]  # fmt: skip
            assert page["matrices"] == 2
            shot = browser.screenshot(tmp_path / f"report-{width}.png", width, 1600)
            assert _png_size(shot) == (width, 1600)
    balance = json.loads(out_json.read_text())["columns"]["balance"]["distribution"]
    assert balance["scale"] == "log"  # log-normal: log-spaced bins, not one full bin


def test_docs_show_a_screenshot_of_the_report() -> None:
    docs = Path(__file__).resolve().parents[2] / "docs"
    assert "](drift-report.png)" in (docs / "drift-report.md").read_text()
    width, height = _png_size(docs / "drift-report.png")
    assert width == 1440 and height >= 900
