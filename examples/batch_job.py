"""A nightly batch-scoring job, instrumented with one proxy.

    python examples/batch_job.py --output-dir /tmp/mlotel-batch

Scores a dataset in 256-row batches; each batch is one inference span with its
batch size, and every row lands in the class counter and the score histogram.
"""

from __future__ import annotations

import argparse

import numpy as np
from sklearn.datasets import load_wine
from sklearn.ensemble import RandomForestClassifier

import mlotel


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--output-dir", default="mlotel-telemetry")
    args = parser.parse_args()
    mlotel.configure(
        service_name="wine-batch-scoring",
        exporter="embedded",
        prometheus=False,
        output_dir=args.output_dir,
    )
    data = load_wine()
    model = RandomForestClassifier(n_estimators=20, random_state=0).fit(data.data, data.target)
    clf = mlotel.instrument(
        model, model_name="wine", model_version="2024-11", feature_names=list(data.feature_names)
    )
    rows = np.repeat(data.data, 10, axis=0)
    scored = 0
    for start in range(0, len(rows), 256):
        scored += len(clf.predict_proba(rows[start : start + 256]))
    mlotel.shutdown()
    print(f"scored {scored} rows; spans and logs in {args.output_dir}")


if __name__ == "__main__":
    main()
