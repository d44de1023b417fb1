"""The public ways to observe a model: ``instrument()`` (decorator, decorator factory or
object proxy) and the ``inference()`` block.

All of them take the one call path of :mod:`mlotel._call`: start a span, call the
model, hand the finished call to the model's aggregator, end the span. Model
exceptions are recorded and re-raised unchanged; faults inside mlotel are counted
and swallowed.
"""

from __future__ import annotations

import copy
import functools
import inspect
from collections.abc import Callable, Iterable, Mapping, Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Any, TypedDict, TypeVar, cast, overload

import wrapt

from . import semconv
from ._call import ModelSpec, ObservedCall, observe_async, observe_sync, start_call

if TYPE_CHECKING:
    from typing_extensions import Unpack

    from ._aggregator import Analyzer
    from .drift import DriftConfig

__all__ = [
    "MODEL_METHODS",
    "InferenceCall",
    "InstrumentOptions",
    "InstrumentedModel",
    "inference",
    "instrument",
]

F = TypeVar("F", bound=Callable[..., Any])
_M = TypeVar("_M")

MODEL_METHODS = (
    "predict",
    "predict_proba",
    "predict_log_proba",
    "decision_function",
    "transform",
    "score_samples",
)
"""Methods the object proxy observes when the model has them (plus ``__call__``)."""


class InstrumentOptions(TypedDict, total=False):
    """Keyword arguments of :func:`instrument` (see its docstring)."""

    model_name: str | None
    model_version: str | None
    framework: str | None
    operation: str | None
    feature_names: Sequence[str] | None
    output: str
    class_labels: Sequence[Any] | None
    prediction_ids: Callable[[Any], Any] | str | None
    reference: Any
    drift: DriftConfig | None
    # Deprecated (a DeprecationWarning each): use drift=DriftConfig(...).
    drift_window_rows: int
    drift_window_seconds: float
    drift_min_samples: int
    drift_thresholds: Mapping[str, float] | None
    drift_method: str
    constraints: Mapping[str, Iterable[Any]] | None
    on_drift: Callable[[Any], Any] | None


_OPTION_DEFAULTS: dict[str, Any] = {
    "model_name": None,
    "model_version": None,
    "framework": None,
    "operation": None,
    "feature_names": None,
    "output": "auto",
    "class_labels": None,
    "prediction_ids": None,
    "reference": None,
    "drift": None,
}

_DEPRECATED_DRIFT_KEYWORDS = {
    f"drift_{name}": name for name in ("window_rows", "window_seconds", "min_samples", "thresholds")
} | {"drift_method": "method", "constraints": "constraints", "on_drift": "on_drift"}
"""Keywords ``instrument()`` took before ``drift=DriftConfig(...)`` -> its field names."""


# --- object proxy ---------------------------------------------------------------------


class InstrumentedModel(wrapt.ObjectProxy):  # type: ignore[type-arg]
    """A transparent proxy that observes a model's inference methods.

    Attributes and other methods pass through to the model unchanged;
    ``isinstance`` checks against the model's class still hold. Made by
    ``mlotel.instrument(model)``.

    >>> import mlotel, mlotel.testing
    >>> class Summer:
    ...     def predict(self, rows):
    ...         return [sum(row) for row in rows]
    >>> with mlotel.testing.capture_telemetry() as captured:
    ...     model = mlotel.instrument(Summer(), model_name="summer")
    ...     model.predict([[1.0, 2.0]])
    [3.0]
    >>> isinstance(model, mlotel.InstrumentedModel), isinstance(model, Summer)
    (True, True)
    >>> captured.spans[0].name
    'predict summer'
    """

    def __init__(self, model: Any, spec: ModelSpec) -> None:
        super().__init__(model)
        self._self_async: dict[str, bool] = {}
        self._self_names: tuple[Any, tuple[str, ...]] | None = None
        self._self_specs = {
            method: spec.with_operation("predict" if method == "__call__" else method)
            for method in (*MODEL_METHODS, "__call__")
        }

    def _self_observe(self, method: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        model = self.__wrapped__
        fn = getattr(model, method)
        spec = self._self_specs[method]
        names = spec.feature_names
        if names is None:
            carried = getattr(model, "feature_names_in_", None)
            if carried is not None:
                # Converted once per fitted array (a refit makes a new one), not per call.
                cached = self._self_names
                if cached is None or cached[0] is not carried:
                    cached = self._self_names = (carried, tuple(map(str, carried)))
                names = cached[1]
        labels = spec.class_labels
        if labels is None:
            labels = getattr(model, "classes_", None)
        is_async = self._self_async.get(method)
        if is_async is None:
            is_async = self._self_async[method] = inspect.iscoroutinefunction(fn)
        if is_async:  # an async model: the span must cover the awaited work
            return observe_async(spec, fn, args, kwargs, labels, names)
        return observe_sync(spec, fn, None, args, kwargs, labels, names)

    def __reduce_ex__(self, protocol: Any) -> Any:
        return self.__wrapped__.__reduce_ex__(protocol)

    def __copy__(self) -> Any:
        return type(self)(copy.copy(self.__wrapped__), self._self_specs["predict"])

    def __deepcopy__(self, memo: dict[int, Any]) -> Any:
        # Register the clone before copying the model, so a model that refers back to its
        # proxy gets this same clone.
        clone = type(self)(None, self._self_specs["predict"])
        memo[id(self)] = clone
        clone.__wrapped__ = copy.deepcopy(self.__wrapped__, memo)
        return clone


_PROXY_CLASSES: dict[tuple[str, ...], type[InstrumentedModel]] = {}


def _method(name: str) -> Callable[..., Any]:
    def observed(self: InstrumentedModel, *args: Any, **kwargs: Any) -> Any:
        return self._self_observe(name, args, kwargs)

    observed.__name__ = name
    return observed


def _proxy_class(methods: tuple[str, ...]) -> type[InstrumentedModel]:
    """One proxy subclass per set of present methods, so ``hasattr`` stays truthful."""
    cls = _PROXY_CLASSES.get(methods)
    if cls is None:
        namespace = {name: _method(name) for name in methods}
        cls = type("InstrumentedModel", (InstrumentedModel,), namespace)
        _PROXY_CLASSES[methods] = cls
    return cls


# --- instrument() ---------------------------------------------------------------------


def _default_name(fn: Callable[..., Any]) -> str:
    qualname = str(getattr(fn, "__qualname__", None) or getattr(fn, "__name__", "model"))
    parts = [p for p in qualname.split(".") if p != "<locals>"]
    if len(parts) > 1 and parts[-1] in (*MODEL_METHODS, "__call__", "forward", "infer", "run"):
        return parts[-2]
    return parts[-1]


def _spec(
    options: dict[str, Any], model_name: str, framework: str | None, operation: str
) -> ModelSpec:
    return ModelSpec(
        model_name,
        options["model_version"],
        framework,
        operation,
        options["feature_names"],
        options["output"],
        options["class_labels"],
        options["analyzers"],
        options["prediction_ids"],
    )


def _wrap_function(fn: F, options: dict[str, Any]) -> F:
    operation = options["operation"] or (
        fn.__name__ if getattr(fn, "__name__", "") in MODEL_METHODS else "predict"
    )
    name = options["model_name"] or _default_name(fn)
    spec = _spec(options, name, options["framework"], operation)
    if inspect.iscoroutinefunction(fn):

        @wrapt.decorator
        async def async_wrapper(
            wrapped: Callable[..., Any],
            instance: Any,
            args: tuple[Any, ...],
            kwargs: dict[str, Any],
        ) -> Any:
            return await observe_async(spec, wrapped, args, kwargs)

        return cast(F, async_wrapper(fn))

    # The wrapper is observe_sync itself (no extra frame per call).
    return cast(F, wrapt.FunctionWrapper(fn, functools.partial(observe_sync, spec)))


def _wrap_object(model: Any, options: dict[str, Any]) -> Any:
    if isinstance(model, InstrumentedModel):  # re-instrument with the new identity
        model = model.__wrapped__
    methods = tuple(m for m in MODEL_METHODS if callable(getattr(model, m, None)))
    if callable(model):
        methods = (*methods, "__call__")
    if not methods:
        raise TypeError(
            f"mlotel.instrument: {type(model).__name__} has none of "
            f"{', '.join(MODEL_METHODS)} and is not callable; decorate its inference "
            "function instead"
        )
    spec = _spec(
        options,
        options["model_name"] or type(model).__name__,
        options["framework"] or semconv.framework_of(type(model)),
        "predict",
    )
    return _proxy_class(methods)(model, spec)


def _resolve_options(given: dict[str, Any]) -> dict[str, Any]:
    """Validated options with defaults; builds the drift monitor (a bad reference fails
    here, at setup, never inside predict)."""
    unknown = sorted(set(given) - set(_OPTION_DEFAULTS) - set(_DEPRECATED_DRIFT_KEYWORDS))
    if unknown:
        raise TypeError(f"instrument() got unexpected keyword argument(s): {', '.join(unknown)}")
    options = {**_OPTION_DEFAULTS, **{k: v for k, v in given.items() if k in _OPTION_DEFAULTS}}
    deprecated = {k: v for k, v in given.items() if k in _DEPRECATED_DRIFT_KEYWORDS}
    drift = options["drift"]
    if deprecated:
        from .drift._config import with_deprecated_keywords

        drift = with_deprecated_keywords(
            drift, deprecated, _DEPRECATED_DRIFT_KEYWORDS, "instrument", stacklevel=3
        )
    ModelSpec("x", None, None, "predict", None, options["output"])  # validate options early
    analyzers: tuple[Analyzer, ...] = ()
    if options["reference"] is not None:
        from .drift import DriftMonitor

        analyzers = (
            DriftMonitor(options["reference"], drift, feature_names=options["feature_names"]),
        )
    elif drift is not None and (drift.constraints is not None or drift.on_drift is not None):
        raise ValueError("drift constraints and on_drift need a reference= profile")
    options["analyzers"] = analyzers
    return options


@overload
def instrument(target: None = None, **options: Unpack[InstrumentOptions]) -> Callable[[_M], _M]: ...


@overload
def instrument(target: _M, **options: Unpack[InstrumentOptions]) -> _M: ...


def instrument(target: Any = None, **options: Unpack[InstrumentOptions]) -> Any:
    """Observe a model's inference: decorator, decorator factory or object proxy.

    Every call emits a span ``"{operation} {model_name}"``, the inference
    metrics and (sampled) one ``ml.prediction`` log record with the features.

    A sync function or method that returns a coroutine (an async model behind a
    sync retry wrapper) is observed until the coroutine finishes. One that returns
    a generator or another iterator (a streaming predict) gets it back unchanged,
    on every Python version: the call, its span and ``ml.inference.duration`` end
    when the generator is returned, so they cover creating it, not consuming it,
    and its items are not read as predictions.

    Args:
        target: a function/method to decorate, or a model object to wrap in a proxy
            (its ``predict``, ``predict_proba``, ``predict_log_proba``,
            ``decision_function``, ``transform``, ``score_samples`` and ``__call__``
            are observed). Omit it to get a decorator.
        model_name: defaults to the function's class or name, or the model's class name.
        model_version: reported as ``ml.model.version``.
        framework: ``ml.model.framework``; detected for wrapped model objects.
        operation: ``ml.operation.name`` of a decorated function (default: its name if
            it is one of the model methods, else ``predict``).
        feature_names: names for columns of array inputs (default: DataFrame columns,
            the model's ``feature_names_in_``, dict keys, or ``f0..fN``).
        output: how to read the return value: ``auto``, ``labels``,
            ``probabilities``, ``regression`` or ``none``. Outputs that carry classes
            with their scores are read as one class and one score per row (with
            ``auto`` or ``labels``): ``[{"label": ..., "score": ...}, ...]``
            (Hugging Face pipelines; lists of every class per row take the best
            one), ``{"labels": [...], "scores": [...]}`` (zero-shot) and a
            ``(labels, scores)`` tuple (scores one per row, or probability rows).
        class_labels: labels of the columns of a probability output.
        prediction_ids: where the rows' ids come from, for joining outcomes later
            (``mlotel.record_outcome``): a callable of the input returning one id per
            row, or the name of an id column of DataFrame / dict inputs. Default:
            generated ``"<call id>-<row>"`` ids (see ``mlotel.last_prediction_ids``).
        reference: a :class:`mlotel.Profile` (or the path of a saved one) of the data
            the model was trained on: turns on the streaming drift and data-quality
            monitor (``ml.feature.drift``, ``ml.data_quality.issues``, ...; see
            ``docs/drift.md``). A numpy input is copied (every row) when the call
            starts, so in-place changes by the model or a reused buffer change
            nothing; other inputs (DataFrames, tensors, lists, dicts) are read at flush
            time, so do not change them in place after ``predict`` returns.
        drift: a :class:`mlotel.drift.DriftConfig`: the monitor's window, minimum
            sample, thresholds, deciding method, constraints and ``on_drift``
            callback (default ``DriftConfig()``). The former keywords
            ``drift_window_rows``, ``drift_window_seconds``, ``drift_min_samples``,
            ``drift_thresholds``, ``drift_method``, ``constraints`` and ``on_drift``
            still work and warn (``DeprecationWarning``).

    >>> import mlotel, mlotel.testing
    >>> with mlotel.testing.capture_telemetry() as captured:
    ...     @mlotel.instrument(model_name="doubler", model_version="1")
    ...     def predict(rows):
    ...         return [2.0 * r[0] for r in rows]
    ...     predict([[1.0], [2.0]])
    [2.0, 4.0]
    >>> captured.spans[0].name
    'predict doubler'
    """
    if isinstance(target, type):
        raise TypeError(
            "mlotel.instrument() got a class; instrument an instance "
            "(mlotel.instrument(model)) or decorate its methods"
        )
    resolved = _resolve_options(dict(options))
    if target is None:
        return functools.partial(_instrument_target, options=resolved)
    return _instrument_target(target, resolved)


def _instrument_target(target: Any, options: dict[str, Any]) -> Any:
    if isinstance(target, type):
        raise TypeError("mlotel.instrument() got a class; instrument an instance instead")
    if inspect.isfunction(target) or inspect.ismethod(target) or inspect.isbuiltin(target):
        return _wrap_function(target, options)
    if isinstance(target, (staticmethod, classmethod)):
        raise TypeError("apply @mlotel.instrument below @staticmethod/@classmethod")
    return _wrap_object(target, options)


# --- inference() ----------------------------------------------------------------------


class InferenceCall:
    """One observed block of inference code, returned by :func:`inference`.

    >>> import mlotel, mlotel.testing
    >>> with mlotel.testing.capture_telemetry() as captured:
    ...     with mlotel.inference("scorer") as call:
    ...         call.record(features=[[1.0, 2.0]], prediction=[0.7])
    >>> mlotel.testing.log_payload(captured.logs[0])["ml.prediction"]
    0.7
    """

    def __init__(self, spec: ModelSpec) -> None:
        self._spec = spec
        self._call: ObservedCall | None = None
        self._features: Any = None
        self._prediction: Any = None
        self._scores: Any = None
        self._names: Sequence[str] | None = None
        self._class_labels: Sequence[Any] | None = None
        self._row_ids: Any = None

    def record(
        self,
        *,
        features: Any = None,
        prediction: Any = None,
        scores: Any = None,
        feature_names: Sequence[str] | None = None,
        class_labels: Sequence[Any] | None = None,
        prediction_ids: Any = None,
    ) -> None:
        """Attach this call's inputs and outputs (any of them; call again to replace).

        ``prediction_ids``: your ids for the rows (one per row), for ``record_outcome``.
        """
        if features is not None:
            self._features = features
        if prediction is not None:
            self._prediction = prediction
        if scores is not None:
            self._scores = scores
        if feature_names is not None:
            self._names = feature_names
        if class_labels is not None:
            self._class_labels = class_labels
        if prediction_ids is not None:
            self._row_ids = prediction_ids

    def __enter__(self) -> InferenceCall:
        self._call = start_call(self._spec)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        call, self._call = self._call, None
        if call is None:
            return
        call.finish(
            self._prediction,
            exc,
            scores=self._scores,
            class_labels=self._class_labels,
            feature_names=self._names,
            row_ids=self._row_ids,
            features=self._features,
        )


def inference(
    model_name: str,
    *,
    model_version: str | None = None,
    operation: str = "predict",
    framework: str | None = None,
    feature_names: Sequence[str] | None = None,
    output: str = "auto",
    reference: Any = None,
) -> InferenceCall:
    """Observe any block of inference code as one call.

    ``reference`` (a :class:`mlotel.Profile` or a path) turns on the drift monitor
    with default settings, shared by every ``inference()`` block of the same model
    and reference; use :func:`instrument` for the drift options.

    >>> import mlotel, mlotel.testing
    >>> with mlotel.testing.capture_telemetry() as captured:
    ...     with mlotel.inference("ranker", model_version="7") as call:
    ...         call.record(features={"query_len": 3}, prediction=[1], scores=[[0.2, 0.8]])
    >>> captured.spans[0].attributes["ml.model.version"]
    '7'
    """
    analyzers: tuple[Analyzer, ...] = ()
    if reference is not None:
        analyzers = (_shared_drift_monitor(model_name, model_version, reference, feature_names),)
    spec = ModelSpec(
        model_name, model_version, framework, operation, feature_names, output, None, analyzers
    )
    return InferenceCall(spec)


_SHARED_MONITORS: dict[tuple[Any, ...], tuple[Any, Analyzer]] = {}
_SHARED_MONITORS_MAX = 64


def _shared_drift_monitor(
    model_name: str, model_version: str | None, reference: Any, feature_names: Any
) -> Analyzer:
    """One drift monitor per (model, reference) for ``inference()`` blocks (each block
    builds its own spec; the window must outlive them)."""
    ref_key = reference if isinstance(reference, str) else id(reference)
    names = None if feature_names is None else tuple(feature_names)
    key = (model_name, model_version, ref_key, names)
    found = _SHARED_MONITORS.get(key)
    if found is None:
        from .drift import DriftMonitor

        if len(_SHARED_MONITORS) >= _SHARED_MONITORS_MAX:
            _SHARED_MONITORS.pop(next(iter(_SHARED_MONITORS)))
        # The reference object is kept with its monitor so its id() is never reused.
        found = (reference, DriftMonitor(reference, feature_names=feature_names))
        _SHARED_MONITORS[key] = found
    return found[1]
