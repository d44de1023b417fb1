"""Per-column drift tests of the offline report, with Evidently 0.7's formulas and defaults.

Every test takes a :class:`ColumnSample` (the reference and current values of one column
with missing and infinite values already dropped) and returns a score: a p-value for
``ks``, ``chisquare`` and ``z``, a distance or divergence for the others. Exact tests and
p-values come from scipy; the normalised Wasserstein distance is computed here from the
sorted samples with scipy's own formula (the area between the two empirical CDFs), which
gives the same number several times faster because the sorted samples are shared with the
rest of the report.

This module needs scipy and pandas (the ``report`` extra); :mod:`mlotel.drift` imports it
only when a report is made.

>>> import numpy as np
>>> sample = ColumnSample(np.arange(100.0), np.arange(100.0) + 50.0, "numerical")
>>> test = default_stattest(sample.reference.size, sample.n_unique_over(5), "numerical")
>>> test.name, round(test.score(sample), 6), test.drifted(test.score(sample), 0.05)
('ks', 0.0, True)
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import Any, Literal

import numpy as np
import pandas as pd
from numpy.typing import NDArray
from scipy import stats
from scipy.spatial import distance

__all__ = [
    "CATEGORICAL",
    "NUMERICAL",
    "STAT_TESTS",
    "ColumnSample",
    "ColumnType",
    "StatTest",
    "binned_shares",
    "chisquare_pvalue",
    "default_stattest",
    "jensenshannon_distance",
    "kl_divergence",
    "ks_pvalue",
    "psi",
    "wasserstein_normed",
    "z_pvalue",
]

ColumnType = Literal["numerical", "categorical"]
NUMERICAL: ColumnType = "numerical"
CATEGORICAL: ColumnType = "categorical"

SMALL_SAMPLE_ROWS = 1000
"""Reference rows (after dropping missing values) up to which p-value tests are used."""
FEW_VALUES = 5
"""Numeric columns with at most this many distinct values (both samples) are tested as
categories."""
STURGES_MIN_VALUES = 20
"""Binned tests on a numeric column use Sturges bins when the reference has more distinct
values than this; otherwise one bin per distinct value."""

FloatArray = NDArray[np.float64]


class ColumnSample:
    """The cleaned reference and current values of one column, with shared derived data.

    ``reference`` and ``current`` hold no missing or infinite values. Numeric samples are
    float64 arrays; categorical samples are object (or bool/int) arrays. Sorted copies
    and category counts are computed once, on first use, and shared by the test, the
    data-quality section and the plot.
    """

    def __init__(self, reference: NDArray[Any], current: NDArray[Any], column_type: ColumnType):
        self.reference = reference
        self.current = current
        self.column_type = column_type

    @property
    def n_reference(self) -> int:
        return int(self.reference.size)

    @property
    def n_current(self) -> int:
        return int(self.current.size)

    @cached_property
    def reference_sorted(self) -> FloatArray:
        return np.sort(self.reference)

    @cached_property
    def current_sorted(self) -> FloatArray:
        return np.sort(self.current)

    @cached_property
    def category_counts(self) -> tuple[NDArray[Any], NDArray[np.int64], NDArray[np.int64]]:
        """(distinct values over both samples, their reference counts, current counts)."""
        both = np.concatenate((self.reference, self.current))
        codes, values = pd.factorize(both, sort=False)
        k = len(values)
        n_ref = self.reference.size
        ref_counts = np.bincount(codes[:n_ref], minlength=k)
        cur_counts = np.bincount(codes[n_ref:], minlength=k)
        return np.asarray(values, dtype=object), ref_counts, cur_counts

    def n_unique_over(self, limit: int) -> int:
        """The number of distinct values over both samples, or ``limit + 1`` if it is larger.

        Test selection only asks "more than 5?": a few leading values usually settle it
        without hashing the whole column.
        """
        if self.column_type == NUMERICAL:
            head = np.unique(np.concatenate((self.reference[:64], self.current[:64])))
            if head.size > limit:
                return limit + 1
        return min(len(self.category_counts[0]), limit + 1)

    def reference_unique_over(self, limit: int) -> int:
        """Distinct reference values, or ``limit + 1`` if there are more than ``limit``."""
        head = pd.unique(self.reference[: 4 * limit])
        if head.size > limit:
            return limit + 1
        ref_counts = self.category_counts[1]
        return min(int(np.count_nonzero(ref_counts)), limit + 1)


# --- the statistics --------------------------------------------------------------------


def ks_pvalue(sample: ColumnSample) -> float:
    """Two-sample Kolmogorov-Smirnov p-value (two-sided, scipy's default method)."""
    if not isinstance(sample, ColumnSample):  # a summary of data too big to hold
        return float(sample.ks_pvalue())
    return float(stats.ks_2samp(sample.reference, sample.current).pvalue)


def wasserstein_normed(sample: ColumnSample) -> float:
    """Wasserstein-1 distance divided by max(std(reference, ddof=0), 0.001).

    Equal to ``scipy.stats.wasserstein_distance(ref, cur) / norm`` (to rounding): scipy
    integrates |F_ref - F_cur| over x; this integrates the same area as |Q_ref - Q_cur|
    over t in [0, 1], where the quantile functions Q are steps at multiples of 1/n_ref and
    1/n_cur. The sorted samples are shared with the rest of the report, so the distance
    itself costs a merge of two integer grids and a few vector operations.
    """
    if not isinstance(sample, ColumnSample):  # a summary of data too big to hold
        return float(sample.wasserstein_normed())
    ref, cur = sample.reference_sorted, sample.current_sorted
    n_ref, n_cur = ref.size, cur.size
    if n_ref == n_cur:
        distance_ = float(np.mean(np.abs(ref - cur)))
    else:
        # Breakpoints t = k / (n_ref * n_cur), as integers k: i * n_cur and j * n_ref.
        steps = np.concatenate(
            (np.arange(n_ref, dtype=np.int64) * n_cur, np.arange(n_cur, dtype=np.int64) * n_ref)
        )
        steps.sort(kind="stable")  # two sorted runs: a linear merge
        total = n_ref * n_cur
        widths = np.diff(steps, append=total) / total
        gaps = np.abs(ref[steps // n_cur] - cur[steps // n_ref])
        distance_ = float(np.dot(gaps, widths))
    norm = max(float(np.std(sample.reference)), 0.001)
    return distance_ / norm


def chisquare_pvalue(sample: ColumnSample) -> float:
    """Chi-square goodness-of-fit p-value of current counts against reference shares.

    Expected counts are the reference counts scaled to the current size; a value seen only
    in the current sample has an expected count of 0, which makes the p-value 0.
    """
    _, ref_counts, cur_counts = sample.category_counts
    f_exp = ref_counts * (sample.n_current / sample.n_reference)
    with np.errstate(divide="ignore", invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return float(stats.chisquare(cur_counts, f_exp).pvalue)


def _first_key(values: NDArray[Any]) -> Any:
    try:
        return sorted(values.tolist())[0]
    except TypeError:  # mixed types: order by type name, then text
        return sorted(values.tolist(), key=lambda v: (type(v).__name__, str(v)))[0]


def z_pvalue(sample: ColumnSample) -> float:
    """Two-proportion z-test p-value (two-sided, pooled variance) for two-valued columns.

    The proportion is that of rows not equal to the smallest value; ``1.0`` when both
    samples hold the same single value.
    """
    values, ref_counts, cur_counts = sample.category_counts
    n_ref, n_cur = sample.n_reference, sample.n_current
    if len(values) == 1:
        return 1.0
    first = _first_key(values)
    index = next(i for i, v in enumerate(values.tolist()) if v == first)
    p_ref = float(n_ref - ref_counts[index]) / n_ref
    p_cur = float(n_cur - cur_counts[index]) / n_cur
    pooled = (p_ref * n_ref + p_cur * n_cur) / (n_ref + n_cur)
    z = (p_ref - p_cur) / math.sqrt(pooled * (1 - pooled) * (1.0 / n_ref + 1.0 / n_cur))
    return float(2 * (1 - stats.norm.cdf(abs(z))))


def binned_shares(sample: ColumnSample, fill_zeroes: bool) -> tuple[FloatArray, FloatArray]:
    """Reference and current shares per bin, binned as Evidently's binned tests do.

    Numeric columns whose reference has more than 20 distinct values: Sturges edges over
    both samples together (``np.histogram_bin_edges(..., "sturges")``); otherwise one bin
    per distinct value of either sample. Shares are counts over each sample's size. With
    ``fill_zeroes`` an empty bin gets min(non-zero share) / 1e6 when that minimum is at most
    1e-4, else 1e-4 (so logarithms stay finite).
    """
    n_ref, n_cur = sample.n_reference, sample.n_current
    if (
        sample.column_type == NUMERICAL
        and sample.reference_unique_over(STURGES_MIN_VALUES) > STURGES_MIN_VALUES
    ):
        if not isinstance(sample, ColumnSample):  # a summary: counts on the same edges
            ref_counts, cur_counts = sample.sturges_counts()
            ref_shares, cur_shares = ref_counts / n_ref, cur_counts / n_cur
            return _filled(ref_shares, fill_zeroes), _filled(cur_shares, fill_zeroes)
        edges = np.histogram_bin_edges(
            np.concatenate((sample.reference, sample.current)), bins="sturges"
        )
        ref_shares = np.histogram(sample.reference, edges)[0] / n_ref
        cur_shares = np.histogram(sample.current, edges)[0] / n_cur
    else:
        _, ref_counts, cur_counts = sample.category_counts
        ref_shares = ref_counts / n_ref
        cur_shares = cur_counts / n_cur
    return _filled(ref_shares, fill_zeroes), _filled(cur_shares, fill_zeroes)


def _filled(shares: FloatArray, fill_zeroes: bool) -> FloatArray:
    shares = shares.astype(np.float64)
    if fill_zeroes:
        smallest = float(shares[shares != 0].min())
        shares[shares == 0] = smallest / 10**6 if smallest <= 0.0001 else 0.0001
    return shares


def jensenshannon_distance(sample: ColumnSample) -> float:
    """Jensen-Shannon distance (natural log) of the binned shares (no zero filling)."""
    ref_shares, cur_shares = binned_shares(sample, fill_zeroes=False)
    return float(distance.jensenshannon(ref_shares, cur_shares))


def psi(sample: ColumnSample) -> float:
    """Population stability index: sum((ref - cur) * ln(ref / cur)) over zero-filled bins."""
    ref_shares, cur_shares = binned_shares(sample, fill_zeroes=True)
    return float(np.sum((ref_shares - cur_shares) * np.log(ref_shares / cur_shares)))


def kl_divergence(sample: ColumnSample) -> float:
    """Kullback-Leibler divergence KL(reference || current) over zero-filled bins."""
    ref_shares, cur_shares = binned_shares(sample, fill_zeroes=True)
    return float(stats.entropy(ref_shares, cur_shares))


# --- the registry ------------------------------------------------------------------------

DriftRule = Literal["p_value_at_most", "p_value_below", "score_at_least"]


@dataclass(frozen=True)
class StatTest:
    """One drift test: its name (as Evidently names it), how to compute it, when it fires.

    >>> STAT_TESTS["wasserstein"].drifted(0.1, 0.1), STAT_TESTS["chisquare"].drifted(0.05, 0.05)
    (True, False)
    """

    name: str
    display_name: str
    default_threshold: float
    rule: DriftRule
    column_types: frozenset[ColumnType]
    function: Callable[[ColumnSample], float]

    def score(self, sample: ColumnSample) -> float:
        """The test's score (p-value or distance) on ``sample``."""
        return self.function(sample)

    def drifted(self, score: float, threshold: float) -> bool:
        """Whether ``score`` means drift at ``threshold``, by this test's rule."""
        if math.isnan(score):
            return False
        if self.rule == "p_value_at_most":
            return score <= threshold
        if self.rule == "p_value_below":
            return score < threshold
        return score >= threshold


_BOTH: frozenset[ColumnType] = frozenset((NUMERICAL, CATEGORICAL))

STAT_TESTS: Mapping[str, StatTest] = {
    test.name: test
    for test in (
        StatTest(
            "ks", "K-S p_value", 0.05, "p_value_at_most", frozenset((NUMERICAL,)), ks_pvalue
        ),
        StatTest(
            "wasserstein",
            "Wasserstein distance (normed)",
            0.1,
            "score_at_least",
            frozenset((NUMERICAL,)),
            wasserstein_normed,
        ),
        StatTest("chisquare", "chi-square p_value", 0.05, "p_value_below", _BOTH, chisquare_pvalue),
        StatTest("z", "Z-test p_value", 0.05, "p_value_below", _BOTH, z_pvalue),
        StatTest(
            "jensenshannon",
            "Jensen-Shannon distance",
            0.1,
            "score_at_least",
            _BOTH,
            jensenshannon_distance,
        ),
        StatTest("psi", "PSI", 0.1, "score_at_least", _BOTH, psi),
        StatTest(
            "kl_div", "Kullback-Leibler divergence", 0.1, "score_at_least", _BOTH, kl_divergence
        ),
    )
}
"""Tests selectable per column, by name."""


def default_stattest(n_reference: int, n_unique: int, column_type: ColumnType) -> StatTest:
    """Evidently 0.7's default test for a column.

    ``n_reference``: reference rows after dropping missing and infinite values;
    ``n_unique``: distinct values over both samples (only "more than 5?" matters).

    >>> [default_stattest(n, u, t).name for n, u, t in
    ...  [(1000, 6, "numerical"), (1001, 6, "numerical"), (1000, 5, "numerical"),
    ...   (1000, 2, "categorical"), (1001, 3, "categorical")]]
    ['ks', 'wasserstein', 'chisquare', 'z', 'jensenshannon']
    """
    if column_type == NUMERICAL and n_unique > FEW_VALUES:
        return STAT_TESTS["ks" if n_reference <= SMALL_SAMPLE_ROWS else "wasserstein"]
    if n_reference <= SMALL_SAMPLE_ROWS:
        return STAT_TESTS["chisquare" if n_unique > 2 else "z"]
    return STAT_TESTS["jensenshannon"]
