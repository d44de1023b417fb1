"""Drift and data quality: the offline, Evidently-compatible drift report.

``report(reference_df, current_df)`` compares two pandas DataFrames column by column with
Evidently 0.7's default tests and thresholds; ``write_report`` does the same and writes
the HTML and/or JSON file in one call. Both need the ``report`` extra (scipy and pandas),
imported only when a report is made, so ``import mlotel.drift`` stays numpy-only.

>>> import pandas as pd
>>> from mlotel.drift import report
>>> ref = pd.DataFrame({"x": [float(i % 40) for i in range(400)]})
>>> report(ref, ref + 15.0).column("x").drift_detected
True
"""

from __future__ import annotations

from ._report import (
    ColumnDrift,
    ColumnQuality,
    Distribution,
    DriftReport,
    SideQuality,
    report,
    write_report,
)

__all__ = [
    "ColumnDrift",
    "ColumnQuality",
    "Distribution",
    "DriftReport",
    "SideQuality",
    "report",
    "write_report",
]
