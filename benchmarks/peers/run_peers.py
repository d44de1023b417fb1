"""Runs the peers on frames saved by benchmarks/drift_report.py. Runs in .venv-peers only.

Evidently 0.7 ``Report([DataDriftPreset()])`` and whylogs ``why.log`` (both frames) are
timed on the same data mlotel's report gets; Evidently's per-column drift scores come back
too, for the comparison with mlotel's. The frames travel as a ``.npz`` (no pickle), so the
two environments' pandas versions never have to agree on a file format.

Usage (normally called by benchmarks/drift_report.py):
    .venv-peers/bin/python benchmarks/peers/run_peers.py DATA.npz OUT.json [--no-whylogs]
"""

from __future__ import annotations

import argparse
import json
import logging
import time
import warnings
from typing import Any

import numpy as np
import pandas as pd


def load_frames(path: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The (reference, current) frames stored as ``{side}/{column}`` arrays."""
    with np.load(path, allow_pickle=False) as data:
        names = [str(n) for n in data["columns"]]
        frames = []
        for side in ("reference", "current"):
            columns: dict[str, Any] = {}
            for name in names:
                values = data[f"{side}/{name}"]
                # Strings come back as numpy unicode; Evidently wants Python str objects.
                columns[name] = values.astype(object) if values.dtype.kind == "U" else values
            frames.append(pd.DataFrame(columns))
    return frames[0], frames[1]


def evidently_scores(reference: pd.DataFrame, current: pd.DataFrame) -> tuple[float, dict]:
    from evidently import Report
    from evidently.presets import DataDriftPreset

    started = time.perf_counter()
    result = Report([DataDriftPreset()]).run(current, reference)
    seconds = time.perf_counter() - started
    scores = {}
    for metric in result.dict()["metrics"]:
        config = metric["config"]
        if config.get("type", "").endswith("ValueDrift"):
            scores[config["column"]] = {
                "method": config["method"],
                "threshold": config["threshold"],
                "score": metric["value"],
            }
    return seconds, scores


def whylogs_seconds(reference: pd.DataFrame, current: pd.DataFrame) -> float:
    import whylogs as why

    started = time.perf_counter()
    why.log(reference).profile()
    why.log(current).profile()
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("data")
    parser.add_argument("out")
    parser.add_argument("--no-whylogs", action="store_true")
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    logging.disable(logging.WARNING)
    reference, current = load_frames(args.data)
    seconds, scores = evidently_scores(reference, current)
    out: dict[str, Any] = {"evidently_seconds": seconds, "evidently_scores": scores}
    if not args.no_whylogs:
        out["whylogs_seconds"] = whylogs_seconds(reference, current)
    from importlib.metadata import version

    out["versions"] = {p: version(p) for p in ("evidently", "whylogs", "pandas", "scipy")}
    with open(args.out, "w", encoding="utf-8") as handle:
        json.dump(out, handle)


if __name__ == "__main__":
    main()
