"""Auto-instrumentation of PyTorch ``nn.Module`` inference.

``nn.Module.__call__`` is wrapped once; only the outermost module call of a
forward pass is an inference (submodule calls inside it pass through). By
default a call is observed when it is not a training step: the module is in
eval mode, or autograd is off (``torch.no_grad()`` / ``torch.inference_mode()``).

Spans carry ``ml.model.device`` and ``ml.input.dtype`` of the first input tensor;
the batch size is its first dimension. Outputs are read like any model's
(a probability matrix gives classes and scores); logits are turned into scores
only when configured (``scores={"Net": "softmax"}``), never guessed.

CUDA kernels run asynchronously: without synchronisation a call's duration is the
time to *launch* its kernels. ``cuda_timing=True`` records a CUDA event after the
forward and waits for it, so ``ml.inference.duration`` includes the GPU work. Its
cost: the calling thread blocks until the GPU has finished that forward, so CPU work
can no longer overlap the GPU's (the next batch cannot be prepared meanwhile).

>>> from mlotel.integrations.torch import TorchInstrumentor
>>> TorchInstrumentor().instrumentation_dependencies()
('torch >= 2.0',)
"""

from __future__ import annotations

from collections.abc import Callable
from time import perf_counter
from typing import Any

from opentelemetry.instrumentation.utils import is_instrumentation_enabled

from .. import semconv
from .._call import TRAINING, ObservedCall, input_of
from .._self_telemetry import tally
from ._base import STATE, MLInstrumentor, lookup, observe_inference, pass_through

__all__ = ["SCORE_MODES", "TorchInstrumentor"]

SCORE_MODES = ("softmax", "sigmoid")
"""How configured logits become class probabilities (``scores=...``)."""


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
    * ``cuda_timing`` (default False): wait for the GPU at the end of each call so
      the duration includes kernel time (see the module docstring for its cost).
    * ``scores``: ``"softmax"`` or ``"sigmoid"`` for every model, or a mapping from
      class, class name or model name to one of them: the output (logits) is
      converted into probabilities for the classes and scores metrics; the caller
      still gets the logits.
    * ``nested_spans`` (default False): child spans, without metrics, for submodules.
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
        if mode is not None and mode not in SCORE_MODES:
            raise ValueError(f"scores={mode!r} must be one of {', '.join(SCORE_MODES)}")
        return mode

    def _instrument(self, **kwargs: Any) -> None:
        scores = kwargs.get("scores")
        modes = [scores] if isinstance(scores, str) else list((scores or {}).values())
        for mode in modes:  # a bad option fails here, not later inside a predict call
            if mode not in SCORE_MODES:
                raise ValueError(f"scores={mode!r} must be one of {', '.join(SCORE_MODES)}")
        super()._instrument(**kwargs)

    def _wrapper(self, torch: Any) -> Callable[..., Any]:
        options = self._options
        observe_training = bool(options.get("observe_training", False))
        cuda_timing = bool(options.get("cuda_timing", False))
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
                name = f"forward {type(instance).__name__}"
                return pass_through(state, nested, name, wrapped, args, kwargs)
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
                    if spec.output_kind == ("probabilities")
                    else None
                )
            except Exception as exc:
                tally.error("integrations.torch", exc)
                return wrapped(*args, **kwargs)
            wait = cuda_timing and device is not None and device.type == "cuda"

            def readout(result: Any, call: ObservedCall) -> tuple[Any, Any]:
                if wait:
                    done = cuda_event()
                    done.record()
                    done.synchronize()
                if mode is None:
                    return result, None
                began = perf_counter()
                observed = to_probabilities(result, mode)
                call.exclude(perf_counter() - began)  # not the model's latency
                return observed, None

            chosen = readout if (wait or mode is not None) else None
            return observe_inference(spec, wrapped, args, kwargs, None, None, features, chosen)

        return observe
