"""A drift report computed by Dask: the partial/merge contract on another engine.

Each Dask partition of each side is summarized where it lives (``step.summarize``) and only
the serialized partials travel back; the job merges them and plans the next pass. Spark
does the same with ``mlotel.drift.spark``; Ray (``Dataset.map_batches`` returning
``step.summarize(batch, side).to_bytes()``) or a process pool work the same way.

    python examples/dask_drift_report.py --output-dir /tmp/dask-drift

writes two partitioned Parquet datasets there, reports them with Dask (its threaded
scheduler), checks the result against ``mlotel.drift.report`` on the same files, and prints
``dask report: N of M columns drifted (same as mlotel report)``.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import dask
import dask.dataframe as dd
import numpy as np
import pandas as pd

from mlotel.drift import Partial, ReportJob, ScanPass, report


def summarize(frame: pd.DataFrame, step: ScanPass, side: str) -> bytes:
    """Runs on a Dask worker: one partition in, one partial (bytes) out."""
    return step.summarize(frame, side).to_bytes()


def dask_report(sides: dict[str, Any]) -> Any:
    job = ReportJob()
    while (step := job.next_pass()) is not None:
        for side, frame in sides.items():
            tasks = [dask.delayed(summarize)(part, step, side) for part in frame.to_delayed()]
            job.add(*(Partial.from_bytes(blob) for blob in dask.compute(*tasks)))
    return job.result()


def write_data(folder: Path) -> None:
    rng = np.random.default_rng(0)
    for side, shift in (("reference", 0.0), ("current", 0.4)):
        rows = 60_000
        frame = pd.DataFrame(
            {
                "age": rng.normal(40 + 10 * shift, 10, rows),
                "income": rng.lognormal(10, 0.5, rows),
                "plan": rng.choice(["basic", "plus", "pro"], rows, p=[0.5, 0.3, 0.2]),
            }
        )
        (folder / side).mkdir(parents=True, exist_ok=True)
        for i, rows_of_part in enumerate(np.array_split(np.arange(rows), 4)):
            part = frame.iloc[rows_of_part]
            part.to_parquet(folder / side / f"part-{i}.parquet", index=False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output-dir", default="dask-drift")
    folder = Path(parser.parse_args().output_dir)
    write_data(folder)
    sides = {side: dd.read_parquet(str(folder / side)) for side in ("reference", "current")}
    with dask.config.set(scheduler="threads"):
        result = dask_report(sides)
    local = report(folder / "reference", folder / "current")
    same = [c.drift_detected for c in result.columns] == [c.drift_detected for c in local.columns]
    assert same and all(
        abs(a.score - b.score) < 1e-9 for a, b in zip(result.columns, local.columns)
    )
    print(
        f"dask report: {result.number_of_drifted_columns} of {result.number_of_tested_columns} "
        "columns drifted (same as mlotel report)"
    )


if __name__ == "__main__":
    main()
