"""Calibrated drift decisions: two-sample tests on bin counts with a stated false-alarm rate.

Everything here needs numpy and the standard library only (the streaming monitor runs it
at each completed decision window; the offline report's ``method="calibrated"`` and the
fleet rules' limits use the same functions).

Per column and decision window (``docs/drift.md``, "Calibrated decisions"):

- **location**: a two-sample linear score test on the bins. Each reference bin gets the
  efficient score of a normal location shift *after grouping*, ``s = (phi(z_a) -
  phi(z_b)) / p`` where ``[z_a, z_b]`` is the bin's reference quantile range on the normal
  scale; ``T = sum(s * counts) / n`` has mean 0 and variance ``I (1/n + 1/N)`` under no
  drift (``I = sum(p s^2)``; the reference is a sample too). ``T / I`` estimates the shift
  in reference standard deviations (exactly so for a normal feature; a rank-based shift of
  the normal-quantile transform otherwise, which is never less efficient than the t-test,
  Chernoff-Savage).
- **scale**: the same with the scale score ``(z_a phi(z_a) - z_b phi(z_b)) / p``.
- **chisquare**: the Pearson two-sample (homogeneity) test on the bins; bins whose
  expected window count is under 5 are pooled first so the chi-square law holds.

Sequential evidence: the location and scale tests (and chisquare for categorical columns)
also run on the counts of the last ``k`` windows pooled, for each ``k`` in the lags, so a
small persistent shift accumulates evidence (a window-limited GLR scan over dyadic-ish
lags). Every test's level is its share of the model-wide false-alarm rate (Bonferroni
across columns, tests and lags: family-wise, because a page must mean "something changed",
and a family-wise bound holds whatever the dependence between features). A test only
flags when its effect, in "sigma-equivalents" (the normal location shift that moves the
distribution as far in chi-square distance), exceeds the effect floor with 95 %
confidence: ``effect - 1.645 * sqrt(1/n + 1/N) >= floor`` (the standard error of every
effect here is ``sqrt(1/n + 1/N)`` in these units), so a change smaller than the floor
flags a given test at most 5 % of the time however large the windows.

>>> import numpy as np
>>> column = ReferenceColumn("x", np.full(50, 200.0), ordered=True)
>>> round(column.location_info, 3)  # Fisher information kept by 50 equal-frequency bins
0.995
>>> plan = DecisionPlan(false_alarm_rate=0.01, columns=1, lags=(1,), multivariate=False)
>>> same = column.counts_like(1000)
>>> column_decision(column, [(1, same)], plan, effect_floor=0.03, min_values=1).detected
False
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

__all__ = [
    "DEFAULT_TEST_SHARES",
    "LIMIT_METHODS",
    "FLOOR_CONFIDENCE_Z",
    "MIN_EXPECTED",
    "ColumnDecision",
    "DecisionPlan",
    "Evidence",
    "MultivariateReference",
    "ReferenceColumn",
    "DriftTestResult",
    "chi2_isf",
    "chi2_sf",
    "column_decision",
    "fleet_limits",
    "multivariate_decision",
    "normal_isf",
    "normal_sf",
]

DEFAULT_TEST_SHARES: Mapping[str, float] = {"location": 0.8, "scale": 0.1, "chisquare": 0.1}
"""Share of a numeric column's false-alarm budget per test (categorical columns give the
whole budget to ``chisquare``)."""
LIMIT_METHODS = ("location", "chisquare", "effect")
"""``ml.drift.method`` values of the fleet limits (``ml.feature.drift.limit``)."""
MIN_EXPECTED = 5.0
"""Bins whose expected window count is under this are pooled before the chi-square test."""
FLOOR_CONFIDENCE_Z = 1.6448536269514722
"""One-sided 95 % normal quantile: an effect must exceed the floor by this many standard
errors."""

_SQRT2 = math.sqrt(2.0)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)


# --- distributions (numpy/math only) --------------------------------------------------


def normal_sf(z: float) -> float:
    """Upper tail of the standard normal, ``P(Z > z)``.

    >>> round(normal_sf(1.959963984540054), 6)
    0.025
    """
    return 0.5 * math.erfc(z / _SQRT2)


# Acklam's rational approximation of the normal quantile (relative error < 1.2e-9),
# refined by one Halley step on erfc.
_A = (-39.69683028665376, 220.9460984245205, -275.9285104469687, 138.3577518672690,
      -30.66479806614716, 2.506628277459239)  # fmt: skip
_B = (-54.47609879822406, 161.5858368580409, -155.6989798598866, 66.80131188771972,
      -13.28068155288572)  # fmt: skip
_C = (-0.007784894002430293, -0.3223964580411365, -2.400758277161838, -2.549732539343734,
      4.374664141464968, 2.938163982698783)  # fmt: skip
_D = (0.007784695709041462, 0.3224671290700398, 2.445134137142996, 3.754408661907416)


def _normal_ppf(p: float) -> float:
    if p <= 0.0:
        return -math.inf
    if p >= 1.0:
        return math.inf
    if p < 0.02425:
        q = math.sqrt(-2.0 * math.log(p))
        x = (((((_C[0] * q + _C[1]) * q + _C[2]) * q + _C[3]) * q + _C[4]) * q + _C[5]) / (
            (((_D[0] * q + _D[1]) * q + _D[2]) * q + _D[3]) * q + 1.0
        )
    elif p > 1.0 - 0.02425:
        return -_normal_ppf(1.0 - p)
    else:
        q = p - 0.5
        r = q * q
        x = (((((_A[0] * r + _A[1]) * r + _A[2]) * r + _A[3]) * r + _A[4]) * r + _A[5]) * q / (
            ((((_B[0] * r + _B[1]) * r + _B[2]) * r + _B[3]) * r + _B[4]) * r + 1.0
        )
    e = 0.5 * math.erfc(-x / _SQRT2) - p
    u = e * math.sqrt(2.0 * math.pi) * math.exp(x * x / 2.0)
    return x - u / (1.0 + x * u / 2.0)


def normal_isf(p: float) -> float:
    """The ``z`` with ``P(Z > z) = p`` (inverse of :func:`normal_sf`).

    >>> round(normal_isf(0.025), 6), round(normal_isf(1e-6), 4)
    (1.959964, 4.7534)
    """
    if p < 0.5:
        return -_normal_ppf(p)
    return _normal_ppf(1.0 - p)


def _gamma_q(a: float, x: float) -> float:
    """Regularized upper incomplete gamma ``Q(a, x)`` (Numerical Recipes' gammq)."""
    if x <= 0.0:
        return 1.0
    log_front = -x + a * math.log(x) - math.lgamma(a)
    if x < a + 1.0:  # series for P, then Q = 1 - P
        term = total = 1.0 / a
        ap = a
        for _ in range(1000):
            ap += 1.0
            term *= x / ap
            total += term
            if abs(term) < abs(total) * 1e-15:
                break
        return max(0.0, 1.0 - total * math.exp(log_front))
    # Lentz's continued fraction for Q.
    tiny = 1e-300
    b = x + 1.0 - a
    c = 1.0 / tiny
    d = 1.0 / b
    h = d
    for i in range(1, 1000):
        an = -i * (i - a)
        b += 2.0
        d = an * d + b
        d = tiny if abs(d) < tiny else d
        c = b + an / c
        c = tiny if abs(c) < tiny else c
        d = 1.0 / d
        delta = d * c
        h *= delta
        if abs(delta - 1.0) < 1e-15:
            break
    return min(1.0, math.exp(log_front) * h)


def chi2_sf(x: float, df: float) -> float:
    """Upper tail of the chi-square law with ``df`` degrees of freedom.

    >>> round(chi2_sf(3.841458820694124, 1), 6), round(chi2_sf(66.33864621, 49), 4)
    (0.05, 0.05)
    """
    if df <= 0:
        return 1.0
    return _gamma_q(df / 2.0, x / 2.0)


def chi2_isf(p: float, df: float) -> float:
    """The ``x`` with ``chi2_sf(x, df) = p`` (bisection on a bracket; 1e-10 relative).

    >>> round(chi2_isf(0.05, 1), 6)
    3.841459
    """
    if not 0.0 < p < 1.0:
        raise ValueError(f"p must be in (0, 1), got {p!r}")
    low, high = 0.0, max(1.0, df)
    while chi2_sf(high, df) > p:
        low, high = high, high * 2.0
    for _ in range(200):
        mid = 0.5 * (low + high)
        if chi2_sf(mid, df) > p:
            low = mid
        else:
            high = mid
        if high - low <= 1e-10 * high:
            break
    return 0.5 * (low + high)


def _phi(z: np.ndarray) -> np.ndarray:
    with np.errstate(over="ignore", invalid="ignore"):
        density = np.exp(-0.5 * z * z) * _INV_SQRT_2PI
    return np.where(np.isfinite(z), density, 0.0)


# --- reference columns -----------------------------------------------------------------


class ReferenceColumn:
    """What the tests need from one column of the reference: bin counts and bin scores.

    ``ordered`` columns (numeric bins) get the location and scale tests; unordered ones
    (categories) the chi-square test only.

    >>> column = ReferenceColumn("x", np.array([25.0, 25.0, 25.0, 25.0]), ordered=True)
    >>> [round(s, 3) for s in column.location_scores.tolist()]
    [-1.271, -0.325, 0.325, 1.271]
    """

    def __init__(self, name: str, counts: np.ndarray, ordered: bool) -> None:
        self.name = name
        self.counts = np.asarray(counts, dtype=np.float64)
        self.size = float(self.counts.sum())
        self.ordered = ordered and len(self.counts) > 1
        self.shares = self.counts / self.size if self.size > 0 else self.counts.copy()
        k = len(self.counts)
        self.location_scores = np.zeros(k)
        self.scale_scores = np.zeros(k)
        self.location_info = self.scale_info = 0.0
        if self.ordered:
            upper = np.minimum(np.cumsum(self.shares), 1.0)
            upper[-1] = 1.0
            lower = np.concatenate(([0.0], upper[:-1]))
            z_low = np.array([_normal_ppf(float(u)) for u in lower])
            z_high = np.array([_normal_ppf(float(u)) for u in upper])
            phi_low, phi_high = _phi(z_low), _phi(z_high)
            zphi_low = np.where(np.isfinite(z_low), z_low, 0.0) * phi_low
            zphi_high = np.where(np.isfinite(z_high), z_high, 0.0) * phi_high
            present = self.shares > 0
            safe = np.where(present, self.shares, 1.0)
            self.location_scores = np.where(present, (phi_low - phi_high) / safe, 0.0)
            self.scale_scores = np.where(present, (zphi_low - zphi_high) / safe, 0.0)
            self.location_info = float(np.dot(self.shares, self.location_scores**2))
            self.scale_info = float(np.dot(self.shares, self.scale_scores**2))
            if self.location_info <= 1e-12:
                self.ordered = False

    @property
    def tests(self) -> tuple[str, ...]:
        """The tests this column gets."""
        return ("location", "scale", "chisquare") if self.ordered else ("chisquare",)

    def counts_like(self, n: int) -> np.ndarray:
        """Window counts of ``n`` values with exactly the reference's shares (for examples)."""
        return self.shares * n

    def groups(self, n: float) -> np.ndarray:
        """Group index of each bin so that every group expects >= 5 of ``n`` window values.

        Ordered bins merge with their neighbours; categories merge smallest first.
        """
        expected = self.shares * n
        k = len(expected)
        group = np.zeros(k, dtype=np.intp)
        if k == 0 or np.all(expected >= MIN_EXPECTED):
            return np.arange(k, dtype=np.intp)
        order = np.arange(k) if self.ordered else np.argsort(expected, kind="stable")
        current = 0
        filled = 0.0
        for b in order.tolist():
            group[b] = current
            filled += expected[b]
            if filled >= MIN_EXPECTED:
                current += 1
                filled = 0.0
        if filled < MIN_EXPECTED and current > 0:  # the last, short group joins the previous
            group[group == current] = current - 1
        return group


@dataclass(frozen=True)
class MultivariateReference:
    """Calibration of the multivariate statistic: held-out reference per-row errors."""

    error_mean: float
    error_std: float
    calibration_rows: int


# --- the plan: who gets which share of the false-alarm rate ------------------------------


@dataclass(frozen=True)
class DecisionPlan:
    """The level of every test of a model's decision (Bonferroni, family-wise).

    ``false_alarm_rate`` is the bound on the probability that a decision window with no
    change raises any flag (all columns, tests and lags, and the multivariate test).

    >>> plan = DecisionPlan(false_alarm_rate=0.01, columns=9, lags=(1, 2, 3, 4, 8, 16))
    >>> round(plan.column_rate, 6), f"{plan.alpha('location', ordered=True):.2e}"
    (0.001056, '1.41e-04')
    """

    false_alarm_rate: float
    columns: int
    lags: tuple[int, ...] = (1,)
    multivariate: bool = True
    multivariate_share: float = 0.05
    test_shares: Mapping[str, float] = field(default_factory=lambda: dict(DEFAULT_TEST_SHARES))

    @property
    def column_rate(self) -> float:
        """Each column's share of the false-alarm rate."""
        share = 1.0 - (self.multivariate_share if self.multivariate else 0.0)
        return self.false_alarm_rate * share / max(self.columns, 1)

    @property
    def multivariate_alpha(self) -> float:
        """Level of each lag of the multivariate test."""
        return self.false_alarm_rate * self.multivariate_share / len(self.lags)

    def test_lags(self, test: str, ordered: bool) -> tuple[int, ...]:
        """Lags a test runs at: every lag, but chisquare of numeric columns at lag 1 only."""
        if test == "chisquare" and ordered:
            return (1,)
        return self.lags

    def alpha(self, test: str, ordered: bool) -> float:
        """Level of one run (one lag) of ``test`` on a column."""
        if not ordered:
            return self.column_rate / len(self.lags) if test == "chisquare" else 0.0
        total = sum(self.test_shares.values())
        share = self.test_shares.get(test, 0.0) / total
        return self.column_rate * share / len(self.test_lags(test, ordered))


# --- one column's decision --------------------------------------------------------------


@dataclass(frozen=True)
class DriftTestResult:
    """One test on one column at one lag."""

    test: str
    lag: int
    statistic: float
    """|z| for location and scale, X^2 for chisquare."""
    p_value: float
    alpha: float
    """The level this run of the test has (its share of the false-alarm rate)."""
    effect: float
    """Size of the change in sigma-equivalents (compared with the effect floor)."""
    values: int
    """Window values the test used (pooled over ``lag`` windows)."""
    effect_se: float = 0.0
    """Standard error of ``effect``: ``sqrt(1/n + 1/N)``."""

    def reaches(self, floor: float) -> bool:
        """Whether the effect exceeds ``floor`` with 95 % confidence."""
        return self.effect - FLOOR_CONFIDENCE_Z * self.effect_se >= floor

    @property
    def level_ratio(self) -> float:
        """``p_value / alpha``: the test rejects iff this is at most 1."""
        return self.p_value / self.alpha if self.alpha > 0 else math.inf

    def adjusted_p_value(self, false_alarm_rate: float) -> float:
        """The p-value on the model-wide scale: flags iff <= ``false_alarm_rate``."""
        return min(1.0, self.level_ratio * false_alarm_rate)


@dataclass(frozen=True)
class ColumnDecision:
    """The decision for one column at one window."""

    name: str
    detected: bool
    p_value: float
    """Smallest adjusted p-value (x false_alarm_rate) among tests that reach the effect
    floor; 1.0 when none does. The column is flagged iff it is <= false_alarm_rate."""
    shift: float | None
    """Location shift of the latest window, in reference standard deviations."""
    deciding: DriftTestResult | None
    results: tuple[DriftTestResult, ...] = ()


def _linear_test(
    test: str,
    scores: np.ndarray,
    info: float,
    counts: np.ndarray,
    n: float,
    size: float,
    lag: int,
    alpha: float,
) -> DriftTestResult:
    statistic = float(np.dot(scores, counts)) / n
    se = math.sqrt(1.0 / n + 1.0 / size)
    z = statistic / (math.sqrt(info) * se)
    effect = abs(statistic) / math.sqrt(info)
    return DriftTestResult(test, lag, abs(z), 2.0 * normal_sf(abs(z)), alpha, effect, int(n), se)


def _chisquare_test(
    column: ReferenceColumn, counts: np.ndarray, n: float, lag: int, alpha: float
) -> DriftTestResult | None:
    groups = column.groups(n)
    k = int(groups.max()) + 1 if len(groups) else 0
    if k < 2:
        return None
    cur = np.bincount(groups, weights=counts, minlength=k)
    ref = np.bincount(groups, weights=column.counts, minlength=k)
    size = column.size
    pooled = (cur + ref) / (n + size)
    keep = pooled > 0
    scale = 1.0 / n + 1.0 / size
    distance = float(np.sum(((cur / n - ref / size) ** 2)[keep] / pooled[keep]))
    df = int(np.count_nonzero(keep)) - 1
    if df < 1:
        return None
    statistic = distance / scale
    effect = math.sqrt(max(distance - df * scale, 0.0))
    p_value = chi2_sf(statistic, df)
    se = math.sqrt(scale)
    return DriftTestResult("chisquare", lag, statistic, p_value, alpha, effect, int(n), se)


def column_decision(
    column: ReferenceColumn,
    pooled: Sequence[tuple[int, np.ndarray]],
    plan: DecisionPlan,
    effect_floor: float,
    min_values: int,
) -> ColumnDecision:
    """Run every test of ``column`` on the pooled window counts ``[(lag, counts), ...]``.

    Lags whose pooled counts hold fewer than ``min_values`` values are skipped.

    >>> column = ReferenceColumn("x", np.full(50, 200.0), ordered=True)
    >>> plan = DecisionPlan(false_alarm_rate=0.01, columns=1, multivariate=False)
    >>> rng = np.random.default_rng(0)
    >>> edges = np.quantile(rng.normal(size=10_000), np.arange(1, 50) / 50)
    >>> shifted = np.bincount(np.searchsorted(edges, rng.normal(0.5, 1, 1000)), minlength=50)
    >>> decision = column_decision(column, [(1, shifted)], plan, 0.03, 100)
    >>> decision.detected, decision.deciding.test, round(decision.shift, 1)
    (True, 'location', 0.5)
    """
    results: list[DriftTestResult] = []
    shift: float | None = None
    alphas = {test: plan.alpha(test, column.ordered) for test in column.tests}
    for lag, counts in pooled:
        counts = np.asarray(counts, dtype=np.float64)
        n = float(counts.sum())
        if n < min_values or n <= 0 or column.size <= 0:
            continue
        if column.ordered:
            if lag == 1 or shift is None:
                shift = float(np.dot(column.location_scores, counts)) / n / column.location_info
            for test, scores, info in (
                ("location", column.location_scores, column.location_info),
                ("scale", column.scale_scores, column.scale_info),
            ):
                if lag in plan.test_lags(test, True) and info > 1e-12:
                    results.append(
                        _linear_test(test, scores, info, counts, n, column.size, lag, alphas[test])
                    )
        if lag in plan.test_lags("chisquare", column.ordered):
            found = _chisquare_test(column, counts, n, lag, alphas["chisquare"])
            if found is not None:
                results.append(found)
    eligible = [r for r in results if r.reaches(effect_floor)]
    deciding = min(eligible, key=lambda r: r.level_ratio, default=None)
    rate = plan.false_alarm_rate
    p_value = 1.0 if deciding is None else deciding.adjusted_p_value(rate)
    detected = deciding is not None and deciding.p_value <= deciding.alpha
    return ColumnDecision(column.name, detected, p_value, shift, deciding, tuple(results))


def multivariate_decision(
    reference: MultivariateReference,
    pooled: Sequence[tuple[int, float, float]],
    plan: DecisionPlan,
    effect_floor: float,
    min_values: int,
) -> tuple[bool, float, DriftTestResult | None]:
    """The multivariate decision from ``[(lag, rows, sum of row errors), ...]``.

    Returns ``(detected, adjusted p-value, deciding test)``: a two-sided z-test of the mean
    reconstruction error against its held-out reference mean, with both sample sizes.

    >>> ref = MultivariateReference(error_mean=1.0, error_std=0.5, calibration_rows=5000)
    >>> plan = DecisionPlan(false_alarm_rate=0.01, columns=3, lags=(1,))
    >>> multivariate_decision(ref, [(1, 1000.0, 1100.0)], plan, 0.03, 100)[0]
    True
    """
    alpha = plan.multivariate_alpha
    best: DriftTestResult | None = None
    std = reference.error_std
    if std <= 0 or alpha <= 0:
        return False, 1.0, None
    for lag, rows, total in pooled:
        if rows < min_values or rows <= 0:
            continue
        mean = total / rows
        se = math.sqrt(1.0 / rows + 1.0 / max(reference.calibration_rows, 1))
        z = (mean - reference.error_mean) / (std * se)
        effect = abs(mean - reference.error_mean) / std
        result = DriftTestResult(
            "multivariate", lag, abs(z), 2.0 * normal_sf(abs(z)), alpha, effect, int(rows), se
        )
        better = best is None or result.level_ratio < best.level_ratio
        if result.reaches(effect_floor) and better:
            best = result
    if best is None:
        return False, 1.0, None
    return best.p_value <= best.alpha, best.adjusted_p_value(plan.false_alarm_rate), best


# --- sequential evidence: the last windows' counts ------------------------------------


class Evidence:
    """The counts of the last ``max(lags)`` decision windows (a ring), pooled per lag.

    Memory: ``max(lags) x (bins + 2)`` floats, whatever the traffic.

    >>> evidence = Evidence(bins=2, lags=(1, 2))
    >>> evidence.push(np.array([1.0, 2.0]), 10.0, 3.0)
    >>> evidence.push(np.array([3.0, 4.0]), 20.0, 5.0)
    >>> [(lag, c.tolist()) for lag, c in evidence.pooled()]
    [(1, [3.0, 4.0]), (2, [4.0, 6.0])]
    >>> evidence.pooled_multivariate()
    [(1, 20.0, 5.0), (2, 30.0, 8.0)]
    """

    def __init__(self, bins: int, lags: Sequence[int]) -> None:
        self.lags = tuple(sorted(set(lags)))
        depth = max(self.lags)
        self.counts = np.zeros((depth, bins))
        self.multivariate = np.zeros((depth, 2))
        self.filled = 0
        self.newest = -1

    def push(self, counts: np.ndarray, mv_rows: float = 0.0, mv_total: float = 0.0) -> None:
        """Add one completed window."""
        depth = len(self.counts)
        self.newest = (self.newest + 1) % depth
        self.counts[self.newest] = counts
        self.multivariate[self.newest] = (mv_rows, mv_total)
        self.filled = min(self.filled + 1, depth)

    def _order(self) -> np.ndarray:
        depth = len(self.counts)
        return (self.newest - np.arange(self.filled)) % depth

    def pooled(self) -> list[tuple[int, np.ndarray]]:
        """``(lag, counts summed over the last lag windows)`` for the lags available."""
        order = self._order()
        sums = np.cumsum(self.counts[order], axis=0)
        return [(lag, sums[lag - 1]) for lag in self.lags if lag <= self.filled]

    def pooled_multivariate(self) -> list[tuple[int, float, float]]:
        """``(lag, rows, error sum)`` over the last lag windows."""
        order = self._order()
        sums = np.cumsum(self.multivariate[order], axis=0)
        return [
            (lag, float(sums[lag - 1, 0]), float(sums[lag - 1, 1]))
            for lag in self.lags
            if lag <= self.filled
        ]


def fleet_limits(
    column: ReferenceColumn, plan: DecisionPlan, effect_floor: float
) -> dict[str, float]:
    """What the fleet rules compare with, so PromQL only compares (``fleet-drift.rules.yml``).

    The fleet decides on one window (the summed counters of the last hour), so each column
    spends its share of the false-alarm rate on two tests: ``location`` (critical |z|, with
    the location and scale shares) and ``chisquare`` (critical X^2 over the reference's
    non-empty bins, without pooling small bins); ``effect`` is the effect floor.

    >>> column = ReferenceColumn("x", np.full(50, 200.0), ordered=True)
    >>> limits = fleet_limits(column, DecisionPlan(0.01, columns=10), 0.03)
    >>> round(limits["location"], 2), round(limits["chisquare"], 1), limits["effect"]
    (3.33, 94.8, 0.03)
    """
    rate = plan.column_rate
    total = sum(plan.test_shares.values())
    limits = {"effect": float(effect_floor)}
    chisquare = rate
    if column.ordered:
        shares = plan.test_shares
        location = rate * (shares.get("location", 0.0) + shares.get("scale", 0.0))
        chisquare = rate * plan.test_shares.get("chisquare", 0.0) / total
        if location > 0:
            limits["location"] = normal_isf(location / total / 2.0)
    df = int(np.count_nonzero(column.shares > 0)) - 1
    if df >= 1 and chisquare > 0:
        limits["chisquare"] = chi2_isf(chisquare, df)
    return limits
