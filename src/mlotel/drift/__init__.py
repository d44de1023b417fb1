"""Drift and data quality: reference profiles, the streaming monitor, constraints.

>>> import numpy as np
>>> from mlotel.drift import Profile
>>> profile = Profile.from_data(np.arange(100.0).reshape(50, 2), feature_names=["a", "b"])
>>> profile.feature_names, profile["a"].count
(['a', 'b'], 50)
"""

from __future__ import annotations

from ._constraints import AllowedValues, Constraint, MaxMissingShare, NotNull, Range
from ._profile import SCHEMA_VERSION, FeatureProfile, Profile, ProfileError
from ._stream import DEFAULT_THRESHOLDS, METHODS, DriftEvent, DriftMonitor
from ._streaming_stats import PSI_EPSILON

__all__ = [
    "DEFAULT_THRESHOLDS",
    "METHODS",
    "PSI_EPSILON",
    "SCHEMA_VERSION",
    "AllowedValues",
    "Constraint",
    "DriftEvent",
    "DriftMonitor",
    "FeatureProfile",
    "MaxMissingShare",
    "NotNull",
    "Profile",
    "ProfileError",
    "Range",
]
