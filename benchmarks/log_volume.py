"""Log bytes per 1,000 predictions: "log everything" against the defaults, in one run.

Run ``python benchmarks/log_volume.py`` (about a minute on 2 vCPUs; ``--quick``: a
few seconds). Prints, for two workloads, the bytes mlotel's log records take per 1,000
predicted rows in the embedded default's ``logs.jsonl`` (OTLP-JSON lines, what
``mlotel demo`` writes), for

* **log everything**: ``payload_sample_rate=1.0``, ``outcome_log="all"`` (the defaults
  before the log-volume change: every call's payload, every outcome);
* **defaults**: what ``mlotel.configure()`` gives today (``payload_sample_rate=0.1``,
  ``outcome_log="sampled"``: one call in ten logs its payload, and only those calls'
  outcomes are logged);

and the ratio defaults / everything with a 95 % confidence interval (the payload
sampling is random: each setting runs ``--repeats`` times with different seeds; the
interval is a t interval of the mean bytes, propagated to the ratio).

Workloads, both on the ``mlotel demo`` model (scikit-learn ``LogisticRegression``
on the 30 features of the breast-cancer data set bundled with scikit-learn, served
through ``mlotel.instrument(model, ...).predict_proba``): **online**, single-row
calls; **batches**, the demo's mix of 1, 1, 1, 4, 16 and 64 rows per call. Every
predicted row gets its ground truth (``mlotel.record_outcomes`` after every 50 calls),
and 2 % of the calls fail (a client sends 5 features): failed calls are always logged.
The SDK's batch log processor gets a queue large enough for a whole run, and the
script checks the records that landed against the count it expects for "log
everything", so no silently dropped record makes a setting look cheaper.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import statistics
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

# Before the SDK is imported: a queue for a whole run (the default 2,048 records drop).
os.environ.setdefault("OTEL_BLRP_MAX_QUEUE_SIZE", "1000000")

import numpy as np
from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import mlotel

EVERYTHING: dict[str, Any] = {"payload_sample_rate": 1.0, "outcome_log": "all"}
DEFAULTS: dict[str, Any] = {}
WORKLOADS = {
    "online (1 row per call)": [1],
    "batches (demo mix: 1,1,1,4,16,64)": [1, 1, 1, 4, 16, 64],
}
FAILING_SHARE = 0.02
LABEL_EVERY = 50  # calls between two record_outcomes() calls


def _model() -> tuple[Any, np.ndarray, list[str]]:
    data = load_breast_cancer()
    names = [str(n).replace(" ", "_") for n in data.feature_names]
    x_train, x_test, y_train, _ = train_test_split(
        data.data, data.target, test_size=0.3, random_state=7
    )
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=500)).fit(x_train, y_train)
    return model, x_test, names


def _run(
    settings: dict[str, Any], sizes: list[int], predictions: int, seed: int, workdir: Path
) -> tuple[int, Counter[str], int, int]:
    """One serving run; returns (log bytes, records by event name, rows predicted, failed
    calls)."""
    model, x_test, names = MODEL
    out = workdir / f"run-{seed}-{len(os.listdir(workdir))}"
    mlotel.configure(
        service_name="log-volume",
        exporter="embedded",
        prometheus=False,
        output_dir=str(out),
        set_global=False,
        **settings,
    )
    random.seed(seed)  # the payload sampling draws from the random module
    rng = np.random.default_rng(seed)
    clf = mlotel.instrument(model, model_name="breast-cancer", feature_names=names)
    rows = failed = calls = 0
    ids: list[str] = []
    labels: list[int] = []
    while rows < predictions:
        n = int(rng.choice(sizes))
        batch = x_test[rng.integers(0, len(x_test), n)]
        calls += 1
        if rng.random() < FAILING_SHARE:
            try:
                clf.predict_proba(batch[:, :5])
            except ValueError:
                failed += 1
            continue
        proba = clf.predict_proba(batch)
        rows += n
        ids += mlotel.last_prediction_ids()
        labels += (proba[:, 1] > 0.5).astype(int).tolist()
        if calls % LABEL_EVERY == 0:
            mlotel.record_outcomes(ids, labels)
            ids, labels = [], []
    if ids:
        mlotel.record_outcomes(ids, labels)
    mlotel.shutdown()
    files = [p for p in out.iterdir() if p.name.startswith("logs")]
    records: Counter[str] = Counter()
    for path in files:
        for line in path.read_text().splitlines():
            for resource in json.loads(line)["resourceLogs"]:
                for scope in resource["scopeLogs"]:
                    records.update(r.get("eventName", "?") for r in scope["logRecords"])
    return sum(p.stat().st_size for p in files), records, rows, failed


def _mean_ci(values: list[float]) -> tuple[float, float]:
    """Mean and the half-width of its 95 % t interval."""
    mean = statistics.fmean(values)
    if len(values) < 2:
        return mean, math.nan
    from scipy import stats

    half = stats.t.ppf(0.975, len(values) - 1) * statistics.stdev(values) / math.sqrt(len(values))
    return mean, float(half)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer predictions and repeats")
    parser.add_argument("--predictions", type=int, help="predicted rows per run")
    parser.add_argument("--repeats", type=int, help="runs per setting and workload")
    args = parser.parse_args()
    predictions = args.predictions or (1000 if args.quick else 5000)
    repeats = args.repeats or (3 if args.quick else 5)
    print(
        f"log bytes per 1,000 predicted rows in logs.jsonl (OTLP-JSON files sink); "
        f"{predictions} rows per run, {repeats} runs per setting, 95 % t intervals"
    )
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        for workload, sizes in WORKLOADS.items():
            per_setting: dict[str, list[float]] = {}
            for label, settings in (("log everything", EVERYTHING), ("defaults", DEFAULTS)):
                per_setting[label] = []
                shares: Counter[str] = Counter()
                for seed in range(repeats):
                    size, records, rows, failed = _run(settings, sizes, predictions, seed, workdir)
                    per_setting[label].append(1000.0 * size / rows)
                    shares.update(records)
                    if settings is EVERYTHING:
                        # Every call and every row's outcome is on record: none dropped.
                        calls_made = records["ml.prediction"]
                        assert records["ml.outcome"] == rows, (records, rows)
                        assert calls_made >= failed, (records, failed)
                mean, half = _mean_ci(per_setting[label])
                counts = ", ".join(f"{k} {v / repeats:.0f}" for k, v in sorted(shares.items()))
                print(
                    f"  {workload:36s} {label:15s} {mean / 1000:9.1f} kB ± {half / 1000:6.1f}"
                    f"   (records per run: {counts})"
                )
            old, old_half = _mean_ci(per_setting["log everything"])
            new, new_half = _mean_ci(per_setting["defaults"])
            ratio = new / old
            # Delta method: relative errors of two independent means add in quadrature.
            rel = math.hypot(new_half / new, old_half / old)
            print(
                f"  {workload:36s} defaults / log everything = {ratio:.3f} "
                f"(95 % CI {ratio * (1 - rel):.3f}-{ratio * (1 + rel):.3f}); "
                f"{old / new:.1f}x less"
            )


MODEL = _model()

if __name__ == "__main__":
    main()
