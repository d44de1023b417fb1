"""XGBoost auto-instrumentation: Booster and the scikit-learn API (xgboost-cpu wheel)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
import xgboost as xgb
import xgboost.training

from mlotel import semconv
from mlotel.integrations.xgboost import XGBoostInstrumentor
from mlotel.testing import CapturedTelemetry, capture_telemetry, log_payload
from support.instrumentation import instrumented

RNG = np.random.default_rng(5)
X = RNG.random((60, 4)).astype(np.float32)
Y = (X[:, 0] > 0.5).astype(int)


@pytest.fixture
def captured() -> Iterator[CapturedTelemetry]:
    with capture_telemetry() as cap, instrumented(XGBoostInstrumentor):
        yield cap


def test_dependency_check_accepts_either_distribution() -> None:
    # this environment has xgboost-cpu (no "xgboost" distribution): no conflict
    assert XGBoostInstrumentor()._check_dependency_conflicts() is None


def test_sklearn_api_is_one_inference_per_call(captured: CapturedTelemetry) -> None:
    clf = xgb.XGBClassifier(n_estimators=3, max_depth=2).fit(X, Y)
    assert captured.histogram_count(semconv.INFERENCE_DURATION.name) == 0  # fit is training
    labels = clf.predict(X[:5])
    proba = clf.predict_proba(X[:5])
    assert labels.shape == (5,) and proba.shape == (5, 2)
    assert [s.name for s in captured.spans] == [
        "predict XGBClassifier",
        "predict_proba XGBClassifier",
    ]
    attrs = dict(captured.spans[0].attributes or {})
    assert attrs[semconv.ATTR_MODEL_FRAMEWORK] == "xgboost"
    assert attrs[semconv.ATTR_BATCH_SIZE] == 5
    assert captured.histogram_count(semconv.PREDICTION_SCORE.name) == 5
    assert captured.counter_value(semconv.PREDICTIONS.name) == 10


def test_booster_predict_on_a_dmatrix(captured: CapturedTelemetry) -> None:
    booster = xgb.train({"max_depth": 2}, xgb.DMatrix(X, label=Y), num_boost_round=2)
    assert captured.spans == []  # xgboost.train is training
    names = ["a", "b", "c", "d"]
    out = booster.predict(xgb.DMatrix(X[:7], feature_names=names))
    assert out.shape == (7,)
    (span,) = captured.spans
    assert span.name == "predict Booster"
    assert dict(span.attributes or {})[semconv.ATTR_BATCH_SIZE] == 7
    features = log_payload(captured.logs[0])[semconv.ATTR_FEATURES]
    assert list(features) == names
    assert features["a"] == pytest.approx(X[:7, 0].tolist())


def test_uninstrument_restores_originals() -> None:
    owners = [
        (xgb.core.Booster, "predict"),
        (xgb.core.Booster, "inplace_predict"),
        (xgb.sklearn.XGBModel, "predict"),
        (xgb.sklearn.XGBClassifier, "predict_proba"),
        (xgboost.training, "train"),
        (xgb, "train"),
    ]
    before = {key: vars(key[0])[key[1]] for key in owners}
    with capture_telemetry() as cap:
        XGBoostInstrumentor().instrument()
        assert vars(xgb.core.Booster)["predict"] is not before[(xgb.core.Booster, "predict")]
        XGBoostInstrumentor().uninstrument()
        assert all(vars(o)[n] is before[(o, n)] for o, n in owners)
        xgb.XGBRegressor(n_estimators=2).fit(X, X[:, 0]).predict(X[:3])
        assert cap.spans == []


def test_user_subclass_with_both_sklearn_and_xgboost_instrumented() -> None:
    from mlotel.integrations.sklearn import SklearnInstrumentor

    with capture_telemetry() as cap:
        SklearnInstrumentor().instrument()
        XGBoostInstrumentor().instrument()
        try:

            class Calibrated(xgb.XGBClassifier):
                def predict_proba(self, x: Any, **kwargs: Any) -> Any:
                    return super().predict_proba(x, **kwargs)

            own = vars(Calibrated)["predict_proba"]
            assert not hasattr(own.__wrapped__, "__wrapped__")  # wrapped once, not twice
            clf = Calibrated(n_estimators=2).fit(X, Y)
            clf.predict_proba(X[:3])
            (span,) = cap.spans
            assert span.name == "predict_proba Calibrated"
            assert dict(span.attributes or {})[semconv.ATTR_MODEL_FRAMEWORK] == "xgboost"
        finally:
            SklearnInstrumentor().uninstrument()
            XGBoostInstrumentor().uninstrument()
        assert not hasattr(vars(Calibrated)["predict_proba"], "__wrapped__")
