"""Auto-instrumentation of scikit-learn estimators.

Every estimator's ``predict``, ``predict_proba``, ``predict_log_proba``,
``decision_function``, ``transform`` and ``score_samples`` is observed, including
estimators imported after instrumentation and your own ``BaseEstimator``
subclasses (a hook on ``BaseEstimator.__init_subclass__`` wraps classes as they
are defined). A ``Pipeline`` or meta-estimator is one inference: calls it makes
into its steps pass through (``nested_spans=True`` adds child spans for them,
without metrics). Calls made while training are not inferences: anything inside
``fit``, ``fit_transform``, ``fit_predict``, ``partial_fit``, ``score`` and
scikit-learn's cross-validation helpers.

>>> from mlotel.integrations.sklearn import SklearnInstrumentor
>>> SklearnInstrumentor().instrumentation_dependencies()
('scikit-learn >= 1.3',)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .._instrument import MODEL_METHODS
from ._base import MLInstrumentor

__all__ = ["INFERENCE_METHODS", "TRAINING_METHODS", "SklearnInstrumentor"]

INFERENCE_METHODS = MODEL_METHODS
"""Estimator methods observed as inferences (the same as ``mlotel.instrument(model)``'s)."""

TRAINING_METHODS = ("fit", "fit_transform", "fit_predict", "partial_fit", "score")
"""Estimator methods inside which model calls are not inferences."""

_CROSS_VALIDATION = ("_fit_and_score", "_fit_and_predict", "_score", "_permutation_test_score")
"""sklearn.model_selection._validation helpers behind every public cross-validation
function (cross_val_score, cross_validate, learning_curve, ...): patching the module
globals covers functions the user imported before instrumentation too."""

_OTHER_LIBRARIES = ("xgboost", "lightgbm")
"""Their sklearn-API estimators belong to their own instrumentors (entry points
``xgboost``, ``lightgbm``), so that disabling one of them turns those off."""


class SklearnInstrumentor(MLInstrumentor):
    """Observes scikit-learn inference calls (entry point name ``sklearn``).

    Options of ``instrument(...)``: ``model_names``, ``model_versions``, ``outputs``
    (see :class:`~mlotel.integrations._base.MLInstrumentor`) and ``nested_spans``
    (child spans, without metrics, for the steps of a pipeline; default off).
    """

    _library = "sklearn"
    _module = "sklearn"
    _instruments = ("scikit-learn >= 1.3",)

    def _patch(self, module: Any) -> None:
        import sklearn.base
        import sklearn.model_selection._validation as validation

        wrappers = self._estimator_wrappers(INFERENCE_METHODS, TRAINING_METHODS)
        self._wrap_class_tree(
            sklearn.base.BaseEstimator, lambda cls: self._patch_class(cls, wrappers)
        )
        self._wrap_training_functions((validation,), _CROSS_VALIDATION)

    def _patch_class(self, cls: type, wrappers: dict[str, Callable[..., Any]]) -> None:
        if cls.__module__.partition(".")[0] in _OTHER_LIBRARIES:
            return
        # Mixins (TransformerMixin.fit_transform, ClassifierMixin.score) sit in the MRO.
        self._wrap_methods((c for c in cls.__mro__ if c is not object), wrappers)
