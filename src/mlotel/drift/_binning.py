"""Reference bins and the vectorised binning of streamed columns.

Numeric features use equal-frequency bins whose inner edges are reference
quantiles; the first and last bins are open-ended. A value ``x`` falls in bin
``searchsorted(edges, x, side="right")`` (bins are closed on the left).
Categorical features use the reference's top-N categories plus one "other" bin.

Streaming uses *extended* slots per feature so that one ``np.bincount`` gives the
bin counts and the data-quality counts together:

- numeric: ``[below min, bin 0 .. bin K-1, above max, missing, non-finite, wrong type]``
- categorical: ``[category 0 .. N-1, other, new category, missing, wrong type]``
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = [
    "MISSING",
    "WRONG_TYPE",
    "category_key",
    "category_keys",
    "equal_frequency_edges",
    "labels_text",
    "numeric_column",
]

MISSING = "\x00missing"
"""Key of a missing value (None, NaN, pandas NA) in :func:`category_key`."""
WRONG_TYPE = "\x00wrong_type"
"""Key of a value no category can be (a list, a dict, an arbitrary object)."""

_NUMBER_KINDS = "biuf"


def equal_frequency_edges(finite_sorted: np.ndarray, bins: int) -> np.ndarray:
    """Inner edges of ``bins`` equal-frequency bins (ties merge bins; none at the minimum).

    >>> equal_frequency_edges(np.arange(9.0), 4).tolist()
    [2.0, 4.0, 6.0]
    >>> equal_frequency_edges(np.array([0.0, 0.0, 0.0, 1.0]), 4).tolist()
    [0.25]
    """
    if finite_sorted.size == 0 or bins <= 1:
        return np.empty(0)
    probs = np.arange(1, bins) / bins
    edges = np.unique(np.quantile(finite_sorted, probs))
    # An edge at the minimum would leave the first (below-it) bin empty in the reference.
    result: np.ndarray = edges[edges > finite_sorted[0]]
    return result


def _is_missing_scalar(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, (float, np.floating)):
        return math.isnan(value)
    return type(value).__name__ in ("NAType", "NaTType")  # pandas missing markers


def category_key(value: Any) -> str:
    """The category a value stands for: numbers as their integer text when integral.

    >>> category_key(3), category_key(3.0), category_key(True), category_key("red")
    ('3', '3', 'True', 'red')
    >>> category_key(None) == MISSING, category_key([1]) == WRONG_TYPE
    (True, True)
    """
    if _is_missing_scalar(value):
        return MISSING
    if isinstance(value, (bool, np.bool_)):
        return str(bool(value))
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (float, np.floating)):
        number = float(value)
        if math.isinf(number):
            return repr(number)
        return str(int(number)) if number.is_integer() else repr(number)
    if isinstance(value, str):
        return value
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return WRONG_TYPE


def category_keys(column: np.ndarray) -> tuple[list[str], np.ndarray]:
    """``(keys of the distinct values, index of each value's key)`` — one key per unique.

    Numeric and text arrays are reduced with ``np.unique`` first, so the Python work
    is per distinct value; object arrays of mixed types fall back to a per-value pass.

    >>> keys, index = category_keys(np.array([2.0, 1.0, 2.0]))
    >>> [keys[i] for i in index]
    ['2', '1', '2']
    """
    if column.dtype.kind in _NUMBER_KINDS or column.dtype.kind in "US":
        values = column
        if column.dtype.kind == "f":
            values = np.where(np.isnan(column), np.inf, column)  # NaN != NaN: fold them
        uniques, inverse = np.unique(values, return_inverse=True)
        keys = [category_key(u) for u in uniques.tolist()]
        if column.dtype.kind == "f":
            nan = np.isnan(column)
            if nan.any():
                keys.append(MISSING)
                inverse = np.where(nan, len(keys) - 1, inverse)
        return keys, inverse.reshape(-1)
    # Object arrays: Python values of any type. One key per value, deduplicated.
    seen: dict[str, int] = {}
    index = np.fromiter(
        (seen.setdefault(category_key(v), len(seen)) for v in column.tolist()),
        dtype=np.int64,
        count=len(column),
    )
    return list(seen), index


def numeric_column(column: np.ndarray) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
    """``(float64 values, missing mask or None, wrong-type mask or None)`` of one column.

    Numeric arrays convert without a Python loop; text arrays are all of the wrong
    type; object arrays are read value by value (the cost of passing Python objects).

    >>> values, missing, wrong = numeric_column(np.array([1, None, "x"], dtype=object))
    >>> float(values[0]), missing.tolist(), wrong.tolist()
    (1.0, [False, True, False], [False, False, True])
    """
    kind = column.dtype.kind
    if kind in _NUMBER_KINDS:
        return column.astype(np.float64, copy=False), None, None
    n = len(column)
    if kind in "US":
        return np.zeros(n), None, np.ones(n, dtype=bool)
    values = np.zeros(n)
    missing = np.zeros(n, dtype=bool)
    wrong = np.zeros(n, dtype=bool)
    for i, value in enumerate(column.tolist()):
        if isinstance(value, (int, float, np.number)) and not isinstance(value, complex):
            values[i] = value
            if values[i] != values[i]:
                missing[i] = True
        elif _is_missing_scalar(value):
            missing[i] = True
        else:
            wrong[i] = True
    return values, missing, wrong


def labels_text(names: Sequence[str], cap: int = 128) -> list[str]:
    """Category names made safe as Prometheus label values (length-capped)."""
    return [n if len(n) <= cap else n[: cap - 1] + "…" for n in names]
