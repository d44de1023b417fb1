"""The streaming drift and data-quality monitor, through instrument(reference=...)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pandas as pd
import pytest
from scipy.spatial.distance import jensenshannon as scipy_js
from scipy.stats import wasserstein_distance

import mlotel
import mlotel.testing
from mlotel.drift import (
    AllowedValues,
    DriftConfig,
    DriftEvent,
    MaxMissingShare,
    NotNull,
    Profile,
    Range,
)
from mlotel.drift._streaming_stats import PSI_EPSILON, bin_centers

RNG = np.random.default_rng(2024)
REFERENCE = RNG.normal(0.0, 1.0, (20_000, 3))


def _passthrough(x: Any) -> Any:
    return np.zeros(len(x)) if hasattr(x, "__len__") else 0.0


@pytest.fixture(scope="module")
def profile() -> Profile:
    return Profile.from_data(REFERENCE, feature_names=["a", "b", "c"])


@pytest.fixture
def captured() -> Iterator[mlotel.testing.CapturedTelemetry]:
    with mlotel.testing.capture_telemetry() as telemetry:
        yield telemetry


def _drift(captured: Any, feature: str, method: str = "psi") -> float | None:
    points = captured.points(
        "ml.feature.drift", {"ml.feature.name": feature, "ml.drift.method": method}
    )
    return points[0].value if points else None


def _exact_psi(profile: Profile, feature: str, values: np.ndarray) -> float:
    ref = profile[feature]
    counts = np.bincount(np.searchsorted(ref.edges, values, side="right"), minlength=10)
    cur = np.maximum(counts / counts.sum(), PSI_EPSILON)
    shares = np.maximum(ref.shares, PSI_EPSILON)
    return float(np.sum((cur - shares) * np.log(cur / shares)))


def test_streaming_psi_on_10k_windows_is_within_001_of_exact(
    profile: Profile, captured: Any
) -> None:
    predict = mlotel.instrument(_passthrough, model_name="m", reference=profile)
    rng = np.random.default_rng(7)
    stream = rng.normal(0.0, 1.0, (25_500, 3))
    stream[:, 0] += np.linspace(0.0, 1.0, len(stream))  # a drift that keeps growing
    for start in range(0, len(stream), 250):
        predict(stream[start : start + 250])
        if start % 2000 == 0:
            captured.flush()
    captured.flush()
    last = stream[-10_000:]
    for j, feature in enumerate("abc"):
        exact = _exact_psi(profile, feature, last[:, j])
        streamed = _drift(captured, feature)
        assert streamed is not None
        assert abs(streamed - exact) <= 0.01, (feature, streamed, exact)
    assert _drift(captured, "a") > 0.1 > _drift(captured, "b")


def test_js_and_wasserstein_match_scipy_on_the_same_bins(profile: Profile, captured: Any) -> None:
    predict = mlotel.instrument(_passthrough, model_name="m", reference=profile)
    current = np.random.default_rng(3).normal(0.5, 1.2, (5000, 3))
    predict(current)
    captured.flush()
    ref = profile["a"]
    counts = np.bincount(np.searchsorted(ref.edges, current[:, 0], side="right"), minlength=10)
    expected_js = scipy_js(ref.shares, counts / counts.sum())
    assert _drift(captured, "a", "jensenshannon") == pytest.approx(expected_js, abs=1e-12)
    centers = bin_centers(np.asarray(ref.edges), ref.min, ref.max)
    expected_w = wasserstein_distance(centers, centers, ref.shares, counts) / ref.std
    assert _drift(captured, "a", "wasserstein") == pytest.approx(expected_w, abs=1e-12)
    # The binned estimate tracks the exact normalised Wasserstein of the raw values.
    exact = wasserstein_distance(REFERENCE[:, 0], current[:, 0]) / REFERENCE[:, 0].std()
    assert _drift(captured, "a", "wasserstein") == pytest.approx(exact, rel=0.3)


def test_identical_data_does_not_drift(profile: Profile, captured: Any) -> None:
    predict = mlotel.instrument(
        _passthrough, model_name="m", reference=profile, drift=DriftConfig(window_rows=5000)
    )
    predict(np.random.default_rng(11).normal(0.0, 1.0, (5000, 3)))
    captured.flush()
    for feature in "abc":
        for method in ("psi", "jensenshannon", "wasserstein"):
            assert _drift(captured, feature, method) < 0.1
        assert _drift(captured, feature, "p_value") > 0.01
    assert captured.points("ml.dataset.drift.share")[0].value == 0.0
    assert {p.value for p in captured.points("ml.feature.drift.detected")} == {0.0}
    assert [p.value for p in captured.points("ml.dataset.drift.detected")] == [0.0, 0.0]


def test_min_sample_guard(profile: Profile, captured: Any) -> None:
    predict = mlotel.instrument(
        _passthrough, model_name="m", reference=profile, drift=DriftConfig(decision="threshold")
    )
    predict(np.full((499, 3), 5.0))  # wildly drifted, but too few rows
    captured.flush()
    assert _drift(captured, "a") is None
    assert captured.points("ml.dataset.drift.share") == []
    predict(np.full((1, 3), 5.0))
    captured.flush()
    assert _drift(captured, "a") > 1.0
    assert captured.points("ml.dataset.drift.share")[0].value == 1.0
    custom = mlotel.instrument(
        _passthrough, model_name="n", reference=profile, drift=DriftConfig(min_samples=10)
    )
    custom(np.full((10, 3), 5.0))
    captured.flush()
    assert captured.points("ml.feature.drift", {"ml.model.name": "n"})


def test_thresholds_and_deciding_method(profile: Profile, captured: Any) -> None:
    predict = mlotel.instrument(
        _passthrough,
        model_name="m",
        reference=profile,
        drift=DriftConfig(
            thresholds={"wasserstein": 5.0}, method="wasserstein", decision="threshold"
        ),
    )
    shifted = np.random.default_rng(5).normal(0.0, 1.0, (2000, 3)) + np.array([1.0, 0.0, 0.0])
    predict(shifted)
    captured.flush()
    assert _drift(captured, "a", "wasserstein") > 0.5  # drifted, but under 5.0
    assert captured.points("ml.dataset.drift.share")[0].value == 0.0
    with pytest.raises(ValueError, match="unknown drift method 'kl'"):
        mlotel.instrument(_passthrough, reference=profile, drift=DriftConfig(thresholds={"kl": 1}))


def test_former_drift_keywords_still_work_and_warn(profile: Profile, captured: Any) -> None:
    with pytest.warns(DeprecationWarning, match=r"drift=DriftConfig\(thresholds=, method="):
        predict = mlotel.instrument(
            _passthrough,
            model_name="old",
            reference=profile,
            drift_thresholds={"wasserstein": 5.0},
            drift_method="wasserstein",
            drift_window_rows=2000,
        )
    shifted = np.random.default_rng(5).normal(0.0, 1.0, (2000, 3)) + np.array([1.0, 0.0, 0.0])
    predict(shifted)
    captured.flush()
    # window_rows took effect: one decision window of 2,000 rows flags feature a.
    share = captured.points("ml.dataset.drift.share", {"ml.model.name": "old"})[0].value
    assert share == pytest.approx(1 / 3)
    with pytest.raises(TypeError, match="drift_windw_rows"):
        mlotel.instrument(_passthrough, reference=profile, drift_windw_rows=10)


def test_fleet_bin_counters_and_reference_shares(profile: Profile, captured: Any) -> None:
    predict = mlotel.instrument(_passthrough, model_name="m", model_version="2", reference=profile)
    batch = np.random.default_rng(1).normal(0.0, 1.0, (700, 3))
    predict(batch)
    captured.flush()
    counts = {
        p.attributes["ml.feature.bin"]: p.value
        for p in captured.points("ml.feature.bin.count", {"ml.feature.name": "b"})
    }
    expected = np.bincount(np.searchsorted(profile["b"].edges, batch[:, 1], "right"), minlength=10)
    assert counts == {str(i): int(c) for i, c in enumerate(expected)}
    shares = {
        p.attributes["ml.feature.bin"]: p.value
        for p in captured.points("ml.feature.reference.share", {"ml.feature.name": "b"})
    }
    assert shares == {str(i): s for i, s in enumerate(profile["b"].shares.tolist())}
    point = captured.points("ml.feature.bin.count")[0]
    assert point.attributes["ml.model.version"] == "2"


def _issues(captured: Any, feature: str) -> dict[str, float]:
    return {
        p.attributes["ml.data_quality.issue"]: p.value
        for p in captured.points("ml.data_quality.issues", {"ml.feature.name": feature})
        if p.value
    }


def test_data_quality_issues_are_counted(captured: Any) -> None:
    reference = Profile.from_data(
        {"x": np.linspace(0.0, 10.0, 1000), "color": np.array(["red", "blue"] * 500)}
    )
    predict = mlotel.instrument(
        _passthrough,
        model_name="q",
        reference=reference,
        drift=DriftConfig(
            constraints={
                "x": [Range(0, 8, name="x_at_most_8"), NotNull()],
                "color": [AllowedValues(["red"], name="only_red")],
            }
        ),
    )
    frame = pd.DataFrame(
        {
            "x": [1.0, np.nan, np.inf, -np.inf, 11.0, -1.0, 9.0, 5.0],
            "color": ["red", "blue", "green", None, "red", "red", [1], "red"],
        }
    )
    predict(frame)
    predict([{"x": "seven", "color": "red"}, {"color": "blue"}])  # wrong type; x absent
    captured.flush()
    assert _issues(captured, "x") == {
        "missing": 2,  # NaN and the absent key
        "non_finite": 2,
        "out_of_range": 2,  # 11 and -1
        "wrong_type": 1,
        "x_at_most_8": 3,  # 11, -1, 9
        "not_null": 2,
    }
    assert _issues(captured, "color") == {
        "new_category": 1,  # green
        "missing": 1,
        "wrong_type": 1,  # a list
        "only_red": 4,  # blue, green, the list, blue
    }


def test_max_missing_share_constraint_counts_while_over_the_limit(captured: Any) -> None:
    reference = Profile.from_data({"x": np.arange(100.0)}).with_constraints(
        {"x": [MaxMissingShare(0.25)]}
    )
    predict = mlotel.instrument(_passthrough, model_name="q", reference=reference)
    predict(np.array([[1.0], [np.nan], [2.0], [3.0]]))  # 25%: at the limit
    captured.flush()
    assert "max_missing_share" not in _issues(captured, "x")
    predict(np.array([[np.nan], [np.nan]]))  # window: 3 of 6 missing
    captured.flush()
    assert _issues(captured, "x")["max_missing_share"] == 2


def test_on_drift_fires_once_per_window_and_errors_are_contained(
    profile: Profile, captured: Any
) -> None:
    events: list[DriftEvent] = []
    done = threading.Event()

    def callback(event: DriftEvent) -> None:
        events.append(event)
        done.set()
        raise RuntimeError("retraining service is down")

    predict = mlotel.instrument(
        _passthrough,
        model_name="m",
        model_version="3",
        reference=profile,
        drift=DriftConfig(
            window_rows=2000, on_drift=callback, decision="threshold", multivariate=False
        ),
    )
    shifted = np.random.default_rng(9).normal(0.0, 1.0, (1000, 3)) + np.array([2.0, 0.0, 0.0])
    for _ in range(3):  # 3,000 rows: one window of 2,000 plus half of the next
        predict(shifted)
        captured.flush()
    assert done.wait(5)
    _wait_idle(lambda: len(events) >= 2)
    assert [(e.feature, e.method, e.model_version) for e in events] == [("a", "psi", "3")] * 2
    assert events[0].value > 1.0 and events[0].threshold == 0.1
    assert events[0].window_values == 1000
    assert set(events[0].values) == {"psi", "jensenshannon", "wasserstein"}
    assert (
        captured.counter_value("mlotel.internal.errors", {"mlotel.component": "drift.on_drift"})
        == 2
    )


def _wait_idle(predicate: Callable[[], bool], timeout: float = 5.0) -> None:
    import time

    deadline = time.monotonic() + timeout
    while not predicate() and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.05)  # let a (wrong) extra event arrive if there were one


def test_prediction_drift(captured: Any) -> None:
    x = RNG.normal(0.0, 1.0, (5000, 2))
    labels = (x[:, 0] > 0).astype(int)
    reference = Profile.from_data(x, feature_names=["a", "b"], prediction=labels)

    def classify(rows: np.ndarray) -> np.ndarray:
        return (rows[:, 0] > 0).astype(int)

    predict = mlotel.instrument(classify, model_name="clf", reference=reference)
    predict(RNG.normal(0.0, 1.0, (1000, 2)))
    captured.flush()
    calm = captured.points("ml.prediction.drift", {"ml.drift.method": "psi"})[0].value
    assert calm < 0.05
    predict(RNG.normal(1.5, 1.0, (5000, 2)))  # most rows now predicted 1
    captured.flush()
    assert captured.points("ml.prediction.drift", {"ml.drift.method": "psi"})[0].value > 0.5


def test_input_formats_give_the_same_counts(profile: Profile) -> None:
    batch = np.random.default_rng(4).normal(0.0, 1.0, (600, 3))
    formats: list[Any] = [
        batch,
        batch.tolist(),
        pd.DataFrame(batch, columns=["a", "b", "c"]),
        {"a": batch[:, 0], "b": batch[:, 1], "c": batch[:, 2]},
        [dict(zip("abc", row)) for row in batch.tolist()],
    ]
    seen = []
    for form in formats:
        with mlotel.testing.capture_telemetry() as cap:
            mlotel.instrument(_passthrough, model_name="m", reference=profile)(form)
            cap.flush()
            seen.append(
                sorted(
                    (p.attributes["ml.feature.name"], p.attributes["ml.feature.bin"], p.value)
                    for p in cap.points("ml.feature.bin.count")
                )
            )
    assert all(s == seen[0] for s in seen[1:])


def test_named_feature_order_maps_array_columns(profile: Profile, captured: Any) -> None:
    predict = mlotel.instrument(
        _passthrough, model_name="m", reference=profile, feature_names=["c", "b", "a"]
    )
    calm = np.random.default_rng(8).normal(size=(600, 2))
    predict(np.column_stack([np.full(600, 5.0), calm]))
    captured.flush()
    assert _drift(captured, "c") > 1.0 and _drift(captured, "a") < 1.0


@pytest.mark.parametrize(
    "bad",
    [
        None,
        "a string",
        [[1.0, 2.0], [3.0]],  # ragged
        np.zeros((4, 7)),  # wrong width
        np.zeros((2, 3, 3)),
        {"a": object()},
        [{"a": {"nested": 1}}],
        np.array([["x", "y", "z"]]),
        42,
    ],
)
def test_bad_inputs_never_break_predict(profile: Profile, captured: Any, bad: Any) -> None:
    def model(x: Any) -> str:
        return "ok"

    predict = mlotel.instrument(model, model_name="m", reference=profile)
    assert predict(bad) == "ok"
    captured.flush()
    assert captured.histogram_count("ml.inference.duration") == 1
    component = {"mlotel.component": "analyzer.drift"}
    assert (
        captured.counter_value("mlotel.internal.errors", component) == 0
    )  # every bad input is handled (dropped or counted as an issue)


def test_wrong_width_is_a_counted_drop(profile: Profile, captured: Any) -> None:
    predict = mlotel.instrument(_passthrough, model_name="m", reference=profile)
    predict(np.zeros((4, 7)))
    captured.flush()
    assert (
        captured.counter_value(
            "mlotel.internal.dropped",
            {"mlotel.component": "drift", "mlotel.drop.reason": "input_width"},
        )
        == 4
    )


def test_reference_from_a_path_and_clear_setup_errors(profile: Profile, tmp_path: Any) -> None:
    path = tmp_path / "ref.json"
    profile.save(path)
    with mlotel.testing.capture_telemetry() as cap:
        predict = mlotel.instrument(_passthrough, model_name="m", reference=str(path))
        predict(np.zeros((600, 3)))
        cap.flush()
        assert cap.points("ml.feature.drift")
    (tmp_path / "bad.json").write_text("{")
    with pytest.raises(mlotel.drift.ProfileError, match=r"bad\.json: not valid JSON"):
        mlotel.instrument(_passthrough, reference=str(tmp_path / "bad.json"))
    with pytest.raises(ValueError, match="need a reference"):
        mlotel.instrument(_passthrough, drift=DriftConfig(on_drift=print))


def test_window_memory_is_bounded(profile: Profile, captured: Any) -> None:
    predict = mlotel.instrument(
        _passthrough, model_name="m", reference=profile, drift=DriftConfig(window_rows=1000)
    )
    predict(np.random.default_rng(0).normal(size=(50_000, 3)) + np.array([3.0, 0, 0]))
    predict(np.random.default_rng(1).normal(size=(1000, 3)))  # the window is now all calm
    captured.flush()
    assert _drift(captured, "a") < 0.1
    assert (
        sum(p.value for p in captured.points("ml.feature.bin.count", {"ml.feature.name": "a"}))
        == 51_000
    )


def test_inference_blocks_share_one_drift_monitor(profile: Profile, captured: Any) -> None:
    rows = np.random.default_rng(6).normal(size=(300, 3)) + np.array([4.0, 0.0, 0.0])
    for half in (rows[:150], rows[150:]):  # neither block alone reaches 500 values
        for _ in range(2):
            with mlotel.inference("blocks", reference=profile) as call:
                call.record(features=half, prediction=np.zeros(len(half)))
    captured.flush()
    assert _drift(captured, "a") > 1.0  # 600 values in one shared window


def test_forked_child_keeps_monitoring(profile: Profile, tmp_path: Any) -> None:
    import os

    predict = mlotel.instrument(_passthrough, model_name="fork", reference=profile)
    with mlotel.testing.capture_telemetry():
        predict(np.zeros((10, 3)))
        pid = os.fork()
        if pid == 0:  # child: the analyzer's lock and callback thread start afresh
            code = 1
            try:
                with mlotel.testing.capture_telemetry() as child:
                    predict(np.random.default_rng(0).normal(size=(600, 3)))
                    child.flush()
                    code = 0 if _drift(child, "a") is not None else 2
            finally:
                os._exit(code)
        _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
