"""Cost of joining ground truth: ``record_outcome`` against one instrumented predict call.

Run ``python benchmarks/outcomes.py`` (about 20 s; ``--quick``: a few seconds).
Prints, from this one process run:

1. ``record_outcome`` (one id, matched) / one instrumented single-row predict call
   — target ≤ 0.5;
2. the per-row cost of ``record_outcomes`` for 10,000 outcomes in one call, and its
   ratio to ``record_outcome``;
3. the latency on the caller's thread of ``record_outcomes`` for 32 outcomes of
   predictions still buffered (the 32 single-row calls just made, a drift reference
   attached): p50 and p90 over the repeats, and the p50's ratio to one predict call.
   The deferred work (the flush) is not in it: this is what a request handler waits.

Method: the same providers and null exporters as ``overhead.py`` (all signals on,
payload logs unsampled, ``ALWAYS_ON`` spans). Each timed loop ends with
``mlotel.force_flush()`` inside the timed region, so the deferred work is counted:
the store writes of the predictions, the window update and metric recomputation
and the ``ml.outcome`` log record of each matched outcome. Per-call times are medians
over repeats, the variants interleaved.
"""

from __future__ import annotations

import argparse
import gc
import statistics
import time
from collections.abc import Callable

import numpy as np
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace.sampling import ALWAYS_ON

# The shared providers and null exporters of the overhead benchmark.
from overhead import LOGS, SPANS, Providers, configure_mlotel, logger_provider, tracer_provider

import mlotel

ROW = np.random.default_rng(0).normal(size=(1, 20))
PROBA = np.array([[0.3, 0.7]])


def model(x: np.ndarray) -> np.ndarray:
    return PROBA


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer, shorter loops")
    args = parser.parse_args()
    calls = 2_000 if args.quick else 10_000
    repeats = 5 if args.quick else 15
    batch = 10_000

    providers = Providers(tracer_provider(ALWAYS_ON), logger_provider(), MeterProvider(
        metric_readers=[InMemoryMetricReader()]
    ))  # fmt: skip
    configure_mlotel(providers)
    predict = mlotel.instrument(
        model, model_name="churn", model_version="1", output="probabilities"
    )

    def predict_loop() -> list[str]:
        ids: list[str] = []
        for _ in range(calls):
            predict(ROW)
            ids += mlotel.last_prediction_ids()
        return ids

    def bare_loop() -> None:
        for _ in range(calls):
            predict(ROW)

    def timed(fn: Callable[[], object], deferred: bool = True) -> float:
        gc.collect()
        start = time.perf_counter()
        fn()
        if deferred:
            mlotel.force_flush()
        elapsed = time.perf_counter() - start
        mlotel.force_flush()
        return elapsed

    def fresh_ids(count: int) -> list[str]:
        ids: list[str] = []
        while len(ids) < count:
            ids += predict_loop()
        mlotel.force_flush()
        return ids[:count]

    predict_loop()  # warm-up (and fills the store)
    mlotel.force_flush()
    gc.freeze()
    labels = [1] * batch
    times: dict[str, list[float]] = {
        "predict": [], "single": [], "batch": [], "batch_join": [],
    }  # fmt: skip
    for _ in range(repeats):
        times["predict"].append(timed(bare_loop) / calls)
        ids = fresh_ids(calls)
        times["single"].append(
            timed(lambda ids=ids: [mlotel.record_outcome(i, 1) for i in ids]) / calls
        )
        for key, deferred in (("batch", True), ("batch_join", False)):
            ids = fresh_ids(batch)
            times[key].append(
                timed(lambda ids=ids: mlotel.record_outcomes(ids, labels), deferred) / batch
            )

    # 3. record_outcomes right after the predictions, while they are still buffered.
    from mlotel.drift import Profile

    rng = np.random.default_rng(1)
    names = [f"f{i}" for i in range(ROW.shape[1])]
    reference = Profile.from_data(rng.normal(size=(5_000, ROW.shape[1])), feature_names=names)
    fresh = mlotel.instrument(
        model, model_name="fresh", output="probabilities", reference=reference
    )
    latencies: list[float] = []
    for _ in range(60 if args.quick else 300):
        fresh_ids: list[str] = []
        for _ in range(32):
            fresh(ROW)
            fresh_ids += mlotel.last_prediction_ids()
        start = time.perf_counter()
        mlotel.record_outcomes(fresh_ids, [1] * 32, model_name="fresh")
        latencies.append(time.perf_counter() - start)
    latencies.sort()
    fresh_p50_us = statistics.median(latencies) * 1e6
    fresh_p90_us = latencies[int(0.9 * len(latencies))] * 1e6

    predict_us, single_us, batch_us, join_us = (
        statistics.median(times[key]) * 1e6 for key in ("predict", "single", "batch", "batch_join")
    )
    print(f"mlotel outcomes benchmark ({'quick' if args.quick else 'full'}; {repeats} repeats)")
    print(f"  instrumented predict call (1 row, every signal on): {predict_us:8.2f} µs")
    print(f"  record_outcome (1 id, matched, deferred work incl.): {single_us:8.2f} µs")
    print(f"  record_outcomes, per row of a 10,000-row batch:      {batch_us:8.2f} µs")
    print(f"    of which on the recording thread (the join):           {join_us:6.2f} µs")
    print("    (the rest, at flush: the window update and metric recomputation)")
    print(f"ratio 1  record_outcome / predict call:  {single_us / predict_us:5.2f}  (target ≤ 0.5)")
    print(f"ratio 2  batch per row / record_outcome: {batch_us / single_us:5.2f}")
    print(
        f"  record_outcomes of 32 still-buffered predictions (drift on), caller's thread: "
        f"p50 {fresh_p50_us:8.1f} µs, p90 {fresh_p90_us:8.1f} µs"
    )
    print(f"ratio 3  its p50 / predict call: {fresh_p50_us / predict_us:6.2f}")
    print(f"(spans exported {SPANS.exported}, log records exported {LOGS.exported})")
    mlotel.shutdown()


if __name__ == "__main__":
    main()
