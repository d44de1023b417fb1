"""Calibrated drift decisions: false-alarm rate on a synthetic null, power on synthetic
shifts, the effect floor, the exported decision gauges and old profile files."""

from __future__ import annotations

import json
import math
import queue
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any, ClassVar

import numpy as np
import pytest
from scipy import stats

import mlotel
import mlotel.testing
from mlotel import semconv
from mlotel._metric_store import MetricStore
from mlotel.drift import DriftConfig, DriftMonitor, Profile, ProfileError
from mlotel.drift._calibrated import (
    DecisionPlan,
    Evidence,
    ReferenceColumn,
    chi2_isf,
    chi2_sf,
    column_decision,
    fleet_limits,
    normal_isf,
    normal_sf,
)


class _Model:
    model_name = "m"
    model_version = "1"
    base_attrs = ((semconv.ATTR_MODEL_NAME, "m"), (semconv.ATTR_MODEL_VERSION, "1"))
    output_groups: ClassVar[dict[str, Any]] = {}


def _record(x: Any) -> Any:
    """A finished call as the drift monitor reads it (see mlotel._aggregator.CallRecord)."""
    return SimpleNamespace(inputs=x, rows=len(x), error_type=None, output=None)


class _Stream:
    """The real monitor fed one window per call, without the OTel pipeline."""

    def __init__(self, reference: np.ndarray, config: DriftConfig, **profile: Any) -> None:
        names = [f"f{i}" for i in range(reference.shape[1])]
        self.names = names
        self.monitor = DriftMonitor(
            Profile.from_data(reference, feature_names=names, **profile), config
        )
        self.store = MetricStore()
        self.store.add_reader(1)

    def step(self, x: np.ndarray) -> tuple[np.ndarray, bool]:
        self.monitor.process([_record(x)], _Model(), self.store)
        flags = np.array([self.monitor.detected.get(n, False) for n in self.names])
        return flags, bool(self.monitor.multivariate_detected)


def _null_rate(config: DriftConfig, refs: int, windows: int, seed: int) -> tuple[int, int]:
    """Windows with any flag / windows, on stationary correlated normal data."""
    cov = np.array([[1.0, 0.6, 0.0, 0.0], [0.6, 1.0, 0.0, 0.0], [0, 0, 1.0, 0], [0, 0, 0, 1.0]])
    flagged = total = 0
    for r in range(refs):
        rng = np.random.default_rng([seed, r])
        stream = _Stream(rng.multivariate_normal(np.zeros(4), cov, 10_000), config)
        for _ in range(windows):
            flags, mv = stream.step(rng.multivariate_normal(np.zeros(4), cov, 1000))
            flagged += bool(flags.any() or mv)
            total += 1
    return flagged, total


def test_false_alarm_rate_on_a_synthetic_null_is_within_the_binomial_interval() -> None:
    # One test per window and column at 5 %: Bonferroni over 4 columns is nearly exact,
    # so the rate must sit in the binomial interval of the target (both sides).
    tight = DriftConfig(
        window_rows=1000, false_alarm_rate=0.05, sequential_lags=(1,), multivariate=False
    )
    flagged, total = _null_rate(tight, refs=40, windows=30, seed=1)
    low, high = stats.binom.interval(0.999, total, 0.05)
    # Tests of one column are correlated (Bonferroni is then a little conservative).
    assert 0.6 * low <= flagged <= high, (flagged, total)
    # Defaults, every decision together (lags, multivariate): at most the 1 % target.
    flagged, total = _null_rate(DriftConfig(window_rows=1000), refs=20, windows=60, seed=2)
    assert flagged <= stats.binom.ppf(0.999, total, 0.01), (flagged, total)


def _shift_runs(shift: float, runs: int, after: int, feature: int = 0) -> list[list[bool]]:
    hits = []
    for r in range(runs):
        rng = np.random.default_rng([7, r])
        stream = _Stream(rng.normal(size=(10_000, 4)), DriftConfig(window_rows=1000))
        for _ in range(5):
            stream.step(rng.normal(size=(1000, 4)))
        mine = []
        for _ in range(after):
            x = rng.normal(size=(1000, 4))
            x[:, feature] += shift
            mine.append(bool(stream.step(x)[0][feature]))
        hits.append(mine)
    return hits


def test_small_persistent_shift_is_found_by_sequential_evidence() -> None:
    # 0.1 sigma at 1,000-row windows: one window alone rarely suffices (z = 3 against a
    # critical value near 3.8), pooled windows do.
    hits = _shift_runs(0.1, runs=10, after=8)
    assert sum(h[0] for h in hits) <= 6
    assert sum(any(h[:4]) for h in hits) >= 8
    assert np.mean([np.mean(h[3:]) for h in hits]) >= 0.9
    # 0.3 sigma: the first window.
    assert all(h[0] for h in _shift_runs(0.3, runs=5, after=1, feature=2))


def test_scale_change_and_broken_correlation() -> None:
    rng = np.random.default_rng(3)
    cov = np.array([[1.0, 0.9, 0, 0], [0.9, 1.0, 0, 0], [0, 0, 1.0, 0], [0, 0, 0, 1.0]])
    reference = rng.multivariate_normal(np.zeros(4), cov, 10_000)
    stream = _Stream(reference, DriftConfig(window_rows=1000))
    x = rng.multivariate_normal(np.zeros(4), cov, 1000)
    x[:, 3] *= 1.3
    flags, mv = stream.step(x)
    assert flags.tolist() == [False, False, False, True]
    # Broken correlation: every marginal unchanged, the joint distribution not.
    for _ in range(20):
        stream.step(rng.multivariate_normal(np.zeros(4), cov, 1000))
    broken = rng.multivariate_normal(np.zeros(4), cov, 1000)
    broken[:, 1] = rng.permutation(broken[:, 1])
    flags, mv = stream.step(broken)
    assert mv and not flags[:3].any()


def test_effect_floor_keeps_huge_windows_from_flagging_trivia() -> None:
    rng = np.random.default_rng(4)
    reference = rng.normal(size=(200_000, 1))
    shifted = rng.normal(size=(100_000, 1)) + 0.02  # z about 5.8, effect 0.02 sigma
    for floors, expected in (({}, False), ({"f0": 0.0}, True)):
        stream = _Stream(
            reference,
            DriftConfig(window_rows=100_000, effect_floors=floors, multivariate=False),
        )
        flags, _ = stream.step(shifted)
        assert bool(flags[0]) is expected, floors


@pytest.fixture
def captured() -> Iterator[mlotel.testing.CapturedTelemetry]:
    with mlotel.testing.capture_telemetry() as telemetry:
        yield telemetry


def test_decisions_are_exported_and_reach_on_drift(captured: Any) -> None:
    rng = np.random.default_rng(5)
    x = rng.normal(size=(5000, 3))
    reference = Profile.from_data(x, feature_names=["a", "b", "c"], prediction=(x[:, 0] > 0))
    assert reference.multivariate is not None
    events: queue.Queue[Any] = queue.Queue()
    predict = mlotel.instrument(
        lambda rows: (rows[:, 0] > 0),
        model_name="clf",
        reference=reference,
        drift=DriftConfig(window_rows=1000, on_drift=events.put),
    )
    shifted = rng.normal(size=(1000, 3)) + np.array([0.6, 0.0, 0.0])
    predict(shifted)
    captured.flush()
    detected = {
        p.attributes["ml.feature.name"]: p.value
        for p in captured.points("ml.feature.drift.detected")
    }
    assert detected == {"a": 1.0, "b": 0.0, "c": 0.0}
    dataset = {
        p.attributes["ml.drift.method"]: p.value
        for p in captured.points("ml.dataset.drift.detected")
    }
    assert dataset["features"] == 1.0 and set(dataset) == {"features", "multivariate"}
    assert captured.points("ml.prediction.drift.detected")[0].value == 1.0  # more 1s now
    shift = captured.points(
        "ml.feature.drift", {"ml.feature.name": "a", "ml.drift.method": "shift"}
    )
    assert shift[0].value == pytest.approx(0.6, abs=0.1)
    p_value = captured.points(
        "ml.feature.drift", {"ml.feature.name": "a", "ml.drift.method": "p_value"}
    )
    assert p_value[0].value <= 0.01
    # The fleet rules' inputs: reference size, bin scores, critical values, effect floor.
    size = captured.points("ml.feature.reference.size", {"ml.feature.name": "a"})[0].value
    assert size == 5000
    scores = captured.points("ml.feature.bin.score", {"ml.feature.name": "a"})
    assert len(scores) == len(reference["a"].bin_counts) == 25
    limits = {
        p.attributes["ml.drift.method"]: p.value
        for p in captured.points("ml.feature.drift.limit", {"ml.feature.name": "a"})
    }
    assert set(limits) == {"location", "chisquare", "effect"} and limits["effect"] == 0.03
    seen = set()
    while not {"a", "prediction"} <= seen:  # and "" when the multivariate test flags
        event = events.get(timeout=5)
        seen.add(event.feature)
        assert event.decision == "calibrated" and event.value <= event.threshold == 0.01
    assert seen <= {"a", "prediction", ""}


def test_threshold_decision_keeps_the_old_rule(captured: Any) -> None:
    rng = np.random.default_rng(6)
    reference = Profile.from_data(rng.normal(size=(5000, 2)), feature_names=["a", "b"], bins=10)
    predict = mlotel.instrument(
        lambda rows: rows[:, 0],
        model_name="old",
        reference=reference,
        drift=DriftConfig(decision="threshold", multivariate=False, window_rows=1000),
    )
    predict(rng.normal(size=(1000, 2)) + np.array([0.15, 0.0]))  # PSI about 0.03: under 0.1
    captured.flush()
    assert {p.value for p in captured.points("ml.feature.drift.detected")} == {0.0}
    predict(rng.normal(size=(1000, 2)) + np.array([1.0, 0.0]))
    captured.flush()
    detected = {
        p.attributes["ml.feature.name"]: p.value
        for p in captured.points("ml.feature.drift.detected")
    }
    assert detected == {"a": 1.0, "b": 0.0}


V1_PROFILE = {
    "format": "mlotel.profile",
    "schema_version": 1,
    "created": "2025-06-01T00:00:00+00:00",
    "rows": 1000,
    "features": [
        {
            "name": "x", "kind": "numeric", "role": "feature", "count": 1000, "missing": 0,
            "non_finite": 0, "min": -3.2, "max": 3.1, "mean": 0.0, "std": 1.0,
            "quantiles": {"0.5": 0.0},
            "edges": [-1.2816, -0.8416, -0.5244, -0.2533, 0.0, 0.2533, 0.5244, 0.8416, 1.2816],
            "bin_counts": [100] * 10,
        },
        {
            "name": "plan", "kind": "categorical", "role": "feature", "count": 1000,
            "missing": 0, "non_finite": 0, "categories": ["a", "b"], "known_categories": [],
            "value_type": "text", "bin_counts": [600, 400, 0],
        },
    ],
}  # fmt: skip


def test_version_1_profiles_load_and_get_calibrated_decisions(
    tmp_path: Any, captured: Any
) -> None:
    path = tmp_path / "old.json"
    path.write_text(json.dumps(V1_PROFILE))
    profile = Profile.load(path)
    assert profile.schema_version == 1 and profile.multivariate is None
    assert len(profile["x"].bin_counts) == 10
    assert Profile.from_json(profile.to_json()).schema_version == 2  # saved as the new one
    predict = mlotel.instrument(
        lambda rows: rows, model_name="v1", reference=str(path), drift=DriftConfig(window_rows=600)
    )
    rng = np.random.default_rng(8)
    predict({"x": rng.normal(0.5, 1.0, 600), "plan": rng.choice(["a", "b"], 600, p=[0.2, 0.8])})
    captured.flush()
    detected = {
        p.attributes["ml.feature.name"]: p.value
        for p in captured.points("ml.feature.drift.detected")
    }
    assert detected == {"x": 1.0, "plan": 1.0}
    dataset = captured.points("ml.dataset.drift.detected")
    assert [p.attributes["ml.drift.method"] for p in dataset] == ["features"]  # no PCA model


def test_decision_windows_close_by_rows_and_by_age() -> None:
    rng = np.random.default_rng(9)
    config = DriftConfig(window_rows=1000, window_seconds=3600, min_samples=300)
    stream = _Stream(rng.normal(size=(5000, 4)), config)
    stream.step(rng.normal(size=(2500, 4)))  # two windows of 1,000 close; 500 rows wait
    assert stream.monitor._in_evidence.filled == 2 and stream.monitor._in_block.rows == 500
    stream.monitor._in_block.started -= 3600  # the open window is an hour old
    stream.step(rng.normal(size=(10, 4)))
    assert stream.monitor._in_evidence.filled == 3 and stream.monitor._in_block.rows == 0


@pytest.mark.parametrize(
    "bad",
    [
        {"decision": "vote"},
        {"false_alarm_rate": 0.0},
        {"false_alarm_rate": 1.5},
        {"effect_floor": -0.1},
        {"effect_floors": {"a": -1}},
        {"sequential_lags": ()},
        {"sequential_lags": (0, 2)},
        {"multivariate_share": 1.0},
        {"test_shares": {"median": 1.0}},
    ],
)
def test_config_rejects_bad_decision_settings(bad: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="DriftConfig"):
        DriftConfig(**bad)


# --- the statistics themselves ----------------------------------------------------------


def test_distribution_functions_match_scipy() -> None:
    for p in (0.3, 0.05, 1e-3, 1e-6, 1e-12):
        assert normal_isf(p) == pytest.approx(stats.norm.isf(p), rel=1e-9)
        assert normal_sf(normal_isf(p)) == pytest.approx(p, rel=1e-7)
    for df in (1, 2, 9, 49, 200):
        for x in (0.5, df, 3 * df + 10):
            assert chi2_sf(x, df) == pytest.approx(stats.chi2.sf(x, df), rel=1e-8, abs=1e-300)
        assert chi2_isf(1e-4, df) == pytest.approx(stats.chi2.isf(1e-4, df), rel=1e-8)


def test_location_test_equals_two_sample_theory_and_small_bins_pool() -> None:
    column = ReferenceColumn("x", np.full(50, 200.0), ordered=True)
    plan = DecisionPlan(0.01, columns=1, multivariate=False)
    counts = column.counts_like(1000) + np.linspace(-2, 2, 50)  # a slight tilt
    result = {r.test: r for r in column_decision(column, [(1, counts)], plan, 0.0, 1).results}
    t = float(np.dot(column.location_scores, counts)) / 1000
    z = t / math.sqrt(column.location_info * (1 / 1000 + 1 / 10_000))
    assert result["location"].statistic == pytest.approx(abs(z))
    # 100 window values over 50 bins: neighbours pooled into groups expecting >= 5 values.
    groups = column.groups(100)
    assert groups.tolist() == sorted(groups.tolist()) and groups.max() + 1 == 16
    assert np.bincount(groups, weights=column.shares * 100).min() >= 5
    categories = ReferenceColumn("c", np.array([900.0, 90.0, 9.0, 1.0]), ordered=False)
    assert categories.groups(100).tolist() == [1, 0, 0, 0]  # the rare ones join a group
    assert categories.tests == ("chisquare",)


def test_fleet_limits_match_the_plan() -> None:
    column = ReferenceColumn("x", np.full(10, 100.0), ordered=True)
    plan = DecisionPlan(0.01, columns=4, multivariate=True)
    limits = fleet_limits(column, plan, 0.05)
    rate = 0.01 * 0.95 / 4
    assert limits["location"] == pytest.approx(stats.norm.isf(rate * 0.9 / 2), rel=1e-9)
    assert limits["chisquare"] == pytest.approx(stats.chi2.isf(rate * 0.1, 9), rel=1e-8)
    assert limits["effect"] == 0.05


def test_evidence_ring_pools_the_last_windows() -> None:
    evidence = Evidence(bins=1, lags=(1, 2, 4))
    for value in range(1, 7):
        evidence.push(np.array([float(value)]))
    assert [(lag, c.tolist()) for lag, c in evidence.pooled()] == [
        (1, [6.0]),
        (2, [11.0]),
        (4, [18.0]),
    ]


def test_multivariate_model_round_trips_and_bad_entries_are_clear_errors() -> None:
    rng = np.random.default_rng(10)
    a = rng.normal(size=1000)
    profile = Profile.from_data({"a": a, "b": a + rng.normal(scale=0.5, size=1000)})
    model = profile.multivariate
    assert model is not None and model.features == ("a", "b")
    assert model.fit_rows == model.calibration_rows == 500  # held-out half calibrates
    assert Profile.from_json(profile.to_json()) == profile
    data = json.loads(profile.to_json())
    good = list(data["multivariate"]["components"])
    data["multivariate"]["components"] = [[1.0, 0.0], [0.0, 1.0]]  # no residual space left
    with pytest.raises(ProfileError, match=r"ref\.json: multivariate: needs 1 to"):
        Profile.from_dict(data, source="ref.json")
    data["multivariate"]["components"] = good
    del data["multivariate"]["error_mean"]
    with pytest.raises(ProfileError, match="multivariate lacks field 'error_mean'"):
        Profile.from_dict(data, source="ref.json")
    assert Profile.from_data({"a": a}, multivariate=True).multivariate is None  # one feature
