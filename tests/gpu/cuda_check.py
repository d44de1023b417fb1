"""CUDA check of mlotel's no-stall path, run on a lent GPU machine (not by CI).

    PYTHONPATH=src python3 tests/gpu/cuda_check.py

What it checks and prints (docs/integrations.md, "CUDA: the caller never waits"):

1. correctness: CUDA tensors in and out of an instrumented torch model; the result stays
   on the GPU, unchanged; batch size, scores, classes and payload are right, read at
   flush time from the pinned host copies (also after the caller overwrote its buffers);
2. no wait on the caller's path: the instrumented calls run under
   ``torch.cuda.set_sync_debug_mode("error")``, which raises on any synchronising call;
3. durations: ``ml.inference.duration`` against the GPU time CUDA events measure for
   the bare model;
4. added time per call, 1 and 256 rows: instrumented loop vs bare loop (both ending in
   one ``torch.cuda.synchronize()``), per call;
5. a pipelined loop (the CPU prepares the next batch while the GPU computes the last):
   throughput instrumented / bare, target within 5 %;
6. ``generate()`` of a tiny GPT-2 on CUDA (if transformers is installed): one span, exact
   token counts in the GenAI histograms after the flush.

Exits non-zero when a check fails; the timing lines are printed either way.
"""

from __future__ import annotations

import statistics
import sys
import time
from typing import Any

import numpy as np
import torch

import mlotel
from mlotel.integrations.torch import TorchInstrumentor
from mlotel.testing import capture_telemetry, log_payload

FAILED: list[str] = []


def check(ok: bool, what: str) -> None:
    print(("ok    " if ok else "FAILED"), what)
    if not ok:
        FAILED.append(what)


def net(width: int = 512) -> torch.nn.Module:
    torch.manual_seed(0)
    return (
        torch.nn.Sequential(
            torch.nn.Linear(32, width),
            torch.nn.ReLU(),
            torch.nn.Linear(width, 10),
            torch.nn.Softmax(dim=1),
        )
        .cuda()
        .eval()
    )


def correctness_and_no_wait() -> None:
    model = net()
    x = torch.randn(256, 32, device="cuda")
    with torch.no_grad():
        expected = model(x)  # the bare forward, before instrumenting
    with capture_telemetry(buffer_size=100_000, flush_interval=3600.0) as captured:
        TorchInstrumentor().instrument()
        try:
            with torch.no_grad():
                torch.cuda.set_sync_debug_mode("error")
                try:
                    out = model(x)
                    waited = None
                except RuntimeError as exc:  # a synchronising call on the caller's path
                    waited = str(exc)
                    out = expected
                finally:
                    torch.cuda.set_sync_debug_mode("default")
        finally:
            TorchInstrumentor().uninstrument()
        check(waited is None, f"no synchronising call on the caller's path ({waited})")
        check(out.device.type == "cuda" and torch.equal(out, expected), "result unchanged on GPU")
        first = float(x[0, 0])
        scores = float(out.max(dim=1).values.sum())
        out.zero_()  # the caller reuses its buffers before the flush
        x.zero_()
        captured.flush()
        (span,) = captured.spans
        attrs = dict(span.attributes or {})
        check(attrs["ml.batch.size"] == 256 and attrs["ml.model.device"] == "cuda:0", "span")
        check(captured.histogram_count("ml.prediction.score") == 256, "256 scores")
        (point,) = captured.points("ml.prediction.score")
        check(abs(point.sum - scores) < 1e-3, f"scores of call time ({point.sum} vs {scores})")
        logged = log_payload(captured.logs[0])["ml.features"]["f0"][0]
        check(abs(logged - first) < 1e-6, "payload of call time")


def durations() -> None:
    model = net(4096)
    x = torch.randn(4096, 32, device="cuda")
    with torch.no_grad():
        for _ in range(10):
            model(x)
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        for _ in range(50):
            model(x)
        end.record()
        end.synchronize()
        gpu = start.elapsed_time(end) / 1000 / 50
        with capture_telemetry() as captured:
            TorchInstrumentor().instrument()
            try:
                for _ in range(50):
                    model(x)
            finally:
                TorchInstrumentor().uninstrument()
            captured.flush()
            (point,) = captured.points("ml.inference.duration")
    recorded = point.sum / point.count
    print(
        f"GPU time per forward (events, bare) {gpu * 1e6:.1f} µs; "
        f"recorded ml.inference.duration {recorded * 1e6:.1f} µs"
    )
    check(0.8 * gpu <= recorded <= 1.5 * gpu + 50e-6, "ml.inference.duration is the GPU time")


def added_time_per_call() -> None:
    model = net()
    with capture_telemetry(), torch.no_grad():
        for rows in (1, 256):
            x = torch.randn(rows, 32, device="cuda")
            bare_times, observed_times = [], []
            for _ in range(7):
                for observed, into in ((False, bare_times), (True, observed_times)):
                    if observed:
                        TorchInstrumentor().instrument()
                    for _ in range(50):
                        model(x)
                    torch.cuda.synchronize()
                    start = time.perf_counter()
                    for _ in range(500):
                        model(x)
                    torch.cuda.synchronize()
                    into.append((time.perf_counter() - start) / 500)
                    if observed:
                        mlotel.force_flush()
                        TorchInstrumentor().uninstrument()
            bare, observed = statistics.median(bare_times), statistics.median(observed_times)
            print(
                f"rows {rows:4d}: bare {bare * 1e6:7.1f} µs/call, instrumented "
                f"{observed * 1e6:7.1f} µs/call, added {(observed - bare) * 1e6:6.1f} µs "
                f"({observed / bare:.2f}x)"
            )


def pipelined_throughput() -> None:
    """The CPU prepares batch i+1 (numpy work) while the GPU computes batch i."""
    model = net(4096)
    rng = np.random.default_rng(0)
    host = torch.empty(1024, 32, pin_memory=True)

    def loop(n: int) -> float:
        start = time.perf_counter()
        for _ in range(n):
            batch = rng.standard_normal((1024, 32), dtype=np.float32)  # CPU-side preparation
            host.copy_(torch.from_numpy(batch))
            x = host.to("cuda", non_blocking=True)
            model(x)
        torch.cuda.synchronize()
        return n / (time.perf_counter() - start)

    with capture_telemetry(), torch.no_grad():
        loop(20)
        bare, observed = [], []
        for _ in range(7):
            bare.append(loop(200))
            TorchInstrumentor().instrument()
            observed.append(loop(200))
            mlotel.force_flush()
            TorchInstrumentor().uninstrument()
    ratio = statistics.median(observed) / statistics.median(bare)
    print(
        f"pipelined loop: bare {statistics.median(bare):.0f} batches/s, instrumented "
        f"{statistics.median(observed):.0f} batches/s ({ratio:.3f}x)"
    )
    check(ratio >= 0.95, "pipelined throughput within 5 % of the bare loop")


def generate_on_cuda() -> None:
    try:
        from transformers import GPT2Config, GPT2LMHeadModel
    except ImportError:
        print("skipped: generate() on CUDA (transformers is not installed)")
        return
    from mlotel.integrations.transformers import TransformersInstrumentor

    torch.manual_seed(0)
    config = GPT2Config(n_layer=2, n_embd=64, n_head=2, vocab_size=1000, n_positions=128)
    model: Any = GPT2LMHeadModel(config).cuda().eval()
    model.generation_config.pad_token_id = 0
    ids = torch.randint(1, 1000, (2, 6), device="cuda")
    with capture_telemetry() as captured:
        TransformersInstrumentor().instrument()
        try:
            out = model.generate(ids, max_new_tokens=20, min_new_tokens=20, do_sample=False)
        finally:
            TransformersInstrumentor().uninstrument()
        captured.flush()
        check([s.name for s in captured.spans] == ["generate GPT2LMHeadModel"], "one span")
        usage = {
            dict(p.attributes)["gen_ai.token.type"]: p.sum
            for p in captured.points("gen_ai.client.token.usage")
        }
        expected = {"input": 12.0, "output": float(2 * (out.shape[1] - 6))}
        check(usage == expected, f"token counts {usage} == {expected}")
        (ttft,) = captured.points("gen_ai.server.time_to_first_token")
        (total,) = captured.points("gen_ai.client.operation.duration")
        check(0 < ttft.sum <= total.sum, "time to first token within the call")


def main() -> int:
    assert torch.cuda.is_available(), "no CUDA device"
    print("device:", torch.cuda.get_device_name(0), "torch", torch.__version__)
    correctness_and_no_wait()
    durations()
    added_time_per_call()
    pipelined_throughput()
    generate_on_cuda()
    print("FAILED: " + "; ".join(FAILED) if FAILED else "all checks passed")
    return 1 if FAILED else 0


if __name__ == "__main__":
    sys.exit(main())
