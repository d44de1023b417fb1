"""The streaming drift monitor's settings: one object for ``instrument(drift=...)``."""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from ._calibrated import DEFAULT_TEST_SHARES
from ._constraints import Constraint

__all__ = [
    "DECISIONS",
    "DEFAULT_LAGS",
    "DEFAULT_THRESHOLDS",
    "DECISION_METHODS",
    "METHODS",
    "DriftConfig",
    "with_deprecated_keywords",
]

METHODS = ("psi", "jensenshannon", "wasserstein")
"""Distances the streaming monitor computes per feature over the rolling window."""
DECISION_METHODS = ("p_value", "shift")
"""Further ``ml.feature.drift`` methods, from the calibrated test of each decision window:
the adjusted p-value (flagged iff <= ``false_alarm_rate``) and the location shift in
reference standard deviations."""
DECISIONS = ("calibrated", "threshold")
"""``calibrated``: tests with a stated false-alarm rate (default); ``threshold``: the
distance of ``method`` over its threshold (mlotel before 0.2)."""
DEFAULT_LAGS = (1, 2, 3, 4, 8, 16)

DEFAULT_THRESHOLDS: Mapping[str, float] = {"psi": 0.1, "jensenshannon": 0.1, "wasserstein": 0.1}


@dataclass(frozen=True)
class DriftConfig:
    """How a model's streaming drift monitor decides (``instrument(..., drift=...)``).

    Every field has a default; pass only what you change. Invalid values raise
    ``ValueError`` when the config is made, never inside a predict call.

    The default decision is ``"calibrated"``: at each completed window of ``window_rows``
    rows, two-sample tests on the bin counts (with sequential evidence over the last
    windows) and a multivariate test, whose levels add up to ``false_alarm_rate``: the
    probability that a window without change raises any flag, model-wide. A flag also
    needs an effect of at least ``effect_floor`` (see ``docs/drift.md``).
    ``decision="threshold"`` restores the rule of mlotel before: ``method``'s distance
    over the rolling window at or over its threshold.

    >>> from mlotel.drift import DriftConfig
    >>> config = DriftConfig(window_rows=5_000, thresholds={"psi": 0.2})
    >>> config.window_rows, config.threshold("psi"), config.threshold("wasserstein")
    (5000, 0.2, 0.1)
    >>> config = DriftConfig(effect_floors={"income": 0.1})
    >>> config.decision, config.false_alarm_rate, config.floor("age"), config.floor("income")
    ('calibrated', 0.01, 0.03, 0.1)
    >>> DriftConfig(method="kl")
    Traceback (most recent call last):
    ...
    ValueError: DriftConfig.method='kl' must be one of psi, jensenshannon, wasserstein
    """

    window_rows: int = 10_000
    """Rows in the rolling window (the last N rows), and in each decision window."""
    window_seconds: float = 3600.0
    """Oldest age of the window's data, in seconds; a decision window also closes when
    it is this old and holds ``min_samples`` rows."""
    min_samples: int = 500
    """No drift value or decision is published for a window with fewer values."""
    thresholds: Mapping[str, float] | None = None
    """Per method (``psi``, ``jensenshannon``, ``wasserstein``); default 0.1 each."""
    method: str = "psi"
    """The distance that decides with ``decision="threshold"``."""
    decision: str = "calibrated"
    """``calibrated`` (tests with a stated false-alarm rate) or ``threshold`` (a distance
    over its threshold, as before)."""
    false_alarm_rate: float = 0.01
    """Bound on the share of decision windows without change that raise any flag, over
    all features, prediction columns, tests, lags and the multivariate test together
    (Bonferroni: family-wise)."""
    effect_floor: float = 0.03
    """Smallest change that may flag, in sigma-equivalents (a normal location shift of
    this many standard deviations), with 95 % confidence; keeps big windows from paging
    on trivia."""
    effect_floors: Mapping[str, float] | None = None
    """Per-feature ``effect_floor`` overrides, ``{"income": 0.1}``."""
    sequential_lags: tuple[int, ...] = DEFAULT_LAGS
    """Each test also runs on the last k windows pooled, for each k here: sequential
    evidence for small persistent shifts. ``(1,)`` decides on each window alone."""
    multivariate: bool = True
    """Run the multivariate (PCA reconstruction) test when the profile has its model."""
    multivariate_share: float = 0.05
    """Share of ``false_alarm_rate`` spent on the multivariate test."""
    test_shares: Mapping[str, float] | None = None
    """Share of a numeric column's budget per test: ``location``, ``scale``,
    ``chisquare`` (default 0.8, 0.1, 0.1)."""
    constraints: Mapping[str, Iterable[Constraint]] | None = None
    """``{feature: [Range(...), NotNull(), ...]}``, counted as data-quality issues."""
    on_drift: Callable[[Any], Any] | None = None
    """Called with a :class:`~mlotel.drift.DriftEvent` on a background thread, at most
    once per window per feature; exceptions are counted, never raised."""

    def __post_init__(self) -> None:
        if self.window_rows < 1 or self.window_seconds <= 0 or self.min_samples < 1:
            raise ValueError(
                "DriftConfig: window_rows, window_seconds and min_samples must be positive"
            )
        for name in self.thresholds or {}:
            if name not in METHODS:
                raise ValueError(
                    f"DriftConfig.thresholds: unknown drift method {name!r}; "
                    f"use {', '.join(METHODS)}"
                )
        if self.method not in METHODS:
            raise ValueError(
                f"DriftConfig.method={self.method!r} must be one of {', '.join(METHODS)}"
            )
        if self.on_drift is not None and not callable(self.on_drift):
            raise TypeError("DriftConfig.on_drift must be callable")
        if self.decision not in DECISIONS:
            raise ValueError(
                f"DriftConfig.decision={self.decision!r} must be one of {', '.join(DECISIONS)}"
            )
        if not 0.0 < self.false_alarm_rate < 1.0:
            raise ValueError("DriftConfig.false_alarm_rate must be in (0, 1), e.g. 0.01")
        floors = {"": self.effect_floor, **(self.effect_floors or {})}
        if any(not (isinstance(v, (int, float)) and v >= 0) for v in floors.values()):
            raise ValueError("DriftConfig.effect_floor(s) must be numbers >= 0")
        lags = tuple(self.sequential_lags)
        if not lags or any(not isinstance(k, int) or not 1 <= k <= 256 for k in lags):
            raise ValueError("DriftConfig.sequential_lags must be integers from 1 to 256")
        if not 0.0 < self.multivariate_share < 1.0:
            raise ValueError("DriftConfig.multivariate_share must be in (0, 1)")
        shares = dict(self.test_shares or DEFAULT_TEST_SHARES)
        unknown_tests = set(shares) - set(DEFAULT_TEST_SHARES)
        if unknown_tests or any(v < 0 for v in shares.values()) or sum(shares.values()) <= 0:
            raise ValueError(
                "DriftConfig.test_shares: non-negative shares of location, scale, chisquare"
            )

    def floor(self, feature: str) -> float:
        """The effect floor of ``feature`` (its override, else ``effect_floor``)."""
        given = (self.effect_floors or {}).get(feature)
        return float(self.effect_floor if given is None else given)

    def threshold(self, method: str) -> float:
        """The threshold of ``method`` (the configured one, else the default)."""
        given = (self.thresholds or {}).get(method)
        return float(DEFAULT_THRESHOLDS[method] if given is None else given)


def with_deprecated_keywords(
    config: DriftConfig | None,
    given: Mapping[str, Any],
    renames: Mapping[str, str],
    caller: str,
    stacklevel: int,
) -> DriftConfig | None:
    """``config`` with keywords from before :class:`DriftConfig` applied; each call that
    uses them warns once (``DeprecationWarning``) naming the replacement.

    >>> import warnings
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     warnings.simplefilter("always")
    ...     config = with_deprecated_keywords(
    ...         None, {"drift_method": "wasserstein"}, {"drift_method": "method"}, "f", 1
    ...     )
    >>> config.method, str(caught[0].message)
    ('wasserstein', 'f(drift_method=) is deprecated; pass drift=DriftConfig(method=)')
    """
    if not given:
        return config
    unknown = sorted(set(given) - set(renames))
    if unknown:
        raise TypeError(f"{caller}() got unexpected keyword argument(s): {', '.join(unknown)}")
    fields = {renames[name]: value for name, value in given.items()}
    warnings.warn(
        f"{caller}({', '.join(f'{name}=' for name in given)}) is deprecated; pass "
        f"drift=DriftConfig({', '.join(f'{field}=' for field in fields)})",
        DeprecationWarning,
        stacklevel=stacklevel + 1,
    )
    return dataclasses.replace(config or DriftConfig(), **fields)
