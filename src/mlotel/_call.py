"""One observed call: the single path every instrumented call takes.

The decorator, the object proxy, async functions, ``inference()`` blocks and every
library integration observe a call the same way::

    call = start_call(spec, features)   # span started and current; None: just call the model
    try:
        result = model(features)
    except BaseException as exc:
        call.finish(error=exc)
        raise
    call.finish(result)                 # span ended; the call handed to its model's aggregator

:meth:`ObservedCall.finish` does only what the caller must pay for: the duration, the
span's end, copies of the input rows and the output telemetry reads (so a caller that
reuses its buffers cannot change what is reported), and one append of the call object
itself to its model's :class:`~mlotel._aggregator.ModelAggregator`. Reading outputs,
payloads, metrics, log records, drift and outcomes happen at flush time, off the
caller's thread.

This module is the small internal interface integrations build on: :class:`ModelSpec`,
:class:`ObservedCall`, :func:`start_call`, :func:`observe_sync`, :func:`observe_async`,
:func:`input_of` and :data:`MODEL_CALL_STATE` (with :data:`INFERENCE` and :data:`TRAINING`).
"""

from __future__ import annotations

import contextvars
import random
import time
import traceback
from collections.abc import Callable, Coroutine, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import Status, StatusCode

from . import _lifecycle, semconv
from ._model_io import batch_size, input_snapshot, output_rows
from ._self_telemetry import tally
from .outcomes._ids import get_supplied, set_last_ids, span_ids, supplied_ids

if TYPE_CHECKING:
    from ._aggregator import Analyzer, ModelAggregator
    from ._runtime import Runtime

__all__ = [
    "INFERENCE",
    "MODEL_CALL_STATE",
    "NO_INPUT",
    "TRAINING",
    "ModelSpec",
    "ObservedCall",
    "Readout",
    "input_of",
    "observe_async",
    "observe_sync",
    "run_unobserved",
    "start_call",
]

OUTPUT_KINDS = ("auto", "labels", "probabilities", "regression", "none")
_INPUT_KWARGS = ("X", "x", "features", "inputs", "input", "data")
_LOG_ROWS_ONLY = 64  # outputs that feed no metric: keep only rows a log record could show
_SUPPRESS_KEY = otel_context._SUPPRESS_INSTRUMENTATION_KEY
_perf_counter = time.perf_counter
_time_ns = time.time_ns
_get_current = otel_context.get_current
_getrandbits = random.getrandbits
_random = random.random
_attach = otel_context.attach
_detach = otel_context.detach
_set_span_in_context = trace.set_span_in_context
_ndarray = np.ndarray
_get_supplied = get_supplied
_set_last_ids = set_last_ids

INFERENCE = 1
""":data:`MODEL_CALL_STATE` while an observed inference call runs."""
TRAINING = 2
""":data:`MODEL_CALL_STATE` while a training or evaluation call (fit, cross-validation) runs."""

MODEL_CALL_STATE: contextvars.ContextVar[int | None] = contextvars.ContextVar(
    "mlotel_model_call", default=None
)
"""Set while an observed inference (or, by integrations, a training call) runs: model
calls made meanwhile that auto-instrumentation would observe pass through, so an
instrumented function that calls an auto-instrumented model is one inference."""
_state_set = MODEL_CALL_STATE.set
_state_reset = MODEL_CALL_STATE.reset

NO_INPUT: Any = object()
"""``start_call``'s ``features`` when the input is not known when the call starts."""


class ModelSpec:
    """What one instrumented callable reports: model identity and how to read its I/O.

    >>> spec = ModelSpec("churn", "3", "sklearn", "predict_proba", None, "auto")
    >>> spec.span_name, spec.with_operation("predict").span_name
    ('predict_proba churn', 'predict churn')
    """

    __slots__ = (
        "_bound",
        "analyzers",
        "class_labels",
        "feature_names",
        "framework",
        "keep_rows",
        "model_name",
        "model_version",
        "operation",
        "output_kind",
        "prediction_ids",
        "span_attributes",
        "span_name",
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
        span_attributes: dict[str, Any] | None = None,
    ) -> None:
        if not isinstance(model_name, str) or not model_name:
            raise ValueError("model_name must be a non-empty string")
        if output_kind not in OUTPUT_KINDS:
            raise ValueError(f"output={output_kind!r} must be one of {', '.join(OUTPUT_KINDS)}")
        self.model_name = model_name
        self.model_version = None if model_version is None else str(model_version)
        self.framework = framework
        self.operation = operation
        self.feature_names = None if feature_names is None else tuple(map(str, feature_names))
        self.output_kind = output_kind
        self.class_labels = class_labels
        # Flush-time consumers of this model's calls (drift, outcomes), shared by every
        # operation of the model; attached to whichever aggregator the spec binds to.
        self.analyzers = tuple(analyzers)
        # Where row ids come from: a callable of the input or an id column's name.
        self.prediction_ids = prediction_ids
        self._bound: tuple[Runtime, ModelAggregator] | None = None
        self.span_name = f"{operation} {model_name}"
        # Outputs that feed no metric are kept only as far as a log record shows them.
        rows_only = operation in semconv.NON_PREDICTION_OPERATIONS or output_kind == "none"
        self.keep_rows: int | None = _LOG_ROWS_ONLY if rows_only else None
        attrs: dict[str, Any] = {
            semconv.ATTR_MODEL_NAME: model_name,
            semconv.ATTR_OPERATION_NAME: operation,
        }
        if self.model_version is not None:
            attrs[semconv.ATTR_MODEL_VERSION] = self.model_version
        if framework:
            attrs[semconv.ATTR_MODEL_FRAMEWORK] = framework
        attrs.update(span_attributes or {})
        self.span_attributes = attrs
        """Attributes every span of this spec starts with."""

    def with_operation(self, operation: str) -> ModelSpec:
        """The same model observed under another operation name."""
        extra = {
            k: v
            for k, v in self.span_attributes.items()
            if k not in (semconv.ATTR_MODEL_NAME, semconv.ATTR_OPERATION_NAME)
        }
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
            extra,
        )

    def aggregator(self, runtime: Runtime) -> ModelAggregator:
        """This model's aggregator in ``runtime`` (cached; analyzers attached once)."""
        bound = self._bound  # one tuple: a concurrent rebind can never mix two runtimes
        if bound is None or bound[0] is not runtime:
            aggregator = runtime.aggregator(self.model_name, self.model_version, self.framework)
            if aggregator.model_name != semconv.OTHER_CLASS:  # not the max_models overflow
                for analyzer in self.analyzers:
                    aggregator.attach(analyzer)
            bound = (runtime, aggregator)
            self._bound = bound
        return bound[1]


class ObservedCall:
    """One observed call, from :func:`start_call` to :meth:`finish`; after ``finish`` it
    is the record its model's aggregator reads at flush time.

    >>> import mlotel.testing
    >>> spec = ModelSpec("adder", None, None, "predict", ["a", "b"], "auto")
    >>> with mlotel.testing.capture_telemetry() as captured:
    ...     call = start_call(spec, [[1.0, 2.0]])
    ...     call.finish([3.0])
    >>> captured.spans[0].name, mlotel.testing.log_payload(captured.logs[0])["ml.features"]
    ('predict adder', {'a': 1.0, 'b': 2.0})
    """

    __slots__ = (
        "aggregator",
        "class_labels",
        "copied",
        "drawn",
        "duration",
        "end_ns",
        "error_type",
        "excluded",
        "feature_names",
        "inputs",
        "output",
        "output_rows",
        "prediction_id",
        "row_ids",
        "rows",
        "runtime",
        "sampled",
        "scores",
        "span",
        "spec",
        "start",
        "state_token",
        "token",
    )

    # Set by finish(): the call's duration, what telemetry reads of its output, and
    # how it is logged (slots left unset until then cost nothing to create).
    duration: float
    end_ns: int
    error_type: str | None
    output: Any
    output_rows: int
    scores: Any
    class_labels: Sequence[Any] | None
    feature_names: Sequence[str] | None
    row_ids: Any
    sampled: bool

    def __init__(
        self,
        spec: ModelSpec,
        runtime: Runtime,
        aggregator: ModelAggregator,
        span: trace.Span,
        token: Any,
        rows: int | None,
        prediction_id: str,
        inputs: Any,
        drawn: bool = False,
        copied: bool = False,
    ) -> None:
        self.spec = spec
        self.runtime = runtime
        self.aggregator = aggregator
        self.span: trace.Span | None = span
        self.token = token
        self.rows: int = -1 if rows is None else rows  # -1: not known yet (read at finish)
        self.prediction_id = prediction_id
        self.inputs = inputs
        self.drawn = drawn  # start_call's payload sampling draw
        self.copied = copied  # ``inputs`` is start_call's copy of an array input
        self.state_token: contextvars.Token[int | None] | None = _state_set(INFERENCE)
        self.excluded = 0.0
        self.start = _perf_counter()

    @property
    def operation(self) -> str:
        """``ml.operation.name`` of the call."""
        return self.spec.operation

    @property
    def model_name(self) -> str:
        """``ml.model.name`` of the call's model."""
        return self.spec.model_name

    @property
    def model_version(self) -> str | None:
        """``ml.model.version`` of the call's model (None: not stated)."""
        return self.spec.model_version

    @property
    def output_kind(self) -> str:
        """How the output is read (``auto``, ``labels``, ``probabilities``, ...)."""
        return self.spec.output_kind

    @property
    def keep_rows(self) -> int | None:
        """Output rows kept when the output feeds no metric (None: all)."""
        return self.spec.keep_rows

    def exclude(self, seconds: float) -> None:
        """Do not count ``seconds`` of the call as model latency (work an integration did
        for telemetry between the model's return and :meth:`finish`)."""
        self.excluded += seconds

    def finish(
        self,
        result: Any = None,
        error: BaseException | None = None,
        scores: Any = None,
        class_labels: Sequence[Any] | None = None,
        feature_names: Sequence[str] | None = None,
        row_ids: Any = None,
        features: Any = NO_INPUT,
    ) -> None:
        """End the call: its duration, the span's end, one append to the aggregator.

        ``result`` is the model's output (ignored when ``error`` is given); ``scores``
        explicit scores; ``class_labels`` / ``feature_names`` override the spec's for
        this call; ``row_ids`` the caller's ids of the rows; ``features`` the input,
        when it was not known at :func:`start_call`. Never raises.
        """
        self.duration = _perf_counter() - self.start - self.excluded
        span = self.span
        try:
            _detach(self.token)
        except Exception as exc:
            tally.error("instrument.context", exc)
        state_token = self.state_token
        if state_token is not None:
            self.state_token = None
            try:  # (not contextlib.suppress: this is the hot path)  # noqa: SIM105
                _state_reset(state_token)
            except ValueError:  # finished in another context than started: nothing to undo
                pass
        try:
            spec = self.spec
            aggregator = self.aggregator
            if self.runtime.closed:
                aggregator = self._rebind()
            copied = self.copied
            if features is NO_INPUT:
                features = self.inputs
            else:  # known only now (inference() blocks): nothing was taken at the start
                copied = False
            if row_ids is None:
                row_ids = _get_supplied()
            # The common call (no error, ids or late batch size) skips _annotate.
            if (
                error is not None
                or row_ids is not None
                or self.rows < 0
                or spec.prediction_ids is not None
            ):
                row_ids = self._annotate(error, row_ids, features)
            else:
                self.error_type = None
            self.row_ids = row_ids
            sampled = self.drawn or (error is not None and aggregator.payload_enabled)
            self.sampled = sampled
            # What the flush reads of the input: an array was copied by start_call (before
            # the model could change it); other inputs are copied now where cheap, so a
            # caller reusing its buffer cannot change the logged features; nothing is kept
            # when nothing reads it.
            keeps_inputs = aggregator.keeps_inputs
            if features is None or not (sampled or keeps_inputs):
                self.inputs = None
            elif copied:
                self.inputs = features  # start_call's copy
            else:
                self.inputs = input_snapshot(features, keeps_inputs, aggregator.payload_max_bytes)
            # A copy of every input row (for drift) counts toward the buffer's byte bound.
            large = keeps_inputs and type(self.inputs) is _ndarray and self.inputs.nbytes > 4096
            if error is not None or result is None:
                self.output = None
                self.output_rows = 0
            elif type(result) is _ndarray:
                self.output_rows = result.shape[0] if result.ndim else 0
                keep = spec.keep_rows
                if keep is None or scores is not None:
                    self.output = output = result.copy()
                else:
                    self.output = output = result[:keep].copy()
                large = large or output.nbytes > 4096
            else:  # converted at flush time
                self.output_rows = output_rows(result)
                self.output = result
            self.scores = scores
            self.class_labels = spec.class_labels if class_labels is None else class_labels
            self.feature_names = spec.feature_names if feature_names is None else feature_names
            self.end_ns = _time_ns()
            # last_prediction_ids() reads this call: one context-variable write. Outputs
            # that feed no metric (transform, output="none") are no predictions the outcome
            # store keeps, so they hand out no ids.
            _set_last_ids(self if error is None and spec.keep_rows is None else None)
            buffer = aggregator.buffer
            buffer.append(self)
            if large or len(buffer) >= aggregator.threshold:
                aggregator.after_append(self)
        except Exception as exc:
            tally.error("instrument.finish", exc)
        finally:
            if span is not None:
                span.end()

    def _rebind(self) -> ModelAggregator:
        """configure() replaced the runtime while this call ran: report to the new one."""
        replacement = _lifecycle.current
        if replacement is not None and not (
            replacement.closed or replacement.disabled or replacement.stale
        ):
            self.aggregator = self.spec.aggregator(replacement)
        return self.aggregator

    def _annotate(self, error: BaseException | None, row_ids: Any, features: Any) -> Any:
        """The span attributes only some calls get: a batch size read late, the error,
        the caller's row ids. Returns the row ids."""
        spec = self.spec
        span = self.span
        late: dict[str, Any] = {}
        if self.rows < 0:
            self.rows = _guard("data.batch_size", batch_size, features, default=1)
            late[semconv.ATTR_BATCH_SIZE] = self.rows
            late[semconv.ATTR_PREDICTION_ID] = self.prediction_id
        self.error_type = None
        if error is not None:
            self.error_type = type(error).__qualname__
            late[semconv.ATTR_ERROR_TYPE] = self.error_type
            if span is not None:
                if self.aggregator.exception_messages:
                    span.set_status(Status(StatusCode.ERROR, _safe_text(error)))
                    _guard("span.exception", span.record_exception, error, default=None)
                else:  # the message may quote the input: its type and frames only
                    span.set_status(Status(StatusCode.ERROR, self.error_type))
                    _guard("span.exception", _record_exception_type, span, error, default=None)
        if row_ids is None and spec.prediction_ids is not None and error is None:
            row_ids = _guard(
                "outcomes.ids", supplied_ids, spec.prediction_ids, features, default=None
            )
        if row_ids is not None:
            no_ids: list[str] = []
            late[semconv.ATTR_PREDICTION_IDS] = _guard(
                "outcomes.ids", span_ids, row_ids, default=no_ids
            )
        if late and span is not None:
            span.set_attributes(late)
        return row_ids


def start_call(spec: ModelSpec, features: Any = NO_INPUT) -> ObservedCall | None:
    """Begin observing a call; None means "just call the model" (mlotel disabled,
    instrumentation suppressed, or a fault inside mlotel, which is counted).

    When the input is known up front its batch size goes into the span's start
    attributes (one attribute pass in the SDK instead of two).
    """
    runtime = _lifecycle.current
    if runtime is None or runtime.stale:
        runtime = _lifecycle.lazy_runtime()
    # One read of the current context serves the suppression check, the span's parent
    # and the context the span is attached in.
    current = _get_current()
    if runtime.disabled or current.get(_SUPPRESS_KEY):
        return None
    try:
        bound = spec._bound
        if bound is not None and bound[0] is runtime:
            aggregator = bound[1]
        else:
            aggregator = spec.aggregator(runtime)
        prediction_id = _getrandbits(64).to_bytes(8, "big").hex()  # 16 hex digits
        if features is NO_INPUT:
            features = rows = None
            attributes = spec.span_attributes
        else:
            if type(features) is _ndarray and features.ndim >= 2:
                rows = features.shape[0]
            else:
                rows = _guard("data.batch_size", batch_size, features, default=1)
            attributes = {
                **spec.span_attributes,
                semconv.ATTR_BATCH_SIZE: rows,
                semconv.ATTR_PREDICTION_ID: prediction_id,
            }
        # The payload sampling draw (failed calls are logged whatever it says).
        drawn = aggregator.sample_all or (
            aggregator.payload_enabled and _random() < aggregator.sample_rate
        )
        copied = False
        if type(features) is _ndarray and (drawn or aggregator.keeps_inputs):
            # Copied before the model runs: a model (or caller) that changes the array in
            # place cannot change what is logged or what drift counts.
            copied = True
            if aggregator.keeps_inputs:
                features = features.copy()  # every row: the drift monitor reads them all
            elif rows == 1:
                features = features.copy()  # the common call: one row
            else:
                features = input_snapshot(features, False, aggregator.payload_max_bytes)
        span = runtime.tracer.start_span(spec.span_name, current, attributes=attributes)
        token = _attach(_set_span_in_context(span, current))
    except Exception as exc:
        tally.error("instrument.start", exc)
        return None
    return ObservedCall(
        spec, runtime, aggregator, span, token, rows, prediction_id, features, drawn, copied
    )


def input_of(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """The model input of a call: the first positional argument, else a keyword named
    like an input (``X``, ``x``, ``features``, ``inputs``, ``input``, ``data``).

    >>> input_of(([[1.0]],), {}), input_of((), {"X": [[2.0]]}), input_of((), {})
    ([[1.0]], [[2.0]], None)
    """
    if args:
        return args[0]
    for name in _INPUT_KWARGS:
        if name in kwargs:
            return kwargs[name]
    return None


Readout = Callable[[Any, "ObservedCall"], tuple[Any, Any]]
"""``(result, call) -> (output to read, explicit scores or None)``: how an integration
turns a model's return value into what telemetry reads (time it spends is excluded from
the call's duration with ``call.exclude``)."""


def run_unobserved(fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """Call a model that is not observed (mlotel off, instrumentation suppressed, or a
    fault when the call started) with :data:`MODEL_CALL_STATE` set as an observed call
    sets it, so the model calls nested inside pass straight through."""
    token = _state_set(INFERENCE)
    try:
        return fn(*args, **kwargs)
    finally:
        _state_reset(token)


def observe_sync(
    spec: ModelSpec,
    fn: Callable[..., Any],
    instance: Any,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    class_labels: Sequence[Any] | None = None,
    feature_names: Sequence[str] | None = None,
    features: Any = NO_INPUT,
    readout: Readout | None = None,
) -> Any:
    """Call ``fn(*args, **kwargs)`` as one observed inference; returns what it returns.

    The parameters up to ``kwargs`` are wrapt's wrapper signature after ``spec``
    (``instance`` is not used): ``wrapt.FunctionWrapper(fn, functools.partial(
    observe_sync, spec))`` observes every call of ``fn``. ``features``: the input when
    it is not the first argument; ``readout``: see :data:`Readout` (a fault in it is
    counted, and the raw result is read instead).
    """
    if features is NO_INPUT:
        features = args[0] if args else input_of(args, kwargs)
    call = start_call(spec, features)
    if call is None:
        return run_unobserved(fn, args, kwargs)
    try:
        result = fn(*args, **kwargs)
    except BaseException as exc:
        call.finish(None, exc, None, class_labels, feature_names)
        raise
    if type(result) is not _ndarray and isinstance(result, Coroutine):
        # An async model behind a sync wrapper (retry/timeout decorators): the call ends
        # when the coroutine does, so time it and keep its span current while awaited.
        # (Coroutine, not asyncio.iscoroutine: on Python 3.10/3.11 that is also true for
        # generators, which a streaming predict returns and must get back unchanged.)
        state_token, call.state_token = call.state_token, None
        if state_token is not None:
            _state_reset(state_token)  # the synchronous part is over
        try:  # in the caller's context, where it was attached: the span is not left current
            _detach(call.token)
        except Exception as exc:
            tally.error("instrument.context", exc)
        return _finish_when_awaited(call, result, class_labels, feature_names)
    observed, scores = result, None
    if readout is not None:
        try:
            observed, scores = readout(result, call)
        except Exception as exc:
            tally.error(f"readout.{spec.framework or 'model'}", exc)
    call.finish(observed, None, scores, class_labels, feature_names)
    return result


async def _finish_when_awaited(
    call: ObservedCall,
    coroutine: Coroutine[Any, Any, Any],
    class_labels: Sequence[Any] | None,
    feature_names: Sequence[str] | None,
) -> Any:
    call.token = _attach(_set_span_in_context(call.span))  # type: ignore[arg-type]
    call.state_token = _state_set(INFERENCE)
    try:
        result = await coroutine
    except BaseException as exc:
        call.finish(error=exc, class_labels=class_labels, feature_names=feature_names)
        raise
    call.finish(result, class_labels=class_labels, feature_names=feature_names)
    return result


async def observe_async(
    spec: ModelSpec,
    fn: Callable[..., Any],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    class_labels: Sequence[Any] | None = None,
    feature_names: Sequence[str] | None = None,
) -> Any:
    """Await ``fn(*args, **kwargs)`` as one observed inference."""
    features = input_of(args, kwargs)
    call = start_call(spec, features)
    if call is None:
        return await fn(*args, **kwargs)
    try:
        result = await fn(*args, **kwargs)
    except BaseException as exc:
        call.finish(error=exc, class_labels=class_labels, feature_names=feature_names)
        raise
    call.finish(result, class_labels=class_labels, feature_names=feature_names)
    return result


def _guard(component: str, fn: Callable[..., Any], *args: Any, default: Any) -> Any:
    try:
        return fn(*args)
    except Exception as exc:
        tally.error(component, exc)
        return default


def _record_exception_type(span: trace.Span, error: BaseException) -> None:
    """The span's exception event without the message: type and stack frames (source
    lines, never values; chained exceptions and their messages are left out)."""
    frames = "".join(traceback.format_tb(error.__traceback__))
    name = type(error).__qualname__
    span.add_event(
        "exception",
        {
            "exception.type": name,
            "exception.stacktrace": f"Traceback (most recent call last):\n{frames}{name}\n",
            "exception.escaped": "False",
        },
    )


def _safe_text(error: BaseException) -> str:
    try:
        return str(error)[:256]
    except Exception:
        return f"<unprintable {type(error).__name__}>"
