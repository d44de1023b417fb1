"""Auto-instrumentation of LightGBM: ``Booster.predict`` and the scikit-learn API
(``LGBMClassifier.predict`` / ``predict_proba``, ``LGBMRegressor.predict``, ...),
including subclasses defined later. ``lightgbm.train`` / ``cv`` and ``fit`` are
training: predictions made inside them are not inferences.

>>> from mlotel.integrations.lightgbm import LightGBMInstrumentor
>>> LightGBMInstrumentor().instrumentation_dependencies()
('lightgbm >= 3.3',)
"""

from __future__ import annotations

from typing import Any

from .._call import input_of
from ._base import (
    MLInstrumentor,
    inference_wrapper,
)

__all__ = ["LightGBMInstrumentor"]

_SKLEARN_API_METHODS = ("predict", "predict_proba")
_TRAINING_FUNCTIONS = ("train", "cv")


def _prepare_booster(
    instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> tuple[Any, Any, Any]:
    return input_of(args, kwargs), None, None


class LightGBMInstrumentor(MLInstrumentor):
    """Observes LightGBM inference calls (entry point name ``lightgbm``).

    Options: ``model_names``, ``model_versions``, ``outputs``, ``nested_spans``.
    A binary ``Booster.predict`` returns P(positive) as one float a row, read as a
    regression value unless ``outputs={"Booster": "probabilities"}`` says otherwise.
    """

    _library = "lightgbm"
    _module = "lightgbm"
    _instruments = ("lightgbm >= 3.3",)

    def _patch(self, module: Any) -> None:
        import lightgbm.basic
        import lightgbm.engine
        import lightgbm.sklearn

        self._patches.wrap(
            lightgbm.basic.Booster, "predict", inference_wrapper(self, "predict", _prepare_booster)
        )
        wrappers = self._estimator_wrappers(_SKLEARN_API_METHODS, ("fit",))
        self._wrap_class_tree(
            lightgbm.sklearn.LGBMModel, lambda cls: self._wrap_methods((cls,), wrappers)
        )
        # ``lightgbm.train`` is the same function re-exported: patch both names.
        self._wrap_training_functions((lightgbm.engine, module), _TRAINING_FUNCTIONS)
