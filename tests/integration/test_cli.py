"""The ``mlotel`` command's conventions (docs/cli.md), one test per point, run through the
installed console script as a user runs it."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from importlib.metadata import version
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mlotel.cli import build_parser
from mlotel.drift import Profile

DOCS = Path(__file__).resolve().parents[2] / "docs"
EXIT_CODES = {"0", "1", "2", "130", "141"}


def _script() -> str:
    """The ``mlotel`` console script of this interpreter's environment."""
    found = shutil.which("mlotel", path=str(Path(sys.executable).parent))
    assert found, "the mlotel console script is installed with the package (pip install -e .)"
    return found


def mlotel(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [_script(), *args], capture_output=True, text=True, timeout=120, cwd=cwd
    )


@pytest.fixture
def frames(tmp_path: Path) -> tuple[Path, Path]:
    """Reference and current CSVs: 'bmi' shifted (300 rows: the K-S test), 'sex' a small
    categorical, 'label' the target, 90 % ones in the current data (half before)."""
    rng = np.random.default_rng(5)
    n = 300
    ref = pd.DataFrame(
        {
            "age": rng.normal(50, 10, n),
            "bmi": rng.normal(26, 4, n),
            "sex": rng.choice([1, 2], n),
            "label": rng.integers(0, 2, n),
        }
    )
    cur = ref.assign(bmi=ref["bmi"] + 6.0, label=(rng.random(n) < 0.9).astype(int))
    paths = tmp_path / "ref.csv", tmp_path / "cur.csv"
    ref.to_csv(paths[0], index=False)
    cur.to_csv(paths[1], index=False)
    return paths


def _help_sections(text: str) -> list[str]:
    return re.findall(r"^(\w[\w ]*):$", text, flags=re.MULTILINE)


def test_help_is_clean_text_with_examples_and_exit_codes() -> None:
    proc = mlotel("--help")
    assert proc.returncode == 0 and proc.stderr == ""
    text = proc.stdout
    assert "``" not in text and ":func:" not in text  # no reST markup
    description = text.split("\n\n")[1]
    assert description.startswith("OpenTelemetry-native") and description.endswith(".")
    assert {"options", "commands", "examples", "exit codes"} <= set(_help_sections(text))
    for command in ("demo", "profile", "report", "version"):
        assert re.search(rf"^\s+{command}\s+\w", text, flags=re.MULTILINE), command
    codes = set(re.findall(r"^  (\d+) ", text.split("exit codes:")[1], flags=re.MULTILINE))
    assert codes == EXIT_CODES
    for command in ("demo", "profile", "report"):
        sub = mlotel(command, "--help")
        assert sub.returncode == 0, sub.stderr
        assert "``" not in sub.stdout
        assert {"examples", "exit codes"} <= set(_help_sections(sub.stdout)), command
        examples = sub.stdout.split("examples:")[1].split("exit codes:")[0]
        assert f"mlotel {command}" in examples


def test_version_option() -> None:
    proc = mlotel("--version")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == f"mlotel {version('mlotel')}\n"
    assert json.loads(mlotel("version").stdout) == {"mlotel": version("mlotel")}


def test_options_never_swallow_positionals(tmp_path: Path, frames: tuple[Path, Path]) -> None:
    ref, _ = frames
    out = tmp_path / "out.json"
    proc = mlotel("profile", "--categorical", "sex", str(ref), "-o", str(out))
    assert proc.returncode == 0, proc.stderr
    profile = Profile.load(out)
    assert profile["sex"].kind == "categorical" and profile["age"].kind == "numeric"
    # A comma list and a repeated option say the same.
    proc = mlotel(
        "profile", "--categorical", "sex,label", "--numerical", "age", str(ref), "-o", str(out)
    )
    assert proc.returncode == 0, proc.stderr
    assert Profile.load(out)["label"].kind == "categorical"
    args = build_parser().parse_args(
        ["profile", "--categorical", "sex", "--categorical", "label", "x.csv", "-o", "o.json"]
    )
    assert args.categorical == ["sex", "label"] and args.data == ["x.csv"]


def test_same_column_option_names_in_every_command(
    tmp_path: Path, frames: tuple[Path, Path]
) -> None:
    parser = build_parser()
    for argv in (
        ["profile", "d.csv", "-o", "o.json"],
        ["report", "--reference", "a.csv", "--current", "b.csv"],
    ):
        options = ["--numerical", "a,b", "--categorical", "c", "--target", "t"]
        args = parser.parse_args([*argv, *options])
        assert (args.numerical, args.categorical, args.target) == (["a", "b"], ["c"], "t")
    # The earlier name still works, hidden from the help, and says it is deprecated.
    ref, _ = frames
    out = tmp_path / "out.json"
    proc = mlotel("profile", str(ref), "-o", str(out), "--numeric", "sex")
    assert proc.returncode == 0, proc.stderr
    assert "--numeric is deprecated, use --numerical" in proc.stderr
    assert Profile.load(out)["sex"].kind == "numeric"
    assert "--numeric " not in mlotel("profile", "--help").stdout


def test_closed_pipe_ends_quietly_with_code_141(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    wide = pd.DataFrame(rng.normal(size=(200, 150)), columns=[f"c{i}" for i in range(150)])
    wide.to_csv(tmp_path / "wide.csv", index=False)
    proc = subprocess.Popen(
        [_script(), "report", "--reference", "wide.csv", "--current", "wide.csv", "--json", "-"],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert proc.stdout is not None and proc.stderr is not None
    head = proc.stdout.read(200)  # what `| head -c 200` reads, then the reader goes away
    proc.stdout.close()
    try:
        stderr = proc.stderr.read().decode()
        code = proc.wait(timeout=120)
    finally:
        proc.kill()
    assert head.startswith(b"{")
    assert stderr == ""  # no "Broken pipe", no traceback
    assert code == 141


def test_drifted_column_says_its_score_is_a_p_value(frames: tuple[Path, Path]) -> None:
    ref, cur = frames
    proc = mlotel("report", "--reference", str(ref), "--current", str(cur))
    assert proc.returncode == 0, proc.stderr
    line = re.search(r"drift: bmi \((.*)\)", proc.stdout)
    assert line, proc.stdout
    assert re.fullmatch(r"ks p-value \S+ <= 0\.05", line.group(1)), line.group(1)
    assert float(line.group(1).split()[2]) < 1e-10


def test_report_target_threshold_and_drift_share(
    tmp_path: Path, frames: tuple[Path, Path]
) -> None:
    ref, cur = frames
    out = tmp_path / "drift.json"
    base = ["report", "--reference", str(ref), "--current", str(cur), "--json", str(out)]
    # Without --target the flipped label is tested as a feature, and drifts.
    assert mlotel(*base).returncode == 0
    plain = json.loads(out.read_text())
    assert plain["columns"]["label"]["drift_detected"] is True
    assert plain["number_of_drifted_columns"] == 2 and plain["dataset_drift"] is True
    proc = mlotel(
        *base, "--target", "label", "--threshold", "0.01", "--threshold", "age=0.5",
        "--drift-share", "0.4",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    report = json.loads(out.read_text())
    assert "label" not in report["columns"]
    assert "target column 'label': not tested as a feature" in proc.stdout
    assert report["columns"]["bmi"]["threshold"] == 0.01
    assert report["columns"]["age"]["threshold"] == 0.5
    assert report["drift_share_threshold"] == 0.4
    assert report["number_of_tested_columns"] == 3
    assert report["number_of_drifted_columns"] == 1 and report["dataset_drift"] is False
    bad = mlotel(*base, "--target", "nope")
    assert bad.returncode == 2 and "--target: no column named 'nope'" in bad.stderr
    bad = mlotel(*base, "--drift-share", "1.5")
    assert bad.returncode == 2 and "expected a share in (0, 1]" in bad.stderr


def test_exit_codes_are_documented_and_ctrl_c_gives_130(tmp_path: Path) -> None:
    table = (DOCS / "cli.md").read_text().split("## Exit codes")[1]
    assert set(re.findall(r"^\| (\d+) \|", table, flags=re.MULTILINE)) == EXIT_CODES
    assert mlotel("report", "--reference", "missing.csv", "--current", "x.csv").returncode == 2
    assert mlotel("no-such-command").returncode == 2
    proc = subprocess.Popen(
        [_script(), "demo", "--port", "0", "--duration", "60", "--output-dir", "t"],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    assert proc.stdout is not None
    try:
        deadline = time.monotonic() + 60
        for line in proc.stdout:  # wait until the traffic runs
            if "serving synthetic traffic" in line or time.monotonic() > deadline:
                break
        proc.send_signal(signal.SIGINT)
        _, stderr = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 130
    assert "Traceback" not in stderr and "mlotel: interrupted" in stderr


def test_report_column_mapping_options_and_file(tmp_path: Path) -> None:
    """--target/--prediction/--score (or --mapping FILE) add target and prediction drift
    and a performance section; a bad mapping is one line and exit code 2."""
    from sklearn.metrics import accuracy_score, roc_auc_score

    rng = np.random.default_rng(9)
    paths = []
    for name, shift in (("ref", 0.0), ("cur", 1.0)):
        x = rng.normal(shift, 1, 600)
        score = 1 / (1 + np.exp(-(x + rng.normal(0, 1, 600))))
        frame = pd.DataFrame({"x": x, "y": (rng.random(600) < 1 / (1 + np.exp(-x))).astype(int),
                              "pred": (score > 0.5).astype(int), "proba": score})  # fmt: skip
        frame.to_csv(tmp_path / f"{name}.csv", index=False)
        paths.append((tmp_path / f"{name}.csv", frame))
    (ref, ref_frame), (cur, cur_frame) = paths
    base = ["report", "--reference", str(ref), "--current", str(cur)]
    proc = mlotel(*base, "--target", "y", "--prediction", "pred", "--score", "proba",
                  "--json", str(tmp_path / "r.json"))  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    for role, column in (("target", "y"), ("prediction", "pred"), ("score", "proba")):
        assert f"{role} column {column!r}: not tested as a feature" in proc.stdout
    assert re.search(r"score drift: proba \(drift, ks p-value \S+ <= 0\.05\)", proc.stdout)
    assert re.search(r"target drift: y \((no )?drift, (z|chisquare) p-value", proc.stdout)
    line = re.search(r"performance \(classification, reference -> current\): (.*)", proc.stdout)
    assert line, proc.stdout
    shown = dict(item.split(" ", 1) for item in line.group(1).split(", "))
    assert float(shown["accuracy"].split(" -> ")[0]) == pytest.approx(
        accuracy_score(ref_frame["y"], ref_frame["pred"]), abs=5e-5
    )
    data = json.loads((tmp_path / "r.json").read_text())
    assert list(data["columns"]) == ["x"]
    assert data["performance"]["current"]["metrics"]["roc_auc"] == pytest.approx(
        roc_auc_score(cur_frame["y"], cur_frame["proba"]), rel=1e-12
    )
    # The same mapping from a file; an option given on the command line wins over it.
    (tmp_path / "m.json").write_text('{"target": "y", "prediction": "pred", "score": "x"}')
    proc = mlotel(*base, "--mapping", str(tmp_path / "m.json"), "--score", "proba",
                  "--json", str(tmp_path / "m-out.json"))  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    from_file = json.loads((tmp_path / "m-out.json").read_text())
    assert from_file["performance"] == data["performance"]
    assert from_file["column_mapping"]["score"] == "proba"
    (tmp_path / "bad.json").write_text('{"target": "y", "labels": "pred"}')
    for args, problem in (
        (["--prediction", "nope"], "mlotel report: --prediction: no column named 'nope'"),
        (["--mapping", str(tmp_path / "bad.json")], "unknown key(s) ['labels']"),
        (["--mapping", str(tmp_path / "absent.yaml")], "absent.yaml: no such file"),
        (["--target", "y", "--prediction", "y"], "named in two roles"),
        (["--target", "y", "--prediction", "pred", "--positive-label", "7"],
         "positive_label '7' is not a label"),
    ):  # fmt: skip
        bad = mlotel(*base, *args)
        assert bad.returncode == 2 and problem in bad.stderr, (args, bad.stderr)
        assert "Traceback" not in bad.stderr
