"""Zero-code instrumentation of ML libraries.

Run an unmodified service under ``opentelemetry-instrument python app.py`` (the
``opentelemetry_instrumentor`` entry points ``sklearn``, ``torch``, ``transformers``,
``xgboost``, ``lightgbm`` and ``onnxruntime`` are found automatically), or call
:func:`auto_instrument` once in code. Every inference call then emits the same
span, metrics and log record as ``@mlotel.instrument``. See docs/integrations.md.

>>> import mlotel
>>> sorted(mlotel.integrations.LIBRARIES)
['lightgbm', 'onnxruntime', 'sklearn', 'torch', 'transformers', 'xgboost']
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable
from typing import Any

from .._config import setting_from_env
from ._base import MODEL_NAME_ATTRIBUTE, MODEL_VERSION_ATTRIBUTE, MLInstrumentor, not_inference

__all__ = [
    "LIBRARIES",
    "MODEL_NAME_ATTRIBUTE",
    "MODEL_VERSION_ATTRIBUTE",
    "MLInstrumentor",
    "auto_instrument",
    "instrumentor",
    "not_inference",
    "set_model_name",
    "uninstrument_all",
]

LIBRARIES: dict[str, tuple[str, str]] = {
    "sklearn": ("mlotel.integrations.sklearn", "SklearnInstrumentor"),
    "torch": ("mlotel.integrations.torch", "TorchInstrumentor"),
    "transformers": ("mlotel.integrations.transformers", "TransformersInstrumentor"),
    "xgboost": ("mlotel.integrations.xgboost", "XGBoostInstrumentor"),
    "lightgbm": ("mlotel.integrations.lightgbm", "LightGBMInstrumentor"),
    "onnxruntime": ("mlotel.integrations.onnxruntime", "OnnxRuntimeInstrumentor"),
}
"""Entry point name -> (module, instrumentor class)."""


def instrumentor(library: str) -> MLInstrumentor:
    """The (singleton) instrumentor of ``library``, one of :data:`LIBRARIES`.

    >>> from mlotel.integrations import instrumentor
    >>> sklearn_instrumentor = instrumentor("sklearn")
    >>> type(sklearn_instrumentor).__name__, sklearn_instrumentor is instrumentor("sklearn")
    ('SklearnInstrumentor', True)
    """
    try:
        module_name, class_name = LIBRARIES[library]
    except KeyError:
        raise ValueError(
            f"unknown library {library!r}; expected one of {', '.join(LIBRARIES)}"
        ) from None
    cls: type[MLInstrumentor] = getattr(importlib.import_module(module_name), class_name)
    return cls()


def _disabled_by_env() -> frozenset[str]:
    disabled: frozenset[str] = setting_from_env("disabled_instrumentations")
    return disabled


def auto_instrument(libraries: Iterable[str] | None = None, **options: Any) -> list[str]:
    """Instrument the installed ML libraries; returns the names now instrumented.

    ``libraries`` defaults to all of :data:`LIBRARIES`; names listed in
    ``OTEL_PYTHON_DISABLED_INSTRUMENTATIONS`` are skipped (``*`` skips all), and
    libraries that are not installed are skipped quietly. ``options`` go to every
    instrumentor (``model_names``, ``model_versions``, ``outputs``). Patching is
    lazy: a library is patched when it is imported, so this never imports torch.

    >>> import mlotel
    >>> mlotel.integrations.auto_instrument(["sklearn", "no-such-library"])  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: unknown library 'no-such-library'; expected one of sklearn, ...
    >>> instrumentor("sklearn").is_instrumented_by_opentelemetry  # nothing was instrumented
    False
    >>> done = mlotel.integrations.auto_instrument(["sklearn"])
    >>> done, instrumentor("sklearn").is_instrumented_by_opentelemetry
    (['sklearn'], True)
    >>> mlotel.integrations.uninstrument_all()
    """
    wanted = list(LIBRARIES) if libraries is None else list(libraries)
    unknown = [name for name in wanted if name not in LIBRARIES]
    if unknown:  # before instrumenting anything: a typo changes nothing
        raise ValueError(
            f"unknown library {unknown[0]!r}; expected one of {', '.join(LIBRARIES)}"
        )
    disabled = _disabled_by_env()
    if "*" in disabled:
        return []
    done = []
    for library in wanted:
        if library in disabled:
            continue
        target = instrumentor(library)
        if target.is_instrumented_by_opentelemetry:
            done.append(library)
            continue
        target.instrument(**options)
        if target.is_instrumented_by_opentelemetry:
            done.append(library)
    return done


def uninstrument_all() -> None:
    """Undo every instrumentor that is on: the original methods come back.

    >>> import mlotel
    >>> from mlotel.integrations import instrumentor, uninstrument_all
    >>> _ = mlotel.auto_instrument(["sklearn", "xgboost"])
    >>> uninstrument_all()
    >>> instrumentor("sklearn").is_instrumented_by_opentelemetry
    False
    """
    for library in LIBRARIES:
        target = instrumentor(library)
        if target.is_instrumented_by_opentelemetry:
            target.uninstrument()


def set_model_name(model: Any, name: str, version: str | None = None) -> Any:
    """Name a model object for auto-instrumentation; returns the model.

    >>> class Model: ...
    >>> m = set_model_name(Model(), "churn", "3")
    >>> m.mlotel_model_name, m.mlotel_model_version
    ('churn', '3')
    """
    setattr(model, MODEL_NAME_ATTRIBUTE, name)
    if version is not None:
        setattr(model, MODEL_VERSION_ATTRIBUTE, str(version))
    return model
