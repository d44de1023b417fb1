"""CUDA check of mlotel's tensor handling, run on a lent GPU machine (not by CI).

    PYTHONPATH=src python3 tests/gpu/cuda_check.py

CUDA tensors as inputs and outputs of an instrumented torch model: the call's result
stays on the GPU and unchanged, batch size, scores and class counts are right, a bfloat16
CUDA input is widened for the payload, and the per-call cost against the bare model is
printed (mlotel copies the output to the host at the end of each call, which waits for the
model's kernels: the measured latency is the real one, and this copy is its cost).
"""

from __future__ import annotations

import time

import torch

import mlotel
from mlotel.testing import capture_telemetry, log_payload


def main() -> None:
    assert torch.cuda.is_available(), "no CUDA device"
    print("device:", torch.cuda.get_device_name(0), "torch", torch.__version__)
    model = (
        torch.nn.Sequential(
            torch.nn.Linear(32, 512),
            torch.nn.ReLU(),
            torch.nn.Linear(512, 10),
            torch.nn.Softmax(dim=1),
        )
        .cuda()
        .eval()
    )
    x = torch.randn(256, 32, device="cuda")
    with capture_telemetry() as captured, torch.no_grad():
        clf = mlotel.instrument(model, model_name="cuda-net", model_version="1")
        out = clf(x)
        assert out.device.type == "cuda"
        assert torch.equal(out, model(x)), "result changed"
        (span,) = captured.spans
        assert span.attributes["ml.batch.size"] == 256
        assert span.attributes["ml.model.framework"] == "pytorch"
        assert captured.histogram_count("ml.prediction.score") == 256
        assert sum(p.value for p in captured.points("ml.predictions")) == 256
        (point,) = captured.points("ml.prediction.score")
        expected = float(out.max(dim=1).values.sum())
        assert abs(point.sum - expected) < 1e-3, (point.sum, expected)
        payload = log_payload(captured.logs[0])
        assert abs(payload["ml.features"]["f0"][0] - float(x[0, 0])) < 1e-6
        clf(x.to(torch.bfloat16).float())  # sanity: float path again
        mlotel.instrument(lambda t: t.sum(dim=1), model_name="bf16", output="regression")(
            x.to(torch.bfloat16)
        )
        bf16 = log_payload(captured.logs[-1])
        assert len(bf16["ml.features"]["f0"]) > 0 and len(bf16["ml.prediction"]) > 0
        print("correctness: OK (cuda in/out, batch 256, scores, classes, payload, bf16)")

    with capture_telemetry(), torch.no_grad():
        clf = mlotel.instrument(model, model_name="cuda-net")
        for rows in (1, 256):
            xb = torch.randn(rows, 32, device="cuda")
            for _ in range(50):
                model(xb), clf(xb)
            n = 500
            torch.cuda.synchronize()
            t = time.perf_counter()
            for _ in range(n):
                model(xb)
            torch.cuda.synchronize()
            bare = (time.perf_counter() - t) / n
            t = time.perf_counter()
            for _ in range(n):
                clf(xb)
            mlotel.force_flush()
            torch.cuda.synchronize()
            observed = (time.perf_counter() - t) / n
            print(
                f"rows {rows:4d}: bare model {bare * 1e6:8.1f} us/call (async launches), "
                f"instrumented {observed * 1e6:8.1f} us/call incl. flush, "
                f"ratio {observed / bare:5.2f}x"
            )


def auto_instrumented() -> None:
    """TorchInstrumentor on CUDA: device attribute, and the cost of ``cuda_timing``."""
    from mlotel.integrations.torch import TorchInstrumentor

    model = torch.nn.Sequential(
        torch.nn.Linear(32, 4096), torch.nn.ReLU(), torch.nn.Linear(4096, 10)
    ).cuda()
    model.eval()
    x = torch.randn(1024, 32, device="cuda")
    with capture_telemetry() as captured, torch.no_grad():
        TorchInstrumentor().instrument(scores="softmax")
        try:
            out = model(x)
            assert out.device.type == "cuda"
            (span,) = captured.spans
            assert span.attributes["ml.model.device"] == "cuda:0", span.attributes
            assert span.attributes["ml.input.dtype"] == "float32"
            assert captured.histogram_count("ml.prediction.score") == 1024
        finally:
            TorchInstrumentor().uninstrument()
    print("auto-instrumentation on cuda: OK (device, dtype, softmax scores)")

    for timing in (False, True):
        with capture_telemetry() as captured, torch.no_grad():
            TorchInstrumentor().instrument(cuda_timing=timing)
            try:
                for _ in range(20):
                    model(x)
                captured.clear()
                n = 200
                torch.cuda.synchronize()
                t = time.perf_counter()
                for _ in range(n):
                    model(x)
                torch.cuda.synchronize()
                wall = (time.perf_counter() - t) / n
                (point,) = captured.points("ml.inference.duration")
                recorded = point.sum / point.count
            finally:
                TorchInstrumentor().uninstrument()
        print(
            f"cuda_timing={timing!s:5}: loop wall {wall * 1e6:8.1f} us/call, "
            f"recorded ml.inference.duration mean {recorded * 1e6:8.1f} us "
            "(with cuda_timing the recorded latency includes the GPU work)"
        )


if __name__ == "__main__":
    main()
    auto_instrumented()
