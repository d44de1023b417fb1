"""The monitoring report's column mapping: target, prediction and score columns get their own
drift and a performance section equal to sklearn.metrics, the same on DataFrames in memory
and on datasets read in passes (partials merged in any order)."""

from __future__ import annotations

import json
import math
from fractions import Fraction
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn import metrics as skm

from mlotel.drift import (
    ColumnMapping,
    MappingError,
    Partial,
    ReportJob,
    _performance,
    report,
)
from mlotel.drift._performance import exact_square_sum, exact_sum, exact_sum_value
from support import parquet_parts


def scored(rows: int, seed: int, shift: float = 0.0, labels: Any = (0, 1)) -> pd.DataFrame:
    """Features, a label, a classifier's predicted label and its positive-class score."""
    rng = np.random.default_rng(seed)
    x = rng.normal(shift, 1.0, rows)
    score = 1.0 / (1.0 + np.exp(-(x + rng.normal(0.0, 1.0, rows))))
    truth = rng.random(rows) < 1.0 / (1.0 + np.exp(-x))
    negative, positive = labels
    return pd.DataFrame(
        {
            "x": x,
            "noise": rng.normal(0.0, 1.0, rows),
            "plan": rng.choice(["basic", "pro", "team"], rows),
            "label": np.where(truth, positive, negative),
            "predicted": np.where(score > 0.5, positive, negative),
            "probability": score,
        }
    )


def sklearn_classification(frame: pd.DataFrame, positive: Any = 1) -> dict[str, float]:
    y, p, s = frame["label"], frame["predicted"], frame["probability"]
    return {
        "accuracy": skm.accuracy_score(y, p),
        "precision": skm.precision_score(y, p, pos_label=positive),
        "recall": skm.recall_score(y, p, pos_label=positive),
        "f1": skm.f1_score(y, p, pos_label=positive),
        "f1_macro": skm.f1_score(y, p, average="macro"),
        "log_loss": skm.log_loss(y == positive, s),
        "roc_auc": skm.roc_auc_score(y == positive, s),
    }


def assert_metrics(ours: dict[str, float], expected: dict[str, float]) -> None:
    assert set(ours) == set(expected)
    for name, value in expected.items():
        # Counts give identical ratios; sums (log loss, errors) are exact here and summed
        # pairwise by sklearn: they agree to the last digits.
        assert ours[name] == pytest.approx(value, rel=1e-12, abs=1e-15), name


write_parts = partial(parquet_parts.write_parts, parts=4, row_group_size=3_000)


ROLES = {"target": "label", "prediction": "predicted", "score": "probability"}


# --- in memory: sklearn's numbers ----------------------------------------------------------------


def test_binary_classifier_metrics_equal_sklearn_on_both_sides() -> None:
    ref, cur = scored(3000, 1), scored(2000, 2, shift=0.6)
    result = report(ref, cur, **ROLES)
    section = result.performance
    assert section is not None
    assert (section.task, section.labels, section.positive_label) == ("classification",
                                                                      ("0", "1"), "1")
    for side, frame in (("reference", ref), ("current", cur)):
        ours = getattr(section, side)
        assert ours.rows == len(frame) and ours.skipped_rows == 0
        assert_metrics(dict(ours.metrics), sklearn_classification(frame))
        assert ours.roc_auc_error_bound == 0.0
        matrix = skm.confusion_matrix(frame["label"], frame["predicted"]).tolist()
        assert [list(row) for row in ours.confusion_matrix] == matrix
    # Roles are not features: not tested with them, not in the drift share.
    assert [c.name for c in result.columns] == ["x", "noise", "plan"]
    assert result.number_of_tested_columns == 3
    assert result.target_drift.name == "label" and result.target_drift.status == "tested"
    assert result.prediction_drift.name == "predicted"
    assert result.score_drift.name == "probability" and result.score_drift.drift_detected
    data = json.loads(result.to_json())
    assert data["column_mapping"]["target"] == "label"
    assert data["target_drift"]["column"] == "label"
    assert data["performance"]["metrics"] == [
        "accuracy", "precision", "recall", "f1", "f1_macro", "log_loss", "roc_auc"
    ]  # fmt: skip
    assert data["performance"]["current"]["metrics"]["roc_auc"] == section.current.metrics[
        "roc_auc"
    ]


def test_text_labels_take_the_larger_label_or_the_one_named() -> None:
    ref = scored(1500, 3, labels=("no", "yes"))
    cur = scored(1500, 4, shift=-0.4, labels=("no", "yes"))
    default = report(ref, cur, **ROLES).performance
    assert default.positive_label == "yes"  # sklearn's classes_[1]: predict_proba[:, 1]
    assert_metrics(dict(default.current.metrics), sklearn_classification(cur, "yes"))
    flipped = ref.assign(probability=1.0 - ref["probability"])
    named = report(flipped, flipped, **ROLES, positive_label="no").performance
    assert named.positive_label == "no"
    assert_metrics(dict(named.reference.metrics), sklearn_classification(flipped, "no"))
    with pytest.raises(ValueError, match="positive_label 'maybe' is not a label"):
        report(ref, cur, **ROLES, positive_label="maybe")


def test_boolean_labels_and_positive_label_as_text() -> None:
    ref = scored(800, 5, labels=(False, True))
    section = report(ref, ref, **ROLES, positive_label="true").performance
    assert section.labels == ("False", "True") and section.positive_label == "True"
    assert_metrics(dict(section.reference.metrics), sklearn_classification(ref, True))


def test_multiclass_accuracy_macro_f1_and_confusion_matrix() -> None:
    rng = np.random.default_rng(6)
    truth = rng.choice(["cat", "dog", "emu"], 900)
    guess = np.where(rng.random(900) < 0.7, truth, rng.choice(["cat", "dog", "emu"], 900))
    frame = pd.DataFrame({"f": rng.normal(size=900), "y": truth, "p": guess,
                          "s": rng.random(900)})  # fmt: skip
    section = report(frame, frame.iloc[:500], target="y", prediction="p", score="s").performance
    assert section.labels == ("cat", "dog", "emu") and section.positive_label is None
    assert dict(section.reference.metrics) == pytest.approx(
        {"accuracy": skm.accuracy_score(truth, guess),
         "f1_macro": skm.f1_score(truth, guess, average="macro")}, rel=1e-12
    )  # fmt: skip
    assert [list(r) for r in section.reference.confusion_matrix] == skm.confusion_matrix(
        truth, guess
    ).tolist()
    assert "score column 's' not used" in section.message


def test_regression_metrics_equal_sklearn_even_far_from_zero() -> None:
    rng = np.random.default_rng(8)
    for offset in (0.0, 1e6):
        x = rng.normal(size=4000)
        frame = pd.DataFrame({"x": x, "y": offset + 3 * x + rng.normal(size=4000),
                              "y_hat": offset + 3 * x})  # fmt: skip
        section = report(frame, frame.sample(frac=0.5, random_state=1), target="y",
                         prediction="y_hat").performance  # fmt: skip
        assert section.task == "regression" and section.labels == ()
        expected = {
            "mae": skm.mean_absolute_error(frame["y"], frame["y_hat"]),
            "rmse": skm.root_mean_squared_error(frame["y"], frame["y_hat"]),
            "r2": skm.r2_score(frame["y"], frame["y_hat"]),
        }
        assert_metrics(dict(section.reference.metrics), expected)


def test_rows_with_a_missing_role_value_are_skipped_and_counted() -> None:
    ref = scored(1000, 9)
    ref.loc[::10, "label"] = np.nan  # pandas: a float column with missing labels
    ref.loc[5::25, "probability"] = np.nan
    section = report(ref, ref, **ROLES).performance
    kept = ref.dropna(subset=["label", "probability"]).assign(
        label=lambda f: f["label"].astype(int)
    )
    assert section.reference.rows == len(kept)
    assert section.reference.skipped_rows == len(ref) - len(kept)
    assert_metrics(dict(section.reference.metrics), sklearn_classification(kept))


def test_a_side_without_the_target_has_no_performance_and_says_why() -> None:
    ref = scored(600, 10)
    section = report(ref, ref.drop(columns=["label"]), **ROLES).performance
    assert section.reference is not None and section.current is None
    assert "no column 'label' in the current data" in section.message
    assert report(ref, ref.drop(columns=["label"]), **ROLES).target_drift.status == (
        "missing_in_current"
    )


def test_prediction_holding_scores_is_explained_not_computed() -> None:
    ref = scored(600, 11)
    section = report(ref, ref, target="label", prediction="probability").performance
    assert section.reference is None
    assert "holds scores, not labels" in section.message or "too many distinct" in (
        section.message
    )


def test_task_is_inferred_and_can_be_named() -> None:
    ref = scored(600, 12)
    assert report(ref, ref, target="label", prediction="predicted").performance.task == (
        "classification"
    )
    forced = report(ref, ref, target="label", prediction="predicted", task="regression")
    assert forced.performance.task == "regression"
    assert forced.performance.reference.metrics["mae"] == pytest.approx(
        skm.mean_absolute_error(ref["label"], ref["predicted"])
    )


# --- mapping: Python, files, errors --------------------------------------------------------------


def test_mapping_files_json_and_yaml_with_keyword_options_on_top(tmp_path: Path) -> None:
    ref, cur = scored(700, 13), scored(700, 14, shift=0.3)
    (tmp_path / "m.json").write_text(json.dumps({**ROLES, "categorical": ["plan"]}))
    (tmp_path / "m.yaml").write_text(
        "target: label\nprediction: predicted\nscore: probability\ncategorical: [plan]\n"
    )
    by_keywords = report(ref, cur, **ROLES, categorical=["plan"]).to_dict()
    for path in (tmp_path / "m.json", tmp_path / "m.yaml", str(tmp_path / "m.yaml")):
        assert report(ref, cur, mapping=path).to_dict() == by_keywords
    assert report(ref, cur, mapping=ColumnMapping(**ROLES, categorical=("plan",))).to_dict() == (
        by_keywords
    )
    only_target = report(ref, cur, mapping=tmp_path / "m.json", prediction=None, score="noise")
    assert only_target.column_mapping.score == "noise"  # the keyword wins
    assert [c.name for c in only_target.columns] == ["x", "plan", "probability"]


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ('{"target": "label", "labels": "y"}', "unknown key(s) ['labels']"),
        ('{"task": "ranking"}', "task must be one of classification, regression"),
        ('{"target": "label", "prediction": "label"}', "named in two roles"),
        ("{not json", "not valid JSON"),
        ('{"numerical": 3}', "numerical must be a list of column names"),
    ],
)
def test_bad_mapping_files_name_the_file_and_the_problem(
    tmp_path: Path, text: str, problem: str
) -> None:
    path = tmp_path / "mapping.json"
    path.write_text(text)
    with pytest.raises(MappingError, match=str(path)) as caught:
        ColumnMapping.load(path)
    assert problem in str(caught.value)
    with pytest.raises(MappingError, match="no such file"):
        ColumnMapping.load(tmp_path / "absent.yaml")


def test_roles_naming_no_column_are_an_error() -> None:
    ref = scored(100, 15)
    with pytest.raises(ValueError, match="target names column 'nope'"):
        report(ref, ref, target="nope")


# --- datasets: the same numbers from partials ----------------------------------------------------


@pytest.mark.parametrize("rows", [900, 30_000])
def test_streamed_performance_equals_in_memory_exactly(tmp_path: Path, rows: int) -> None:
    ref, cur = scored(rows, 16), scored(rows, 17, shift=0.5)
    streamed = report(write_parts(ref, tmp_path / "ref"), write_parts(cur, tmp_path / "cur"),
                      **ROLES)  # fmt: skip
    in_memory = report(ref, cur, **ROLES)
    assert streamed.performance == in_memory.performance  # every metric, bit for bit
    assert streamed.performance.current.roc_auc_error_bound == 0.0
    assert_metrics(dict(streamed.performance.current.metrics), sklearn_classification(cur))
    for ours, exact in ((streamed.target_drift, in_memory.target_drift),
                        (streamed.prediction_drift, in_memory.prediction_drift)):  # fmt: skip
        assert (ours.stattest, ours.score, ours.drift_detected) == (
            exact.stattest, exact.score, exact.drift_detected
        )
    assert [c.name for c in streamed.columns] == [c.name for c in in_memory.columns]


def test_streamed_regression_equals_in_memory_exactly(tmp_path: Path) -> None:
    rng = np.random.default_rng(18)
    x = rng.normal(size=50_000)
    frame = pd.DataFrame({"x": x, "y": 1e6 + 3 * x + rng.normal(size=50_000),
                          "y_hat": 1e6 + 3 * x})  # fmt: skip
    frame.loc[::97, "y"] = np.nan
    frame.to_csv(tmp_path / "data.csv", index=False)
    streamed = report(tmp_path / "data.csv", write_parts(frame, tmp_path / "cur"), target="y",
                      prediction="y_hat")  # fmt: skip
    in_memory = report(frame, frame, target="y", prediction="y_hat")
    assert streamed.performance == in_memory.performance
    assert streamed.performance.reference.skipped_rows == frame["y"].isna().sum()


def test_partials_merge_in_any_order_to_the_same_performance() -> None:
    ref, cur = scored(12_000, 19), scored(9_000, 20, shift=0.4)
    chunks = {side: [frame.iloc[i : i + 2_500] for i in range(0, len(frame), 2_500)]
              for side, frame in (("reference", ref), ("current", cur))}  # fmt: skip
    results = []
    for order in (1, -1):
        job = ReportJob(**ROLES)
        while (step := job.next_pass()) is not None:
            for side, parts in chunks.items():
                partials = [step.summarize(part, side) for part in parts[::order]]
                job.add(*[Partial.from_bytes(p.to_bytes()) for p in partials])  # as shipped
        results.append(job.result().performance)
    assert results[0] == results[1] == report(ref, cur, **ROLES).performance


def test_roc_auc_beyond_the_exact_cap_is_within_its_stated_bound(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ref, cur = scored(40_000, 21), scored(40_000, 22, shift=0.3)
    ref_dir, cur_dir = write_parts(ref, tmp_path / "ref"), write_parts(cur, tmp_path / "cur")
    exact = report(ref_dir, cur_dir, **ROLES).performance
    monkeypatch.setattr(_performance, "AUC_EXACT_CAP", 0)  # no third pass for the scores
    bounded = report(ref_dir, cur_dir, **ROLES).performance
    for side in ("reference", "current"):
        ours, truth = getattr(bounded, side), getattr(exact, side)
        bound = ours.roc_auc_error_bound
        assert 0.0 < bound < 1e-3
        assert abs(ours.metrics["roc_auc"] - truth.metrics["roc_auc"]) <= bound
        others = {k: v for k, v in ours.metrics.items() if k != "roc_auc"}
        assert others == {k: v for k, v in truth.metrics.items() if k != "roc_auc"}
    # Scores with few distinct values (ties) need no third pass: exact at any size.
    rounded = [f.assign(probability=f["probability"].round(2)) for f in (ref, cur)]
    tied = report(write_parts(rounded[0], tmp_path / "r2"),
                  write_parts(rounded[1], tmp_path / "c2"), **ROLES).performance  # fmt: skip
    assert tied.current.roc_auc_error_bound == 0.0
    assert tied.current.metrics["roc_auc"] == pytest.approx(
        skm.roc_auc_score(rounded[1]["label"], rounded[1]["probability"]), rel=1e-12
    )


def test_html_of_the_report_is_rendered_from_its_json() -> None:
    from mlotel.drift._html import render_html

    result = report(scored(500, 23), scored(500, 24, shift=0.5), **ROLES)
    page = result.to_html()
    assert page == render_html(json.loads(result.to_json()))
    for text in ('id="performance"', 'id="target-drift"', 'id="prediction-drift"',
                 'data-metric="roc_auc"', "Model monitoring report"):  # fmt: skip
        assert text in page


def test_html_states_the_decision_a_report_names() -> None:
    """A report naming its decision (``method``, ``false_alarm_rate``: the calibrated
    decision) is shown as such; the page reads the keys, whatever computed them."""
    from mlotel.drift._html import render_html

    data = json.loads(report(scored(300, 25), scored(300, 26)).to_json())
    default = render_html(data)
    assert "decision: one test per column (listed below), dataset drift when the share" in default
    assert "Evidently 0.7 DataDriftPreset&#x27;s tests at their default thresholds" in default
    data.update(method="calibrated", false_alarm_rate=0.01)
    page = render_html(data)
    assert "decision: mlotel calibrated tests, false-alarm rate 0.01 over all columns" in page
    assert "drifts when any column drifts" in page


# --- exact sums ----------------------------------------------------------------------------------


def test_exact_sums_are_exact_whatever_the_magnitudes() -> None:
    rng = np.random.default_rng(27)
    for _ in range(20):
        values = rng.normal(size=5000) * 10.0 ** rng.integers(-300, 300, 5000)
        values[:3] = [5e-324, -1.7e308, 1.7e308]  # smallest subnormal, near the largest
        assert exact_sum_value(exact_sum(values)) == math.fsum(values)
        halves = exact_sum(values[:2000]) + exact_sum(values[2000:])
        assert halves == exact_sum(values)
    small = rng.normal(size=3000) * 1e3 + 1e7
    exact = sum(Fraction(float(v)) ** 2 for v in small)  # the squares unrounded
    assert exact_sum_value(exact_square_sum(small)) == float(exact)
