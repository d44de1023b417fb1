"""Evidently 0.7 ``DataDriftPreset`` defaults on the windows of benchmarks/detection.py.

Runs in .venv-peers only. Input: an ``.npz`` with ``columns`` and, per experiment ``E``,
``E/reference`` (rows x columns) and ``E/windows`` (windows x rows x columns). Output: JSON
``{E: [[drifted flag per column] per window]}`` plus the seconds spent.

Usage (called by benchmarks/detection.py):
    .venv-peers/bin/python benchmarks/peers/detection_peer.py DATA.npz OUT.json
"""

from __future__ import annotations

import json
import logging
import sys
import time
import warnings

import numpy as np
import pandas as pd


def main() -> None:
    data_path, out_path = sys.argv[1], sys.argv[2]
    warnings.simplefilter("ignore")
    logging.disable(logging.WARNING)
    from evidently import Report
    from evidently.presets import DataDriftPreset

    started = time.perf_counter()
    out: dict[str, object] = {}
    with np.load(data_path, allow_pickle=False) as data:
        columns = [str(c) for c in data["columns"]]
        experiments = sorted({k.split("/")[0] for k in data.files if "/" in k})
        for name in experiments:
            reference = pd.DataFrame(data[f"{name}/reference"], columns=columns)
            flags = []
            for window in data[f"{name}/windows"]:
                current = pd.DataFrame(window, columns=columns)
                result = Report([DataDriftPreset()]).run(current, reference).dict()
                drifted = {}
                for metric in result["metrics"]:
                    config = metric["config"]
                    if config.get("type", "").endswith("ValueDrift"):
                        score, threshold = float(metric["value"]), float(config["threshold"])
                        # p-value tests drift below the threshold, distances at or above it
                        p_value = "p_value" in config["method"]
                        drifted[config["column"]] = (
                            score < threshold if p_value else score >= threshold
                        )
                flags.append([bool(drifted[c]) for c in columns])
            out[name] = flags
    out["seconds"] = time.perf_counter() - started
    with open(out_path, "w", encoding="utf-8") as handle:
        json.dump(out, handle)


if __name__ == "__main__":
    main()
