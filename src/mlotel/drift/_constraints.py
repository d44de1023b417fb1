"""User constraints on features, in the spirit of whylogs' constraints.

A constraint checks the values of one feature; each violating value is counted
as an ``ml.data_quality.issues`` with the constraint's name as the issue. They
attach to a profile (:meth:`mlotel.drift.Profile.with_constraints`, saved in its
JSON) or to the monitor (``DriftConfig(constraints={...})``).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = [
    "AllowedValues",
    "Constraint",
    "MaxMissingShare",
    "NotNull",
    "Range",
    "constraint_from_dict",
]


@dataclass(frozen=True)
class Range:
    """Finite values must lie in ``[min, max]`` (either bound may be None).

    >>> Range(0, 120).violations(np.array([-1.0, 30.0, 200.0]), np.zeros(3, bool), None)
    2
    """

    min: float | None = None
    max: float | None = None
    name: str = "range"

    def violations(self, values: np.ndarray, missing: np.ndarray, keys: Any) -> int:
        """How many present, finite values lie outside the range (0 for non-numbers)."""
        if values.dtype.kind not in "biuf":
            return 0
        bad = np.zeros(len(values), dtype=bool)
        if self.min is not None:
            bad |= values < self.min
        if self.max is not None:
            bad |= values > self.max
        return int(np.count_nonzero(bad & ~missing & np.isfinite(values)))

    def to_dict(self) -> dict[str, Any]:
        """The constraint as profile JSON (see :func:`constraint_from_dict`)."""
        return {"type": "range", "name": self.name, "min": self.min, "max": self.max}


@dataclass(frozen=True)
class NotNull:
    """No value may be missing (None/NaN).

    >>> NotNull().violations(np.array([1.0, np.nan]), np.array([False, True]), None)
    1
    """

    name: str = "not_null"

    def violations(self, values: np.ndarray, missing: np.ndarray, keys: Any) -> int:
        """How many values are missing."""
        return int(np.count_nonzero(missing))

    def to_dict(self) -> dict[str, Any]:
        """The constraint as profile JSON (see :func:`constraint_from_dict`)."""
        return {"type": "not_null", "name": self.name}


@dataclass(frozen=True)
class AllowedValues:
    """Values must be in an allowed set (compared as categories: ``3`` and ``3.0`` match).

    >>> c = AllowedValues(["red", "green"])
    >>> c.violations(np.zeros(3), np.zeros(3, bool), (["red", "blue"], np.array([0, 1, 1])))
    2
    """

    values: tuple[Any, ...] = field(default_factory=tuple)
    name: str = "allowed_values"

    def __init__(self, values: Iterable[Any], name: str = "allowed_values") -> None:
        object.__setattr__(self, "values", tuple(values))
        object.__setattr__(self, "name", name)

    def violations(self, values: np.ndarray, missing: np.ndarray, keys: Any) -> int:
        """How many present values are not allowed; ``keys`` is ``category_keys(values)``
        when the caller already has it, else None."""
        from ._binning import category_key, category_keys

        if keys is None:
            keys = category_keys(values)
        names, index = keys
        allowed = {category_key(v) for v in self.values}
        bad = np.array([n not in allowed for n in names], dtype=bool)
        if not bad.any():
            return 0
        return int(np.count_nonzero(bad[index] & ~missing))

    def to_dict(self) -> dict[str, Any]:
        """The constraint as profile JSON (see :func:`constraint_from_dict`)."""
        return {"type": "allowed_values", "name": self.name, "values": list(self.values)}


@dataclass(frozen=True)
class MaxMissingShare:
    """The share of missing values in the monitor's window must stay ``<= share``.

    Checked per flush: while the window's missing share is over the limit, each
    missing value of the flushed calls counts as one violation.

    >>> limit = MaxMissingShare(0.1)
    >>> limit.window_violations(window_missing=5, window_total=20, batch_missing=2)
    2
    >>> limit.window_violations(window_missing=1, window_total=20, batch_missing=1)
    0
    """

    share: float
    name: str = "max_missing_share"

    def violations(self, values: np.ndarray, missing: np.ndarray, keys: Any) -> int:
        """Always 0: the limit is on the window (see :meth:`window_violations`)."""
        return 0  # window-level: the monitor checks it (see window_violations)

    def window_violations(self, window_missing: int, window_total: int, batch_missing: int) -> int:
        """``batch_missing`` while the window's missing share is over the limit, else 0."""
        if window_total and window_missing / window_total > self.share:
            return batch_missing
        return 0

    def to_dict(self) -> dict[str, Any]:
        """The constraint as profile JSON (see :func:`constraint_from_dict`)."""
        return {"type": "max_missing_share", "name": self.name, "share": self.share}


Constraint = Range | NotNull | AllowedValues | MaxMissingShare


def constraint_from_dict(data: dict[str, Any]) -> Constraint:
    """The constraint a profile's JSON describes (ValueError for an unknown type).

    >>> constraint_from_dict({"type": "range", "name": "age", "min": 0, "max": 120})
    Range(min=0, max=120, name='age')
    """
    kind = data.get("type")
    name = data.get("name")
    if kind == "range":
        return Range(data.get("min"), data.get("max"), name or "range")
    if kind == "not_null":
        return NotNull(name or "not_null")
    if kind == "allowed_values":
        return AllowedValues(data.get("values") or (), name or "allowed_values")
    if kind == "max_missing_share":
        return MaxMissingShare(float(data["share"]), name or "max_missing_share")
    raise ValueError(f"unknown constraint type {kind!r}")
