"""The decorator, the object proxy and the ``inference()`` context manager.

All three share one hot path (:func:`_start` / :func:`_finish`): start a span,
call the model, hand a :class:`~mlotel._monitor.CallRecord` to the model's
monitor, end the span. Model exceptions are recorded and re-raised unchanged;
faults inside mlotel are counted and swallowed.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import copy
import dataclasses
import functools
import inspect
import random
import time
import warnings
from collections.abc import Callable, Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Any, TypeVar, cast, overload

import wrapt
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import SpanKind, Status, StatusCode

from . import _runtime, semconv
from ._data import batch_size, features_payload, output_array
from ._errors import tally
from ._monitor import Analyzer, CallRecord, Monitor
from ._outcomes import get_supplied, set_last_ids, span_ids, supplied_ids

if TYPE_CHECKING:
    from .drift import DriftConfig

__all__ = [
    "MODEL_CALL_STATE",
    "MODEL_METHODS",
    "InferenceCall",
    "ModelSpec",
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

_SUPPRESS_KEY = otel_context._SUPPRESS_INSTRUMENTATION_KEY
_OUTPUT_KINDS = ("auto", "labels", "probabilities", "regression", "none")
_INPUT_KWARGS = ("X", "x", "features", "inputs", "input", "data")
_perf_counter = time.perf_counter
_time_ns = time.time_ns
_get_value = otel_context.get_value
_getrandbits = random.getrandbits
_iscoroutine = asyncio.iscoroutine
_attach = otel_context.attach
_detach = otel_context.detach
_set_span_in_context = trace.set_span_in_context


MODEL_CALL_STATE: contextvars.ContextVar[int | None] = contextvars.ContextVar(
    "mlotel_model_call", default=None
)
"""1 while an observed inference runs, 2 inside training (set by integrations): model
calls made meanwhile that auto-instrumentation would observe pass through, so an
instrumented function that calls an auto-instrumented model is one inference."""
_state_set = MODEL_CALL_STATE.set
_state_reset = MODEL_CALL_STATE.reset


_ROWS_ONLY_OPERATIONS = frozenset({"transform", "score_samples", "decision_function", "embed"})
_LOG_ROWS_ONLY = 64  # outputs that feed no metric: keep only rows a log record could show


class ModelSpec:
    """What one instrumented callable reports: model identity and how to read its I/O."""

    __slots__ = (
        "_bound",
        "_keep_rows",
        "_span_attrs",
        "_span_name",
        "analyzers",
        "class_labels",
        "feature_names",
        "framework",
        "model_name",
        "model_version",
        "operation",
        "output_kind",
        "prediction_ids",
    )

    def __init__(
        self,
        model_name: str,
        model_version: str | None,
        framework: str | None,
        operation: str,
        feature_names: Sequence[str] | None,
        output_kind: str,
        class_labels: Sequence[Any] | None = None,
        analyzers: Sequence[Analyzer] = (),
        prediction_ids: Any = None,
    ) -> None:
        if not isinstance(model_name, str) or not model_name:
            raise ValueError("model_name must be a non-empty string")
        if output_kind not in _OUTPUT_KINDS:
            raise ValueError(f"output={output_kind!r} must be one of {', '.join(_OUTPUT_KINDS)}")
        self.model_name = model_name
        self.model_version = None if model_version is None else str(model_version)
        self.framework = framework
        self.operation = operation
        self.feature_names = None if feature_names is None else tuple(map(str, feature_names))
        self.output_kind = output_kind
        self.class_labels = class_labels
        # Flush-time consumers of this model's calls (drift, outcomes), shared by every
        # operation of the model; attached to whichever monitor the spec binds to.
        self.analyzers = tuple(analyzers)
        # Where row ids come from: a callable of the input or an id column's name.
        self.prediction_ids = prediction_ids
        self._bound: tuple[_runtime.Runtime, Monitor] | None = None
        self._span_name = f"{operation} {model_name}"
        # Outputs that feed no metric are kept only as far as a log record shows them.
        rows_only = operation in _ROWS_ONLY_OPERATIONS or output_kind == "none"
        self._keep_rows: int | None = _LOG_ROWS_ONLY if rows_only else None
        attrs: dict[str, Any] = {
            semconv.ATTR_MODEL_NAME: model_name,
            semconv.ATTR_OPERATION_NAME: operation,
        }
        if self.model_version is not None:
            attrs[semconv.ATTR_MODEL_VERSION] = self.model_version
        if framework:
            attrs[semconv.ATTR_MODEL_FRAMEWORK] = framework
        self._span_attrs = attrs

    def with_operation(self, operation: str) -> ModelSpec:
        return ModelSpec(
            self.model_name,
            self.model_version,
            self.framework,
            operation,
            self.feature_names,
            self.output_kind,
            self.class_labels,
            self.analyzers,
            self.prediction_ids,
        )

    def monitor(self, runtime: _runtime.Runtime) -> Monitor:
        bound = self._bound  # one tuple: a concurrent rebind can never mix two runtimes
        if bound is None or bound[0] is not runtime:
            monitor = runtime.monitor(self.model_name, self.model_version, self.framework)
            if monitor.model_name != semconv.OTHER_CLASS:  # not onto the max_models overflow
                for analyzer in self.analyzers:
                    monitor.attach(analyzer)
            bound = (runtime, monitor)
            self._bound = bound
        return bound[1]


# --- the shared hot path -------------------------------------------------------------


class _Call:
    """State of one observed call between start and finish."""

    __slots__ = ("monitor", "prediction_id", "rows", "runtime", "span", "start", "token")

    def __init__(
        self,
        runtime: _runtime.Runtime,
        monitor: Monitor,
        span: trace.Span,
        token: Any,
        rows: int | None,
        prediction_id: str,
    ) -> None:
        self.runtime = runtime
        self.monitor = monitor
        self.span = span
        self.token = token
        self.rows = rows
        self.prediction_id = prediction_id
        self.start = _perf_counter()


_NO_INPUT: Any = object()


def _start(spec: ModelSpec, features: Any = _NO_INPUT) -> _Call | None:
    """Begin observing a call; None means "just call the model" (disabled, suppressed, fault).

    When the input is known up front its batch size goes into the span's start
    attributes (one attribute pass in the SDK instead of two).
    """
    runtime = _runtime._current
    if runtime is None or runtime.stale:
        runtime = _runtime.lazy_runtime()
    if runtime.disabled or _get_value(_SUPPRESS_KEY):
        return None
    try:
        monitor = spec.monitor(runtime)
        prediction_id = format(_getrandbits(64), "016x")
        rows = None
        attributes = spec._span_attrs
        if features is not _NO_INPUT:
            rows = _guard("data.batch_size", batch_size, features, default=1)
            attributes = {
                **attributes,
                semconv.ATTR_BATCH_SIZE: rows,
                semconv.ATTR_PREDICTION_ID: prediction_id,
            }
        span = runtime.tracer.start_span(
            spec._span_name, kind=SpanKind.INTERNAL, attributes=attributes
        )
        token = _attach(_set_span_in_context(span))
    except Exception as exc:
        tally.error("instrument.start", exc)
        return None
    return _Call(runtime, monitor, span, token, rows, prediction_id)


def _finish(
    call: _Call,
    spec: ModelSpec,
    features: Any,
    result: Any,
    error: BaseException | None,
    class_labels: Sequence[Any] | None,
    feature_names: Sequence[str] | None,
    scores: Any = None,
    row_ids: Any = None,
) -> None:
    """Hand the finished call to its monitor and end the span. Never raises."""
    duration = _perf_counter() - call.start
    span = call.span
    try:
        _detach(call.token)
    except Exception as exc:
        tally.error("instrument.context", exc)
    try:
        settings = call.runtime.settings
        prediction_id = call.prediction_id
        rows = call.rows
        late: dict[str, Any] = {}
        if rows is None:
            rows = _guard("data.batch_size", batch_size, features, default=1)
            late[semconv.ATTR_BATCH_SIZE] = rows
            late[semconv.ATTR_PREDICTION_ID] = prediction_id
        error_type = None
        if error is not None:
            error_type = type(error).__qualname__
            late[semconv.ATTR_ERROR_TYPE] = error_type
            span.set_status(Status(StatusCode.ERROR, _safe_text(error)))
            _guard("span.exception", _record_exception, span, error, default=None)
        if row_ids is None:
            row_ids = get_supplied()
            if row_ids is None and spec.prediction_ids is not None and error is None:
                row_ids = _guard(
                    "outcomes.ids", supplied_ids, spec.prediction_ids, features, default=None
                )
        if row_ids is not None:
            no_ids: list[str] = []
            late[semconv.ATTR_PREDICTION_IDS] = _guard(
                "outcomes.ids", span_ids, row_ids, default=no_ids
            )
        if late:
            span.set_attributes(late)
        # Each enrichment below is guarded on its own: a value mlotel cannot read costs
        # that part only, never the call's duration, count or log record.
        payload: dict[str, Any] | None = None
        truncated = False
        if settings.payload_enabled and (
            error is not None
            or settings.payload_sample_rate >= 1.0
            or random.random() < settings.payload_sample_rate
        ):
            if features is None:
                payload = {}
            else:
                try:
                    payload, truncated = _payload(
                        features, feature_names or spec.feature_names, settings
                    )
                except Exception as exc:
                    tally.error("payload", exc)
                    payload, truncated = {}, True
        output = None
        output_rows = 0
        if error is None:
            try:
                output_rows = _output_rows(result)
                # Explicit scores pair with every output row: never trim then.
                keep = spec._keep_rows if scores is None else None
                output = output_array(result, keep)
            except Exception as exc:
                tally.error("data.output", exc)
        explicit_scores = (
            _guard("data.scores", output_array, scores, None, default=None)
            if scores is not None
            else None
        )
        monitor = call.monitor
        if call.runtime.closed:
            # configure() replaced the runtime while this call ran: report to the new one.
            current = _runtime._current
            if current is not None and not (current.closed or current.disabled or current.stale):
                monitor = spec.monitor(current)
        # Analyzers that read inputs (drift) get the caller's object itself: no copy on
        # the hot path; binning happens at flush.
        inputs = features if monitor.keeps_inputs else None
        monitor.observe(
            CallRecord(
                _time_ns(),
                duration,
                spec.operation,
                error_type,
                rows,
                output,
                payload,
                truncated,
                span,
                prediction_id,
                class_labels if class_labels is not None else spec.class_labels,
                spec.output_kind,
                explicit_scores,
                output_rows,
                inputs,
                row_ids,
            )
        )
        # last_prediction_ids() reads this: one context-variable write per call. Outputs
        # that feed no metric (transform, output="none": _keep_rows set) are no predictions
        # the outcome store keeps, so they hand out no ids.
        joinable = error is None and spec._keep_rows is None
        set_last_ids((prediction_id, output_rows or rows, row_ids) if joinable else None)
    except Exception as exc:
        tally.error("instrument.finish", exc)
    finally:
        span.end()


_T = TypeVar("_T")


def _guard(component: str, fn: Callable[..., _T], *args: Any, default: _T) -> _T:
    try:
        return fn(*args)
    except Exception as exc:
        tally.error(component, exc)
        return default


def _output_rows(result: Any) -> int:
    """Rows of a model output (0 when it has no length mlotel can read)."""
    shape = getattr(result, "shape", None)
    if isinstance(shape, tuple) and shape and isinstance(shape[0], int):
        return shape[0]
    if isinstance(result, (list, tuple)):
        return len(result)
    return 0


def _safe_text(error: BaseException) -> str:
    try:
        return str(error)[:256]
    except Exception:
        return f"<unprintable {type(error).__name__}>"


def _record_exception(span: trace.Span, error: BaseException) -> None:
    span.record_exception(error, escaped=True)


def _payload(features: Any, names: Sequence[str] | None, settings: Any) -> tuple[Any, bool]:
    payload, truncated, dropped = features_payload(
        features, names, settings.payload_max_bytes, settings.max_features
    )
    if dropped:
        tally.drop("payload", "max_features", dropped)
    redact = settings.payload_redact
    allow = settings.payload_allow
    if redact or allow is not None:
        for key in payload:
            if key in redact or (allow is not None and key not in allow):
                payload[key] = semconv.REDACTED
    return payload, truncated


def _input_of(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    if args:
        return args[0]
    for name in _INPUT_KWARGS:
        if name in kwargs:
            return kwargs[name]
    return None


def _observe_sync(
    spec: ModelSpec,
    fn: Callable[..., Any],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    class_labels: Sequence[Any] | None = None,
    feature_names: Sequence[str] | None = None,
) -> Any:
    features = _input_of(args, kwargs)
    call = _start(spec, features)
    if call is None:
        return fn(*args, **kwargs)
    token = _state_set(1)
    try:
        result = fn(*args, **kwargs)
    except BaseException as exc:
        _state_reset(token)
        _finish(call, spec, features, None, exc, class_labels, feature_names)
        raise
    _state_reset(token)
    if _iscoroutine(result):
        # An async model behind a sync wrapper (retry/timeout decorators): the call ends
        # when the coroutine does, so time it and keep its span current while awaited.
        return _finish_when_awaited(call, spec, features, result, class_labels, feature_names)
    _finish(call, spec, features, result, None, class_labels, feature_names)
    return result


async def _finish_when_awaited(
    call: _Call,
    spec: ModelSpec,
    features: Any,
    coroutine: Any,
    class_labels: Sequence[Any] | None,
    feature_names: Sequence[str] | None,
) -> Any:
    try:
        _detach(call.token)  # attached in the caller's synchronous context
    except Exception as exc:
        tally.error("instrument.context", exc)
    call.token = _attach(_set_span_in_context(call.span))
    try:
        result = await coroutine
    except BaseException as exc:
        _finish(call, spec, features, None, exc, class_labels, feature_names)
        raise
    _finish(call, spec, features, result, None, class_labels, feature_names)
    return result


async def _observe_async(
    spec: ModelSpec,
    fn: Callable[..., Any],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    class_labels: Sequence[Any] | None = None,
    feature_names: Sequence[str] | None = None,
) -> Any:
    features = _input_of(args, kwargs)
    call = _start(spec, features)
    if call is None:
        return await fn(*args, **kwargs)
    token = _state_set(1)
    try:
        result = await fn(*args, **kwargs)
    except BaseException as exc:
        _state_reset(token)
        _finish(call, spec, features, None, exc, class_labels, feature_names)
        raise
    _state_reset(token)
    _finish(call, spec, features, result, None, class_labels, feature_names)
    return result


# --- object proxy ---------------------------------------------------------------------


def _framework_of(model: Any) -> str | None:
    root = type(model).__module__.partition(".")[0]
    known = {
        "sklearn": "sklearn",
        "torch": "pytorch",
        "xgboost": "xgboost",
        "lightgbm": "lightgbm",
        "onnxruntime": "onnxruntime",
        "tensorflow": "tensorflow",
        "keras": "keras",
        "catboost": "catboost",
    }
    return known.get(root)


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
            return _observe_async(spec, fn, args, kwargs, labels, names)
        return _observe_sync(spec, fn, args, kwargs, labels, names)

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


# --- public API -----------------------------------------------------------------------


def _default_name(fn: Callable[..., Any]) -> str:
    qualname = str(getattr(fn, "__qualname__", None) or getattr(fn, "__name__", "model"))
    parts = [p for p in qualname.split(".") if p != "<locals>"]
    if len(parts) > 1 and parts[-1] in (*MODEL_METHODS, "__call__", "forward", "infer", "run"):
        return parts[-2]
    return parts[-1]


def _wrap_function(fn: F, spec_args: dict[str, Any]) -> F:
    operation = spec_args["operation"] or (
        fn.__name__ if getattr(fn, "__name__", "") in MODEL_METHODS else "predict"
    )
    spec = ModelSpec(
        spec_args["model_name"] or _default_name(fn),
        spec_args["model_version"],
        spec_args["framework"],
        operation,
        spec_args["feature_names"],
        spec_args["output"],
        spec_args["class_labels"],
        spec_args.get("analyzers", ()),
        spec_args.get("prediction_ids"),
    )
    if inspect.iscoroutinefunction(fn):

        @wrapt.decorator
        async def async_wrapper(
            wrapped: Callable[..., Any],
            instance: Any,
            args: tuple[Any, ...],
            kwargs: dict[str, Any],
        ) -> Any:
            return await _observe_async(spec, wrapped, args, kwargs)

        return cast(F, async_wrapper(fn))

    @wrapt.decorator
    def wrapper(
        wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Any:
        return _observe_sync(spec, wrapped, args, kwargs)

    return cast(F, wrapper(fn))


def _wrap_object(model: Any, spec_args: dict[str, Any]) -> Any:
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
    spec = ModelSpec(
        spec_args["model_name"] or type(model).__name__,
        spec_args["model_version"],
        spec_args["framework"] or _framework_of(model),
        "predict",
        spec_args["feature_names"],
        spec_args["output"],
        spec_args["class_labels"],
        spec_args.get("analyzers", ()),
        spec_args.get("prediction_ids"),
    )
    return _proxy_class(methods)(model, spec)


@overload
def instrument(
    target: None = None,
    *,
    model_name: str | None = None,
    model_version: str | None = None,
    framework: str | None = None,
    operation: str | None = None,
    feature_names: Sequence[str] | None = None,
    output: str = "auto",
    class_labels: Sequence[Any] | None = None,
    prediction_ids: Callable[[Any], Any] | str | None = None,
    reference: Any = None,
    drift: DriftConfig | None = None,
    **deprecated_drift: Any,
) -> Callable[[_M], _M]: ...


@overload
def instrument(
    target: _M,
    *,
    model_name: str | None = None,
    model_version: str | None = None,
    framework: str | None = None,
    operation: str | None = None,
    feature_names: Sequence[str] | None = None,
    output: str = "auto",
    class_labels: Sequence[Any] | None = None,
    prediction_ids: Callable[[Any], Any] | str | None = None,
    reference: Any = None,
    drift: DriftConfig | None = None,
    **deprecated_drift: Any,
) -> _M: ...


def instrument(
    target: Any = None,
    *,
    model_name: str | None = None,
    model_version: str | None = None,
    framework: str | None = None,
    operation: str | None = None,
    feature_names: Sequence[str] | None = None,
    output: str = "auto",
    class_labels: Sequence[Any] | None = None,
    prediction_ids: Callable[[Any], Any] | str | None = None,
    reference: Any = None,
    drift: DriftConfig | None = None,
    **deprecated_drift: Any,
) -> Any:
    """Observe a model's inference: decorator, decorator factory or object proxy.

    Every call emits a span ``"{operation} {model_name}"``, the inference
    metrics and (sampled) one ``ml.prediction`` log record with the features.

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
            ``probabilities``, ``regression`` or ``none``.
        class_labels: labels of the columns of a probability output.
        prediction_ids: where the rows' ids come from, for joining outcomes later
            (``mlotel.record_outcome``): a callable of the input returning one id per
            row, or the name of an id column of DataFrame / dict inputs. Default:
            generated ``"<call id>-<row>"`` ids (see ``mlotel.last_prediction_ids``).
        reference: a :class:`mlotel.Profile` (or the path of a saved one) of the data
            the model was trained on: turns on the streaming drift and data-quality
            monitor (``ml.feature.drift``, ``ml.data_quality.issues``, ...; see
            ``docs/drift.md``). The monitor reads the caller's input object at flush
            time, so do not mutate an input buffer in place after ``predict`` returns
            (pass a copy when you reuse buffers).
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
    spec_args = {
        "model_name": model_name,
        "model_version": model_version,
        "framework": framework,
        "operation": operation,
        "feature_names": feature_names,
        "output": output,
        "class_labels": class_labels,
        "prediction_ids": prediction_ids,
    }
    ModelSpec("x", None, None, "predict", None, output)  # validate options early
    drift = _drift_config(drift, deprecated_drift)
    if reference is not None:
        from .drift import DriftMonitor

        # Built (and the profile loaded) once here: a bad reference fails at setup,
        # never inside predict.
        spec_args["analyzers"] = (DriftMonitor(reference, drift, feature_names=feature_names),)
    elif drift is not None and (drift.constraints is not None or drift.on_drift is not None):
        raise ValueError("drift constraints and on_drift need a reference= profile")
    if target is None:
        return functools.partial(_instrument_target, spec_args=spec_args)
    return _instrument_target(target, spec_args)


_DEPRECATED_DRIFT_KEYWORDS = {
    "drift_window_rows": "window_rows",
    "drift_window_seconds": "window_seconds",
    "drift_min_samples": "min_samples",
    "drift_thresholds": "thresholds",
    "drift_method": "method",
    "constraints": "constraints",
    "on_drift": "on_drift",
}


def _drift_config(drift: DriftConfig | None, deprecated: dict[str, Any]) -> DriftConfig | None:
    """``drift`` with the pre-DriftConfig keywords of ``instrument()`` applied (they warn)."""
    if not deprecated:
        return drift
    unknown = sorted(set(deprecated) - set(_DEPRECATED_DRIFT_KEYWORDS))
    if unknown:
        raise TypeError(f"instrument() got unexpected keyword argument(s): {', '.join(unknown)}")
    from .drift import DriftConfig

    fields = {_DEPRECATED_DRIFT_KEYWORDS[k]: v for k, v in deprecated.items()}
    warnings.warn(
        f"instrument({', '.join(f'{k}=' for k in deprecated)}) is deprecated; pass "
        f"drift=DriftConfig({', '.join(f'{f}=' for f in fields)})",
        DeprecationWarning,
        stacklevel=3,
    )
    return dataclasses.replace(drift or DriftConfig(), **fields)


def _instrument_target(target: Any, spec_args: dict[str, Any]) -> Any:
    if isinstance(target, type):
        raise TypeError("mlotel.instrument() got a class; instrument an instance instead")
    if inspect.isfunction(target) or inspect.ismethod(target) or inspect.isbuiltin(target):
        return _wrap_function(target, spec_args)
    if isinstance(target, (staticmethod, classmethod)):
        raise TypeError("apply @mlotel.instrument below @staticmethod/@classmethod")
    return _wrap_object(target, spec_args)


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
        self._call: _Call | None = None
        self._features: Any = None
        self._prediction: Any = None
        self._scores: Any = None
        self._names: Sequence[str] | None = None
        self._class_labels: Sequence[Any] | None = None
        self._state_token: contextvars.Token[int | None] | None = None
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
        self._call = _start(self._spec)
        if self._call is not None:
            self._state_token = _state_set(1)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        call = self._call
        self._call = None
        if call is None:
            return
        token, self._state_token = self._state_token, None
        if token is not None:
            # exited in another context than it was entered in: nothing there to undo
            with contextlib.suppress(ValueError):
                _state_reset(token)
        _finish(
            call,
            self._spec,
            self._features,
            self._prediction,
            exc,
            self._class_labels,
            self._names,
            self._scores,
            self._row_ids,
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
