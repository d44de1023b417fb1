"""The CUDA no-stall path (torch and transformers integrations) on a CPU-only machine.

FAKE, clearly: no CUDA device exists here, so ``FakeCudaOps`` stands in for
``mlotel.integrations._device.CudaOps`` (the only place the integrations make CUDA
calls). It treats CPU tensors as device tensors, hands out host objects as events,
records every wait, and reports a fixed GPU time. Everything else (the call path,
the deferred copies, the flush that resolves them, the metrics) is the real code.
The same path on a real GPU is checked by ``tests/gpu/cuda_check.py``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import torch

from mlotel import semconv
from mlotel._model_io import payload_rows
from mlotel.integrations import _device
from mlotel.integrations.torch import TorchInstrumentor
from mlotel.integrations.transformers import TransformersInstrumentor
from mlotel.testing import CapturedTelemetry, capture_telemetry, log_payload
from support import tiny_transformers as tiny
from support.instrumentation import instrumented

GPU_SECONDS = 0.25  # longer than any host time here: proves durations come from events


class FakeCudaOps:
    """FAKE CudaOps (see the module docstring)."""

    def __init__(self) -> None:
        self.waits: list[Any] = []
        self.copied_shapes: list[tuple[int, ...]] = []
        self.markers = 0

    def __call__(self, torch_module: Any) -> FakeCudaOps:  # the instrumentors' factory hook
        return self

    def on_device(self, tensor: Any) -> bool:
        return True

    def marker(self) -> Any:
        self.markers += 1
        return object()

    def pinned_empty(self, shape: tuple[int, ...], dtype: Any) -> Any:
        self.copied_shapes.append(shape)
        return torch.empty(shape, dtype=dtype)

    def wait(self, marker: Any) -> None:
        self.waits.append(marker)

    def seconds_between(self, start: Any, end: Any) -> float:
        return GPU_SECONDS


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> FakeCudaOps:
    ops = FakeCudaOps()
    monkeypatch.setattr(TorchInstrumentor, "cuda_ops", ops)
    monkeypatch.setattr(TransformersInstrumentor, "cuda_ops", ops)
    return ops


@pytest.fixture
def captured(fake: FakeCudaOps) -> Iterator[CapturedTelemetry]:
    with capture_telemetry() as cap, instrumented(TorchInstrumentor):
        yield cap


def _model() -> Any:
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.Softmax(dim=1)).eval()


def test_caller_never_waits_and_flush_reads_the_values_of_call_time(
    fake: FakeCudaOps, captured: CapturedTelemetry
) -> None:
    model = _model()
    x = torch.randn(8, 4)
    first_column = x[:, 0].tolist()
    with torch.no_grad():
        out = model(x)
    assert fake.waits == []  # nothing on the caller's path waited for the device
    expected_scores = float(out.max(dim=1).values.sum())
    out.zero_()  # the caller reuses its buffers before the flush
    x.zero_()
    captured.flush()
    assert fake.waits  # the flush waited (on the event after the copies)
    assert captured.histogram_count(semconv.PREDICTION_SCORE.name) == 8
    (score,) = captured.points(semconv.PREDICTION_SCORE.name)
    assert score.sum == pytest.approx(expected_scores)
    assert log_payload(captured.logs[0])[semconv.ATTR_FEATURES]["f0"] == pytest.approx(first_column)
    (duration,) = captured.points(semconv.INFERENCE_DURATION.name)
    assert duration.sum == pytest.approx(GPU_SECONDS)  # the events' GPU time, not launch time


def test_copies_are_bounded_and_what_is_cut_is_counted(
    fake: FakeCudaOps, captured: CapturedTelemetry, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_device, "MAX_COPY_BYTES", 3 * 3 * 4)  # three rows of 3 float32
    model = _model()
    with torch.no_grad():
        model(torch.randn(1000, 4))
    # output: 3 rows (the cap); input: the rows a default 8 KiB payload shows, capped too
    assert fake.copied_shapes[0] == (3, 3)
    assert fake.copied_shapes[1][0] <= payload_rows(4, 8192)
    captured.flush()
    assert captured.histogram_count(semconv.PREDICTION_SCORE.name) == 3
    dropped = captured.points(
        semconv.INTERNAL_DROPPED.name, {semconv.ATTR_DROP_REASON: "device_copy_bytes"}
    )
    assert sum(p.value for p in dropped) == 997
    (span,) = captured.spans
    assert dict(span.attributes or {})[semconv.ATTR_BATCH_SIZE] == 1000


def test_payload_rows_only_unless_a_drift_monitor_reads_every_row(
    fake: FakeCudaOps, captured: CapturedTelemetry
) -> None:
    with torch.no_grad():
        _model()(torch.randn(1000, 4))
    assert fake.copied_shapes == [(1000, 3), (payload_rows(4, 8192), 4)]


def test_generate_counts_tokens_at_flush_without_waiting(fake: FakeCudaOps) -> None:
    with capture_telemetry() as cap:
        with instrumented(TransformersInstrumentor):
            tiny.gpt2().generate(
                torch.tensor([[5, 6, 7]]), max_new_tokens=5, do_sample=False, eos_token_id=999
            )
        assert fake.waits == []
        (span,) = cap.spans
        # counts are not known without reading the device: not on the span
        assert semconv.ATTR_GEN_AI_USAGE_OUTPUT_TOKENS not in dict(span.attributes or {})
        cap.flush()
        assert fake.waits
        usage = {
            dict(p.attributes)[semconv.ATTR_GEN_AI_TOKEN_TYPE]: p.sum
            for p in cap.points(semconv.GEN_AI_CLIENT_TOKEN_USAGE.name)
        }
        assert usage == {"input": 3.0, "output": 5.0}
        (ttft,) = cap.points(semconv.GEN_AI_SERVER_TIME_TO_FIRST_TOKEN.name)
        assert ttft.sum >= GPU_SECONDS  # host lead time + the events' GPU time
        (per_token,) = cap.points(semconv.GEN_AI_SERVER_TIME_PER_OUTPUT_TOKEN.name)
        assert per_token.sum == pytest.approx(GPU_SECONDS / 4)
        assert log_payload(cap.logs[0])[semconv.ATTR_PREDICTION] == 5.0
