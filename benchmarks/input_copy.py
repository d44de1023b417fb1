"""What copying the input costs when a drift monitor reads every row (issue 13, item 6).

Run ``python benchmarks/input_copy.py`` (about 20 s; ``--quick`` a few seconds).

With a drift monitor attached, ``start_call`` copies an array input (every row) before
the model runs, so a model or caller that changes the array in place cannot change what
drift counts or what is logged. This prints, from one process run, the median time per
call of an instrumented ``predict`` with a drift reference (1 row and 1,000 rows of 20
float64 features; each timed loop ends with ``mlotel.force_flush()`` inside the timed
region, so the drift work is counted), the median time of the copy alone
(``x.copy()`` of the same array, the copies kept alive as the buffer keeps them: up to
4 MiB of them, so each copy writes fresh memory), and the copy's share of the call.
Variants are interleaved, medians of repeats.
"""

from __future__ import annotations

import argparse
import gc
import statistics
import time
from collections.abc import Callable

import numpy as np

import mlotel
from mlotel.drift import Profile


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer, shorter loops")
    args = parser.parse_args()
    repeats = 5 if args.quick else 15
    rng = np.random.default_rng(0)
    names = [f"f{i}" for i in range(20)]
    reference = Profile.from_data(rng.normal(size=(20_000, 20)), feature_names=names)
    mlotel.configure(exporter="none", prometheus=False, local_sink="none", set_global=False)
    predict = mlotel.instrument(
        lambda x: (x[:, 0] > 0).astype(np.int64), model_name="copy", reference=reference
    )
    inputs = {"1 row": rng.normal(size=(1, 20)), "1,000 rows": rng.normal(size=(1_000, 20))}
    calls = {"1 row": 2_000 if args.quick else 10_000, "1,000 rows": 200 if args.quick else 1_000}

    def timed(fn: Callable[[], object], n: int, flush: bool) -> float:
        gc.collect()
        start = time.perf_counter()
        for _ in range(n):
            fn()
        if flush:
            mlotel.force_flush()
        return (time.perf_counter() - start) / n

    for x in inputs.values():
        predict(x)  # warm-up
    mlotel.force_flush()
    results: dict[str, dict[str, list[float]]] = {k: {"call": [], "copy": []} for k in inputs}
    for _ in range(repeats):
        for name, x in inputs.items():
            n = calls[name]
            results[name]["call"].append(timed(lambda x=x: predict(x), n, True))
            kept: list[np.ndarray] = []
            keep = max(1, (4 << 20) // x.nbytes)

            def copy(x: np.ndarray = x, kept: list[np.ndarray] = kept, keep: int = keep) -> None:
                if len(kept) >= keep:
                    kept.clear()
                kept.append(x.copy())

            results[name]["copy"].append(timed(copy, n, False))
    mode = "quick" if args.quick else "full"
    print(f"input copy with a drift monitor ({mode}; {repeats} repeats)")
    for name, found in results.items():
        call_us = statistics.median(found["call"]) * 1e6
        copy_us = statistics.median(found["copy"]) * 1e6
        print(
            f"  {name:>10}: instrumented call with drift {call_us:9.2f} µs, "
            f"copy {copy_us:7.2f} µs, ratio copy / call {copy_us / call_us:5.3f}"
        )
    mlotel.shutdown()


if __name__ == "__main__":
    main()
