"""Every ```python block of the README and docs/*.md runs exactly as printed.

Each file's blocks run in order in a fresh process (tests/support/doc_examples.py, whose
docstring lists the names the examples take as given: ``train_df``, ``model``,
``X_train``...), then a few checks per file read the results. A block that cannot run
on its own is marked in its fence (```` ```python no-run ````, still highlighted as
Python) and must be listed in NOT_RUN with the reason.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from support.scripts import run_python

ROOT = Path(__file__).resolve().parents[2]
FILES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
RUNNER = ROOT / "tests" / "support" / "doc_examples.py"
FENCE = re.compile(r"^```([^\n]*)\n(.*?)^```[ \t]*$", re.MULTILINE | re.DOTALL)

NOT_RUN: dict[tuple[str, str], str] = {}
"""(file, first line of the block) -> why it is not run. Keep this empty or justified."""

CHECKS: dict[str, list[str]] = {
    # The drift snippet keeps the label out of the features, and the model it returns
    # monitors the inputs it gets: the runner fails on any mlotel warning, so a label
    # profiled as a feature ("absent from every input") would fail this file.
    "README.md": [
        "reference['churned'].role == 'target'",
        "set(reference.feature_names) >= set(X_train.columns)",
        "len(ids) == len(X)",
    ],
    "docs/drift.md": ["Profile.load('reference.json')['churned'].role == 'target'"],
    "docs/drift-report.md": [
        "result.column('age').drift_detected",
        "monitored.performance.task == 'classification'",
        "monitored.performance.positive_label == '1'",
        "monitored.target_drift.name == 'churned' and 'churned' not in result.columns[0].name",
    ],
    "docs/outcomes.md": ["metrics['matched'] == len(outcomes) == 40", "len(ids) == len(batch)"],
    "docs/testing.md": [],
    "docs/integrations.md": [],
}


def _blocks(path: Path) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """(runnable, marked no-run) python blocks of a file, as (name, code)."""
    text = path.read_text()
    run: list[tuple[str, str]] = []
    skipped: list[tuple[str, str]] = []
    for match in FENCE.finditer(text):
        info = match.group(1).split()
        if not info or info[0] != "python":
            continue
        line = text.count("\n", 0, match.start()) + 2  # the block's first code line
        name = f"{path.relative_to(ROOT)}:{line}"
        code = match.group(2)
        if info[1:] == ["no-run"]:
            skipped.append((name, code))
        else:
            assert info == ["python"], f"{name}: unknown fence info {match.group(1)!r}"
            run.append((name, code))
    return run, skipped


def test_every_file_with_python_blocks_is_checked() -> None:
    with_blocks = {str(p.relative_to(ROOT)) for p in FILES if _blocks(p)[0]}
    assert with_blocks == set(CHECKS)


def test_not_run_blocks_are_few_and_justified() -> None:
    marked = {
        (name.split(":")[0], code.strip().splitlines()[0])
        for path in FILES
        for name, code in _blocks(path)[1]
    }
    assert marked == set(NOT_RUN)
    assert all(reason.strip() for reason in NOT_RUN.values())


@pytest.mark.parametrize("relative", sorted(CHECKS))
def test_doc_examples_run_as_printed(relative: str, tmp_path: Path) -> None:
    blocks, _ = _blocks(ROOT / relative)
    spec = tmp_path / "blocks.json"
    spec.write_text(json.dumps({"blocks": blocks, "checks": CHECKS[relative]}))
    work = tmp_path / "work"
    work.mkdir()
    proc = run_python(
        RUNNER,
        str(spec),
        cwd=work,
        timeout=240,
        MLOTEL_PROMETHEUS_PORT="0",  # never the default 9464 of a running service
    )
    assert proc.returncode == 0, proc.stderr[-6000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["blocks"] == len(blocks) > 0
    assert result["checks"] == [True] * len(CHECKS[relative]), CHECKS[relative]
    assert result["warnings"] == []
    if relative == "docs/testing.md":
        assert result["tests"] == ["test_my_service_reports_predictions"]
