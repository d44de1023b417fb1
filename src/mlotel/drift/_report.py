"""The offline drift report: Evidently 0.7 ``DataDriftPreset``'s numbers, much faster.

:func:`report` compares a reference and a current DataFrame column by column: it types
each column as Evidently 0.7 does, picks Evidently's default test (or the one named for
the column), decides drift per column and for the dataset (share of drifted columns
≥ 0.5), and adds a data-quality section (missing shares, ranges, new categories, constant
columns). The result renders to one self-contained HTML file and to JSON with stable keys
(docs/drift-report.md).

Needs scipy and pandas (``pip install 'mlotel[report]'``), imported on first use.

>>> import pandas as pd
>>> from mlotel.drift import report
>>> ref = pd.DataFrame({"x": [float(i % 50) for i in range(500)], "c": ["a", "b"] * 250})
>>> cur = pd.DataFrame({"x": [float(i % 50) + 20 for i in range(500)], "c": ["a", "b"] * 250})
>>> result = report(ref, cur)
>>> [(c.name, c.stattest, c.drift_detected) for c in result.columns]
[('x', 'ks', True), ('c', 'z', False)]
>>> result.dataset_drift, result.drift_share
(True, 0.5)
"""

from __future__ import annotations

import contextlib
import itertools
import json
import math
import os
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from ._binning import equal_frequency_edges
from ._calibrated import DecisionPlan, ReferenceColumn, column_decision
from ._datasets import Dataset, is_dataset_source, open_dataset
from ._mapping import ColumnMapping
from ._partials import (
    CATEGORY_CAP,
    ColumnPlan,
    ColumnSketch,
    Job,
    ScanPass,
    SummarySample,
    grid_for,
    grid_quantiles,
    quantile_buckets,
    run_job,
    sturges_edges,
    to_arrow,
    worker_count,
)
from ._partials import canonical_order as _canonical
from ._performance import Performance, PerformancePlanner, PerformanceState
from ._profile import auto_bins

if TYPE_CHECKING:
    from . import _stats

__all__ = [
    "QUANTILES",
    "REPORT_METHODS",
    "REPORT_SCHEMA",
    "ColumnDrift",
    "ColumnQuality",
    "ColumnStatus",
    "Distribution",
    "DriftReport",
    "ReportJob",
    "SideQuality",
    "infer_column_type",
    "report",
    "write_report",
]

REPORT_SCHEMA = "mlotel.drift.report/1"
"""Value of the JSON ``schema`` key; the number changes only when a key changes meaning."""
REPORT_METHODS = ("evidently", "calibrated")
"""Decisions :func:`report` can make (``method=``)."""

ColumnKind = Literal["numerical", "categorical", "text", "datetime", "unknown"]
ColumnStatus = Literal[
    "tested",
    "missing_in_current",
    "missing_in_reference",
    "empty_reference",
    "empty_current",
    "unsupported_type",
    "type_mismatch",
    "test_not_applicable",
    "test_failed",
]

INTEGER_CATEGORY_LIMIT = 10
"""Integer columns with at most this many distinct values are categorical (Evidently 0.7)."""
TOP_CATEGORIES = 20
"""Categories drawn (and new categories listed) per column; the rest is "other"."""
QUANTILES = (0.05, 0.25, 0.5, 0.75, 0.95)
"""Quantiles of each numeric column in the data-quality section (numpy's linear method)."""

_MISSING_EXTRA = (
    "mlotel.drift.report needs scipy and pandas, which are not installed: "
    "pip install 'mlotel[report]'"
)


def _load_stats() -> Any:
    try:
        from . import _stats
    except ImportError as exc:
        raise ImportError(_MISSING_EXTRA) from exc
    return _stats


# --- result types ------------------------------------------------------------------------


@dataclass(frozen=True)
class SideQuality:
    """Data quality of one column in one dataset (reference or current).

    >>> import pandas as pd
    >>> from mlotel.drift import report
    >>> ref = pd.DataFrame({"color": ["red", "blue"] * 50})
    >>> cur = pd.DataFrame({"color": ["red"] * 99 + ["green"]})
    >>> side = report(ref, cur).column("color").quality.current
    >>> side.rows, side.missing, side.distinct, side.constant
    (100, 0, 2, False)
    """

    rows: int
    missing: int
    """Missing values (NaN, None, NaT)."""
    missing_share: float | None
    """``missing / rows``; ``None`` when there are no rows."""
    non_finite: int = 0
    """±inf values of a numeric column (dropped before testing, like missing values)."""
    distinct: int | None = None
    """Distinct non-missing values (categorical columns)."""
    min: float | None = None
    max: float | None = None
    mean: float | None = None
    constant: bool = False
    """True when the column holds exactly one distinct non-missing value."""
    std: float | None = None
    """Standard deviation of the finite values (n - 1 in the denominator, as pandas)."""
    quantiles: Mapping[str, float] | None = None
    """``{"0.05": ..., "0.25": ..., "0.5": ..., "0.75": ..., "0.95": ...}`` of the finite
    values (numpy's linear method; exact on datasets too)."""
    top: str | None = None
    """The most frequent value of a categorical column (ties: the first label)."""
    top_share: float | None = None
    """Its share of the non-missing values."""

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready data (non-finite numbers become None)."""
        return {
            "rows": self.rows,
            "missing": self.missing,
            "missing_share": _finite(self.missing_share),
            "non_finite": self.non_finite,
            "distinct": self.distinct,
            "min": _finite(self.min),
            "max": _finite(self.max),
            "mean": _finite(self.mean),
            "std": _finite(self.std),
            "quantiles": None
            if self.quantiles is None
            else {k: _finite(v) for k, v in self.quantiles.items()},
            "constant": self.constant,
            "top": self.top,
            "top_share": _finite(self.top_share),
        }


@dataclass(frozen=True)
class ColumnQuality:
    """Data-quality section of one column: both sides plus what is new in current data.

    >>> import pandas as pd
    >>> from mlotel.drift import report
    >>> ref = pd.DataFrame({"color": ["red", "blue"] * 50})
    >>> cur = pd.DataFrame({"color": ["red"] * 99 + ["green"]})
    >>> quality = report(ref, cur).column("color").quality
    >>> quality.new_categories, quality.new_category_share, quality.reference.distinct
    (('green',), 0.01, 2)
    """

    reference: SideQuality | None
    current: SideQuality | None
    new_categories: tuple[str, ...] = ()
    """Up to 20 categories seen in current data but never in the reference."""
    new_category_count: int = 0
    new_category_share: float | None = None
    """Share of current (non-missing) values that fall in a new category."""
    out_of_range_share: float | None = None
    """Share of current finite values outside the reference [min, max] (numeric)."""

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready data, both sides included (non-finite numbers become None)."""
        return {
            "reference": None if self.reference is None else self.reference.to_dict(),
            "current": None if self.current is None else self.current.to_dict(),
            "new_categories": list(self.new_categories),
            "new_category_count": self.new_category_count,
            "new_category_share": _finite(self.new_category_share),
            "out_of_range_share": _finite(self.out_of_range_share),
        }


@dataclass(frozen=True)
class Distribution:
    """Reference and current shares per bin (numeric) or per category, for the plot.

    >>> import pandas as pd
    >>> from mlotel.drift import report
    >>> ref = pd.DataFrame({"color": ["red", "blue"] * 50})
    >>> cur = pd.DataFrame({"color": ["red"] * 99 + ["green"]})
    >>> shares = report(ref, cur).column("color").distribution
    >>> shares.kind, shares.labels, shares.reference, shares.current
    ('categories', ('red', 'blue', 'green'), (0.5, 0.5, 0.0), (0.99, 0.0, 0.01))
    """

    kind: Literal["histogram", "categories"]
    labels: tuple[str, ...]
    reference: tuple[float, ...]
    current: tuple[float, ...]
    edges: tuple[float, ...] | None = None
    """Bin edges of a histogram (``len(labels) + 1`` values); ``None`` for categories."""
    scale: Literal["linear", "log"] = "linear"
    """How a histogram's edges are spaced: equal widths, or equal on a log scale."""

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready data (non-finite numbers become None)."""
        return {
            "kind": self.kind,
            "labels": list(self.labels),
            "edges": None if self.edges is None else [_finite(e) for e in self.edges],
            "scale": self.scale,
            "reference": [_finite(v) for v in self.reference],
            "current": [_finite(v) for v in self.current],
        }


@dataclass(frozen=True)
class ColumnDrift:
    """Drift result of one column.

    ``status`` says whether the column was tested (``"tested"``) or why not; ``message``
    explains any other status in words.

    >>> import pandas as pd
    >>> from mlotel.drift import report
    >>> ref = pd.DataFrame({"age": [float(i % 40) for i in range(400)]})
    >>> age = report(ref, ref + 15.0).column("age")
    >>> age.status, age.column_type, age.stattest, age.drift_detected
    ('tested', 'numerical', 'ks', True)
    """

    name: str
    column_type: ColumnKind
    status: ColumnStatus
    message: str | None = None
    stattest: str | None = None
    """Name of the test, as Evidently names it (``ks``, ``wasserstein``, ``chisquare``...)."""
    stattest_display_name: str | None = None
    score: float | None = None
    """p-value (ks, chisquare, z) or distance (the others)."""
    threshold: float | None = None
    drift_detected: bool = False
    reference_size: int = 0
    """Reference values the test used (missing and infinite values dropped)."""
    current_size: int = 0
    quality: ColumnQuality | None = None
    distribution: Distribution | None = None
    score_error_bound: float | None = None
    """Largest possible |score - exact score| when the score came from summaries of data
    read in passes (normalised Wasserstein); None when the score is exact."""
    drift_rule: str | None = None
    """How the score decides: ``p_value_at_most`` (drift when score <= threshold),
    ``p_value_below`` (score < threshold) or ``score_at_least`` (score >= threshold)."""

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready data of the column (its name is the key in the report's ``columns``)."""
        return {
            "column_type": self.column_type,
            "status": self.status,
            "message": self.message,
            "stattest": self.stattest,
            "stattest_display_name": self.stattest_display_name,
            "score": _finite(self.score),
            "score_error_bound": _finite(self.score_error_bound),
            "drift_rule": self.drift_rule,
            "threshold": self.threshold,
            "drift_detected": self.drift_detected,
            "reference_size": self.reference_size,
            "current_size": self.current_size,
            "data_quality": None if self.quality is None else self.quality.to_dict(),
            "distribution": None if self.distribution is None else self.distribution.to_dict(),
        }


@dataclass(frozen=True)
class DriftReport:
    """Result of :func:`report`: per-column drift and data quality, and the dataset verdict.

    >>> import pandas as pd
    >>> from mlotel.drift import report
    >>> ref = pd.DataFrame({"a": [float(i % 40) for i in range(400)], "b": [1.0, 2.0] * 200})
    >>> result = report(ref, ref.assign(a=ref["a"] + 15.0))
    >>> result.number_of_tested_columns, result.number_of_drifted_columns, result.dataset_drift
    (2, 1, True)
    """

    columns: tuple[ColumnDrift, ...]
    reference_rows: int
    current_rows: int
    drift_share_threshold: float = 0.5
    method: str = "evidently"
    """The decision used: ``evidently`` (Evidently 0.7's per-column tests, dataset drift
    at ``drift_share``) or ``calibrated`` (mlotel's tests with a stated false-alarm rate
    over all columns; the dataset drifts when any column does)."""
    false_alarm_rate: float | None = None
    """The calibrated decision's false-alarm rate (``None`` for ``evidently``)."""
    number_of_tested_columns: int = 0
    number_of_drifted_columns: int = 0
    drift_share: float | None = None
    """Drifted / tested columns; ``None`` when no column could be tested."""
    dataset_drift: bool = False
    """``evidently``: True when ``drift_share >= drift_share_threshold``; ``calibrated``:
    True when any column drifted."""
    mlotel_version: str = field(default="")
    column_mapping: ColumnMapping = field(default_factory=ColumnMapping)
    """The roles and type overrides the report used."""
    target_drift: ColumnDrift | None = None
    """Drift of the target column (not counted in the drift share); None if not named."""
    prediction_drift: ColumnDrift | None = None
    """Drift of the prediction column (not counted in the drift share)."""
    score_drift: ColumnDrift | None = None
    """Drift of the score column (not counted in the drift share)."""
    performance: Performance | None = None
    """Model performance, reference vs current (target and prediction named)."""

    def column(self, name: str) -> ColumnDrift:
        """The result of column ``name`` (KeyError if the report has no such column)."""
        for column in self.columns:
            if column.name == name:
                return column
        raise KeyError(name)

    def to_dict(self) -> dict[str, Any]:
        """The report as plain JSON-ready data (keys documented in docs/drift-report.md)."""
        return {
            "schema": REPORT_SCHEMA,
            "mlotel_version": self.mlotel_version,
            "method": self.method,
            "false_alarm_rate": self.false_alarm_rate,
            "reference_rows": self.reference_rows,
            "current_rows": self.current_rows,
            "dataset_drift": self.dataset_drift,
            "drift_share": _finite(self.drift_share),
            "drift_share_threshold": self.drift_share_threshold,
            "number_of_columns": len(self.columns),
            "number_of_tested_columns": self.number_of_tested_columns,
            "number_of_drifted_columns": self.number_of_drifted_columns,
            "columns": {column.name: column.to_dict() for column in self.columns},
            "column_mapping": self.column_mapping.to_dict(),
            "target_drift": _role_dict(self.target_drift),
            "prediction_drift": _role_dict(self.prediction_drift),
            "score_drift": _role_dict(self.score_drift),
            "performance": None if self.performance is None else self.performance.to_dict(),
        }

    def to_json(self, indent: int | None = 2) -> str:
        """The report as JSON text (no NaN or Infinity: non-finite numbers are null)."""
        return json.dumps(self.to_dict(), indent=indent, allow_nan=False)

    def to_html(self) -> str:
        """The report as one self-contained HTML page (no scripts, no network), rendered
        from :meth:`to_dict`: the page shows what the JSON holds."""
        from ._html import render_html

        return render_html(self.to_dict())

    def save_json(self, path: str | Path) -> Path:
        """Write :meth:`to_json` to ``path`` (atomically); returns the path."""
        return _write_atomically(Path(path), self.to_json() + "\n")

    def save_html(self, path: str | Path) -> Path:
        """Write :meth:`to_html` to ``path`` (atomically); returns the path."""
        return _write_atomically(Path(path), self.to_html())


def _role_dict(column: ColumnDrift | None) -> dict[str, Any] | None:
    return None if column is None else {"column": column.name, **column.to_dict()}


def _write_atomically(target: Path, text: str) -> Path:
    # A temp file renamed into place: an interrupted write leaves no half-written report.
    tmp = target.with_name(f".{target.name}.tmp")
    try:
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
    return target


def _finite(value: float | None) -> float | None:
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


# --- column typing -----------------------------------------------------------------------


def infer_column_type(series: Any) -> ColumnKind:
    """The column type Evidently 0.7 infers for a pandas Series.

    Floats are numerical; integers are categorical with at most 10 distinct values, else
    numerical; bool and ``category`` are categorical; strings are categorical unless more
    than half the non-missing values are distinct (then text); datetimes are datetime.

    >>> import pandas as pd
    >>> [infer_column_type(pd.Series(v)) for v in ([1.5, 2.0], [1, 2, 3], list(range(11)),
    ...                                             ["a", "a", "a", "b"], ["a", "b", "c"])]
    ['numerical', 'categorical', 'numerical', 'categorical', 'text']
    """
    dtype = series.dtype.name
    if dtype.startswith("float"):
        return "numerical"
    if dtype.startswith(("int", "uint", "Int", "UInt")):
        return "categorical" if series.nunique() <= INTEGER_CATEGORY_LIMIT else "numerical"
    if dtype in ("bool", "boolean", "category"):
        return "categorical"
    if dtype.startswith("datetime"):
        return "datetime"
    if dtype in ("object", "string", "str"):
        present = series.dropna()
        if present.empty:
            return "unknown"
        if isinstance(present.iloc[0], str) and isinstance(present.iloc[-1], str):
            return "text" if present.nunique() > present.size * 0.5 else "categorical"
        return "unknown"
    return "unknown"


# --- the report --------------------------------------------------------------------------


def _is_numeric(series: Any) -> bool:
    import pandas as pd

    return bool(pd.api.types.is_numeric_dtype(series)) and not pd.api.types.is_bool_dtype(series)


def _numeric_values(series: Any) -> tuple[np.ndarray[Any, Any], int, int]:
    """(finite values as float64, missing count, ±inf count) of a numeric Series."""
    values = series.to_numpy(dtype=np.float64, na_value=np.nan)
    finite_mask = np.isfinite(values)
    missing = int(np.count_nonzero(np.isnan(values)))
    non_finite = values.size - missing - int(np.count_nonzero(finite_mask))
    if finite_mask.all():
        return values, 0, 0
    return values[finite_mask], missing, non_finite


def _category_values(series: Any) -> tuple[np.ndarray[Any, Any], int]:
    """(non-missing values, missing count) of a categorical Series."""
    mask = series.isna().to_numpy()
    values = series.to_numpy(dtype=object)
    missing = int(np.count_nonzero(mask))
    return (values[~mask] if missing else values), missing


def _share(part: int, whole: int) -> float | None:
    return part / whole if whole else None


def _numeric_side(
    sorted_values: np.ndarray[Any, Any], rows: int, missing: int, inf: int
) -> SideQuality:
    """Quality of one side of a numeric column from its sorted finite values."""
    if sorted_values.size == 0:
        return SideQuality(rows, missing, _share(missing, rows), inf)
    low, high = float(sorted_values[0]), float(sorted_values[-1])
    return SideQuality(
        rows=rows,
        missing=missing,
        missing_share=_share(missing, rows),
        non_finite=inf,
        min=low,
        max=high,
        mean=float(np.mean(sorted_values)),
        constant=low == high,
        std=float(np.std(sorted_values, ddof=1)) if sorted_values.size > 1 else None,
        quantiles=_quantile_dict(np.quantile(sorted_values, QUANTILES).tolist()),
    )


def _quantile_dict(values: Sequence[float]) -> dict[str, float]:
    return {str(q): float(v) for q, v in zip(QUANTILES, values)}


def _categorical_side(
    counts: np.ndarray[Any, Any] | None,
    rows: int,
    missing: int,
    values: np.ndarray[Any, Any] | None = None,
) -> SideQuality:
    distinct = 0 if counts is None else int(np.count_nonzero(counts))
    top = top_share = None
    if counts is not None and values is not None and distinct:
        names = np.array([str(v) for v in values.tolist()], dtype=object)
        tied = np.flatnonzero(counts == counts.max()).tolist()
        first = min(tied, key=lambda i: names[i])  # most frequent; ties: the first label
        top, top_share = str(names[first]), float(counts[first]) / float(counts.sum())
    return SideQuality(
        rows=rows,
        missing=missing,
        missing_share=_share(missing, rows),
        distinct=distinct,
        constant=distinct == 1,
        top=top,
        top_share=top_share,
    )


LOG_SCALE_RATIO = 1000.0
"""Positive columns whose max / min is at least this are plotted on log-spaced bins."""


def plot_edges(
    low: float, high: float, count: int
) -> tuple[np.ndarray[Any, Any], Literal["linear", "log"]]:
    """(bin edges, ``linear`` or ``log``) of a numeric column's plot over both samples:
    5 to 30 bins (log2 of the values + 1), equal-width, or equal on a log scale for a
    positive column spanning three decades or more (incomes, counts, durations), where
    equal-width bins would put nearly everything in the first bin.

    >>> plot_edges(1.0, 8.0, 64)[0].tolist(), plot_edges(1.0, 1e4, 30)[1]
    ([1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0], 'log')
    """
    n_bins = int(min(30, max(5, math.ceil(math.log2(count)) + 1)))
    if low == high:
        return np.array([low - 0.5, high + 0.5]), "linear"
    if low > 0 and high / low >= LOG_SCALE_RATIO:
        return np.geomspace(low, high, n_bins + 1), "log"
    return np.linspace(low, high, n_bins + 1), "linear"


def _histogram(sample: _stats.ColumnSample) -> Distribution:
    ref, cur = sample.reference_sorted, sample.current_sorted
    low = min(float(ref[0]), float(cur[0]))
    high = max(float(ref[-1]), float(cur[-1]))
    edges, scale = plot_edges(low, high, ref.size + cur.size)

    def shares(values: np.ndarray[Any, Any]) -> tuple[float, ...]:
        cuts = np.searchsorted(values, edges, side="left")
        cuts[-1] = values.size  # the last bin is closed on the right
        return tuple((np.diff(cuts) / values.size).tolist())

    labels = tuple(f"{a:.4g} to {b:.4g}" for a, b in itertools.pairwise(edges.tolist()))
    return Distribution(
        "histogram", labels, shares(ref), shares(cur), tuple(edges.tolist()), scale
    )


def _categories(sample: _stats.ColumnSample | SummarySample) -> Distribution:
    values, ref_counts, cur_counts = sample.category_counts
    n_ref, n_cur = sample.n_reference, sample.n_current
    # Most frequent first, ties by label: the order never depends on the rows' order.
    names = np.array([str(v) for v in values.tolist()], dtype=object)
    order = np.lexsort((names, -(ref_counts / n_ref + cur_counts / n_cur)))
    top, rest = order[:TOP_CATEGORIES], order[TOP_CATEGORIES:]
    labels = names[top].tolist()
    ref_shares = (ref_counts[top] / n_ref).tolist()
    cur_shares = (cur_counts[top] / n_cur).tolist()
    if rest.size:
        labels.append(f"other ({rest.size})")
        ref_shares.append(float(ref_counts[rest].sum() / n_ref))
        cur_shares.append(float(cur_counts[rest].sum() / n_cur))
    return Distribution("categories", tuple(labels), tuple(ref_shares), tuple(cur_shares))


@dataclass
class _Options:
    stattests: Mapping[str, str]
    thresholds: Mapping[str, float]
    numerical: frozenset[str]
    categorical: frozenset[str]
    plan: DecisionPlan | None = None  # the calibrated decision, when method="calibrated"
    effect_floor: float = 0.03


def _calibrated_test(
    name: str,
    kind: ColumnKind,
    sample: _stats.ColumnSample | SummarySample,
    options: _Options,
    quality: ColumnQuality,
    distribution: Distribution,
) -> ColumnDrift:
    """mlotel's calibrated decision on the whole samples (one window, no lags)."""
    assert options.plan is not None
    n_ref, n_cur = sample.n_reference, sample.n_current
    if kind != "numerical":
        _, ref_counts, cur_counts = sample.category_counts
    elif isinstance(sample, SummarySample):
        found = _grid_bins(sample, auto_bins(n_ref))
        if found is None:
            return ColumnDrift(
                name,
                kind,
                "test_failed",
                f"the calibrated decision needs the fine histogram of column '{name}', which "
                "this dataset pass did not build",
                stattest="calibrated",
                reference_size=n_ref,
                current_size=n_cur,
                quality=quality,
                distribution=distribution,
            )
        ref_counts, cur_counts = found
    else:
        edges = equal_frequency_edges(sample.reference_sorted, auto_bins(n_ref))
        k = len(edges) + 1
        ref_counts = np.bincount(np.searchsorted(edges, sample.reference_sorted, "right"), None, k)
        cur_counts = np.bincount(np.searchsorted(edges, sample.current_sorted, "right"), None, k)
    column = ReferenceColumn(name, ref_counts.astype(np.float64), kind == "numerical")
    decision = column_decision(
        column, [(1, cur_counts.astype(np.float64))], options.plan, options.effect_floor, 1
    )
    return ColumnDrift(
        name,
        kind,
        "tested",
        None,
        stattest="calibrated",
        stattest_display_name="mlotel calibrated tests (adjusted p_value)",
        drift_rule="p_value_at_most",
        score=decision.p_value,
        threshold=options.plan.false_alarm_rate,
        drift_detected=decision.detected,
        reference_size=n_ref,
        current_size=n_cur,
        quality=quality,
        distribution=distribution,
    )


def _grid_bins(sample: SummarySample, bins: int) -> tuple[np.ndarray, np.ndarray] | None:
    """Bin counts of both sides on bins of about equal reference frequency, cut from the
    fine histogram's buckets (a dataset has no sorted values to cut exactly)."""
    ref_hist, cur_hist = sample.ref_hist, sample.cur_hist
    if ref_hist is None or cur_hist is None:
        return None
    if ref_hist.grid_counts is None or cur_hist.grid_counts is None:
        return None
    if len(ref_hist.grid_counts) != len(cur_hist.grid_counts):
        return None
    ref = np.concatenate([[ref_hist.below], ref_hist.grid_counts, [ref_hist.above]])
    cur = np.concatenate([[cur_hist.below], cur_hist.grid_counts, [cur_hist.above]])
    cumulative = np.cumsum(ref)
    cuts = np.searchsorted(cumulative, cumulative[-1] * np.arange(1, bins) / bins, "left") + 1
    starts = np.unique(np.concatenate([[0], cuts[(cuts > 0) & (cuts < len(ref))]]))
    return np.add.reduceat(ref, starts), np.add.reduceat(cur, starts)


def _absent(name: str, kind: ColumnKind, in_reference: bool) -> ColumnDrift:
    where, other = ("reference", "current") if in_reference else ("current", "reference")
    return ColumnDrift(
        name,
        kind,
        "missing_in_current" if in_reference else "missing_in_reference",
        f"column '{name}' is in the {where} data but not in the {other} data",
    )


def _untested(name: str, kind: ColumnKind, rows: int, missing: int) -> ColumnDrift:
    """A column of a type the report does not test (text, datetime, unknown)."""
    if missing == rows:
        return ColumnDrift(
            name,
            kind,
            "empty_reference",
            f"column '{name}' has no values in the reference data (all missing or 0 rows)",
            quality=ColumnQuality(SideQuality(rows, missing, _share(missing, rows)), None),
        )
    return ColumnDrift(
        name,
        kind,
        "unsupported_type",
        f"column '{name}' is a {kind} column; the report tests numerical and categorical "
        "columns (name it in categorical=[...] or numerical=[...] to test it as one)",
    )


def _empty(
    name: str,
    kind: ColumnKind,
    side: Literal["reference", "current"],
    quality: ColumnQuality,
    reference_size: int = 0,
) -> ColumnDrift:
    what = (
        "no finite values", "(all missing, infinite, or 0 rows)"
    ) if kind == "numerical" else ("no values", "(all missing or 0 rows)")
    return ColumnDrift(
        name,
        kind,
        "empty_reference" if side == "reference" else "empty_current",
        f"column '{name}' has {what[0]} in the {side} data {what[1]}",
        reference_size=reference_size,
        quality=quality,
    )


def _not_numbers(name: str) -> ColumnDrift:
    return ColumnDrift(
        name,
        "numerical",
        "type_mismatch",
        f"column '{name}' was named numerical but its reference values are not numbers",
    )


def _mixed(name: str, example: Any, ref_side: SideQuality, rows: int, missing: int) -> ColumnDrift:
    return ColumnDrift(
        name,
        "numerical",
        "type_mismatch",
        f"column '{name}' is numerical in the reference data but holds "
        f"non-numeric values in the current data (e.g. {example!r})",
        quality=ColumnQuality(ref_side, SideQuality(rows, missing, _share(missing, rows))),
    )


def _column(
    name: str, ref_series: Any, cur_series: Any, options: _Options, stats: Any
) -> ColumnDrift:
    in_ref, in_cur = ref_series is not None, cur_series is not None
    if not in_cur or not in_ref:
        return _absent(name, _kind(name, ref_series if in_ref else cur_series, options), in_ref)
    kind = _kind(name, ref_series, options)
    if kind == "numerical":
        return _numeric_column(name, ref_series, cur_series, options, stats)
    if kind == "categorical":
        return _categorical_column(name, ref_series, cur_series, options, stats)
    return _untested(name, kind, len(ref_series), int(ref_series.isna().sum()))


def _kind(name: str, series: Any, options: _Options) -> ColumnKind:
    if name in options.numerical:
        return "numerical"
    if name in options.categorical:
        return "categorical"
    return infer_column_type(series)


def _run_test(
    name: str,
    kind: ColumnKind,
    sample: _stats.ColumnSample | SummarySample,
    options: _Options,
    stats: Any,
    quality: ColumnQuality,
    distribution: Distribution,
) -> ColumnDrift:
    requested = options.stattests.get(name)
    n_ref, n_cur = sample.n_reference, sample.n_current
    if requested is None and options.plan is not None:
        return _calibrated_test(name, kind, sample, options, quality, distribution)
    if requested is None:
        test = stats.default_stattest(n_ref, sample.n_unique_over(stats.FEW_VALUES), kind)
    else:
        test = stats.STAT_TESTS[requested]
        if kind not in test.column_types:
            return ColumnDrift(
                name,
                kind,
                "test_not_applicable",
                f"test '{requested}' does not apply to {kind} column '{name}'",
                stattest=requested,
                reference_size=n_ref,
                current_size=n_cur,
                quality=quality,
                distribution=distribution,
            )
    threshold = float(options.thresholds.get(name, test.default_threshold))
    try:
        score = test.score(sample)
    except (ValueError, ArithmeticError, TypeError) as exc:
        return ColumnDrift(
            name,
            kind,
            "test_failed",
            f"test '{test.name}' failed on column '{name}': {exc}",
            stattest=test.name,
            stattest_display_name=test.display_name,
            threshold=threshold,
            reference_size=n_ref,
            current_size=n_cur,
            quality=quality,
            distribution=distribution,
        )
    return ColumnDrift(
        name,
        kind,
        "tested",
        None,
        stattest=test.name,
        stattest_display_name=test.display_name,
        score=score,
        threshold=threshold,
        drift_detected=test.drifted(score, threshold),
        reference_size=n_ref,
        current_size=n_cur,
        quality=quality,
        distribution=distribution,
        score_error_bound=getattr(sample, "score_error_bound", None),
        drift_rule=test.rule,
    )


def _numeric_column(
    name: str, ref_series: Any, cur_series: Any, options: _Options, stats: Any
) -> ColumnDrift:
    if not _is_numeric(ref_series):
        try:  # a column named numerical=[...] whose values are numbers written as text
            import pandas as pd

            ref_series = pd.to_numeric(ref_series)
        except (ValueError, TypeError):
            return _not_numbers(name)
    ref_values, ref_missing, ref_inf = _numeric_values(ref_series)
    ref_rows, cur_rows = len(ref_series), len(cur_series)
    ref_sorted = np.sort(ref_values)
    ref_side = _numeric_side(ref_sorted, ref_rows, ref_missing, ref_inf)
    if ref_values.size == 0:
        return _empty(name, "numerical", "reference", ColumnQuality(ref_side, None))
    if not _is_numeric(cur_series):
        cur_missing = int(cur_series.isna().sum())
        if cur_missing < cur_rows:
            return _mixed(name, cur_series.dropna().iloc[0], ref_side, cur_rows, cur_missing)
        cur_series = cur_series.astype(np.float64)  # all missing (or 0 rows): no values
    cur_values, cur_missing, cur_inf = _numeric_values(cur_series)
    sample = stats.ColumnSample(ref_values, cur_values, "numerical")
    sample.__dict__["reference_sorted"] = ref_sorted  # share the sort already done
    cur_side = _numeric_side(sample.current_sorted, cur_rows, cur_missing, cur_inf)
    if cur_values.size == 0:
        return _empty(
            name, "numerical", "current", ColumnQuality(ref_side, cur_side), ref_values.size
        )
    low, high = ref_sorted[0], ref_sorted[-1]
    cur_sorted = sample.current_sorted
    inside = np.searchsorted(cur_sorted, high, side="right") - np.searchsorted(
        cur_sorted, low, side="left"
    )
    quality = ColumnQuality(
        ref_side, cur_side, out_of_range_share=1.0 - float(inside) / cur_values.size
    )
    return _run_test(name, "numerical", sample, options, stats, quality, _histogram(sample))


def _categorical_column(
    name: str, ref_series: Any, cur_series: Any, options: _Options, stats: Any
) -> ColumnDrift:
    ref_values, ref_missing = _category_values(ref_series)
    cur_values, cur_missing = _category_values(cur_series)
    ref_rows, cur_rows = len(ref_series), len(cur_series)
    if ref_values.size == 0:
        return _empty(name, "categorical", "reference", ColumnQuality(
            _categorical_side(None, ref_rows, ref_missing),
            _categorical_side(None, cur_rows, cur_missing),
        ))
    sample = stats.ColumnSample(ref_values, cur_values, "categorical")
    return _categorical_test(
        name, sample, ref_rows, ref_missing, cur_rows, cur_missing, options, stats
    )


def _categorical_test(
    name: str,
    sample: _stats.ColumnSample | SummarySample,
    ref_rows: int,
    ref_missing: int,
    cur_rows: int,
    cur_missing: int,
    options: _Options,
    stats: Any,
) -> ColumnDrift:
    """A categorical column's quality (new categories) and test, from either sample kind."""
    values, ref_counts, cur_counts = sample.category_counts
    ref_side = _categorical_side(ref_counts, ref_rows, ref_missing, values)
    cur_side = _categorical_side(cur_counts, cur_rows, cur_missing, values)
    if sample.n_current == 0:
        return _empty(
            name, "categorical", "current", ColumnQuality(ref_side, cur_side), sample.n_reference
        )
    new_mask = (ref_counts == 0) & (cur_counts > 0)
    new_values = values[new_mask]
    new_names = np.array([str(v) for v in new_values.tolist()], dtype=object)
    new_order = np.lexsort((new_names, -cur_counts[new_mask]))[:TOP_CATEGORIES]
    quality = ColumnQuality(
        ref_side,
        cur_side,
        new_categories=tuple(str(v) for v in new_values[new_order].tolist()),
        new_category_count=int(new_values.size),
        new_category_share=float(cur_counts[new_mask].sum()) / sample.n_current,
    )
    return _run_test(name, "categorical", sample, options, stats, quality, _categories(sample))


# --- reports of datasets: the same columns from mergeable summaries -----------------------


def _sketch_kind(name: str, sketch: ColumnSketch, options: _Options) -> ColumnKind:
    """The column type Evidently 0.7 would infer for the column pandas would read."""
    if name in options.numerical:
        return "numerical"
    if name in options.categorical:
        return "categorical"
    if sketch.kind == "float":
        return "numerical"
    if sketch.kind == "int":
        distinct = sketch.distinct
        small = distinct is not None and len(distinct) <= INTEGER_CATEGORY_LIMIT
        return "categorical" if small else "numerical"
    if sketch.kind == "bool":  # with missing values pandas reads objects: "unknown"
        return "categorical" if sketch.missing == 0 else "unknown"
    if sketch.kind == "string":
        present = sketch.rows - sketch.missing
        if present == 0:
            return "unknown"
        tally = sketch.categories
        uniques = CATEGORY_CAP + 1 if tally is None else len(tally)
        return "text" if uniques > present * 0.5 else "categorical"
    if sketch.kind == "datetime":
        return "datetime"
    return "unknown"


def _summary_side(sketch: ColumnSketch, quantiles: Sequence[float] | None = None) -> SideQuality:
    """Quality of one side of a numeric column from its summaries: the in-memory
    computation when the values were kept, else the merged moments and the exact
    ``quantiles`` of the selection pass."""
    if sketch.raw is not None or not sketch.count:
        values = sketch.raw if sketch.raw is not None else np.empty(0)
        return _numeric_side(values, sketch.rows, sketch.missing, sketch.non_finite)
    return SideQuality(
        rows=sketch.rows,
        missing=sketch.missing,
        missing_share=_share(sketch.missing, sketch.rows),
        non_finite=sketch.non_finite,
        min=sketch.min,
        max=sketch.max,
        mean=sketch.mean,
        constant=sketch.min == sketch.max,
        std=math.sqrt(max(sketch.m2, 0.0) / (sketch.count - 1)) if sketch.count > 1 else None,
        quantiles=None if quantiles is None else _quantile_dict(quantiles),
    )


def _summary_column(
    name: str,
    ref: ColumnSketch | None,
    cur: ColumnSketch | None,
    options: _Options,
    stats: Any,
    plans: Mapping[str, ColumnPlan],
    histograms: tuple[Mapping[str, Any], Mapping[str, Any]],
    quantiles: tuple[Sequence[float] | None, Sequence[float] | None] = (None, None),
) -> ColumnDrift:
    if ref is None or cur is None:
        present = ref if ref is not None else cur
        assert present is not None
        return _absent(name, _sketch_kind(name, present, options), ref is not None)
    kind = _sketch_kind(name, ref, options)
    if kind not in ("numerical", "categorical"):
        return _untested(name, kind, ref.rows, ref.missing)
    if kind == "categorical":
        return _summary_categorical(name, ref, cur, options, stats)
    if not ref.numeric or ref.not_numeric:
        return _not_numbers(name)
    ref_side = _summary_side(ref, quantiles[0])
    if not ref.count:
        return _empty(name, "numerical", "reference", ColumnQuality(ref_side, None))
    if (not cur.numeric or cur.not_numeric) and cur.missing < cur.rows:
        example = cur.example
        if example is None:
            keys = _canonical(cur.category_tally() or {})
            example = keys[0] if keys else None
        return _mixed(name, example, ref_side, cur.rows, cur.missing)
    cur_side = _summary_side(cur, quantiles[1])
    if not cur.count:
        return _empty(name, "numerical", "current", ColumnQuality(ref_side, cur_side), ref.count)
    if ref.raw is not None and cur.raw is not None:
        # Small data: the values themselves, and the in-memory report's exact numbers.
        sample = stats.ColumnSample(ref.raw, cur.raw, "numerical")
        sample.__dict__["reference_sorted"] = ref.raw
        sample.__dict__["current_sorted"] = cur.raw
        inside = np.searchsorted(cur.raw, ref.max, side="right") - np.searchsorted(
            cur.raw, ref.min, side="left"
        )
        distribution = _histogram(sample)
    else:
        plan = plans[name]
        ref_hist, cur_hist = histograms[0][name], histograms[1][name]
        sample = SummarySample("numerical", ref, cur, plan, ref_hist, cur_hist)
        inside = cur.count - cur_hist.below - cur_hist.above
        assert plan.plot_edges is not None
        edges = plan.plot_edges
        labels = tuple(f"{a:.4g} to {b:.4g}" for a, b in itertools.pairwise(edges))
        distribution = Distribution(
            "histogram",
            labels,
            tuple((ref_hist.plot_counts / ref.count).tolist()),
            tuple((cur_hist.plot_counts / cur.count).tolist()),
            edges,
            plot_edges(min(ref.min, cur.min), max(ref.max, cur.max), ref.count + cur.count)[1],
        )
    quality = ColumnQuality(
        ref_side, cur_side, out_of_range_share=1.0 - float(inside) / cur.count
    )
    return _run_test(name, "numerical", sample, options, stats, quality, distribution)


def _summary_categorical(
    name: str, ref: ColumnSketch, cur: ColumnSketch, options: _Options, stats: Any
) -> ColumnDrift:
    ref_tally, cur_tally = ref.category_tally(), cur.category_tally()
    present_ref = ref.rows - ref.missing - ref.non_finite
    if (ref_tally is not None and not ref_tally) or present_ref == 0:
        return _empty(name, "categorical", "reference", ColumnQuality(
            _categorical_side(None, ref.rows, ref.missing),
            _categorical_side(None, cur.rows, cur.missing),
        ))
    if ref_tally is None or cur_tally is None:
        return ColumnDrift(
            name,
            "categorical",
            "test_failed",
            f"column '{name}' has more than {CATEGORY_CAP:,} distinct values: too many to "
            "count them all in a dataset report",
        )
    sample = SummarySample("categorical", ref, cur)
    return _categorical_test(
        name, sample, ref.rows, ref.missing, cur.rows, cur.missing, options, stats
    )


def _histogram_plan(
    name: str, ref: ColumnSketch, cur: ColumnSketch, options: _Options, stats: Any
) -> ColumnPlan | None:
    """What pass 2 must count for a numeric column too big to keep its values."""
    if (ref.raw is not None and cur.raw is not None) or not ref.count or not cur.count:
        return None
    sample = SummarySample("numerical", ref, cur)
    requested = options.stattests.get(name)
    test = (
        stats.STAT_TESTS[requested]
        if requested is not None
        else stats.default_stattest(ref.count, sample.n_unique_over(stats.FEW_VALUES),
                                    "numerical")
    )
    center, scale, grid = grid_for([ref, cur])
    low, high = min(ref.min, cur.min), max(ref.max, cur.max)
    plot = tuple(plot_edges(low, high, ref.count + cur.count)[0].tolist())
    binned = test.name in ("jensenshannon", "psi", "kl_div")
    sturges = (
        tuple(sturges_edges(low, high, ref.count + cur.count).tolist())
        if binned and sample.reference_unique_over(stats.STURGES_MIN_VALUES)
        > stats.STURGES_MIN_VALUES
        else None
    )
    return ColumnPlan(
        name,
        center=center,
        scale=scale,
        grid=grid,  # counts for the exact quantiles too; sums only for wasserstein
        sums=test.name == "wasserstein",
        plot_edges=plot,
        sturges_edges=sturges,
        ks_points=tuple(np.unique(ref.raw).tolist())
        if test.name == "ks" and ref.raw is not None
        else None,
        reference_range=(ref.min, ref.max),
    )


class ReportJob(Job):
    """A drift report computed in passes over chunks of both datasets (see :class:`Job`).

    The options are :func:`report`'s. Engines call :meth:`next_pass`, summarize every
    chunk of both sides with it (``step.summarize(chunk, "reference")``, ``"current"``),
    :meth:`add` the partials, and finally take :meth:`result`.

    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> ref = [{"x": rng.normal(0, 1, 20_000)} for _ in range(2)]
    >>> cur = [{"x": rng.normal(0.5, 1, 20_000)} for _ in range(3)]
    >>> job = ReportJob()
    >>> while (step := job.next_pass()) is not None:
    ...     job.add(*[step.summarize(c, "reference") for c in ref])
    ...     job.add(*[step.summarize(c, "current") for c in cur])
    >>> column = job.result().column("x")
    >>> column.stattest, column.drift_detected, column.score_error_bound < 1e-3
    ('wasserstein', True, True)
    """

    sides = ("reference", "current")

    def __init__(
        self,
        *,
        columns: Sequence[str] | None = None,
        numerical: Sequence[str] = (),
        categorical: Sequence[str] = (),
        stattests: Mapping[str, str] | None = None,
        thresholds: Mapping[str, float] | None = None,
        drift_share: float = 0.5,
        mapping: ColumnMapping | Mapping[str, Any] | str | Path | None = None,
        target: str | None = None,
        prediction: str | None = None,
        score: str | None = None,
        task: str | None = None,
        positive_label: Any = None,
        method: str = "evidently",
        false_alarm_rate: float = 0.01,
    ) -> None:
        super().__init__()
        self._stats = _load_stats()
        _check_options(self._stats, drift_share, stattests, method, false_alarm_rate)
        self.mapping = _column_mapping(
            mapping, target=target, prediction=prediction, score=score, task=task,
            positive_label=positive_label, numerical=numerical, categorical=categorical,
        )  # fmt: skip
        self.roles = self.mapping.roles()
        self.columns = None if columns is None else [str(c) for c in columns]
        self.drift_share = drift_share
        self.method = method
        self.false_alarm_rate = false_alarm_rate
        self.options = _options(self.mapping, stattests, thresholds)
        self._plans: dict[str, ColumnPlan] = {}
        self._planner = _planner(self.mapping)

    def _listed(self) -> list[str] | None:
        if self.columns is None:
            return None
        return self.columns + [c for c in self.roles.values() if c not in self.columns]

    def _names(self) -> list[str]:
        return self.column_names(
            list(self.merged(1, "reference").columns), list(self.merged(1, "current").columns)
        )

    def column_names(self, reference: Sequence[str], current: Sequence[str]) -> list[str]:
        """The report's columns (checked against the data's) in order; sets the decision."""
        present = [*reference, *(n for n in current if n not in reference)]
        listed = self._listed()
        names = present if listed is None else listed  # columns=[]: no feature columns
        _check_names(names, present, self.columns, self.roles)
        _check_stray(names, self.options)
        self.options.plan = _decision_plan(self.method, self.false_alarm_rate, len(names))
        return names

    def _plan(self, step: int) -> ScanPass | None:
        o = self.options
        if step == 1:
            listed = self._listed()
            return ScanPass(
                1,
                columns=None if listed is None else tuple(listed),
                numerical=o.numerical,
                categorical=o.categorical,
                sides=self.sides,
            )
        if step == 2:
            return self._histograms()
        if step == 3:
            return self._selection()
        return None

    def _histograms(self) -> ScanPass | None:
        """Pass 2: fine histograms of the big numeric columns, the performance counts."""
        o = self.options
        ref, cur = self.merged(1, "reference").columns, self.merged(1, "current").columns
        for name in self._names():
            if name not in ref or name not in cur:
                continue
            if _sketch_kind(name, ref[name], o) != "numerical":
                continue
            if any(not s.numeric or s.not_numeric for s in (ref[name], cur[name])):
                continue  # values that are no numbers: a type_mismatch, nothing to count
            plan = _histogram_plan(name, ref[name], cur[name], o, self._stats)
            if plan is not None:
                self._plans[name] = plan
        performance = None
        if self._planner is not None:
            performance = self._planner.count_plan({"reference": ref, "current": cur})
        if not self._plans and performance is None:
            return None
        return ScanPass(
            2, plans=tuple(self._plans.values()), sides=self.sides, performance=performance
        )

    def _selection(self) -> ScanPass | None:
        """Pass 3: the values of the fine buckets holding the quantiles of big columns,
        and the scores of the ROC AUC buckets where the classes overlap."""
        plans = []
        for name, plan in self._plans.items():
            assert plan.grid is not None
            buckets: set[int] = set()
            for side in self.sides:
                sketch = self.merged(1, side).columns[name]
                if sketch.raw is None:
                    counts = self.merged(2, side).columns[name].grid_counts
                    buckets |= quantile_buckets(QUANTILES, sketch.count, counts, plan)
            plans.append(
                ColumnPlan(name, plan.center, plan.scale, plan.grid,
                           selected=tuple(sorted(buckets)))
            )  # fmt: skip
        performance = None
        if self._planner is not None:
            performance = self._planner.resolve_plan(
                {side: state for side in self.sides
                 if (state := self.merged(2, side).performance) is not None}
            )  # fmt: skip
        if not plans and performance is None:
            return None
        return ScanPass(3, plans=tuple(plans), sides=self.sides, performance=performance)

    def _quantiles(self, name: str, side: str) -> list[float] | None:
        """Exact quantiles of a big numeric column's side, from passes 2 and 3."""
        plan = self._plans.get(name)
        sketch = self.merged(1, side).columns.get(name)
        if plan is None or sketch is None or sketch.raw is not None or not sketch.count:
            return None
        grid = self.merged(2, side).columns[name].grid_counts
        picked = self.merged(3, side).columns.get(name)
        selected = (picked.selected if picked is not None else None) or {}
        return grid_quantiles(QUANTILES, sketch.count, grid, plan, selected)

    def result(self, progress: Callable[[int, int, str], None] | None = None) -> DriftReport:
        """The report (call after :meth:`next_pass` returned None)."""
        if not self.done:
            raise ValueError("the job has passes left: run next_pass() until it returns None")
        ref, cur = self.merged(1, "reference"), self.merged(1, "current")
        histograms = (self.merged(2, "reference").columns, self.merged(2, "current").columns)
        names = self._names()
        results = []
        for done, name in enumerate(names, start=1):
            results.append(
                _summary_column(
                    name,
                    ref.columns.get(name),
                    cur.columns.get(name),
                    self.options,
                    self._stats,
                    self._plans,
                    histograms,
                    (self._quantiles(name, "reference"), self._quantiles(name, "current")),
                )
            )
            if progress is not None:
                progress(done, len(names), name)
        performance = None
        if self._planner is not None:
            performance = self._planner.result(
                {side: self.merged(2, side).performance for side in self.sides},
                {side: self.merged(3, side).performance for side in self.sides},
            )
        return _assemble(
            results, ref.rows, cur.rows, self.drift_share, self.mapping, performance,
            self.method, self.false_alarm_rate,
        )


class _PerformanceJob(Job):
    """The performance section alone, in passes over the role columns (in-memory reports
    compute it this way too, so both paths give the same numbers)."""

    sides = ("reference", "current")

    def __init__(self, mapping: ColumnMapping, planner: PerformancePlanner) -> None:
        super().__init__()
        self.mapping, self.planner = mapping, planner

    def _plan(self, step: int) -> ScanPass | None:
        if step == 1:
            return ScanPass(
                1,
                columns=tuple(self.mapping.roles().values()),
                numerical=frozenset(self.mapping.numerical),
                categorical=frozenset(self.mapping.categorical),
                sides=self.sides,
            )
        if step == 2:
            plan = self.planner.count_plan({s: self.merged(1, s).columns for s in self.sides})
        elif step == 3:
            plan = self.planner.resolve_plan(
                {s: p for s in self.sides if (p := self.merged(2, s).performance) is not None}
            )
        else:
            return None
        return None if plan is None else ScanPass(step, sides=self.sides, performance=plan)

    def result(self) -> Performance:
        counted: dict[str, PerformanceState | None] = {}
        resolved: dict[str, PerformanceState | None] = {}
        for side in self.sides:
            counted[side] = self.merged(2, side).performance
            resolved[side] = self.merged(3, side).performance
        return self.planner.result(counted, resolved)


def _planner(mapping: ColumnMapping) -> PerformancePlanner | None:
    if mapping.target is None or mapping.prediction is None:
        return None
    return PerformancePlanner(
        mapping.target, mapping.prediction, mapping.score, mapping.task, mapping.positive_label
    )


def _performance_in_memory(
    reference: Any, current: Any, mapping: ColumnMapping
) -> Performance | None:
    planner = _planner(mapping)
    if planner is None:
        return None
    import pyarrow as pa

    roles = list(mapping.roles().values())
    sources = {
        side: frame[[c for c in roles if c in frame.columns]]
        for side, frame in (("reference", reference), ("current", current))
    }
    job = _PerformanceJob(mapping, planner)
    try:
        run_job(job, sources)
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError) as exc:
        return Performance(
            mapping.task or "classification",
            planner.target,
            planner.prediction,
            planner.score,
            message=f"the target, prediction or score column cannot be read: {exc}",
        )
    return job.result()


def _column_mapping(
    mapping: ColumnMapping | Mapping[str, Any] | str | Path | None,
    *,
    target: Any,
    prediction: Any,
    score: Any,
    task: str | None,
    positive_label: Any,
    numerical: Sequence[str],
    categorical: Sequence[str],
) -> ColumnMapping:
    """The mapping given (object, dict or file) with the keyword options on top."""
    if mapping is None:
        base = ColumnMapping()
    elif isinstance(mapping, ColumnMapping):
        base = mapping
    elif isinstance(mapping, (str, Path)):
        base = ColumnMapping.load(mapping)
    elif isinstance(mapping, Mapping):
        base = ColumnMapping.from_dict(mapping)
    else:
        raise TypeError(
            "mapping must be a ColumnMapping, a dict or the path of a JSON/YAML file, got "
            f"{type(mapping).__name__}"
        )
    given = ColumnMapping(
        target=None if target is None else str(target),
        prediction=None if prediction is None else str(prediction),
        score=None if score is None else str(score),
        task=task,
        positive_label=positive_label,
        numerical=tuple(str(c) for c in numerical),
        categorical=tuple(str(c) for c in categorical),
    )
    return base.merged(given)


def _options(
    mapping: ColumnMapping,
    stattests: Mapping[str, str] | None,
    thresholds: Mapping[str, float] | None,
) -> _Options:
    return _Options(
        stattests=dict(stattests or {}),
        thresholds=dict(thresholds or {}),
        numerical=frozenset(mapping.numerical),
        categorical=frozenset(mapping.categorical),
    )


def _check_options(
    stats: Any,
    drift_share: float,
    stattests: Mapping[str, str] | None,
    method: str = "evidently",
    false_alarm_rate: float = 0.01,
) -> None:
    if not 0.0 < drift_share <= 1.0:
        raise ValueError(f"drift_share must be in (0, 1], got {drift_share!r}")
    if method not in REPORT_METHODS:
        raise ValueError(f"method must be one of {', '.join(REPORT_METHODS)}, got {method!r}")
    if not 0.0 < false_alarm_rate < 1.0:
        raise ValueError(f"false_alarm_rate must be in (0, 1), got {false_alarm_rate!r}")
    unknown = sorted({t for t in (stattests or {}).values() if t not in stats.STAT_TESTS})
    if unknown:
        raise ValueError(
            f"unknown drift test(s) {unknown}; available: {sorted(stats.STAT_TESTS)}"
        )


def _check_names(
    names: Sequence[str],
    present: Sequence[str],
    listed: Sequence[str] | None,
    roles: Mapping[str, str],
) -> None:
    """``columns=`` and the roles must name columns of the data."""
    found = set(present)
    if listed is not None:
        absent = [c for c in listed if c not in found]
        if absent:
            raise ValueError(f"columns {absent} are in neither the reference nor current data")
    for role, column in roles.items():
        if column not in found:
            raise ValueError(
                f"{role} names column {column!r}, which is in neither the reference nor "
                "current data"
            )


def _check_stray(names: Sequence[str], options: _Options) -> None:
    # A per-column option naming no column is a typo: say so rather than ignore it.
    for option, given in (
        ("stattests", options.stattests),
        ("thresholds", options.thresholds),
        ("numerical", options.numerical),
        ("categorical", options.categorical),
    ):
        stray = sorted(str(c) for c in (given or ()) if str(c) not in names)
        if stray:
            raise ValueError(f"{option} names column(s) {stray} that are not in the data")


def _decision_plan(method: str, false_alarm_rate: float, columns: int) -> DecisionPlan | None:
    """The calibrated decision's plan (Bonferroni over every column of the report)."""
    if method != "calibrated":
        return None
    return DecisionPlan(false_alarm_rate, columns, (1,), multivariate=False)


def _assemble(
    results: Sequence[ColumnDrift],
    reference_rows: int,
    current_rows: int,
    drift_share: float,
    mapping: ColumnMapping,
    performance: Performance | None,
    method: str = "evidently",
    false_alarm_rate: float = 0.01,
) -> DriftReport:
    roles = mapping.roles()
    by_name = {c.name: c for c in results}
    features = [c for c in results if c.name not in roles.values()]
    tested = [c for c in features if c.status == "tested"]
    drifted = sum(c.drift_detected for c in tested)
    share = drifted / len(tested) if tested else None
    from .._version import VERSION

    calibrated = method == "calibrated"
    return DriftReport(
        columns=tuple(features),
        reference_rows=reference_rows,
        current_rows=current_rows,
        drift_share_threshold=drift_share,
        method=method,
        false_alarm_rate=false_alarm_rate if calibrated else None,
        number_of_tested_columns=len(tested),
        number_of_drifted_columns=drifted,
        drift_share=share,
        dataset_drift=share is not None and (drifted > 0 if calibrated else share >= drift_share),
        mlotel_version=VERSION,
        column_mapping=mapping,
        target_drift=by_name.get(roles.get("target", "")),
        prediction_drift=by_name.get(roles.get("prediction", "")),
        score_drift=by_name.get(roles.get("score", "")),
        performance=performance,
    )


def _report_datasets(
    reference: Any,
    current: Any,
    job: ReportJob,
    progress: Callable[[int, int, str], None] | None,
    workers: int | None,
    row_progress: Callable[[int, str, int, int | None], None] | None,
) -> DriftReport:
    sources = {}
    for side, source in (("reference", reference), ("current", current)):
        sources[side] = open_dataset(source) if is_dataset_source(source) else source
    job.column_names(_source_columns(sources["reference"]), _source_columns(sources["current"]))
    run_job(job, sources, workers=workers, progress=row_progress)
    return job.result(progress)


def _source_columns(source: Any) -> list[str]:
    if isinstance(source, Dataset):
        return source.column_names
    return [str(n) for n in to_arrow(source).schema.names]


def report(
    reference: Any,
    current: Any,
    *,
    columns: Sequence[str] | None = None,
    numerical: Sequence[str] = (),
    categorical: Sequence[str] = (),
    stattests: Mapping[str, str] | None = None,
    thresholds: Mapping[str, float] | None = None,
    drift_share: float = 0.5,
    target: str | None = None,
    prediction: str | None = None,
    score: str | None = None,
    task: str | None = None,
    positive_label: Any = None,
    mapping: ColumnMapping | Mapping[str, Any] | str | Path | None = None,
    progress: Callable[[int, int, str], None] | None = None,
    workers: int | None = None,
    row_progress: Callable[[int, str, int, int | None], None] | None = None,
    method: str = "evidently",
    false_alarm_rate: float = 0.01,
) -> DriftReport:
    """Compare ``current`` with ``reference`` column by column.

    Each side is a pandas DataFrame (held in memory), or a dataset: a Parquet or CSV file,
    a directory of them (hive partitions included), a glob, or a list of these, read in
    record batches in passes with memory bounded by the batch, not the rows
    (docs/drift-report.md, "Datasets"). Small columns (at most 10,000 values a side) get
    exactly the in-memory numbers; bigger ones get the normalised Wasserstein distance
    from fine histograms, within ``score_error_bound`` of the exact value.

    ``method="evidently"`` (the default) decides as Evidently 0.7's ``DataDriftPreset``;
    ``method="calibrated"`` uses mlotel's calibrated decision instead (``docs/drift.md``):
    per column, two-sample tests on equal-frequency bins of the reference (location,
    scale and chi-square; chi-square on categories) whose levels add up to
    ``false_alarm_rate`` over all columns, and an effect floor of 0.03 sigma; the dataset
    drifts when any column does. Columns named in ``stattests`` keep their test.

    Each column gets Evidently 0.7's default test for its type and size unless
    ``stattests`` names one (``{"age": "psi"}``; names in ``STAT_TESTS``); ``thresholds``
    overrides a test's default threshold per column. ``numerical`` / ``categorical``
    override the inferred column types; ``columns`` limits the report to some columns.
    The dataset drifts when the share of drifted columns among the tested ones is at
    least ``drift_share``. ``progress(done, total, column)`` is called after each column;
    ``row_progress(pass, side, rows_done, rows_total_or_None)`` after each batch read.
    Columns are computed in ``workers`` threads (default: the CPU count, at most 8).

    The column mapping names the model's columns: ``target`` (the label),
    ``prediction`` (predicted labels or values) and ``score`` (a binary classifier's
    positive-class probability), ``task`` (``classification`` / ``regression``; inferred
    when None) and ``positive_label``; or ``mapping``: a :class:`ColumnMapping`, a dict or
    the path of a JSON/YAML mapping file (keyword options win over it; type lists are
    joined). Named columns are left out of the feature tests and the drift share; the
    report adds their drift (``target_drift``, ``prediction_drift``, ``score_drift``) and,
    with target and prediction, the model's ``performance`` on both data sets.

    Columns that cannot be tested (missing on one side, empty, of another type) get a
    status saying why; they do not count in the drift share.

    >>> import pandas as pd
    >>> from mlotel.drift import report
    >>> result = report(pd.DataFrame({"a": [1.0, 2.0]}), pd.DataFrame({"a": [], "b": []}))
    >>> [(c.name, c.status) for c in result.columns], result.drift_share
    ([('a', 'empty_current'), ('b', 'missing_in_reference')], None)
    """
    stats = _load_stats()
    import pandas as pd

    datasets = any(
        is_dataset_source(side) or isinstance(side, Dataset) for side in (reference, current)
    )
    for label, frame in (("reference", reference), ("current", current)):
        if not datasets and not isinstance(frame, pd.DataFrame):
            raise TypeError(
                f"{label} must be a pandas DataFrame or a dataset (path, glob or list of "
                f"paths), got {type(frame).__name__}"
            )
    job = ReportJob(
        columns=columns, numerical=numerical, categorical=categorical, stattests=stattests,
        thresholds=thresholds, drift_share=drift_share, mapping=mapping, target=target,
        prediction=prediction, score=score, task=task, positive_label=positive_label,
        method=method, false_alarm_rate=false_alarm_rate,
    )  # fmt: skip
    if datasets:
        return _report_datasets(reference, current, job, progress, workers, row_progress)
    reference = reference.rename(columns=str)
    current = current.rename(columns=str)
    names = job.column_names(list(reference.columns), list(current.columns))
    options = job.options

    pairs = [
        (
            name,
            reference[name] if name in reference.columns else None,
            current[name] if name in current.columns else None,
        )
        for name in names
    ]

    def one(pair: tuple[str, Any, Any]) -> ColumnDrift:
        return _column(*pair, options, stats)

    workers = min(worker_count(workers), len(pairs) or 1)
    results = []
    # numpy's sorts (most of the time) release the GIL, so columns run in parallel threads.
    with ThreadPoolExecutor(workers) if workers > 1 else contextlib.nullcontext() as pool:
        mapped = pool.map(one, pairs) if pool is not None else map(one, pairs)
        for done, result in enumerate(mapped, start=1):
            results.append(result)
            if progress is not None:
                progress(done, len(pairs), result.name)
    performance = _performance_in_memory(reference, current, job.mapping)
    return _assemble(
        results, len(reference), len(current), drift_share, job.mapping, performance,
        method, false_alarm_rate,
    )


def write_report(
    reference: Any,
    current: Any,
    html_path: str | Path | None = None,
    json_path: str | Path | None = None,
    **options: Any,
) -> DriftReport:
    """Make :func:`report` and write it as HTML and/or JSON in one call.

    >>> import pandas as pd, tempfile, pathlib
    >>> from mlotel.drift import write_report
    >>> out = pathlib.Path(tempfile.mkdtemp(), "drift.html")
    >>> frame = pd.DataFrame({"x": [0.5, 1.5, 2.5]})
    >>> write_report(frame, frame, html_path=out).dataset_drift, out.exists()
    (False, True)
    """
    result = report(reference, current, **options)
    if html_path is not None:
        result.save_html(html_path)
    if json_path is not None:
        result.save_json(json_path)
    return result
