"""mlotel drift benchmarks: ratios against baselines measured in the same run.

Run ``python benchmarks/drift.py`` (about 20 s) or ``--quick`` (a few seconds).

Streaming ingestion: the time the streaming monitor takes to ingest one flush of
buffered calls (100 calls x 1,000 rows x 20 numeric features: concatenating the
calls, checking values, binning, data-quality counts, the rolling window, drift
statistics and every metric update), divided by the time of a bare
``np.bincount(np.searchsorted(edges, column))`` per feature over the same
100,000 x 20 values: the least any binning monitor must do. Target: <= 3.
Each number is the median of interleaved repeats.

Offline report: ``benchmarks/drift_report.py`` times ``mlotel.drift.report``
against Evidently and whylogs (run here too unless ``--streaming-only``).
"""

from __future__ import annotations

import argparse
import gc
import platform
import statistics
import time
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any, ClassVar

import numpy as np

from mlotel import semconv
from mlotel._metric_store import MetricStore
from mlotel.drift import DriftConfig, DriftMonitor, Profile

ROWS = 100_000
NUMERIC = 20
CATEGORICAL = 3
CALL_ROWS = 1_000


class FakeMonitor:
    """What an analyzer reads from its monitor (also used by benchmarks/detection.py)."""

    model_name = "bench"
    model_version = "1"
    base_attrs = ((semconv.ATTR_MODEL_NAME, "bench"), (semconv.ATTR_MODEL_VERSION, "1"))
    output_groups: ClassVar[dict[Any, Any]] = {}  # no outputs read in this flush


def call_record(inputs: Any) -> Any:
    """A finished call as the drift monitor reads it (see mlotel._aggregator.CallRecord)."""
    return SimpleNamespace(inputs=inputs, rows=len(inputs), error_type=None, output=None)


def _median_ratio(
    timed: Callable[[], None], baseline: Callable[[], None], repeats: int
) -> tuple[float, float]:
    """Median seconds of ``timed`` and ``baseline`` over interleaved repeats."""
    a: list[float] = []
    b: list[float] = []
    for _ in range(repeats):
        for fn, into in ((timed, a), (baseline, b)):
            gc.collect()
            start = time.perf_counter()
            fn()
            into.append(time.perf_counter() - start)
    return statistics.median(a), statistics.median(b)


def bench_streaming(repeats: int) -> None:
    rng = np.random.default_rng(0)
    names = [f"f{i}" for i in range(NUMERIC)]
    reference = rng.normal(0.0, 1.0, (ROWS, NUMERIC))
    current = rng.normal(0.2, 1.1, (ROWS, NUMERIC))
    profile = Profile.from_data(reference, feature_names=names)
    monitor = DriftMonitor(profile, DriftConfig(min_samples=500))
    store = MetricStore()
    store.add_reader(1)
    fake = FakeMonitor()
    records = [call_record(current[i : i + CALL_ROWS]) for i in range(0, ROWS, CALL_ROWS)]
    edges = [np.asarray(profile[n].edges) for n in names]

    def ingest() -> None:
        monitor.process(records, fake, store)

    def bare() -> None:
        for j in range(NUMERIC):
            np.bincount(np.searchsorted(edges[j], current[:, j], side="right"), minlength=10)

    ingest()  # warm: first call exports the reference shares
    took, base = _median_ratio(ingest, bare, repeats)
    values = ROWS * NUMERIC
    print("streaming ingestion, 100 calls x 1,000 rows x 20 numeric features (2-D arrays)")
    print(
        f"  monitor ingest            {took * 1e3:8.2f} ms  {values / took / 1e6:7.1f} M values/s"
    )
    print(
        f"  bare searchsorted+bincount {base * 1e3:7.2f} ms  {values / base / 1e6:7.1f} M values/s"
    )
    print(f"  RATIO monitor / bare = {took / base:.2f}   (target <= 3)")

    # Informational: DataFrames with 3 text categorical columns (np.unique per column).
    try:
        import pandas as pd
    except ImportError:
        print("  (pandas not installed: DataFrame variant skipped)")
        return
    cats = rng.choice(["a", "b", "c", "d", "e"], (ROWS, CATEGORICAL))
    frame_ref = pd.DataFrame(reference, columns=names)
    frame_cur = pd.DataFrame(current, columns=names)
    for k in range(CATEGORICAL):
        frame_ref[f"c{k}"] = cats[:, k]
        frame_cur[f"c{k}"] = cats[::-1, k]
    mixed = DriftMonitor(Profile.from_data(frame_ref))
    frame_records = [
        call_record(frame_cur.iloc[i : i + CALL_ROWS]) for i in range(0, ROWS, CALL_ROWS)
    ]

    def ingest_frames() -> None:
        mixed.process(frame_records, fake, store)

    ingest_frames()
    took_frames, _ = _median_ratio(ingest_frames, lambda: None, repeats)
    values = ROWS * (NUMERIC + CATEGORICAL)
    print("streaming ingestion, 100 DataFrames x 1,000 rows x (20 numeric + 3 text) columns")
    print(
        f"  monitor ingest            {took_frames * 1e3:8.2f} ms  "
        f"{values / took_frames / 1e6:7.1f} M values/s"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats")
    parser.add_argument(
        "--streaming-only", action="store_true", help="skip the offline report (and its peers)"
    )
    args = parser.parse_args()
    repeats = 3 if args.quick else 15
    print(f"mlotel drift benchmark | python {platform.python_version()} | numpy {np.__version__}")
    bench_streaming(repeats)
    if not args.streaming_only:
        from drift_report import bench_offline_report  # the script's folder is on sys.path

        print()
        bench_offline_report(repeats=2 if args.quick else 5)


if __name__ == "__main__":
    main()
