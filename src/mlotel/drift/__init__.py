"""Drift and data quality: reference profiles, the streaming monitor, constraints, and the
offline, Evidently-compatible drift report.

Profiles and the streaming monitor need numpy only:

>>> import numpy as np
>>> from mlotel.drift import Profile
>>> profile = Profile.from_data(np.arange(100.0).reshape(50, 2), feature_names=["a", "b"])
>>> profile.feature_names, profile["a"].count
(['a', 'b'], 50)

``report(reference_df, current_df)`` compares two pandas DataFrames column by column with
Evidently 0.7's default tests and thresholds; ``write_report`` does the same and writes
the HTML and/or JSON file in one call. Both need the ``report`` extra (scipy and pandas),
imported only when a report is made:

>>> import pandas as pd
>>> from mlotel.drift import report
>>> ref = pd.DataFrame({"x": [float(i % 40) for i in range(400)]})
>>> report(ref, ref + 15.0).column("x").drift_detected
True
"""

from __future__ import annotations

from ..exceptions import DatasetError, MappingError, ProfileError
from ._config import DEFAULT_THRESHOLDS, METHODS, DriftConfig
from ._constraints import AllowedValues, Constraint, MaxMissingShare, NotNull, Range
from ._mapping import ColumnMapping
from ._partials import Job, Partial, ScanPass, merge_partials
from ._performance import Performance, SidePerformance
from ._profile import SCHEMA_VERSION, FeatureProfile, Profile, ProfileJob
from ._report import (
    ColumnDrift,
    ColumnQuality,
    Distribution,
    DriftReport,
    ReportJob,
    SideQuality,
    report,
    write_report,
)
from ._stream import DriftEvent, DriftMonitor
from ._streaming_stats import PSI_EPSILON
from ._text import TEXT_DESCRIPTORS, TextDescriptors, text_descriptors, text_profile

__all__ = [
    "DEFAULT_THRESHOLDS",
    "METHODS",
    "PSI_EPSILON",
    "SCHEMA_VERSION",
    "TEXT_DESCRIPTORS",
    "AllowedValues",
    "ColumnDrift",
    "ColumnMapping",
    "ColumnQuality",
    "Constraint",
    "Distribution",
    "DriftConfig",
    "DriftEvent",
    "DatasetError",
    "DriftMonitor",
    "DriftReport",
    "FeatureProfile",
    "Job",
    "MappingError",
    "MaxMissingShare",
    "NotNull",
    "Partial",
    "Performance",
    "Profile",
    "ProfileError",
    "ProfileJob",
    "Range",
    "ReportJob",
    "ScanPass",
    "SideQuality",
    "SidePerformance",
    "TextDescriptors",
    "merge_partials",
    "report",
    "text_descriptors",
    "text_profile",
    "write_report",
]
