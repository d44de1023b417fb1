"""Outcomes: ids, the join, statuses, windows, metrics against sklearn, CBPE, trace links."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn import metrics as skm
from sklearn.calibration import CalibratedClassifierCV
from sklearn.datasets import load_breast_cancer, load_diabetes, load_iris, make_classification
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.model_selection import train_test_split

import mlotel
import mlotel.testing
from mlotel.outcomes._metrics import classification_metrics, regression_metrics, roc_auc

EXACT = {"rel": 1e-12, "abs": 1e-12}


def performance(captured: mlotel.testing.CapturedTelemetry, model: str) -> dict[str, float]:
    captured.flush()
    return {
        p.attributes["ml.metric.name"]: p.value
        for p in captured.points("ml.model.performance", {"ml.model.name": model})
    }


def statuses(captured: mlotel.testing.CapturedTelemetry, **attrs: str) -> dict[str, float]:
    captured.flush()
    found: dict[str, float] = {}
    for point in captured.points("ml.outcomes", attrs):
        status = point.attributes["ml.outcome.status"]
        found[status] = found.get(status, 0) + point.value
    return found


@pytest.fixture(scope="module")
def breast_cancer() -> tuple[Any, np.ndarray, np.ndarray]:
    x, y = load_breast_cancer(return_X_y=True)
    x_train, x_test, y_train, y_test = train_test_split(x, y, test_size=0.4, random_state=0)
    model = LogisticRegression(max_iter=5000).fit(x_train, y_train)
    return model, x_test, y_test


# --- metric values against sklearn ------------------------------------------------------


def test_metric_functions_equal_sklearn_on_fixed_data() -> None:
    rng = np.random.default_rng(3)
    actual = rng.integers(0, 2, 500)
    proba = np.clip(actual * 0.3 + rng.random(500) * 0.7, 0, 1)
    proba[:20] = 0.5  # ties for ROC AUC
    proba[20] = 1.0  # clipped in log loss
    predicted = (proba > 0.5).astype(int)
    got = classification_metrics(predicted, actual, positive=1, positive_proba=proba)
    assert got["accuracy"] == pytest.approx(skm.accuracy_score(actual, predicted), **EXACT)
    assert got["precision"] == pytest.approx(skm.precision_score(actual, predicted), **EXACT)
    assert got["recall"] == pytest.approx(skm.recall_score(actual, predicted), **EXACT)
    assert got["f1"] == pytest.approx(skm.f1_score(actual, predicted), **EXACT)
    assert got["f1_macro"] == pytest.approx(
        skm.f1_score(actual, predicted, average="macro"), **EXACT
    )
    assert got["log_loss"] == pytest.approx(skm.log_loss(actual, proba), **EXACT)
    assert got["roc_auc"] == pytest.approx(skm.roc_auc_score(actual, proba), **EXACT)

    multi_true = rng.integers(0, 4, 300)
    multi_pred = np.where(rng.random(300) < 0.6, multi_true, rng.integers(0, 5, 300))  # class 4
    multi = classification_metrics(multi_pred, multi_true, positive=None)
    assert set(multi) == {"accuracy", "f1_macro"}
    assert multi["f1_macro"] == pytest.approx(
        skm.f1_score(multi_true, multi_pred, average="macro"), **EXACT
    )

    truth = rng.normal(10, 3, 400)
    guess = truth + rng.normal(0, 1, 400)
    reg = regression_metrics(guess, truth)
    assert reg["mae"] == pytest.approx(skm.mean_absolute_error(truth, guess), **EXACT)
    assert reg["rmse"] == pytest.approx(np.sqrt(skm.mean_squared_error(truth, guess)), **EXACT)
    assert reg["r2"] == pytest.approx(skm.r2_score(truth, guess), **EXACT)
    constant = np.full(5, 2.0)
    assert regression_metrics(constant, constant)["r2"] == skm.r2_score(constant, constant)
    assert regression_metrics(constant + 1, constant)["r2"] == skm.r2_score(constant, constant + 1)
    assert roc_auc(np.array([True, True]), np.array([0.2, 0.3])) is None


def test_sklearn_classifier_outcomes_publish_sklearn_metrics(breast_cancer: Any) -> None:
    model, x_test, y_test = breast_cancer
    with mlotel.testing.capture_telemetry() as captured:
        clf = mlotel.instrument(model, model_name="bc", model_version="2")
        ids: list[str] = []
        for start in range(0, len(x_test), 7):  # batches of 7 rows, one call each
            clf.predict_proba(x_test[start : start + 7])
            ids += mlotel.last_prediction_ids()
        order = np.random.default_rng(0).permutation(len(ids))  # labels arrive out of order
        counts = mlotel.record_outcomes([ids[i] for i in order], y_test[order])
        got = performance(captured, "bc")
    assert counts["matched"] == len(y_test)
    proba = model.predict_proba(x_test)[:, 1]
    predicted = model.predict(x_test)
    expected = {
        "accuracy": skm.accuracy_score(y_test, predicted),
        "precision": skm.precision_score(y_test, predicted),
        "recall": skm.recall_score(y_test, predicted),
        "f1": skm.f1_score(y_test, predicted),
        "f1_macro": skm.f1_score(y_test, predicted, average="macro"),
        "log_loss": skm.log_loss(y_test, proba),
        "roc_auc": skm.roc_auc_score(y_test, proba),
    }
    for name, value in expected.items():
        assert got[name] == pytest.approx(value, **EXACT), name
    assert {"estimated_accuracy", "estimated_f1"} <= set(got)


def test_regression_and_multiclass_models(breast_cancer: Any) -> None:
    x, y = load_diabetes(return_X_y=True)
    reg = LinearRegression().fit(x[:200], y[:200])
    xi, yi = load_iris(return_X_y=True)
    multi = LogisticRegression(max_iter=2000).fit(xi[::2], yi[::2])
    with mlotel.testing.capture_telemetry() as captured:
        regressor = mlotel.instrument(reg, model_name="diabetes")
        regressor.predict(x[200:])
        assert mlotel.record_outcomes(mlotel.last_prediction_ids(), y[200:])["matched"] == 242
        classifier = mlotel.instrument(multi, model_name="iris")
        classifier.predict(xi)  # labels only: no scores, no log loss
        ids = mlotel.last_prediction_ids()
        assert mlotel.record_outcomes(ids, yi.tolist(), model_name="iris")["matched"] == 150
        got_reg = performance(captured, "diabetes")
        got_multi = performance(captured, "iris")
    guess = reg.predict(x[200:])
    assert got_reg == pytest.approx(
        {
            "mae": skm.mean_absolute_error(y[200:], guess),
            "rmse": skm.root_mean_squared_error(y[200:], guess),
            "r2": skm.r2_score(y[200:], guess),
        },
        **EXACT,
    )
    labels = multi.predict(xi)
    assert got_multi == pytest.approx(
        {
            "accuracy": skm.accuracy_score(yi, labels),
            "f1_macro": skm.f1_score(yi, labels, average="macro"),
        },
        **EXACT,
    )


# --- statuses, errors, windows ------------------------------------------------------------


def test_statuses_are_counted_and_invalid_actuals_raise_clearly() -> None:
    with mlotel.testing.capture_telemetry(outcome_ttl=0.2) as captured:
        clf = mlotel.instrument(lambda rows: [int(r[0] > 0) for r in rows], model_name="sign")
        clf([[1.0], [-1.0], [2.0]])
        a, b, c = mlotel.last_prediction_ids()
        assert mlotel.record_outcome(a, 1) == "matched"
        assert mlotel.record_outcome(a, 1) == "duplicate"
        assert mlotel.record_outcome(f"{a[:-2]}-7", 1) == "unknown_id"  # past the last row
        assert mlotel.record_outcome("never-seen", 1) == "unknown_id"
        assert mlotel.record_outcome(12345, 1, model_name="sign") == "unknown_id"
        with pytest.raises(ValueError, match="missing"):
            mlotel.record_outcome(b, None)
        with pytest.raises(ValueError, match="missing"):
            mlotel.record_outcome(b, float("nan"))
        with pytest.raises(ValueError, match="predicts number labels"):
            mlotel.record_outcome(b, "yes")
        assert mlotel.record_outcome(b, 0) == "matched"  # an invalid actual did not consume it
        time.sleep(0.3)
        assert mlotel.record_outcome(c, 1) == "late"
        counts = statuses(captured, **{"ml.model.name": "sign"})
        unknown_anywhere = statuses(captured)["unknown_id"]
    assert counts == {"matched": 2, "duplicate": 1, "invalid": 3, "late": 1, "unknown_id": 1}
    assert unknown_anywhere == 3  # the two without model_name carry no model attributes


def test_regression_model_rejects_string_label() -> None:
    with mlotel.testing.capture_telemetry() as captured:
        reg = mlotel.instrument(lambda rows: [0.5 * r[0] for r in rows], model_name="half")
        reg([[1.0], [2.0]])
        first, second = mlotel.last_prediction_ids()
        with pytest.raises(ValueError, match="regression"):
            mlotel.record_outcome(first, "3.0")
        counts = mlotel.record_outcomes([first, second], ["high", 1.0])
        assert statuses(captured)["invalid"] == 2
    assert counts["invalid"] == 1 and counts["matched"] == 1


def test_minimum_sample_and_count_window() -> None:
    with mlotel.testing.capture_telemetry(outcome_window_size=100) as captured:
        clf = mlotel.instrument(lambda rows: [1] * len(rows), model_name="ones")
        clf([[0.0]] * 300)
        ids = mlotel.last_prediction_ids()
        mlotel.record_outcomes(ids[:99], [1] * 99)
        assert performance(captured, "ones") == {}  # 99 < outcome_min_samples (100)
        mlotel.record_outcome(ids[99], 1)
        assert performance(captured, "ones")["accuracy"] == 1.0
        mlotel.record_outcomes(ids[100:150], [0] * 50)
        assert performance(captured, "ones")["accuracy"] == 0.5  # the last 100 outcomes
        mlotel.record_outcomes(ids[150:250], [0] * 100)
        assert performance(captured, "ones")["accuracy"] == 0.0


def test_time_window_withdraws_old_outcomes() -> None:
    with mlotel.testing.capture_telemetry(
        outcome_window_seconds=0.3, outcome_min_samples=10
    ) as captured:
        clf = mlotel.instrument(lambda rows: [1] * len(rows), model_name="ones")
        clf([[0.0]] * 30)
        ids = mlotel.last_prediction_ids()
        mlotel.record_outcomes(ids[:10], [1] * 10)
        assert performance(captured, "ones")["accuracy"] == 1.0
        time.sleep(0.4)
        mlotel.record_outcomes(ids[10:15], [0] * 5)  # the old ten left the window: 5 < 10
        assert performance(captured, "ones") == {}
        mlotel.record_outcomes(ids[15:20], [0] * 5)
        assert performance(captured, "ones")["accuracy"] == 0.0


def test_store_is_bounded_and_evictions_are_counted() -> None:
    with mlotel.testing.capture_telemetry(outcome_store_size=10) as captured:
        clf = mlotel.instrument(lambda rows: [1] * len(rows), model_name="ones")
        clf([[0.0]] * 6)
        old = mlotel.last_prediction_ids()
        captured.flush()
        assert mlotel.record_outcome(old[0], 1) == "matched"
        clf([[0.0]] * 8)
        new = mlotel.last_prediction_ids()
        captured.flush()
        assert mlotel.record_outcome(old[1], 1) == "unknown_id"  # overwritten
        assert mlotel.record_outcome(old[4], 1) == "matched"  # still there
        assert mlotel.record_outcome(new[7], 1) == "matched"
        for _ in range(50):
            clf([[0.0]])
        captured.flush()
        (tracker,) = captured.runtime.outcome_trackers.values()
        assert len(tracker._calls) == 10  # the index forgets calls whose rows were overwritten
    # 64 rows through a 10-row store: 54 overwritten, of which 3 had been matched.
    assert captured.dropped("outcomes", "outcome_store_size") == 54 - 3


def test_small_and_large_calls_flushed_together_keep_their_rows_labels_and_traces() -> None:
    # One flush of small calls (written in one step) and large ones (another step, of more
    # rows than the store holds: only its last 1,000 rows stay): every row that stays
    # joins with its own prediction and its own call's trace; the others are unknown.
    sizes = [3, 450, 2, 1200, 5, 700]
    rng = np.random.default_rng(3)

    class Model:
        def predict_proba(self, rows: np.ndarray) -> np.ndarray:
            p = 1 / (1 + np.exp(-rows[:, 0]))
            return np.column_stack([1 - p, p])

    with mlotel.testing.capture_telemetry(outcome_store_size=1000, buffer_size=100) as captured:
        clf = mlotel.instrument(Model(), model_name="mixed", class_labels=["no", "yes"])
        made = []
        for size in sizes:
            proba = clf.predict_proba(rng.normal(size=(size, 2)))
            labels = np.where(proba[:, 1] > proba[:, 0], "yes", "no").tolist()
            made.append((mlotel.last_prediction_ids(), labels))
        captured.flush()
        calls = [(*call, span) for call, span in zip(made, captured.spans[-len(sizes) :])]
        ids = [i for call_ids, _, _ in calls for i in call_ids]
        labels = [label for _, call_labels, _ in calls for label in call_labels]
        counts = mlotel.record_outcomes(ids, labels)
        outcome_logs = {
            log.attributes["ml.prediction.id"]: log
            for log in captured.logs
            if log.event_name == "ml.outcome"
        }
        accuracy = performance(captured, "mixed")["accuracy"]
    assert counts["matched"] == 1000 and counts["unknown_id"] == sum(sizes) - 1000
    kept = set(calls[3][0][-300:] + calls[5][0])  # the last 1,000 rows of the large calls
    assert set(outcome_logs) == kept
    for call_ids, call_labels, span in calls:
        for row_id, label in zip(call_ids, call_labels):
            if row_id in kept:
                log = outcome_logs[row_id]
                assert log.attributes["ml.prediction"] == label
                assert (log.trace_id, log.span_id) == (span.context.trace_id, span.context.span_id)
    assert accuracy == 1.0


def test_outcome_tracking_can_be_turned_off() -> None:
    with mlotel.testing.capture_telemetry(outcome_store_size=0):
        clf = mlotel.instrument(lambda rows: [1] * len(rows), model_name="ones")
        clf([[0.0]])
        assert mlotel.record_outcome(mlotel.last_prediction_ids()[0], 1) == "unknown_id"


# --- ids ------------------------------------------------------------------------------------


def test_ids_match_the_span_and_log_record_and_reset_after_failure() -> None:
    def predict(rows: list[list[float]]) -> list[int]:
        if not rows:
            raise ValueError("empty")
        return [1] * len(rows)

    with mlotel.testing.capture_telemetry() as captured:
        clf = mlotel.instrument(predict, model_name="m")
        clf([[0.0], [1.0]])
        ids = mlotel.last_prediction_ids()
        span = captured.spans[-1]
        (log,) = captured.logs
        with pytest.raises(ValueError):
            clf([])
        assert mlotel.last_prediction_ids() == []
    call_id = span.attributes["ml.prediction.id"]
    assert ids == [f"{call_id}-0", f"{call_id}-1"]
    assert log.attributes["ml.prediction.id"] == call_id


def test_supplied_ids_from_a_column_a_context_and_inference_record() -> None:
    frame = pd.DataFrame({"order_id": ["o-1", "o-2"], "amount": [3.0, 4.0]})
    with mlotel.testing.capture_telemetry() as captured:
        clf = mlotel.instrument(
            lambda df: [int(a > 3.5) for a in df["amount"]],
            model_name="orders",
            prediction_ids="order_id",
        )
        clf(frame)
        assert mlotel.last_prediction_ids() == ["o-1", "o-2"]
        with mlotel.prediction_ids(np.array([7, 8])):
            clf(frame)  # the context wins over the column
        assert mlotel.last_prediction_ids() == ["7", "8"]
        with mlotel.inference("ranker") as call:
            call.record(prediction=[1], prediction_ids="req-9")
        assert mlotel.last_prediction_ids() == ["req-9"]
        assert mlotel.record_outcome("o-2", 1) == "matched"
        assert mlotel.record_outcome(8, 0) == "matched"
        assert mlotel.record_outcome("req-9", 1, model_name="ranker") == "matched"
        spans = captured.spans
        logs = [log for log in captured.logs if log.event_name == "ml.prediction"]
    assert spans[0].attributes["ml.prediction.ids"] == ("o-1", "o-2")
    assert logs[1].attributes["ml.prediction.ids"] == ("7", "8")


def test_bad_id_sources_never_break_predict() -> None:
    def broken(features: Any) -> Any:
        raise KeyError("no id column")

    with mlotel.testing.capture_telemetry() as captured:
        clf = mlotel.instrument(lambda rows: [1] * len(rows), model_name="m", prediction_ids=broken)
        assert clf([[0.0]]) == [1]
        generated = mlotel.last_prediction_ids()
        with mlotel.prediction_ids(["only-one"]):
            assert clf([[0.0], [1.0]]) == [1, 1]  # ids do not pair with the rows
        assert mlotel.record_outcome(generated[0], 1) == "matched"
        assert mlotel.record_outcome("only-one", 1) == "unknown_id"
    assert captured.internal_errors("outcomes.ids") == 1
    assert captured.dropped("outcomes", "prediction_ids_length") == 2


def test_a_missing_id_column_is_a_counted_drop_with_generated_ids() -> None:
    with mlotel.testing.capture_telemetry() as captured:
        predict = mlotel.instrument(
            lambda frame: [1] * len(frame), model_name="m", prediction_ids="order_id"
        )
        assert predict(pd.DataFrame({"x": [0.0, 1.0]})) == [1, 1]
        ids = mlotel.last_prediction_ids()
        assert len(ids) == 2 and ids[0].endswith("-0")
        assert mlotel.record_outcome(ids[1], 1) == "matched"
    assert captured.dropped("outcomes", "prediction_ids_column") == 1
    assert captured.internal_errors() == 0  # not an internal fault


def test_outputs_that_are_no_predictions_hand_out_no_ids() -> None:
    with mlotel.testing.capture_telemetry() as captured:
        scaler = mlotel.instrument(
            lambda rows: [[2 * v for v in r] for r in rows], model_name="s", operation="transform"
        )
        scaler([[1.0], [2.0]])
        assert mlotel.last_prediction_ids() == []
        logits = mlotel.instrument(
            lambda rows: np.array([[3.0, -1.0, 0.5]] * len(rows)), model_name="net"
        )
        logits([[1.0], [2.0]])
        ids = mlotel.last_prediction_ids()  # read at flush: kept out, and counted
        assert mlotel.record_outcome(ids[0], 1) == "unknown_id"
    assert captured.dropped("outcomes", "unreadable_output") == 2


# --- logs, trace links, the cross-process path -------------------------------------------


def test_outcome_log_record_is_in_the_predictions_trace() -> None:
    with mlotel.testing.capture_telemetry() as captured:
        clf = mlotel.instrument(lambda rows: ["yes"] * len(rows), model_name="m")
        clf([[0.0], [1.0]])
        ids = mlotel.last_prediction_ids()
        mlotel.record_outcome(ids[1], "no")
        span = captured.spans[-1]
        outcome = [log for log in captured.logs if log.event_name == "ml.outcome"]
    (record,) = outcome
    assert record.trace_id == span.context.trace_id
    assert record.span_id == span.context.span_id
    assert dict(record.attributes) == {
        "ml.model.name": "m",
        "ml.prediction.id": ids[1],
        "ml.outcome.status": "matched",
        "ml.prediction": "yes",
        "ml.outcome.actual": "no",
    }


def _outcome_log_run(calls: int, **settings: Any) -> tuple[set[str], set[str], float]:
    """Make ``calls`` 2-row calls, record every row's outcome; returns the call ids with an
    ``ml.prediction`` record, the call ids of the ``ml.outcome`` records, matched count."""
    with mlotel.testing.capture_telemetry(**settings) as captured:
        clf = mlotel.instrument(lambda rows: ["yes"] * len(rows), model_name="sampled")
        ids: list[str] = []
        for _ in range(calls):
            clf([[0.0], [1.0]])
            ids += mlotel.last_prediction_ids()
        assert mlotel.record_outcomes(ids, ["no"] * len(ids))["matched"] == len(ids)
        matched = statuses(captured, **{"ml.model.name": "sampled"})["matched"]
        predicted = {
            str(log.attributes["ml.prediction.id"])
            for log in captured.logs
            if log.event_name == "ml.prediction"
        }
        outcomes = [log for log in captured.logs if log.event_name == "ml.outcome"]
        spans = {span.context.span_id: span for span in captured.spans}
    for record in outcomes:  # still in the prediction's span context, flags unchanged
        span = spans[record.span_id]
        assert record.trace_id == span.context.trace_id
        assert int(record.trace_flags) == int(span.context.trace_flags)
    outcome_calls = {str(log.attributes["ml.prediction.id"]).rsplit("-", 1)[0] for log in outcomes}
    assert len(outcomes) == 2 * len(outcome_calls)  # one record per row of a logged call
    return predicted, outcome_calls, matched


def test_outcome_logs_follow_the_payload_sampling_by_default() -> None:
    predicted, outcome_calls, matched = _outcome_log_run(60, payload_sample_rate=0.5)
    assert 0 < len(predicted) < 60  # some calls were sampled out (P(not) = 2 * 0.5**60)
    assert outcome_calls == predicted  # an outcome record exactly where its prediction's is
    assert matched == 120  # the metrics count every outcome


def test_outcome_log_all_and_none() -> None:
    predicted, outcome_calls, matched = _outcome_log_run(
        20, payload_sample_rate=0.0, outcome_log="all"
    )
    assert predicted == set() and len(outcome_calls) == 20 and matched == 40
    predicted, outcome_calls, matched = _outcome_log_run(20, outcome_log="none")
    assert len(predicted) == 20 and outcome_calls == set() and matched == 40


_LABEL_JOB = """
import json, sys
import mlotel
outcomes = json.load(open(sys.argv[2]))
print(json.dumps(mlotel.performance_from_logs(sys.argv[1], outcomes, model_name="bc")))
"""


def test_another_process_computes_the_same_metrics_from_exported_logs(
    tmp_path: Path, breast_cancer: Any
) -> None:
    import json

    model, x_test, y_test = breast_cancer
    mlotel.configure(
        exporter="embedded",
        prometheus=False,
        output_dir=str(tmp_path),
        set_global=False,
        flush_interval=0.05,
        payload_sample_rate=1.0,  # the downstream join is exact only with every row logged
    )
    try:
        clf = mlotel.instrument(model, model_name="bc")
        ids: list[str] = []
        for start in range(0, len(x_test), 16):
            clf.predict_proba(x_test[start : start + 16])
            ids += mlotel.last_prediction_ids()
        labelled = dict(zip(ids[::2], y_test[::2].tolist()))  # half of the rows get labels
        mlotel.record_outcomes(list(labelled), list(labelled.values()))
        from mlotel import _lifecycle

        runtime = _lifecycle.current
        assert runtime is not None
        runtime.flush_aggregators()
        in_process = {
            name: runtime.store.gauge_value(
                mlotel.semconv.MODEL_PERFORMANCE,
                (("ml.model.name", "bc"), ("ml.metric.name", name)),
            )
            for name in ("accuracy", "precision", "recall", "f1", "f1_macro", "log_loss", "roc_auc")
        }
    finally:
        mlotel.shutdown()
    (tmp_path / "outcomes.json").write_text(json.dumps(labelled))
    job = subprocess.run(
        [
            sys.executable,
            "-c",
            _LABEL_JOB,
            str(tmp_path / "logs.jsonl"),
            str(tmp_path / "outcomes.json"),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    downstream = json.loads(job.stdout)
    assert downstream["matched"] == len(labelled)
    for name, value in in_process.items():
        assert value is not None and downstream[name] == pytest.approx(value, **EXACT), name


# --- label-free estimate ------------------------------------------------------------------


def test_cbpe_estimate_lands_near_realised_accuracy_on_held_out_data() -> None:
    x, y = make_classification(
        n_samples=8000, n_features=12, n_informative=6, class_sep=0.8, random_state=5
    )
    x_train, x_test, y_train, y_test = train_test_split(x, y, test_size=3000, random_state=5)
    forest = RandomForestClassifier(n_estimators=50, random_state=0)
    calibrated = CalibratedClassifierCV(forest, cv=5, method="sigmoid").fit(x_train, y_train)
    raw = forest.fit(x_train, y_train)  # a forest's votes are not calibrated probabilities
    found = {}
    with mlotel.testing.capture_telemetry(outcome_window_size=3000) as captured:
        for name, model in (("calibrated", calibrated), ("raw", raw)):
            clf = mlotel.instrument(model, model_name=name)
            clf.predict_proba(x_test)
            estimate = performance(captured, name)  # no labels yet
            mlotel.record_outcomes(mlotel.last_prediction_ids(), y_test)
            realised = performance(captured, name)
            assert realised["accuracy"] == pytest.approx(
                skm.accuracy_score(y_test, model.predict(x_test)), **EXACT
            )
            found[name] = (estimate, realised)
            print(
                f"CBPE ({name}): estimated accuracy {estimate['estimated_accuracy']:.4f} vs "
                f"realised {realised['accuracy']:.4f}; estimated F1 "
                f"{estimate['estimated_f1']:.4f} vs realised {realised['f1']:.4f}"
            )
    estimate, realised = found["calibrated"]
    assert set(estimate) == {"estimated_accuracy", "estimated_f1"}
    assert abs(estimate["estimated_accuracy"] - realised["accuracy"]) < 0.02
    assert abs(estimate["estimated_f1"] - realised["f1"]) < 0.02
    # The documented assumption matters: uncalibrated scores miss by more.
    raw_estimate, raw_realised = found["raw"]
    raw_error = abs(raw_estimate["estimated_accuracy"] - raw_realised["accuracy"])
    assert raw_error > abs(estimate["estimated_accuracy"] - realised["accuracy"])


class _FlushSpy:
    """An analyzer that notes on which thread each flush of its model ran."""

    name = "flush-spy"
    needs_inputs = False

    def __init__(self) -> None:
        self.flushes: list[tuple[int, int]] = []  # (thread id, records)

    def process(self, records: Any, aggregator: Any, store: Any) -> None:
        import threading

        self.flushes.append((threading.get_ident(), len(records)))


@pytest.mark.parametrize("batch", [False, True])
def test_recording_outcomes_of_buffered_calls_does_not_flush_on_the_callers_thread(
    batch: bool,
) -> None:
    """Issue 13, item 14: only the outcome store takes the buffered calls' rows on the
    caller's thread; their metrics, logs and drift, the window and the outcome log
    records wait for the flush, which stores no row twice."""
    with mlotel.testing.capture_telemetry(
        flush_interval=3600, buffer_size=100_000, outcome_min_samples=10
    ) as captured:
        predict = mlotel.instrument(lambda x: np.array([[0.2, 0.8]]), model_name="later")
        predict(np.zeros((1, 3)))
        aggregator = captured.runtime.aggregator("later", None, None)
        spy = _FlushSpy()
        aggregator.attach(spy)
        captured.flush()  # the first call, and the spy's start
        spy.flushes.clear()
        ids: list[str] = []
        for _ in range(32):
            predict(np.zeros((1, 3)))
            ids += mlotel.last_prediction_ids()
        if batch:
            counts = mlotel.record_outcomes(ids, [1] * 32)
            assert counts["matched"] == 32
        else:
            assert [mlotel.record_outcome(i, 1) for i in ids] == ["matched"] * 32
        assert aggregator.buffered == 32  # still buffered: nothing was aggregated
        assert spy.flushes == []  # no analyzer (drift) ran on this thread
        assert captured.logs and all(  # (reading .logs flushes: now everything goes out)
            r.event_name in ("ml.prediction", "ml.outcome") for r in captured.logs
        )
        assert sum(r.event_name == "ml.outcome" for r in captured.logs) == 32
        assert captured.histogram_count("ml.inference.duration") == 33
        assert spy.flushes and sum(n for _, n in spy.flushes) == 32
        assert performance(captured, "later")["accuracy"] == 1.0
        # Each row is in the store once: recording again finds them matched already.
        again = mlotel.record_outcomes(ids, [1] * 32)
        assert again["duplicate"] == 32 and again["matched"] == 0
