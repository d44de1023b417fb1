"""Auto-instrumentation of Hugging Face transformers: pipelines and ``generate()``.

* ``Pipeline.__call__`` is one inference: span ``"{task} {model}"`` (``ml.operation.name``
  is the pipeline's task, ``ml.model.name`` the model's name or path), and the model
  calls inside it (``nn.Module`` forwards, ``generate()``) are not separate inferences.
  Outputs are read as what they are: the winning label and its score for classifiers
  (``[{"label", "score"}]``, ``top_k`` lists, zero-shot results), one entity type and
  score per entity for token classification, one vector per input for feature
  extraction (mean over tokens), output tokens for generation tasks.
* ``model.generate()`` is one inference (span ``"generate {model}"``), with the
  OpenTelemetry GenAI conventions where they fit: ``gen_ai.operation.name``,
  ``gen_ai.request.model``, ``gen_ai.usage.input_tokens`` / ``output_tokens`` on the
  span, and the histograms ``gen_ai.client.token.usage``,
  ``gen_ai.client.operation.duration``, ``gen_ai.server.time_to_first_token`` and
  ``gen_ai.server.time_per_output_token``. The first token is timed by a logits
  processor mlotel adds to the call (it returns the scores unchanged); token counts
  are read from the returned sequences (a row ends at its first end-of-sequence token).
* Text inputs are described (length in characters, words and tokens, share of unknown
  tokens, emptiness; ``mlotel.drift.text_descriptors``) when the flush reads them, and
  those descriptors are the call's features: payload log records show them (not the
  text, unless content capture is on), and ``references=`` profiles built with
  ``mlotel.drift.text_profile`` monitor their drift.

GenAI conventions: the default follows semantic conventions v1.36.0 (``gen_ai.system``);
``OTEL_SEMCONV_STABILITY_OPT_IN=gen_ai_latest_experimental`` switches to the GenAI
registry's latest names (``gen_ai.provider.name``), as the opentelemetry-python-contrib
GenAI instrumentations do. ``genai_conventions=False`` leaves every ``gen_ai.*`` name out.

>>> from mlotel.integrations.transformers import TransformersInstrumentor
>>> TransformersInstrumentor().instrumentation_dependencies()
('transformers >= 4.40',)
"""

from __future__ import annotations

import contextvars
import inspect
import os
import types
from collections.abc import Callable, Mapping, Sequence
from time import perf_counter
from typing import Any

import numpy as np
from opentelemetry.instrumentation.utils import is_instrumentation_enabled

from .. import semconv
from .._aggregator import CallRecord, ModelAggregator
from .._call import INFERENCE, NO_INPUT, ModelSpec, ObservedCall, run_unobserved, start_call
from .._metric_store import MetricStore
from .._model_io import DeferredArray, is_torch, torch_to_numpy
from .._self_telemetry import tally
from ..drift import TextDescriptors
from ..drift._text import TEXT_TOKENS, documents_of
from ._base import STATE, MLInstrumentor
from ._device import CudaOps, PendingReads

__all__ = ["GENERATION_TASKS", "TransformersInstrumentor", "genai_mode"]

_COMPONENT = "integrations.transformers"

GENERATION_TASKS = frozenset(
    {
        "text-generation",
        "text2text-generation",
        "summarization",
        "translation",
        "image-text-to-text",
    }
)
"""Pipeline tasks that call ``generate()``: their calls carry the GenAI names."""

_CLASSIFICATION_TASKS = frozenset(
    {
        "text-classification",
        "sentiment-analysis",
        "zero-shot-classification",
        "image-classification",
        "audio-classification",
        "zero-shot-image-classification",
    }
)
_ENTITY_TASKS = frozenset({"token-classification", "ner"})
_VECTOR_TASKS = frozenset({"feature-extraction", "image-feature-extraction"})

_LATEST = "gen_ai_latest_experimental"
_CAPTURE_VARIABLE = "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT"


def genai_mode(environ: Mapping[str, str] | None = None) -> str:
    """``"latest"`` when ``OTEL_SEMCONV_STABILITY_OPT_IN`` lists
    ``gen_ai_latest_experimental``, else ``"v1.36.0"`` (the default).

    >>> opted_in = {"OTEL_SEMCONV_STABILITY_OPT_IN": "http, gen_ai_latest_experimental"}
    >>> genai_mode({}), genai_mode(opted_in)
    ('v1.36.0', 'latest')
    """
    env = os.environ if environ is None else environ
    wanted = {v.strip() for v in env.get("OTEL_SEMCONV_STABILITY_OPT_IN", "").split(",")}
    return "latest" if _LATEST in wanted else "v1.36.0"


def _capture_from_env() -> bool:
    value = os.environ.get(_CAPTURE_VARIABLE, "").strip().lower()
    return value in ("true", "1", "yes", "span_only", "event_only", "span_and_event")


# --- what the generate() calls of one inference measured ------------------------------


class _Generation:
    """Token counts and first-token timing of the ``generate()`` calls inside one observed
    inference (one call, or several inside a pipeline call). CUDA parts are read at flush."""

    __slots__ = (
        "_pending",
        "call_start",
        "decode_seconds",
        "decode_steps",
        "input_counts",
        "max_tokens",
        "output_counts",
        "ttft",
    )

    def __init__(self, call_start: float) -> None:
        self.call_start = call_start
        self.max_tokens: int | None = None  # the request's max_new_tokens, when an int
        self.ttft: float | None = None
        self.decode_seconds = 0.0
        self.decode_steps = 0
        self.input_counts: list[np.ndarray] = []
        self.output_counts: list[np.ndarray] = []
        self._pending: list[Callable[[], None]] = []

    @property
    def resolved(self) -> bool:
        """Whether every count is known (no CUDA copy waits to be read)."""
        return not self._pending

    def resolve(self) -> _Generation:
        """Read what was left on the device (flush thread); returns self."""
        pending, self._pending = self._pending, []
        for read in pending:
            read()
        return self

    def inputs(self) -> np.ndarray:
        """Prompt tokens per input row."""
        self.resolve()
        return np.concatenate(self.input_counts) if self.input_counts else np.zeros(0)

    def outputs(self) -> np.ndarray:
        """Generated tokens per returned sequence."""
        self.resolve()
        return np.concatenate(self.output_counts) if self.output_counts else np.zeros(0)

    def time_per_output_token(self) -> float | None:
        """Decoding seconds per step after the first token (None under two steps)."""
        self.resolve()
        if self.decode_steps < 1:
            return None
        return self.decode_seconds / self.decode_steps


_ACTIVE: contextvars.ContextVar[_Generation | None] = contextvars.ContextVar(
    "mlotel_generation", default=None
)


def _output_counts(
    rows: list[list[int]], start: int, eos: Sequence[int], pad: int | None
) -> np.ndarray:
    """Generated tokens per row: up to and including the first end-of-sequence token;
    without one, the row less its trailing padding (when padding is no end token).
    (Plain Python: a few rows of tens of tokens cost less than numpy's per-call overhead.)"""
    ends = set(eos)
    trim = pad is not None and pad not in ends
    counts = []
    for row in rows:
        generated = row[start:]
        count = len(generated)
        for index, token in enumerate(generated):
            if token in ends:
                count = index + 1
                break
        else:
            if trim:
                while count and generated[count - 1] == pad:
                    count -= 1
        counts.append(count)
    return np.asarray(counts, dtype=np.float64)


def _id_list(value: Any) -> list[int]:
    if value is None:
        return []
    if hasattr(value, "tolist"):
        value = value.tolist()
    if isinstance(value, int):
        return [value]
    return [int(v) for v in value]


def _config_value(instance: Any, kwargs: Mapping[str, Any], name: str) -> Any:
    if kwargs.get(name) is not None:
        return kwargs[name]
    config = kwargs.get("generation_config") or getattr(instance, "generation_config", None)
    return getattr(config, name, None)


def _prompt_tensor(args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> Any:
    for key in ("input_ids", "inputs"):
        if kwargs.get(key) is not None:
            return kwargs[key]
    return args[0] if args else None


def _signed(input_ids: Any, scores: Any) -> Any:
    """Stands in for a hook's bound ``__call__`` when transformers inspects it:
    LogitsProcessorList reads each processor's ``__call__`` signature at every decoding
    step, and a precomputed one (set below) makes that lookup cost next to nothing."""
    return scores


class _FirstToken:
    """Timing hook added to a ``generate()`` call's logits processors: notes when the
    first token's logits exist (a host clock reading, or a CUDA event), then does
    nothing but return the scores it is given."""

    __slots__ = ("_marker", "at", "seen")

    def __init__(self, marker: Callable[[], Any] | None) -> None:
        self._marker = marker
        self.seen = False
        self.at: Any = None
        # (calling the processor still goes through the class's __call__)
        self.__dict__["__call__"] = _signed

    def __call__(self, input_ids: Any, scores: Any) -> Any:
        if not self.seen:
            self.seen = True
            self.at = perf_counter() if self._marker is None else self._marker()
        return scores


class _Generate:
    """Runs one ``generate()`` call with the first-token hook and adds what it measured
    to a :class:`_Generation`."""

    def __init__(self, transformers: Any, ops: CudaOps, timed: bool) -> None:
        self._processor_list = transformers.LogitsProcessorList
        processor_base = transformers.LogitsProcessor
        # A LogitsProcessor subclass, like the processors generate() builds itself.
        self._hook_class = type("MlotelFirstToken", (_FirstToken, processor_base), {})
        self._ops = ops
        self._timed = timed

    def run(
        self,
        wrapped: Callable[..., Any],
        instance: Any,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        generation: _Generation,
    ) -> Any:
        prompt = _prompt_tensor(args, kwargs)
        ops = self._ops
        cuda = is_torch(prompt) and ops.on_device(prompt)
        hook = None
        if self._timed:
            hook = self._hook_class(ops.marker if cuda else None)
            given = kwargs.get("logits_processor")
            kwargs = {**kwargs, "logits_processor": self._processor_list([*(given or ()), hook])}
        began = perf_counter()
        start = ops.marker() if cuda and hook is not None else None
        result = wrapped(*args, **kwargs)
        ended = perf_counter()
        try:
            self._measure(instance, kwargs, prompt, result, generation, hook, began, ended, start)
        except Exception as exc:
            tally.error(_COMPONENT, exc)
        return result

    def _measure(
        self,
        instance: Any,
        kwargs: Mapping[str, Any],
        prompt: Any,
        result: Any,
        generation: _Generation,
        hook: _FirstToken | None,
        began: float,
        ended: float,
        start: Any,
    ) -> None:
        sequences = getattr(result, "sequences", result)
        if not is_torch(sequences) or len(sequences.shape) != 2:
            return
        config = getattr(instance, "config", None)
        if getattr(config, "is_encoder_decoder", False):
            decoder: Any = kwargs.get("decoder_input_ids")
            offset = int(decoder.shape[1]) if is_torch(decoder) else 1
        else:
            offset = int(prompt.shape[1]) if is_torch(prompt) and len(prompt.shape) == 2 else 0
        eos = _id_list(_config_value(instance, kwargs, "eos_token_id"))
        pad_ids = _id_list(_config_value(instance, kwargs, "pad_token_id"))
        pad = pad_ids[0] if pad_ids else None
        mask = kwargs.get("attention_mask")
        steps = int(sequences.shape[1]) - offset
        ops = self._ops
        if not ops.on_device(sequences):
            generation.output_counts.append(
                _output_counts(sequences.tolist(), offset, eos, pad)
            )
            generation.input_counts.append(_input_counts(prompt, mask))
            if hook is not None and hook.at is not None:
                if generation.ttft is None:
                    generation.ttft = hook.at - generation.call_start
                if steps > 1:
                    generation.decode_seconds += ended - hook.at
                    generation.decode_steps += steps - 1
            return
        # CUDA: enqueue host copies and events now, count and time at flush.
        pending = PendingReads(ops, start)
        host_sequences = pending.copy(sequences, None, _COMPONENT)
        host_mask = pending.copy(mask, None, _COMPONENT) if is_torch(mask) else None
        pending.seal()
        first = hook.at if hook is not None else None
        lead = began - generation.call_start  # host time before this generate started
        end = pending.end

        def read() -> None:
            assert host_sequences is not None
            generation.output_counts.append(
                _output_counts(np.asarray(host_sequences).tolist(), offset, eos, pad)
            )
            mask_values = None if host_mask is None else np.asarray(host_mask)
            generation.input_counts.append(_input_counts(prompt, mask_values))
            if start is not None and first is not None:
                if generation.ttft is None:
                    generation.ttft = lead + ops.seconds_between(start, first)
                if steps > 1:
                    generation.decode_seconds += ops.seconds_between(first, end)
                    generation.decode_steps += steps - 1

        generation._pending.append(read)


def _input_counts(prompt: Any, mask: Any) -> np.ndarray:
    """Prompt tokens per row: the attention mask's ones, else the prompt's width."""
    if mask is not None:
        values = mask if isinstance(mask, np.ndarray) else torch_to_numpy(mask)
        return np.asarray(values.reshape(len(values), -1).sum(axis=1), dtype=np.float64)
    if is_torch(prompt) and len(prompt.shape) == 2:
        return np.full(int(prompt.shape[0]), float(prompt.shape[1]))
    return np.zeros(0)


_signed.__signature__ = inspect.signature(_signed)  # type: ignore[attr-defined]


# --- the inputs handed to the call path ----------------------------------------------


class _Described(TextDescriptors):
    """A call's text descriptors, plus what its generate() calls measured (if any)."""

    __slots__ = ("generation",)

    def __init__(
        self,
        texts: Sequence[str] | None,
        tokenizer: Any,
        extra: Mapping[str, Callable[[], Any]] | None,
        generation: _Generation | None,
    ) -> None:
        super().__init__(texts, tokenizer, extra)
        self.generation = generation


# --- reading pipeline outputs --------------------------------------------------------


def _winner(row: Any) -> tuple[Any, float]:
    """(label, score) of one classification row: a dict, a ranked list, or zero-shot."""
    if isinstance(row, Mapping):
        if "label" in row:
            return row["label"], float(row["score"])
        labels, scores = row.get("labels"), row.get("scores")
        if labels and scores:
            best = int(np.argmax(scores))
            return labels[best], float(scores[best])
    if isinstance(row, (list, tuple)) and row:
        best_row = max(row, key=lambda item: float(item["score"]))
        return best_row["label"], float(best_row["score"])
    return None, float("nan")


def _classification(result: Any, single: bool) -> tuple[Any, Any]:
    """The winning label and its score per input (a single input's result is one row
    even when it lists every class)."""
    rows = [result] if single or isinstance(result, Mapping) else list(result)
    found = [_winner(r) for r in rows]
    labels = np.asarray([str(label) for label, _ in found])
    scores = np.asarray([score for _, score in found], dtype=np.float64)
    return labels, scores


def _entities(result: Any, single: bool) -> tuple[Any, Any]:
    """One label (entity type) and score per entity found, over all inputs."""
    rows = [result] if single else list(result)
    found = [
        (str(e.get("entity_group", e.get("entity"))), float(e.get("score", np.nan)))
        for row in rows
        for e in row
        if isinstance(e, Mapping)
    ]
    labels = np.asarray([label for label, _ in found], dtype=str)
    return labels, np.asarray([s for _, s in found], dtype=np.float64)


def _vectors(result: Any, single: bool) -> tuple[Any, Any]:
    """One vector per input (the mean of its token vectors), converted at flush time."""
    items = [result] if single or is_torch(result) else list(result)
    rows = int(result.shape[0]) if is_torch(result) else len(items)
    return DeferredArray(lambda: _mean_vectors(items), (rows, -1)), None


def _mean_vectors(items: Sequence[Any]) -> np.ndarray:
    vectors = []
    for item in items:
        arr = torch_to_numpy(item) if is_torch(item) else np.asarray(item, dtype=np.float64)
        if arr.ndim == 3:  # (inputs, tokens, hidden)
            vectors.extend(arr.mean(axis=1))
        else:
            vectors.append(arr.reshape(-1, arr.shape[-1]).mean(axis=0))
    return np.vstack(vectors).astype(np.float64) if vectors else np.zeros((0, 0))


# --- the GenAI metrics ---------------------------------------------------------------


class _GenAIMetrics:
    """Flush-time analyzer recording the GenAI histograms of generation calls."""

    name = "genai"
    needs_inputs = True  # the measured generation rides on the call's input object

    def __init__(self, provider_key: str) -> None:
        self._provider_key = provider_key

    def process(
        self, records: Sequence[CallRecord], aggregator: ModelAggregator, store: MetricStore
    ) -> None:
        base = aggregator.base_attrs
        for rec in records:
            described = rec.inputs
            generation = getattr(described, "generation", None)
            if generation is None:
                continue
            attrs = (
                *base,
                (semconv.ATTR_GEN_AI_OPERATION_NAME, semconv.GEN_AI_OPERATION_GENERATE),
                (self._provider_key, semconv.GEN_AI_PROVIDER),
                (semconv.ATTR_GEN_AI_REQUEST_MODEL, aggregator.model_name),
            )
            duration_attrs = (
                attrs
                if rec.error_type is None
                else (*attrs, (semconv.ATTR_ERROR_TYPE, rec.error_type))
            )
            store.record_histogram(
                semconv.GEN_AI_CLIENT_OPERATION_DURATION, duration_attrs, np.asarray([rec.duration])
            )
            if rec.error_type is not None:
                continue
            generation.resolve()
            for kind, counts in (("input", generation.inputs()), ("output", generation.outputs())):
                if counts.size:
                    store.record_histogram(
                        semconv.GEN_AI_CLIENT_TOKEN_USAGE,
                        (*attrs, (semconv.ATTR_GEN_AI_TOKEN_TYPE, kind)),
                        np.asarray([counts.sum()]),
                    )
            if generation.ttft is not None:
                store.record_histogram(
                    semconv.GEN_AI_SERVER_TIME_TO_FIRST_TOKEN, attrs, np.asarray([generation.ttft])
                )
            per_token = generation.time_per_output_token()
            if per_token is not None:
                store.record_histogram(
                    semconv.GEN_AI_SERVER_TIME_PER_OUTPUT_TOKEN, attrs, np.asarray([per_token])
                )


# --- the instrumentor ------------------------------------------------------------------


class TransformersInstrumentor(MLInstrumentor):
    """Observes pipeline calls and ``generate()`` (entry point name ``transformers``).

    Options of ``instrument(...)``, besides ``model_names``, ``model_versions``,
    ``outputs`` and ``references`` (keys: model class or name, pipeline class name, or
    the model name):

    * ``genai_conventions`` (default True): the ``gen_ai.*`` attributes and histograms.
    * ``time_first_token`` (default True): add the first-token logits processor to each
      ``generate()`` call (without it there is no time to first token or per token).
    * ``capture_content`` (default False, or ``OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT``
      set to true): also log the input texts (column ``text``) in payload log records.
    """

    _library = "transformers"
    _module = "transformers.generation.utils"
    _instruments = ("transformers >= 4.40",)

    cuda_ops: Callable[[Any], CudaOps] = CudaOps
    """Builds the CUDA calls of the no-stall path (CPU tests swap in a fake)."""

    def _instrument(self, **kwargs: Any) -> None:
        # Read before the base class registers the import hook (it may patch at once).
        self._genai = bool(kwargs.get("genai_conventions", True))
        self._timed = self._genai and bool(kwargs.get("time_first_token", True))
        self._capture = bool(kwargs.get("capture_content", _capture_from_env()))
        mode = genai_mode()
        self._provider_key = (
            semconv.ATTR_GEN_AI_PROVIDER_NAME if mode == "latest" else semconv.ATTR_GEN_AI_SYSTEM
        )
        self._genai_metrics = _GenAIMetrics(self._provider_key)
        super()._instrument(**kwargs)
        self._when_imported("transformers.pipelines.base", self._patch_pipelines, _COMPONENT)

    def _patch(self, module: Any) -> None:
        import torch
        import transformers

        runner = _Generate(transformers, self.cuda_ops(torch), self._timed)
        wrapper = self._generate_wrapper(runner)

        def patch_class(cls: type) -> None:
            if "generate" in vars(cls):
                self._patches.wrap(cls, "generate", wrapper)

        self._wrap_class_tree(module.GenerationMixin, patch_class)

    def _patch_pipelines(self, module: Any) -> None:
        wrapper = self._pipeline_wrapper()

        def patch_class(cls: type) -> None:
            if "__call__" in vars(cls):
                self._patches.wrap(cls, "__call__", wrapper)

        self._wrap_class_tree(module.Pipeline, patch_class)

    # --- identity -----------------------------------------------------------------
    def _default_name(self, instance: Any, cls: type) -> str:
        model = getattr(instance, "model", instance) if _is_pipeline(instance) else instance
        name = getattr(model, "name_or_path", None)
        return str(name) if name else type(model).__name__

    def _default_output(self, instance: Any, cls: type, model_name: str) -> str:
        if not _is_pipeline(instance):
            return "regression"  # generate(): output tokens per sequence
        task = getattr(instance, "task", "")
        if task in _CLASSIFICATION_TASKS or task in _ENTITY_TASKS:
            return "labels"
        if task in GENERATION_TASKS:
            return "regression"
        if task in _VECTOR_TASKS:
            return "none"
        return "auto"

    def _adapt_spec(self, spec: ModelSpec, operation: str, extra: tuple[Any, ...]) -> ModelSpec:
        if self._genai and (operation == "generate" or operation in GENERATION_TASKS):
            attributes = {
                semconv.ATTR_GEN_AI_OPERATION_NAME: semconv.GEN_AI_OPERATION_GENERATE,
                self._provider_key: semconv.GEN_AI_PROVIDER,
                semconv.ATTR_GEN_AI_REQUEST_MODEL: spec.model_name,
            }
            spec = ModelSpec(
                spec.model_name,
                spec.model_version,
                spec.framework or "transformers",
                operation,
                None,
                spec.output_kind,
                analyzers=(*spec.analyzers, self._genai_metrics),
                span_attributes={**(self._span_attributes(extra) or {}), **attributes},
            )
        return spec

    # --- wrappers -----------------------------------------------------------------
    def _generate_wrapper(self, runner: _Generate) -> Callable[..., Any]:
        spec_for = self.spec_for
        genai = self._genai

        def observe(
            wrapped: Callable[..., Any],
            instance: Any,
            args: tuple[Any, ...],
            kwargs: dict[str, Any],
        ) -> Any:
            state = STATE.get()
            if state is not None or instance is None or not is_instrumentation_enabled():
                outer = _ACTIVE.get()
                if outer is not None and state == INFERENCE and instance is not None:
                    return runner.run(wrapped, instance, args, kwargs, outer)  # inside a pipeline
                return wrapped(*args, **kwargs)
            try:
                spec = spec_for(instance, "generate")
                prompt = _prompt_tensor(args, kwargs)
            except Exception as exc:
                tally.error(_COMPONENT, exc)
                return wrapped(*args, **kwargs)
            call = start_call(spec, prompt if prompt is not None else NO_INPUT)
            if call is None:
                return run_unobserved(wrapped, args, kwargs)
            generation = _Generation(call.start)
            max_tokens = _config_value(instance, kwargs, "max_new_tokens")
            if isinstance(max_tokens, int):
                generation.max_tokens = max_tokens
            try:
                result = runner.run(wrapped, instance, args, kwargs, generation)
            except BaseException as exc:
                call.finish(error=exc, features=_generation_inputs(generation))
                raise
            _finish_generation(call, generation, genai)
            return result

        return observe

    def _pipeline_wrapper(self) -> Callable[..., Any]:
        spec_for = self.spec_for
        genai = self._genai
        capture = self._capture

        def observe(
            wrapped: Callable[..., Any],
            instance: Any,
            args: tuple[Any, ...],
            kwargs: dict[str, Any],
        ) -> Any:
            state = STATE.get()
            if state is not None or instance is None or not is_instrumentation_enabled():
                return wrapped(*args, **kwargs)
            inputs = args[0] if args else kwargs.get("inputs", kwargs.get("text_inputs"))
            if isinstance(inputs, types.GeneratorType) or _is_dataset(inputs):
                return wrapped(*args, **kwargs)  # streamed lazily: not one call to observe
            try:
                task = str(getattr(instance, "task", "") or type(instance).__name__)
                spec = spec_for(instance, task)
                documents = documents_of(inputs)
                tokenizer = getattr(instance, "tokenizer", None)
            except Exception as exc:
                tally.error(_COMPONENT, exc)
                return wrapped(*args, **kwargs)
            if documents is not None:
                rows: Any = documents
            elif isinstance(inputs, list) and inputs and _is_message(inputs[0]):
                rows = [inputs]  # one chat (a list of messages) is one input
            else:
                rows = inputs
            call = start_call(spec, rows)
            if call is None:
                return run_unobserved(wrapped, args, kwargs)
            generation = _Generation(call.start) if task in GENERATION_TASKS else None
            active = _ACTIVE.set(generation) if generation is not None else None
            try:
                result = wrapped(*args, **kwargs)
            except BaseException as exc:
                call.finish(
                    error=exc,
                    features=_described(documents, tokenizer, capture, generation),
                )
                raise
            finally:
                if active is not None:
                    _ACTIVE.reset(active)
            began = perf_counter()
            observed: Any = None
            scores: Any = None
            try:
                if generation is not None:
                    observed = _generated_counts(generation)
                elif task in _CLASSIFICATION_TASKS:
                    observed, scores = _classification(result, not isinstance(inputs, list))
                elif task in _ENTITY_TASKS:
                    observed, scores = _entities(result, not isinstance(inputs, list))
                elif task in _VECTOR_TASKS:
                    observed, scores = _vectors(result, not isinstance(inputs, list))
                else:
                    observed = result
                if generation is not None and generation.resolved:
                    _usage_attributes(call, generation, genai)
            except Exception as exc:
                tally.error(_COMPONENT, exc)
            call.exclude(perf_counter() - began)
            call.finish(
                observed,
                scores=scores,
                features=_described(documents, tokenizer, capture, generation),
            )
            return result

        return observe



def _is_dataset(value: Any) -> bool:
    module = type(value).__module__.partition(".")[0]
    return module in ("datasets", "torch") and not is_torch(value) and hasattr(value, "__len__")


def _is_message(item: Any) -> bool:
    return isinstance(item, Mapping) and "role" in item and "content" in item


def _is_pipeline(instance: Any) -> bool:
    return all(hasattr(instance, name) for name in ("task", "model", "postprocess"))


def _described(
    documents: list[str] | None, tokenizer: Any, capture: bool, generation: _Generation | None
) -> Any:
    """The call's input as telemetry reads it: descriptors (computed at flush)."""
    if documents is None and generation is None:
        return None
    extra: dict[str, Callable[[], Any]] = {}
    if capture and documents is not None:
        texts = list(documents)
        extra["text"] = lambda: np.asarray(texts, dtype=object)
    return _Described(documents, tokenizer, extra or None, generation)


def _generation_inputs(generation: _Generation) -> _Described:
    """generate()'s input as telemetry reads it: prompt tokens per row (no text)."""
    return _Described(None, None, {TEXT_TOKENS: generation.inputs}, generation)


def _generated_counts(generation: _Generation) -> Any:
    if generation.resolved:
        return generation.outputs()
    rows = sum(len(c) for c in generation.output_counts)
    return DeferredArray(generation.outputs, (rows,))


def _usage_attributes(call: ObservedCall, generation: _Generation, genai: bool) -> None:
    if genai and call.span is not None:
        attributes: dict[str, Any] = {
            semconv.ATTR_GEN_AI_USAGE_INPUT_TOKENS: int(generation.inputs().sum()),
            semconv.ATTR_GEN_AI_USAGE_OUTPUT_TOKENS: int(generation.outputs().sum()),
        }
        if generation.max_tokens is not None:
            attributes[semconv.ATTR_GEN_AI_REQUEST_MAX_TOKENS] = generation.max_tokens
        call.span.set_attributes(attributes)


def _finish_generation(call: ObservedCall, generation: _Generation, genai: bool) -> None:
    began = perf_counter()
    observed: Any = None
    try:
        observed = _generated_counts(generation)
        if generation.resolved:  # CPU: counted already; CUDA: only at flush
            _usage_attributes(call, generation, genai)
        elif genai and generation.max_tokens is not None and call.span is not None:
            call.span.set_attribute(semconv.ATTR_GEN_AI_REQUEST_MAX_TOKENS, generation.max_tokens)
    except Exception as exc:
        tally.error(_COMPONENT, exc)
    call.exclude(perf_counter() - began)
    call.finish(observed, features=_generation_inputs(generation))

