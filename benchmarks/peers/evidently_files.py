"""Evidently 0.7 DataDriftPreset on two Parquet datasets. Runs in .venv-peers only.

Usage (normally called by benchmarks/scale.py):
    .venv-peers/bin/python benchmarks/peers/evidently_files.py OUT.json --rows N \
        --reference REF.parquet [...] --current CUR.parquet [...]

Reads both datasets whole with pandas (as an Evidently user would), keeps the first N rows of
each when --rows is given, times ``Report([DataDriftPreset()]).run(current, reference)`` and
writes the time, the peak RSS of this process and the per-column scores (run_peers.py's
``evidently_scores``: method, threshold, score) as JSON.
"""

from __future__ import annotations

import argparse
import json
import logging
import resource
import time
import warnings

import pandas as pd
from run_peers import evidently_scores  # this script's folder is sys.path[0]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("out")
    parser.add_argument("--reference", nargs="+", required=True)
    parser.add_argument("--current", nargs="+", required=True)
    parser.add_argument("--rows", type=int)
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    logging.disable(logging.WARNING)
    started = time.perf_counter()
    reference = pd.concat([pd.read_parquet(f) for f in args.reference], ignore_index=True)
    current = pd.concat([pd.read_parquet(f) for f in args.current], ignore_index=True)
    if args.rows:
        reference, current = reference.iloc[: args.rows], current.iloc[: args.rows]
    read = time.perf_counter() - started
    seconds, scores = evidently_scores(reference, current)
    out = {
        "rows": len(reference) + len(current),
        "read_seconds": read,
        "report_seconds": seconds,
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "scores": scores,
    }
    with open(args.out, "w", encoding="utf-8") as handle:
        json.dump(out, handle)


if __name__ == "__main__":
    main()
