"""LightGBM auto-instrumentation: Booster and the scikit-learn API."""

from __future__ import annotations

from collections.abc import Iterator

import lightgbm as lgb
import numpy as np
import pytest

from mlotel import semconv
from mlotel.integrations.lightgbm import LightGBMInstrumentor
from mlotel.testing import CapturedTelemetry, capture_telemetry
from support.instrumentation import instrumented

RNG = np.random.default_rng(6)
X = RNG.random((80, 3))
Y = (X[:, 0] > 0.5).astype(int)


@pytest.fixture
def captured() -> Iterator[CapturedTelemetry]:
    names = {"LGBMClassifier": "churn-lgbm"}
    with capture_telemetry() as cap, instrumented(LightGBMInstrumentor, model_names=names):
        yield cap


def test_sklearn_api_names_and_scores(captured: CapturedTelemetry) -> None:
    clf = lgb.LGBMClassifier(n_estimators=3, verbose=-1).fit(X, np.where(Y == 1, "yes", "no"))
    assert captured.spans == []  # fit (and its inner predictions) is training
    proba = clf.predict_proba(X[:6])
    clf.predict(X[:6])
    assert [s.name for s in captured.spans] == [
        "predict_proba churn-lgbm",
        "predict churn-lgbm",  # the inner Booster.predict is not a second inference
    ]
    assert dict(captured.spans[0].attributes or {})[semconv.ATTR_MODEL_FRAMEWORK] == "lightgbm"
    assert captured.histogram_count(semconv.PREDICTION_SCORE.name) == 6
    yes = int((proba[:, 1] > 0.5).sum())
    assert (
        captured.counter_value(semconv.PREDICTIONS.name, {"ml.prediction.class": "yes"}) == 2 * yes
    )


def test_booster_predict(captured: CapturedTelemetry) -> None:
    booster = lgb.train({"verbose": -1}, lgb.Dataset(X, label=Y), num_boost_round=2)
    assert captured.spans == []
    out = booster.predict(X[:9])
    assert out.shape == (9,)
    (span,) = captured.spans
    assert span.name == "predict Booster"
    assert dict(span.attributes or {})[semconv.ATTR_BATCH_SIZE] == 9


def test_bad_input_raises_unchanged(captured: CapturedTelemetry) -> None:
    booster = lgb.train({"verbose": -1}, lgb.Dataset(X, label=Y), num_boost_round=2)
    with pytest.raises(Exception) as raised:
        booster.predict(np.zeros((2, 7)))  # wrong width
    failed = captured.points(
        semconv.INFERENCE_DURATION.name, {"error.type": type(raised.value).__qualname__}
    )
    assert sum(p.count for p in failed) == 1


def test_uninstrument_restores_originals() -> None:
    owners = [
        (lgb.basic.Booster, "predict"),
        (lgb.sklearn.LGBMModel, "predict"),
        (lgb.sklearn.LGBMClassifier, "predict_proba"),
        (lgb.engine, "train"),
        (lgb, "train"),
    ]
    before = {key: vars(key[0])[key[1]] for key in owners}
    with capture_telemetry() as cap:
        LightGBMInstrumentor().instrument()
        LightGBMInstrumentor().uninstrument()
        assert all(vars(o)[n] is before[(o, n)] for o, n in owners)
        lgb.LGBMRegressor(n_estimators=2, verbose=-1).fit(X, X[:, 0]).predict(X[:3])
        assert cap.spans == []
