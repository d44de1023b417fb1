"""Auto-instrumentation of XGBoost: ``Booster.predict`` / ``inplace_predict`` and the
scikit-learn API (``XGBClassifier.predict``, ``predict_proba``, ``XGBRegressor.predict``,
...), including subclasses defined later. ``xgboost.train`` / ``cv`` and ``fit`` are
training: predictions made inside them are not inferences.

Either distribution works: ``xgboost`` or the CPU-only ``xgboost-cpu``.

>>> from mlotel.integrations.xgboost import XGBoostInstrumentor
>>> XGBoostInstrumentor()._instruments_any
('xgboost >= 1.7', 'xgboost-cpu >= 1.7')
"""

from __future__ import annotations

from typing import Any

from .._call import input_of
from ._base import (
    MLInstrumentor,
    inference_wrapper,
)

__all__ = ["XGBoostInstrumentor"]

_SKLEARN_API_METHODS = ("predict", "predict_proba", "apply")
_TRAINING_FUNCTIONS = ("train", "cv")


class _DMatrixRows:
    """A DMatrix seen as rows: its shape for the batch size, rows read only for a payload."""

    __slots__ = ("_matrix", "shape")

    def __init__(self, matrix: Any) -> None:
        self._matrix = matrix
        self.shape = (int(matrix.num_row()), int(matrix.num_col()))

    def __getitem__(self, rows: slice) -> Any:
        stop = min(self.shape[0], rows.stop if rows.stop is not None else self.shape[0])
        return self._matrix.slice(list(range(stop))).get_data()

    def toarray(self) -> Any:
        return self._matrix.get_data().toarray()


def _prepare_booster(
    instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> tuple[Any, Any, Any]:
    data = input_of(args, kwargs)
    if type(data).__name__ in ("DMatrix", "QuantileDMatrix") and hasattr(data, "num_row"):
        names = data.feature_names
        return _DMatrixRows(data), None, None if names is None else tuple(names)
    return data, None, None


class XGBoostInstrumentor(MLInstrumentor):
    """Observes XGBoost inference calls (entry point name ``xgboost``).

    Options: ``model_names``, ``model_versions``, ``outputs``, ``nested_spans``.
    A binary ``Booster.predict`` returns P(positive) as one float a row, read as a
    regression value unless ``outputs={"Booster": "probabilities"}`` says otherwise.
    """

    _library = "xgboost"
    _module = "xgboost"
    _instruments_any = ("xgboost >= 1.7", "xgboost-cpu >= 1.7")

    def _patch(self, module: Any) -> None:
        import xgboost.core
        import xgboost.sklearn
        import xgboost.training

        booster = xgboost.core.Booster
        for name in ("predict", "inplace_predict"):
            self._patches.wrap(booster, name, inference_wrapper(self, name, _prepare_booster))
        wrappers = self._estimator_wrappers(_SKLEARN_API_METHODS, ("fit",))
        self._wrap_class_tree(
            xgboost.sklearn.XGBModel, lambda cls: self._wrap_methods((cls,), wrappers)
        )
        # ``xgboost.train`` is the same function re-exported: patch both names.
        self._wrap_training_functions((xgboost.training, module), _TRAINING_FUNCTIONS)
