"""Cost of a large sparse input (a TF-IDF batch): instrumented call + flush vs the bare call.

Run ``python benchmarks/sparse_input.py`` (a few seconds; needs scipy). Prints, from this
one process run, for a 1,000 x 200,000 CSR matrix (100 non-zeros a row):

1. the median time mlotel adds to one call of that batch (the call *and* the flush that
   logs its payload), and its ratio to what it adds to a dense 1,000 x 20 float batch
   measured the same way, interleaved (a sparse batch should cost about as much);
2. the growth of the process's peak RSS over the run (``ru_maxrss``): a densified copy
   of the batch would be 1.6 GB.

The payload is logged for every call (``payload_sample_rate=1``); spans and log records
go to providers without exporters, so what is timed is mlotel's own work.
"""

from __future__ import annotations

import argparse
import gc
import resource
import statistics
import time

import numpy as np
import scipy.sparse

import mlotel


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000)
    parser.add_argument("--cols", type=int, default=200_000)
    parser.add_argument("--nnz-per-row", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()

    rng = np.random.default_rng(0)
    nnz = args.rows * args.nnz_per_row
    matrix = scipy.sparse.csr_matrix(
        (
            rng.random(nnz),
            (np.repeat(np.arange(args.rows), args.nnz_per_row), rng.integers(0, args.cols, nnz)),
        ),
        shape=(args.rows, args.cols),
    )
    labels = np.zeros(args.rows, dtype=np.int64)
    dense = rng.normal(size=(args.rows, 20))

    def model(x: object) -> np.ndarray:
        return labels

    mlotel.configure(
        exporter="none", prometheus=False, local_sink="none", set_global=False,
        payload_sample_rate=1.0,
    )  # fmt: skip
    predict = mlotel.instrument(model, model_name="tfidf")
    gc.collect()
    before = peak_rss_mib()
    predict(matrix)  # warm-up
    mlotel.force_flush()
    times: dict[str, list[float]] = {"bare": [], "sparse": [], "dense": []}
    for _ in range(args.repeats):
        for name, x in (("sparse", matrix), ("dense", dense)):
            start = time.perf_counter()
            model(x)
            times["bare"].append(time.perf_counter() - start)
            start = time.perf_counter()
            predict(x)
            mlotel.force_flush()
            times[name].append(time.perf_counter() - start)
    grown = peak_rss_mib() - before
    bare_ms, sparse_ms, dense_ms = (
        statistics.median(times[k]) * 1e3 for k in ("bare", "sparse", "dense")
    )
    print(f"sparse input {args.rows} x {args.cols} CSR, {nnz} non-zeros ({args.repeats} repeats)")
    print(f"  bare model call:                              {bare_ms:10.3f} ms")
    print(f"  added by mlotel (call + payload flush), CSR:  {sparse_ms - bare_ms:10.3f} ms")
    print(f"  added by mlotel, dense {args.rows} x 20 batch:       {dense_ms - bare_ms:10.3f} ms")
    print(f"ratio  sparse / dense batch: {(sparse_ms - bare_ms) / (dense_ms - bare_ms):6.2f}")
    print(f"  peak RSS growth during the run:  {grown:10.1f} MiB (all instrumented calls)")
    print(f"  peak RSS:                        {peak_rss_mib():10.1f} MiB")
    mlotel.shutdown()


if __name__ == "__main__":
    main()
