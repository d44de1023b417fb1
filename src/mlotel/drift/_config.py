"""The streaming drift monitor's settings: one object for ``instrument(drift=...)``."""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from ._constraints import Constraint

__all__ = ["DEFAULT_THRESHOLDS", "METHODS", "DriftConfig", "with_deprecated_keywords"]

METHODS = ("psi", "jensenshannon", "wasserstein")
"""Distances the streaming monitor computes per feature and window."""

DEFAULT_THRESHOLDS: Mapping[str, float] = {"psi": 0.1, "jensenshannon": 0.1, "wasserstein": 0.1}


@dataclass(frozen=True)
class DriftConfig:
    """How a model's streaming drift monitor decides (``instrument(..., drift=...)``).

    Every field has a default; pass only what you change. Invalid values raise
    ``ValueError`` when the config is made, never inside a predict call.

    >>> from mlotel.drift import DriftConfig
    >>> config = DriftConfig(window_rows=5_000, thresholds={"psi": 0.2})
    >>> config.window_rows, config.threshold("psi"), config.threshold("wasserstein")
    (5000, 0.2, 0.1)
    >>> DriftConfig(method="kl")
    Traceback (most recent call last):
    ...
    ValueError: DriftConfig.method='kl' must be one of psi, jensenshannon, wasserstein
    """

    window_rows: int = 10_000
    """Rows in the rolling window (the last N rows)."""
    window_seconds: float = 3600.0
    """Oldest age of the window's data, in seconds."""
    min_samples: int = 500
    """No drift value is published for a window with fewer values."""
    thresholds: Mapping[str, float] | None = None
    """Per method (``psi``, ``jensenshannon``, ``wasserstein``); default 0.1 each."""
    method: str = "psi"
    """The distance that decides whether a feature drifted."""
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
