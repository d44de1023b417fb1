"""PyTorch auto-instrumentation: outermost module call, inference mode only by default."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import torch

from mlotel import semconv
from mlotel.integrations import set_model_name
from mlotel.integrations.torch import TorchInstrumentor
from mlotel.testing import CapturedTelemetry, capture_telemetry, log_payload
from support.instrumentation import instrumented

torch.manual_seed(0)


class Deep(torch.nn.Module):
    """20 submodules inside one forward."""

    def __init__(self) -> None:
        super().__init__()
        self.layers = torch.nn.ModuleList([torch.nn.Linear(4, 4) for _ in range(19)])
        self.head = torch.nn.Linear(4, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.layers:
            x = torch.tanh(layer(x))
        out: torch.Tensor = self.head(x)
        return out


def _inferences(cap: CapturedTelemetry) -> int:
    return cap.histogram_count(semconv.INFERENCE_DURATION.name)


@pytest.fixture
def captured() -> Iterator[CapturedTelemetry]:
    with capture_telemetry() as cap, instrumented(TorchInstrumentor):
        yield cap


def test_eval_mode_forward_is_one_inference_per_call(captured: CapturedTelemetry) -> None:
    model = torch.nn.Linear(4, 2).eval()
    x = torch.randn(8, 4)
    for _ in range(100):
        model(x)
    assert _inferences(captured) == 100
    span = captured.spans[0]
    assert span.name == "predict Linear"
    attrs = dict(span.attributes or {})
    assert attrs[semconv.ATTR_MODEL_FRAMEWORK] == "pytorch"
    assert attrs[semconv.ATTR_BATCH_SIZE] == 8
    assert attrs[semconv.ATTR_MODEL_DEVICE] == "cpu"
    assert attrs[semconv.ATTR_INPUT_DTYPE] == "float32"
    assert log_payload(captured.logs[0])[semconv.ATTR_FEATURES]["f0"] == pytest.approx(
        x[:, 0].tolist()
    )


def test_submodules_are_not_separate_inferences(captured: CapturedTelemetry) -> None:
    model = Deep().eval()
    assert len(list(model.modules())) == 22  # Deep, the ModuleList, 20 layers
    for _ in range(100):
        model(torch.randn(2, 4))
    assert _inferences(captured) == 100
    assert {s.name for s in captured.spans} == {"predict Deep"}


def test_training_loop_gives_no_inferences(captured: CapturedTelemetry) -> None:
    model = Deep().train()
    optimiser = torch.optim.SGD(model.parameters(), lr=0.01)
    for _ in range(20):
        optimiser.zero_grad()
        loss = model(torch.randn(4, 4)).pow(2).mean()
        loss.backward()
        optimiser.step()
    assert _inferences(captured) == 0
    with torch.no_grad():  # train mode, but autograd off: an inference
        model(torch.randn(3, 4))
    with torch.inference_mode():
        model(torch.randn(3, 4))
    assert _inferences(captured) == 2


def test_observe_training_option() -> None:
    with capture_telemetry() as cap:
        with instrumented(TorchInstrumentor, observe_training=True):
            torch.nn.Linear(4, 2).train()(torch.randn(5, 4))
        assert _inferences(cap) == 1


def test_scores_only_when_configured(captured: CapturedTelemetry) -> None:
    model = torch.nn.Linear(4, 3).eval()
    model(torch.randn(6, 4))  # logits: no guessing of scores or classes
    assert captured.histogram_count(semconv.PREDICTION_SCORE.name) == 0
    TorchInstrumentor().uninstrument()
    TorchInstrumentor().instrument(scores={"Linear": "softmax"}, model_names={"Linear": "net"})
    x = torch.randn(6, 4)
    logits = model(x)
    assert logits.shape == (6, 3) and bool((logits < 0).any())  # the caller gets the logits
    assert captured.histogram_count(semconv.PREDICTION_SCORE.name, {"ml.model.name": "net"}) == 6
    winners = torch.softmax(logits, dim=1).argmax(dim=1)
    for cls in range(3):
        want = int((winners == cls).sum())
        got = captured.counter_value(
            semconv.PREDICTIONS.name, {"ml.model.name": "net", "ml.prediction.class": str(cls)}
        )
        assert got == want


def test_bad_scores_option_is_rejected() -> None:
    with pytest.raises(ValueError, match="softmax"):
        TorchInstrumentor().instrument(scores="argmax")
    assert not TorchInstrumentor().is_instrumented_by_opentelemetry


def test_model_name_attribute(captured: CapturedTelemetry) -> None:
    model = set_model_name(torch.nn.Linear(4, 1).eval(), "ranker", "2")
    model(torch.randn(1, 4))
    (span,) = captured.spans
    assert span.name == "predict ranker"
    assert dict(span.attributes or {})[semconv.ATTR_MODEL_VERSION] == "2"


class Raises(torch.nn.Module):
    def forward(self, x: Any) -> Any:
        raise RuntimeError("shape mismatch")


class ReturnsNone(torch.nn.Module):
    def forward(self, x: Any) -> Any:
        return None


class ReturnsDict(torch.nn.Module):
    def forward(self, x: Any) -> Any:
        return {"logits": x}


def test_bad_models_pass_through_unchanged(captured: CapturedTelemetry) -> None:
    with pytest.raises(RuntimeError, match="shape mismatch"):
        Raises().eval()(torch.randn(2, 4))
    assert ReturnsNone().eval()(torch.randn(2, 4)) is None
    x = torch.randn(2, 4)
    out = ReturnsDict().eval()(x)
    assert out["logits"] is x
    assert ReturnsDict().eval()("not a tensor") == {"logits": "not a tensor"}
    assert _inferences(captured) == 4
    failed = captured.points(semconv.INFERENCE_DURATION.name, {"error.type": "RuntimeError"})
    assert sum(p.count for p in failed) == 1


def test_uninstrument_restores_module_call() -> None:
    original = vars(torch.nn.Module)["__call__"]
    with capture_telemetry() as cap:
        TorchInstrumentor().instrument()
        assert vars(torch.nn.Module)["__call__"] is not original
        TorchInstrumentor().uninstrument()
        assert vars(torch.nn.Module)["__call__"] is original
        torch.nn.Linear(4, 2).eval()(torch.randn(1, 4))
        assert cap.spans == []
