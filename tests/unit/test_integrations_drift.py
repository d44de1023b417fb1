"""Auto-instrumented models get the drift monitor through ``references`` or
``MLOTEL_REFERENCES``; one monitor per model, shared by its operations."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

from mlotel.drift import Profile
from mlotel.integrations.sklearn import SklearnInstrumentor
from mlotel.testing import capture_telemetry

RNG = np.random.default_rng(11)
X = RNG.normal(size=(600, 3))
Y = (X[:, 0] > 0).astype(int)
NAMES = ["f0", "f1", "f2"]  # Profile of a plain array names its columns f0..fN


def _binned_rows(points: list, feature: str) -> float:
    return sum(p.value for p in points if p.attributes["ml.feature.name"] == feature)


def test_references_option_monitors_drift_once_per_row() -> None:
    reference = Profile.from_data(X, feature_names=NAMES)
    clf = LogisticRegression().fit(X, Y)
    with capture_telemetry() as captured:
        SklearnInstrumentor().instrument(references={"LogisticRegression": reference})
        try:
            for _ in range(3):
                clf.predict(X[:100] + 3.0)  # shifted: drifted inputs
                clf.predict_proba(X[:100] + 3.0)
        finally:
            SklearnInstrumentor().uninstrument()
        captured.flush()
        counted = _binned_rows(captured.points("ml.feature.bin.count"), "f0")
        drift = {
            p.attributes["ml.feature.name"]: p.value
            for p in captured.points("ml.feature.drift")
            if p.attributes["ml.drift.method"] == "psi"
        }
    assert counted == 600  # both operations, one monitor: each row binned once
    assert set(drift) >= set(NAMES) and min(drift[n] for n in NAMES) > 1.0


def test_mlotel_references_env_loads_a_saved_profile(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "ref.json"
    Profile.from_data(X, feature_names=NAMES).save(path)
    monkeypatch.setenv("MLOTEL_REFERENCES", f"LogisticRegression={path}")
    clf = LogisticRegression().fit(X, Y)
    with capture_telemetry() as captured:
        SklearnInstrumentor().instrument()
        try:
            clf.predict(X[:50])
        finally:
            SklearnInstrumentor().uninstrument()
        captured.flush()
        assert _binned_rows(captured.points("ml.feature.bin.count"), "f1") == 50


@pytest.mark.parametrize("value", ["no-equals-sign", "churn="])
def test_a_malformed_mlotel_references_is_a_clear_error(
    value: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLOTEL_REFERENCES", value)
    with pytest.raises(ValueError, match="MLOTEL_REFERENCES: expected MODEL=PATH"):
        SklearnInstrumentor().instrument()
    SklearnInstrumentor().uninstrument()
