"""Auto-instrumentation of PyTorch ``nn.Module`` inference.

``nn.Module.__call__`` is wrapped once; only the outermost module call of a
forward pass is an inference (submodule calls inside it pass through). By
default a call is observed when it is not a training step: the module is in
eval mode, or autograd is off (``torch.no_grad()`` / ``torch.inference_mode()``).

Spans carry ``ml.model.device`` and ``ml.input.dtype`` of the first input tensor;
the batch size is its first dimension. Outputs are read like any model's
(a probability matrix gives classes and scores); logits are turned into scores
only when configured (``scores={"Net": "softmax"}``), never guessed.

CUDA kernels run asynchronously, and the caller's thread never waits for them here:
what telemetry reads of a CUDA call (its output rows, the input rows a payload or a
drift monitor reads) is copied to pinned host memory without blocking and read at
flush time, and the call's GPU time comes from CUDA events read at flush time too
(``mlotel.integrations._device``). ``ml.inference.duration`` is then the longer of the
host time and the GPU time between the call's start and end events.
``cuda_timing="sync"`` instead waits for the GPU at the end of each call (the old
behaviour: the caller blocks, so CPU work can no longer overlap the GPU's);
``cuda_timing="off"`` records no events (durations are launch times).

>>> from mlotel.integrations.torch import TorchInstrumentor
>>> TorchInstrumentor().instrumentation_dependencies()
('torch >= 2.0',)
"""

from __future__ import annotations

import math
from collections.abc import Callable
from time import perf_counter
from typing import Any

from opentelemetry.instrumentation.utils import is_instrumentation_enabled

from .. import semconv
from .._call import NO_INPUT, TRAINING, ObservedCall, input_of, run_unobserved, start_call
from .._config import setting_from_env
from .._model_io import payload_rows
from .._self_telemetry import tally
from ._base import STATE, MLInstrumentor, lookup, pass_through
from ._device import CudaOps, PendingReads

__all__ = ["CUDA_TIMINGS", "SCORE_MODES", "TorchInstrumentor", "enqueue_reads"]

SCORE_MODES = ("softmax", "sigmoid")
"""How configured logits become class probabilities (``scores=...``)."""

CUDA_TIMINGS = ("events", "sync", "off")
"""``cuda_timing=`` values: GPU time from events read at flush (default), wait for the GPU
at the end of each call, or host launch time only."""


def _cuda_timing(value: Any) -> str:
    if value is True:
        return "sync"
    if value is False or value is None:
        return "off"
    if value not in CUDA_TIMINGS:
        raise ValueError(f"cuda_timing={value!r} must be one of {', '.join(CUDA_TIMINGS)}")
    return str(value)


def enqueue_reads(
    call: ObservedCall,
    ops: CudaOps,
    start: Any,
    output: Any,
    features: Any,
    component: str,
) -> tuple[Any, Any]:
    """Enqueue the host copies telemetry needs of a CUDA call; returns what to hand to
    ``finish`` as its result and input (deferred arrays, read at flush time)."""
    pending = PendingReads(ops, start)
    observed = None
    if _first_tensor(output) is not None and ops.on_device(output):
        observed = pending.copy(output, call.keep_rows, component)
    elif _first_tensor(output) is not None:
        observed = output  # already on the host
    inputs: Any = None
    aggregator = call.aggregator
    if _first_tensor(features) is not None and ops.on_device(features):
        shape = tuple(features.shape)
        if aggregator.keeps_inputs:
            inputs = pending.copy(features, None, component)
        elif aggregator.payload_enabled:
            rows = payload_rows(math.prod(shape[1:]), aggregator.payload_max_bytes)
            inputs = pending.copy(features, rows, component)
    elif features is not None:
        inputs = NO_INPUT  # the start's input stands

    def longer_on_gpu(gpu_seconds: float | None) -> None:
        if gpu_seconds is not None and gpu_seconds > call.duration:
            call.duration = gpu_seconds

    pending.seal(longer_on_gpu if start is not None else None)
    return observed, inputs


def _first_tensor(features: Any) -> Any:
    if hasattr(features, "device") and hasattr(features, "dtype"):
        return features
    return None


class TorchInstrumentor(MLInstrumentor):
    """Observes outermost ``nn.Module`` calls (entry point name ``torch``).

    Options of ``instrument(...)``, besides ``model_names``, ``model_versions`` and
    ``outputs``:

    * ``observe_training`` (default False): also observe calls in train mode with
      autograd on (training steps are not predictions by default).
    * ``cuda_timing`` (default ``"events"``): how CUDA calls are timed without (or,
      with ``"sync"``, with) waiting for the GPU; see the module docstring.
    * ``scores``: ``"softmax"`` or ``"sigmoid"`` for every model, or a mapping from
      class, class name or model name to one of them: the output (logits) is
      converted into probabilities for the classes and scores metrics; the caller
      still gets the logits.
    * ``nested_spans`` (default False): child spans, without metrics, for submodules.

    When transformers is imported, its instrumentor is turned on too (unless
    ``OTEL_PYTHON_DISABLED_INSTRUMENTATIONS`` names it), so ``generate()`` and pipeline
    calls are one inference each instead of one per forward pass.
    """

    _library = "torch"
    _module = "torch"
    _instruments = ("torch >= 2.0",)

    def _patch(self, module: Any) -> None:
        import torch

        self._patches.wrap(torch.nn.Module, "__call__", self._wrapper(torch))

    def _span_attributes(self, extra: tuple[Any, ...]) -> dict[str, Any] | None:
        device, dtype = extra
        attributes: dict[str, Any] = {}
        if device is not None:
            attributes[semconv.ATTR_MODEL_DEVICE] = str(device)
        if dtype is not None:
            attributes[semconv.ATTR_INPUT_DTYPE] = str(dtype).removeprefix("torch.")
        return attributes

    def _default_output(self, instance: Any, cls: type, model_name: str) -> str:
        return "probabilities" if self._score_mode(cls, model_name) else "auto"

    def _score_mode(self, cls: type, model_name: str) -> str | None:
        scores = self._options.get("scores")
        mode = (
            scores
            if isinstance(scores, str) or scores is None
            else lookup(scores, cls, model_name)
        )
        return mode  # every value was checked by _instrument

    def _instrument(self, **kwargs: Any) -> None:
        _cuda_timing(kwargs.get("cuda_timing", "events"))  # a bad value fails here
        scores = kwargs.get("scores")
        modes = [scores] if isinstance(scores, str) else list((scores or {}).values())
        for mode in modes:  # a bad option fails here, not later inside a predict call
            if mode not in SCORE_MODES:
                raise ValueError(f"scores={mode!r} must be one of {', '.join(SCORE_MODES)}")
        super()._instrument(**kwargs)
        self._pulled: MLInstrumentor | None = None
        self._when_imported(
            "transformers", lambda module: self._pull_transformers(kwargs), "integrations.torch"
        )

    def _pull_transformers(self, options: dict[str, Any]) -> None:
        """With transformers imported, its ``generate()`` and pipelines are one inference
        each (not one per forward step): instrument them too, unless disabled."""
        if "transformers" in setting_from_env("disabled_instrumentations"):
            return
        from .transformers import TransformersInstrumentor

        target = TransformersInstrumentor()
        if not target.is_instrumented_by_opentelemetry:
            shared = ("model_names", "model_versions", "outputs", "references")
            target.instrument(**{k: v for k, v in options.items() if k in shared})
            self._pulled = target

    def _uninstrument(self, **kwargs: Any) -> None:
        pulled = getattr(self, "_pulled", None)
        self._pulled = None
        if pulled is not None and pulled.is_instrumented_by_opentelemetry:
            pulled.uninstrument()
        super()._uninstrument(**kwargs)

    cuda_ops: Callable[[Any], CudaOps] = CudaOps
    """Builds the CUDA calls of the no-stall path from the torch module (CPU tests swap in
    a fake)."""

    def _wrapper(self, torch: Any) -> Callable[..., Any]:
        options = self._options
        observe_training = bool(options.get("observe_training", False))
        cuda_timing = _cuda_timing(options.get("cuda_timing", "events"))
        ops = self.cuda_ops(torch)
        on_device = ops.on_device
        nested = bool(options.get("nested_spans", False))
        grad_enabled = torch.is_grad_enabled
        compiling = getattr(getattr(torch, "compiler", None), "is_compiling", lambda: False)
        spec_for = self.spec_for
        score_mode = self._score_mode
        cuda_event = torch.cuda.Event
        functional = torch.nn.functional

        def to_probabilities(result: Any, mode: str) -> Any:
            logits = result.detach().float()
            if mode == "softmax":
                return functional.softmax(logits, dim=-1)
            return torch.sigmoid(logits)

        def observe(
            wrapped: Callable[..., Any],
            instance: Any,
            args: tuple[Any, ...],
            kwargs: dict[str, Any],
        ) -> Any:
            state = STATE.get()
            if state is not None or not is_instrumentation_enabled():
                return pass_through(state, nested, "forward", instance, wrapped, args, kwargs)
            if (instance.training and grad_enabled() and not observe_training) or compiling():
                token = STATE.set(TRAINING)  # submodules then skip every check above
                try:
                    return wrapped(*args, **kwargs)
                finally:
                    STATE.reset(token)
            try:
                features = input_of(args, kwargs)
                tensor = _first_tensor(features)
                device = None if tensor is None else tensor.device
                dtype = None if tensor is None else tensor.dtype
                spec = spec_for(instance, "predict", device, dtype)
                mode = (
                    score_mode(type(instance), spec.model_name)
                    if spec.output_kind == "probabilities"
                    else None
                )
            except Exception as exc:
                tally.error("integrations.torch", exc)
                return wrapped(*args, **kwargs)
            call = start_call(spec, features)
            if call is None:
                return run_unobserved(wrapped, args, kwargs)
            cuda = tensor is not None and on_device(tensor)
            start = ops.marker() if cuda and cuda_timing == "events" else None
            try:
                result = wrapped(*args, **kwargs)
            except BaseException as exc:
                call.finish(error=exc)
                raise
            observed = result
            inputs = NO_INPUT
            if mode is None and not cuda:
                call.finish(result)
                return result
            try:
                began = perf_counter()
                if mode is not None:
                    observed = to_probabilities(result, mode)
                if cuda:
                    if cuda_timing == "sync":
                        done = cuda_event()
                        done.record()
                        done.synchronize()
                        began = perf_counter()  # the wait is the model's time
                    observed, inputs = enqueue_reads(
                        call, ops, start, observed, features, "integrations.torch"
                    )
                call.exclude(perf_counter() - began)  # telemetry's work, not the model's
            except Exception as exc:
                tally.error("integrations.torch", exc)
            call.finish(observed, features=inputs)
            return result

        return observe
