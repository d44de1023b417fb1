"""scikit-learn auto-instrumentation: every estimator, one inference per outer call."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
import sklearn.base
import sklearn.model_selection._validation as validation
from opentelemetry.instrumentation.utils import suppress_instrumentation
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.linear_model import LogisticRegression
from sklearn.linear_model._base import LinearClassifierMixin
from sklearn.model_selection import GridSearchCV, cross_val_score
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

import mlotel
from mlotel import semconv
from mlotel.integrations import MLInstrumentor, not_inference, set_model_name
from mlotel.integrations.sklearn import SklearnInstrumentor
from mlotel.testing import CapturedTelemetry, capture_telemetry, log_payload
from support.instrumentation import instrumented

RNG = np.random.default_rng(3)
X = RNG.random((80, 3))
Y = (X[:, 0] + X[:, 1] > 1.0).astype(int)


def _originals() -> dict[tuple[type, str], Any]:
    owners = (LinearClassifierMixin, Pipeline, StandardScaler, ClassifierMixin, BaseEstimator)
    names = ("predict", "predict_proba", "transform", "fit", "score", "fit_transform")
    found = {(o, n): vars(o)[n] for o in owners for n in names if n in vars(o)}
    found.update({(validation, n): vars(validation)[n] for n in ("_fit_and_score", "_score")})  # type: ignore[dict-item]
    return found


@pytest.fixture
def captured() -> Iterator[CapturedTelemetry]:
    with capture_telemetry() as cap, instrumented(SklearnInstrumentor):
        yield cap


def _inferences(cap: CapturedTelemetry) -> int:
    return cap.histogram_count(semconv.INFERENCE_DURATION.name)


def test_predict_emits_span_metrics_and_log(captured: CapturedTelemetry) -> None:
    clf = LogisticRegression().fit(X, Y)
    with suppress_instrumentation():
        expected = clf.classes_[(clf.decision_function(X[:4]) > 0).astype(int)]
    result = clf.predict(X[:4])
    assert np.array_equal(result, expected)
    (span,) = captured.spans
    assert span.name == "predict LogisticRegression"
    attrs = dict(span.attributes or {})
    assert attrs[semconv.ATTR_MODEL_NAME] == "LogisticRegression"
    assert attrs[semconv.ATTR_MODEL_FRAMEWORK] == "sklearn"
    assert attrs[semconv.ATTR_BATCH_SIZE] == 4
    assert semconv.ATTR_MODEL_VERSION not in attrs
    assert captured.counter_value(semconv.PREDICTIONS.name) == 4
    (log,) = captured.logs
    assert log.span_id == span.context.span_id
    assert log_payload(log)[semconv.ATTR_FEATURES]["f0"] == pytest.approx(X[:4, 0].tolist())


def test_predict_proba_gives_scores_and_class_labels(captured: CapturedTelemetry) -> None:
    clf = LogisticRegression().fit(X, np.where(Y == 1, "yes", "no"))
    proba = clf.predict_proba(X[:10])
    assert captured.histogram_count(semconv.PREDICTION_SCORE.name) == 10
    yes = int((proba[:, 1] > 0.5).sum())
    assert captured.counter_value(semconv.PREDICTIONS.name, {"ml.prediction.class": "yes"}) == yes


def test_pipeline_is_one_inference_per_outer_call(captured: CapturedTelemetry) -> None:
    pipe = Pipeline([("scale", StandardScaler()), ("clf", LogisticRegression())]).fit(X, Y)
    assert _inferences(captured) == 0  # fit's inner transform/predict calls are training
    for _ in range(5):
        pipe.predict(X[:3])
    pipe.predict_proba(X[:3])
    assert _inferences(captured) == 6
    assert [s.name for s in captured.spans] == ["predict Pipeline"] * 5 + ["predict_proba Pipeline"]


def test_meta_estimators_and_cross_validation(captured: CapturedTelemetry) -> None:
    cross_val_score(LogisticRegression(), X, Y, cv=3)
    search = GridSearchCV(LogisticRegression(), {"C": [0.1, 1.0]}, cv=3).fit(X, Y)
    search.score(X, Y)
    assert _inferences(captured) == 0
    search.predict(X[:2])
    (span,) = captured.spans
    assert span.name == "predict GridSearchCV"


def test_estimators_imported_later_and_user_subclasses(captured: CapturedTelemetry) -> None:
    from sklearn.neighbors import KNeighborsClassifier  # first import after instrument()

    class Thresholded(BaseEstimator, ClassifierMixin):
        def fit(self, x: Any, y: Any) -> Thresholded:
            self.classes_ = np.array([0, 1])
            return self

        def predict(self, x: Any) -> np.ndarray:
            return (np.asarray(x)[:, 0] > 0.5).astype(int)

    class MyLogistic(LogisticRegression):
        def predict(self, x: Any) -> np.ndarray:
            return super().predict(x)  # the parent's wrapper sees a nested call

    KNeighborsClassifier(n_neighbors=3).fit(X, Y).predict(X[:2])
    Thresholded().fit(X, Y).predict(X[:3])
    MyLogistic().fit(X, Y).predict(X[:4])
    names = [s.name for s in captured.spans]
    assert names == ["predict KNeighborsClassifier", "predict Thresholded", "predict MyLogistic"]
    attrs = dict(captured.spans[2].attributes or {})
    assert attrs[semconv.ATTR_MODEL_FRAMEWORK] == "sklearn"  # found through the MRO
    assert _inferences(captured) == 3


def test_model_names_from_attribute_and_mapping() -> None:
    with capture_telemetry() as cap:
        with instrumented(
            SklearnInstrumentor,
            model_names={LogisticRegression: "churn", "StandardScaler": "scaler"},
            model_versions={"churn": "4"},
        ):
            clf = LogisticRegression().fit(X, Y)
            clf.predict(X[:1])
            StandardScaler().fit(X).transform(X[:2])
            set_model_name(LogisticRegression().fit(X, Y), "fraud", "9").predict(X[:1])
        spans = {s.name: dict(s.attributes or {}) for s in cap.spans}
    assert spans["predict churn"][semconv.ATTR_MODEL_VERSION] == "4"
    assert "transform scaler" in spans
    assert spans["predict fraud"][semconv.ATTR_MODEL_VERSION] == "9"


def test_nested_spans_are_children_without_metrics() -> None:
    with capture_telemetry() as cap:
        with instrumented(SklearnInstrumentor, nested_spans=True):
            pipe = Pipeline([("scale", StandardScaler()), ("clf", LogisticRegression())])
            pipe.fit(X, Y).predict(X[:2])
        spans = {s.name: s for s in cap.spans}
        assert _inferences(cap) == 1
    outer = spans["predict Pipeline"]
    for child in ("transform StandardScaler", "predict LogisticRegression"):
        assert spans[child].parent is not None
        assert spans[child].parent.span_id == outer.context.span_id


def test_suppression_and_not_inference(captured: CapturedTelemetry) -> None:
    clf = LogisticRegression().fit(X, Y)
    with suppress_instrumentation():
        clf.predict(X[:2])
    with not_inference():
        clf.predict(X[:2])
    assert _inferences(captured) == 0
    clf.predict(X[:2])
    assert _inferences(captured) == 1


class Raising(BaseEstimator):
    def fit(self, x: Any, y: Any = None) -> Raising:
        return self

    def predict(self, x: Any) -> Any:
        raise ValueError("bad rows")


class ReturnsNone(BaseEstimator):
    def predict(self, x: Any) -> Any:
        return None


class ReturnsText(BaseEstimator):
    def predict(self, x: Any) -> Any:
        return "not an array"


class BrokenClasses(BaseEstimator):
    @property
    def classes_(self) -> Any:
        raise RuntimeError("classes_ is broken")

    def predict(self, x: Any) -> Any:
        return np.array([1])


def test_bad_models_pass_through_unchanged(captured: CapturedTelemetry) -> None:
    with pytest.raises(ValueError, match="bad rows"):
        Raising().predict(X[:2])
    assert ReturnsNone().predict(X[:2]) is None
    assert ReturnsText().predict(X[:2]) == "not an array"
    assert ReturnsText().predict("also not an array") == "not an array"
    assert BrokenClasses().predict(X[:1]).tolist() == [1]
    names = [s.name for s in captured.spans]
    assert names == [
        "predict Raising",
        "predict ReturnsNone",
        "predict ReturnsText",
        "predict ReturnsText",
        "predict BrokenClasses",
    ]
    errors = captured.points(semconv.INFERENCE_DURATION.name, {"error.type": "ValueError"})
    assert sum(p.count for p in errors) == 1
    # the estimator whose classes_ raises is still observed (without class labels),
    # and the fault counted
    assert _inferences(captured) == 5
    assert (
        captured.counter_value(
            semconv.INTERNAL_ERRORS.name, {"mlotel.component": "integrations.model_attribute"}
        )
        == 1
    )


def test_estimator_without_classes_is_observed(captured: CapturedTelemetry) -> None:
    from sklearn.linear_model import LinearRegression

    reg = LinearRegression().fit(X, X[:, 0])
    assert not hasattr(reg, "classes_")
    out = reg.predict(X[:5])
    assert out.shape == (5,)
    assert _inferences(captured) == 1
    assert captured.counter_value(semconv.INTERNAL_ERRORS.name) == 0


def test_uninstrument_restores_every_original() -> None:
    before = _originals()
    hook_before = vars(sklearn.base.BaseEstimator).get("__init_subclass__")
    with capture_telemetry() as cap:
        SklearnInstrumentor().instrument()
        assert (
            vars(LinearClassifierMixin)["predict"] is not before[(LinearClassifierMixin, "predict")]
        )
        SklearnInstrumentor().uninstrument()
        assert _originals() == before
        assert all(_originals()[k] is v for k, v in before.items())
        assert vars(sklearn.base.BaseEstimator).get("__init_subclass__") is hook_before
        clf = LogisticRegression().fit(X, Y)
        clf.predict(X[:2])

        class Later(BaseEstimator):
            def predict(self, x: Any) -> Any:
                return np.zeros(len(x))

        assert "predict" in vars(Later) and not hasattr(vars(Later)["predict"], "__wrapped__")
        Later().predict(X[:2])
        assert cap.spans == []


def test_auto_instrument_honours_disabled_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_PYTHON_DISABLED_INSTRUMENTATIONS", "torch, sklearn")
    assert mlotel.auto_instrument(["sklearn", "torch"]) == []
    monkeypatch.setenv("OTEL_PYTHON_DISABLED_INSTRUMENTATIONS", "torch")
    try:
        assert mlotel.auto_instrument(["sklearn", "torch"]) == ["sklearn"]
        with capture_telemetry() as cap:
            LogisticRegression().fit(X, Y).predict(X[:1])
            assert _inferences(cap) == 1
    finally:
        mlotel.integrations.uninstrument_all()


def test_explicit_instrumentation_around_an_auto_instrumented_model(
    captured: CapturedTelemetry,
) -> None:
    clf = LogisticRegression().fit(X, Y)

    @mlotel.instrument(model_name="churn")
    def predict(rows: Any) -> Any:
        return clf.predict(rows)

    predict(X[:2])
    mlotel.instrument(clf, model_name="proxied").predict(X[:2])
    with mlotel.inference("block") as call:
        call.record(features=X[:2], prediction=clf.predict(X[:2]))
    assert [s.name for s in captured.spans] == ["predict churn", "predict proxied", "predict block"]
    assert _inferences(captured) == 3


class _NotInstalled(MLInstrumentor):
    _instance = None  # BaseInstrumentor keeps one instance per class
    _library = "absent"
    _module = "mlotel_absent_library"
    _instruments = ("mlotel-absent-library >= 1",)

    def _patch(self, module: Any) -> None:
        raise AssertionError("never patched")


def test_missing_library_is_skipped_quietly() -> None:
    target = _NotInstalled()
    # the launcher passes skip_dep_check=True: each instrumentor checks its own library
    assert target.instrument(skip_dep_check=True) is None
    assert not target.is_instrumented_by_opentelemetry
