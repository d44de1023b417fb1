"""ONNX Runtime auto-instrumentation: InferenceSession.run, names from path or metadata."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper
from onnxruntime.capi import onnxruntime_inference_collection as collection
from skl2onnx import to_onnx
from sklearn.linear_model import LogisticRegression

from mlotel import semconv
from mlotel.integrations.onnxruntime import OnnxRuntimeInstrumentor
from mlotel.testing import CapturedTelemetry, capture_telemetry, log_payload
from support.instrumentation import instrumented

RNG = np.random.default_rng(8)
X = RNG.random((40, 3)).astype(np.float32)
Y = (X[:, 0] > 0.5).astype(np.int64)


@pytest.fixture
def captured() -> Iterator[CapturedTelemetry]:
    with capture_telemetry() as cap, instrumented(OnnxRuntimeInstrumentor):
        yield cap


def _classifier_file(tmp_path: Path) -> Path:
    model = to_onnx(LogisticRegression().fit(X, Y), X[:1], options={"zipmap": False})
    path = tmp_path / "churn.onnx"
    path.write_bytes(model.SerializeToString())
    return path


def _doubler_bytes() -> bytes:
    """A tiny graph built with the onnx helper API: y = 2 * x, graph name "doubler"."""
    two = helper.make_tensor("two", TensorProto.FLOAT, [1], [2.0])
    graph = helper.make_graph(
        [helper.make_node("Mul", ["x", "two"], ["y"])],
        "doubler",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, 2])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, 2])],
        initializer=[two],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.model_version = 5
    onnx.checker.check_model(model)
    return model.SerializeToString()


def test_run_on_a_file_model(captured: CapturedTelemetry, tmp_path: Path) -> None:
    session = ort.InferenceSession(
        str(_classifier_file(tmp_path)), providers=["CPUExecutionProvider"]
    )
    labels, proba = session.run(None, {"X": X[:6]})
    (span,) = captured.spans
    assert span.name == "predict churn"  # from the file name
    attrs = dict(span.attributes or {})
    assert attrs[semconv.ATTR_MODEL_FRAMEWORK] == "onnxruntime"
    assert attrs[semconv.ATTR_BATCH_SIZE] == 6
    (scores,) = captured.points(semconv.PREDICTION_SCORE.name)
    assert scores.count == 6
    assert scores.sum == pytest.approx(float(proba.max(axis=1).sum()), rel=1e-5)
    ones = int((labels == 1).sum())
    assert captured.counter_value(semconv.PREDICTIONS.name, {"ml.prediction.class": "1"}) == ones
    payload = log_payload(captured.logs[0])
    assert payload[semconv.ATTR_FEATURES]["f0"] == pytest.approx(X[:6, 0].tolist())


def test_name_and_version_from_metadata(captured: CapturedTelemetry) -> None:
    session = ort.InferenceSession(_doubler_bytes(), providers=["CPUExecutionProvider"])
    (out,) = session.run(["y"], {"x": np.ones((3, 2), dtype=np.float32)})
    assert out.tolist() == [[2.0, 2.0]] * 3
    (span,) = captured.spans
    assert span.name == "predict doubler"
    assert dict(span.attributes or {})[semconv.ATTR_MODEL_VERSION] == "5"


def test_bad_feed_raises_unchanged(captured: CapturedTelemetry) -> None:
    session = ort.InferenceSession(_doubler_bytes(), providers=["CPUExecutionProvider"])
    with pytest.raises(Exception, match="x") as raised:
        session.run(None, {"wrong": np.ones((1, 2), dtype=np.float32)})
    failed = captured.points(
        semconv.INFERENCE_DURATION.name, {"error.type": type(raised.value).__qualname__}
    )
    assert sum(p.count for p in failed) == 1


def test_uninstrument_restores_run(tmp_path: Path) -> None:
    original = vars(collection.Session)["run"]
    with capture_telemetry() as cap:
        OnnxRuntimeInstrumentor().instrument()
        assert vars(collection.Session)["run"] is not original
        OnnxRuntimeInstrumentor().uninstrument()
        assert vars(collection.Session)["run"] is original
        session = ort.InferenceSession(_doubler_bytes(), providers=["CPUExecutionProvider"])
        session.run(None, {"x": np.ones((1, 2), dtype=np.float32)})
        assert cap.spans == []
