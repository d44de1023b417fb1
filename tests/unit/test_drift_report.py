"""The offline drift report on awkward data: every case gets a clear per-column status or a
clear error, the dataset verdict counts only tested columns, JSON keys are stable."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mlotel.drift import DriftReport, report, write_report

RNG = np.random.default_rng(7)
TOP_KEYS = {
    "schema",
    "mlotel_version",
    "method",
    "false_alarm_rate",
    "reference_rows",
    "current_rows",
    "dataset_drift",
    "drift_share",
    "drift_share_threshold",
    "number_of_columns",
    "number_of_tested_columns",
    "number_of_drifted_columns",
    "columns",
    "column_mapping",
    "target_drift",
    "prediction_drift",
    "score_drift",
    "performance",
}
COLUMN_KEYS = {
    "column_type",
    "status",
    "message",
    "stattest",
    "stattest_display_name",
    "score",
    "score_error_bound",
    "drift_rule",
    "threshold",
    "drift_detected",
    "reference_size",
    "current_size",
    "data_quality",
    "distribution",
}
QUALITY_KEYS = {
    "reference",
    "current",
    "new_categories",
    "new_category_count",
    "new_category_share",
    "out_of_range_share",
}
SIDE_KEYS = {
    "rows",
    "missing",
    "missing_share",
    "non_finite",
    "distinct",
    "min",
    "max",
    "mean",
    "std",
    "quantiles",
    "constant",
    "top",
    "top_share",
}


def frames(rows: int = 400) -> tuple[pd.DataFrame, pd.DataFrame]:
    ref = pd.DataFrame(
        {
            "age": RNG.normal(40, 10, rows),
            "income": RNG.lognormal(10, 1, rows),
            "plan": RNG.choice(["basic", "pro", "team"], rows),
            "churned": RNG.choice([0, 1], rows),
        }
    )
    cur = pd.DataFrame(
        {
            "age": RNG.normal(48, 10, rows),
            "income": RNG.lognormal(10, 1, rows),
            "plan": RNG.choice(["basic", "pro", "team", "enterprise"], rows),
            "churned": RNG.choice([0, 1], rows),
        }
    )
    return ref, cur


def json_round_trip(result: DriftReport) -> dict[str, object]:
    data = json.loads(result.to_json())  # allow_nan=False: raises on NaN/Infinity
    assert set(data) == TOP_KEYS
    for column in data["columns"].values():
        assert set(column) == COLUMN_KEYS
        if column["data_quality"] is not None:
            assert set(column["data_quality"]) == QUALITY_KEYS
            for side in ("reference", "current"):
                if column["data_quality"][side] is not None:
                    assert set(column["data_quality"][side]) == SIDE_KEYS
    return data


def test_typical_report_types_columns_and_finds_the_drift() -> None:
    ref, cur = frames()
    result = report(ref, cur)
    by_name = {c.name: c for c in result.columns}
    assert {n: c.column_type for n, c in by_name.items()} == {
        "age": "numerical",
        "income": "numerical",
        "plan": "categorical",
        "churned": "categorical",  # ints with <= 10 values, as Evidently 0.7
    }
    assert {n: c.stattest for n, c in by_name.items()} == {
        "age": "ks",
        "income": "ks",
        "plan": "chisquare",
        "churned": "z",
    }
    assert by_name["age"].drift_detected and by_name["plan"].drift_detected
    assert by_name["plan"].quality is not None
    assert by_name["plan"].quality.new_categories == ("enterprise",)
    assert by_name["plan"].quality.new_category_share == pytest.approx(
        float(np.mean(cur["plan"] == "enterprise"))
    )
    data = json_round_trip(result)
    assert data["number_of_tested_columns"] == 4
    assert data["columns"]["age"]["data_quality"]["reference"]["min"] == pytest.approx(
        ref["age"].min()
    )


def test_dataset_drifts_when_half_the_tested_columns_drift() -> None:
    base = pd.DataFrame({f"c{i}": RNG.normal(0, 1, 300) for i in range(4)})
    cur = base.copy()
    cur["c0"] += 3.0
    one = report(base, cur)
    assert (one.number_of_drifted_columns, one.dataset_drift) == (1, False)
    cur["c1"] += 3.0
    two = report(base, cur)
    assert (two.number_of_drifted_columns, two.drift_share, two.dataset_drift) == (2, 0.5, True)
    assert report(base, cur, drift_share=0.75).dataset_drift is False


def test_all_nan_and_empty_columns_get_empty_statuses() -> None:
    ref, cur = frames(200)
    ref["blank"] = np.nan  # an empty CSV column reads as all-NaN floats
    cur["blank"] = RNG.normal(0, 1, 200)
    cur["age"] = np.nan
    ref["notes"] = None
    cur["notes"] = None
    result = report(ref, cur)
    assert result.column("blank").status == "empty_reference"
    assert result.column("age").status == "empty_current"
    assert result.column("age").quality.current.missing_share == 1.0  # type: ignore[union-attr]
    assert result.column("notes").status == "empty_reference"
    assert "no" in (result.column("blank").message or "")
    assert result.number_of_tested_columns == 3  # income, plan, churned
    json_round_trip(result)


def test_infinite_values_are_dropped_and_counted() -> None:
    ref = pd.DataFrame({"x": [*RNG.normal(0, 1, 300), np.inf, -np.inf]})
    cur = pd.DataFrame({"x": [*RNG.normal(0, 1, 300), np.nan]})
    column = report(ref, cur).column("x")
    assert (column.status, column.reference_size, column.current_size) == ("tested", 300, 300)
    assert column.quality is not None and column.quality.reference is not None
    assert column.quality.reference.non_finite == 2
    assert column.quality.current is not None and column.quality.current.missing == 1


def test_single_value_columns_are_tested_and_flagged_constant() -> None:
    small = report(pd.DataFrame({"k": [3.0] * 50}), pd.DataFrame({"k": [3.0] * 40})).column("k")
    assert (small.status, small.stattest, small.score, small.drift_detected) == (
        "tested",
        "z",
        1.0,
        False,
    )
    assert small.quality is not None and small.quality.reference is not None
    assert small.quality.reference.constant
    large = report(pd.DataFrame({"k": ["a"] * 2000}), pd.DataFrame({"k": ["a"] * 5})).column("k")
    assert (large.stattest, large.score, large.drift_detected) == ("jensenshannon", 0.0, False)
    moved = report(pd.DataFrame({"k": [1.0] * 50}), pd.DataFrame({"k": [2.0] * 50})).column("k")
    assert moved.drift_detected and moved.score is not None and moved.score < 1e-9


def test_mismatched_columns_are_reported_and_not_counted() -> None:
    ref, cur = frames(200)
    ref["only_ref"] = 1.5
    cur["only_cur"] = "x"
    cur = cur.drop(columns=["income"])
    result = report(ref, cur)
    assert result.column("only_ref").status == "missing_in_current"
    assert result.column("income").status == "missing_in_current"
    assert result.column("only_cur").status == "missing_in_reference"
    assert "not in the current data" in (result.column("income").message or "")
    assert result.number_of_tested_columns == 3
    assert [c.name for c in result.columns][-1] == "only_cur"


def test_zero_row_current_data_gives_empty_statuses_and_no_verdict() -> None:
    ref, _ = frames(200)
    result = report(ref, ref.iloc[0:0])
    assert {c.status for c in result.columns} == {"empty_current"}
    assert (result.drift_share, result.dataset_drift, result.current_rows) == (None, False, 0)
    data = json_round_trip(result)
    assert data["drift_share"] is None
    page = result.to_html()
    assert "No column could be tested" in page


def test_type_mismatch_and_text_columns_get_statuses() -> None:
    ref = pd.DataFrame({"n": RNG.normal(0, 1, 100), "comment": [f"note {i}" for i in range(100)]})
    cur = pd.DataFrame({"n": ["oops"] * 100, "comment": [f"other {i}" for i in range(100)]})
    result = report(ref, cur)
    assert result.column("n").status == "type_mismatch"
    assert "'oops'" in (result.column("n").message or "")
    assert result.column("comment").status == "unsupported_type"
    assert result.column("comment").column_type == "text"
    forced = report(ref, cur, categorical=["comment"]).column("comment")
    assert (forced.status, forced.column_type) == ("tested", "categorical")


def test_selected_tests_and_thresholds_per_column() -> None:
    ref, cur = frames(3000)
    result = report(
        ref,
        cur,
        stattests={"age": "psi", "income": "jensenshannon", "plan": "ks"},
        thresholds={"age": 10.0},
    )
    age = result.column("age")
    assert (age.stattest, age.threshold, age.drift_detected) == ("psi", 10.0, False)
    assert result.column("income").stattest == "jensenshannon"
    assert result.column("plan").status == "test_not_applicable"
    with pytest.raises(ValueError, match="unknown drift test"):
        report(ref, cur, stattests={"age": "nope"})


def test_bad_arguments_raise_clear_errors() -> None:
    ref, cur = frames(50)
    with pytest.raises(TypeError, match="reference must be a pandas DataFrame"):
        report([1, 2], cur)
    with pytest.raises(ValueError, match="neither the reference nor current"):
        report(ref, cur, columns=["age", "zzz"])
    with pytest.raises(ValueError, match="drift_share"):
        report(ref, cur, drift_share=0.0)


def test_progress_and_threads_do_not_change_the_result() -> None:
    ref, cur = frames(1500)
    seen: list[tuple[int, int, str]] = []
    threaded = report(ref, cur, workers=4, progress=lambda *a: seen.append(a))
    single = report(ref, cur, workers=1)
    assert threaded.to_dict() == single.to_dict()
    assert seen == [(i + 1, 4, name) for i, name in enumerate(ref.columns)]


def test_write_report_writes_html_and_json(tmp_path: Path) -> None:
    ref, cur = frames(300)
    result = write_report(ref, cur, tmp_path / "r.html", tmp_path / "r.json")
    assert json.loads((tmp_path / "r.json").read_text()) == json.loads(result.to_json())
    page = (tmp_path / "r.html").read_text()
    assert page.count('class="dist-plot"') == 4
    assert "<script" not in page and "http://" not in page.replace(
        'xmlns="http://www.w3.org/2000/svg"', ""
    )


def test_missing_report_extra_names_the_extra() -> None:
    code = (
        "import sys; sys.modules['scipy'] = None\n"
        "import pandas as pd\n"
        "from mlotel.drift import report\n"
        "try:\n"
        "    report(pd.DataFrame({'a': [1.0]}), pd.DataFrame({'a': [1.0]}))\n"
        "except ImportError as exc:\n"
        "    print(exc)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert "pip install 'mlotel[report]'" in out.stdout, out.stderr


def test_options_naming_an_absent_column_are_an_error() -> None:
    frame = pd.DataFrame({"x": [1.0, 2.0, 3.0] * 10})
    with pytest.raises(ValueError, match=r"stattests names column\(s\) \['nosuch'\]"):
        report(frame, frame, stattests={"nosuch": "psi"})
    with pytest.raises(ValueError, match=r"categorical names column\(s\) \['y'\]"):
        report(frame, frame, categorical=["y"])


def test_calibrated_method_is_an_option_and_says_so() -> None:
    rng = np.random.default_rng(21)
    letters = ["a", "b"]
    reference = pd.DataFrame(
        {"x": rng.normal(size=5000), "y": rng.normal(size=5000), "c": rng.choice(letters, 5000)}
    )
    current = pd.DataFrame(
        {"x": rng.normal(0.3, 1, 2000), "y": rng.normal(size=2000), "c": rng.choice(letters, 2000)}
    )
    default = report(reference, current)
    assert default.method == "evidently" and default.false_alarm_rate is None
    assert default.column("x").stattest == "wasserstein"  # Evidently's default is kept
    result = report(reference, current, method="calibrated")
    data = json.loads(result.to_json())
    assert data["method"] == "calibrated" and data["false_alarm_rate"] == 0.01
    x, y = result.column("x"), result.column("y")
    assert x.stattest == "calibrated" and x.drift_detected and x.score <= 0.01
    assert not y.drift_detected and y.score > 0.01 and y.threshold == 0.01
    assert result.dataset_drift  # any column
    html = result.to_html()
    assert "decision: mlotel calibrated tests, false-alarm rate 0.01" in html
    default_html = default.to_html()
    assert "decision: one test per column (listed below)" in default_html
    assert "Evidently 0.7 DataDriftPreset&#x27;s tests at their default thresholds" in default_html
    with pytest.raises(ValueError, match="method must be one of evidently, calibrated"):
        report(reference, current, method="fancy")
