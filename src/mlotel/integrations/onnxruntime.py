"""Auto-instrumentation of ONNX Runtime: ``InferenceSession.run``.

The model name is, in order: the session's ``mlotel_model_name`` attribute, a
``model_names`` mapping entry, the model file's name without ``.onnx``, the graph
name in the model's metadata, else ``InferenceSession``; the version is the
metadata's ``model_version`` when it is set (not 0). With one input, that input is
the features (a dict of several inputs is read as named columns). Outputs: the first
output is the prediction; a second output that is a 2-D float matrix (e.g.
skl2onnx's probabilities with ``zipmap=False``) gives the scores.

>>> from mlotel.integrations.onnxruntime import OnnxRuntimeInstrumentor
>>> OnnxRuntimeInstrumentor().instrumentation_dependencies()
('onnxruntime >= 1.14',)
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from .._call import ModelSpec
from ._base import MODEL_NAME_ATTRIBUTE, MODEL_VERSION_ATTRIBUTE, MLInstrumentor, inference_wrapper

__all__ = ["OnnxRuntimeInstrumentor"]

_SPEC_ATTRIBUTE = "_mlotel_spec"


def _prepare(instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[Any, Any, Any]:
    feed = args[1] if len(args) > 1 else kwargs.get("input_feed")
    if isinstance(feed, dict) and len(feed) == 1:
        return next(iter(feed.values())), None, None
    return feed, None, None


def _readout(outputs: Any, call: Any) -> tuple[Any, Any]:
    if not isinstance(outputs, list) or not outputs:
        return outputs, None
    scores = None
    if len(outputs) > 1:
        second = outputs[1]
        if isinstance(second, np.ndarray) and second.ndim == 2 and second.dtype.kind == "f":
            scores = second
    return outputs[0], scores


class OnnxRuntimeInstrumentor(MLInstrumentor):
    """Observes ``InferenceSession.run`` (entry point name ``onnxruntime``).

    Options: ``model_names`` (keys: model file name, graph name or class),
    ``model_versions``, ``outputs``.
    """

    _library = "onnxruntime"
    _module = "onnxruntime"
    _instruments = ("onnxruntime >= 1.14",)

    def _patch(self, module: Any) -> None:
        from onnxruntime.capi import onnxruntime_inference_collection as collection

        self._patches.wrap(
            collection.Session, "run", inference_wrapper(self, "predict", _prepare, _readout)
        )

    def spec_for(self, instance: Any, operation: str, *extra: Any) -> ModelSpec:
        # One spec per session, kept on the session (sessions are never pickled): the
        # metadata read below is a native call, too slow to repeat on every run().
        own = instance.__dict__
        name = own.get(MODEL_NAME_ATTRIBUTE)
        version = own.get(MODEL_VERSION_ATTRIBUTE)
        cached = own.get(_SPEC_ATTRIBUTE)
        if cached is not None and cached[0] == name and cached[1] == version:
            spec: ModelSpec = cached[2]
            return spec
        spec = super().spec_for(instance, operation, *extra)
        own[_SPEC_ATTRIBUTE] = (name, version, spec)
        return spec

    def _identity(self, instance: Any, cls: type, name: Any, version: Any) -> tuple[Any, Any]:
        """The model file's stem or graph name, and the version in its metadata."""
        path = getattr(instance, "_model_path", None)
        stem = None
        if isinstance(path, (str, os.PathLike)):
            stem = os.path.basename(os.fspath(path)).removesuffix(".onnx") or None
        meta = instance.get_modelmeta()
        graph = getattr(meta, "graph_name", None) or None
        mapping = self._options.get("model_names") or {}
        if name is None:
            name = next((mapping[k] for k in (stem, graph) if k is not None and k in mapping), None)
        if name is None and not any(k in mapping for k in (cls, cls.__name__, cls.__qualname__)):
            name = stem or graph
        if version is None:
            meta_version = getattr(meta, "version", 0)
            versions = self._options.get("model_versions") or {}
            version = next(
                (versions[k] for k in (stem, graph, name) if k is not None and k in versions),
                meta_version or None,
            )
        return name, version
