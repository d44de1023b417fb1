"""Model performance of a monitoring report, from summaries that merge exactly.

The report's performance section (reference vs current) has the metrics of
``ml.model.performance`` (:mod:`mlotel.outcomes`): accuracy, macro F1 and, for a binary
classifier, precision, recall and F1 of the positive class, log loss and ROC AUC from a
score column; MAE, RMSE and R² for a regressor. They come from per-chunk summaries that
merge exactly and in any order, so a report of files read in record batches, or of a
Spark DataFrame, has the same numbers as one of DataFrames in memory:

- classifiers: per class true positives, predicted and actual counts (and the confusion
  matrix up to :data:`CONFUSION_CAP` classes): integers;
- sums (log loss, absolute and squared errors, the target and its square): exact sums
  of the float64 terms, kept as integers in units of 2**-1126 (:func:`exact_sum`), so
  the order of the rows cannot change them; a metric is then the exact value of its
  formula over those terms, rounded once;
- ROC AUC: the scores' counts per class in :data:`AUC_BUCKETS` equal-width buckets with
  each bucket's lowest and highest score per class; pairs of rows in different buckets
  are ordered by their buckets, pairs inside a bucket whose classes do not overlap too.
  A third pass collects the scores of the buckets where the classes overlap (at most
  :data:`AUC_EXACT_CAP` values over both data sets) and counts their pairs exactly.
  Beyond that cap a bucket's pairs count half and ``roc_auc_error_bound`` says how far
  the value can be from the exact one (half the pairs of those buckets over all pairs).

>>> exact_sum_value(exact_sum(np.array([1e16, 1.0, -1e16])))
1.0
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from fractions import Fraction
from typing import Any, Protocol

import numpy as np

from ..outcomes._metrics import class_count_metrics

__all__ = [
    "AUC_BUCKETS",
    "AUC_EXACT_CAP",
    "CLASS_CAP",
    "CONFUSION_CAP",
    "Performance",
    "PerformancePlan",
    "PerformancePlanner",
    "PerformanceState",
    "SidePerformance",
    "exact_square_sum",
    "exact_sum",
    "exact_sum_value",
    "summarize_performance",
]

AUC_BUCKETS = 2048
"""Equal-width score buckets of the ROC AUC summary."""
AUC_EXACT_CAP = 1_000_000
"""Scores (both data sets) collected to count the pairs of overlapping buckets exactly."""
CONFUSION_CAP = 20
"""Classes up to which the report keeps (and shows) the confusion matrix."""
CLASS_CAP = 1000
"""Classes a classifier's report handles."""
LABEL_LIMIT = 10
"""A numeric target with at most this many distinct values, all integers, is a class label."""

_UNIT_BITS = 1126  # every finite float64 is an integer multiple of 2**-1126 (and of 2**-1074)
_BLOCK = 1 << 20  # values per bincount: partial sums stay below 2**53, exact in float64
_EPS = float(np.finfo(np.float64).eps)

CLASSIFICATION_METRICS = ("accuracy", "precision", "recall", "f1", "f1_macro", "log_loss",
                          "roc_auc")  # fmt: skip
REGRESSION_METRICS = ("mae", "rmse", "r2")


# --- exact sums -----------------------------------------------------------------------------


def exact_sum(values: np.ndarray) -> int:
    """The exact sum of finite float64 values, as an integer in units of 2**-1126.

    Each value is its 53-bit mantissa times a power of two; mantissas are added per
    exponent (in two halves, so float64 adds them exactly) and the totals shifted into
    place as Python integers.

    >>> exact_sum(np.array([0.5, 0.25])) == (3 << 1124)
    True
    """
    flat = np.asarray(values, dtype=np.float64).ravel()
    total = 0
    for start in range(0, flat.size, _BLOCK):
        block = flat[start : start + _BLOCK]
        mantissa, exponent = np.frexp(block)
        whole = (mantissa * 2.0**53).astype(np.int64)
        index = exponent.astype(np.int64) + 1073  # 0 for the smallest subnormal
        size = int(index.max()) + 1
        high = np.bincount(index, weights=(whole >> 26).astype(np.float64), minlength=size)
        low = np.bincount(index, weights=(whole & 0x3FFFFFF).astype(np.float64), minlength=size)
        for i in np.flatnonzero((high != 0) | (low != 0)).tolist():
            total += ((int(high[i]) << 26) + int(low[i])) << i
    return total


def exact_square_sum(values: np.ndarray) -> int:
    """The exact sum of the squares of finite values (units of 2**-1126).

    Each square is split into its float64 product and the product's rounding error
    (Dekker's exact product), both summed exactly.

    >>> exact_sum_value(exact_square_sum(np.array([1e8 + 1.0]))) == (1e8 + 1.0) ** 2
    True
    """
    a = np.asarray(values, dtype=np.float64)
    product = a * a
    if not np.isfinite(product).all():
        raise ValueError("values too large to square (above 1e154)")
    split = 134217729.0 * a  # 2**27 + 1: the upper half of each mantissa
    high = split - (split - a)
    low = a - high
    with np.errstate(invalid="ignore", over="ignore"):
        error = ((high * high - product) + 2.0 * high * low) + low * low
    error = np.where(np.isfinite(error), error, 0.0)
    return exact_sum(product) + exact_sum(error)


def exact_sum_value(total: int, divisor: int = 1) -> float:
    """``total`` (units of 2**-1126) divided by ``divisor``, rounded once to float64.

    >>> exact_sum_value(exact_sum(np.array([0.1] * 10)), 10) == 0.1
    True
    """
    return total / (divisor << _UNIT_BITS)


# --- what the passes compute ----------------------------------------------------------------


@dataclass(frozen=True)
class PerformancePlan:
    """What a pass computes for the performance section (fixed by pass 1's sketches)."""

    task: str
    target: str
    prediction: str
    score: str | None = None
    """The positive class's probability (binary classifiers; None otherwise)."""
    text_labels: bool = False
    """Labels compared as text (else as numbers: ints, floats and booleans alike)."""
    classes: tuple[Any, ...] = ()
    positive: int | None = None
    """Index of the positive class in ``classes`` (binary classifiers)."""
    score_range: tuple[float, float] | None = None
    resolve: tuple[int, ...] | None = None
    """Pass 3: the score buckets whose values are collected (None in pass 2)."""

    @property
    def columns(self) -> tuple[str, ...]:
        """The columns the pass reads."""
        names = (self.target, self.prediction)
        return names if self.score is None else (*names, self.score)


@dataclass
class PerformanceState:
    """The performance summary of one chunk (or of several, merged)."""

    rows: int = 0
    used: int = 0
    """Rows with every needed column present (missing or non-finite ones are skipped)."""
    confusion: np.ndarray | None = None
    """Actual x predicted counts (classifiers with at most CONFUSION_CAP classes)."""
    per_class: np.ndarray | None = None
    """True positives, predicted and actual counts per class (3 x classes), otherwise."""
    sums: dict[str, int] = field(default_factory=dict)
    auc_counts: np.ndarray | None = None
    """Negatives (row 0) and positives (row 1) per score bucket."""
    auc_low: np.ndarray | None = None
    auc_high: np.ndarray | None = None
    tally_values: np.ndarray | None = None
    """Pass 3: the distinct scores of the collected buckets, sorted, ..."""
    tally_counts: np.ndarray | None = None
    """... and their negatives and positives (2 x values)."""

    def merge(self, other: PerformanceState) -> PerformanceState:
        """Both chunks' summary (exact: integer counts, exact sums, min/max, tallies)."""

        def add(a: np.ndarray | None, b: np.ndarray | None) -> np.ndarray | None:
            if a is None or b is None:
                return b if a is None else a
            total: np.ndarray = a + b
            return total

        def pick(a: np.ndarray | None, b: np.ndarray | None, how: Any) -> np.ndarray | None:
            if a is None or b is None:
                return b if a is None else a
            result: np.ndarray = how(a, b)
            return result

        sums = dict(self.sums)
        for key, value in other.sums.items():
            sums[key] = sums.get(key, 0) + value
        values, counts = _merge_tallies(
            (self.tally_values, self.tally_counts), (other.tally_values, other.tally_counts)
        )
        return PerformanceState(
            rows=self.rows + other.rows,
            used=self.used + other.used,
            confusion=add(self.confusion, other.confusion),
            per_class=add(self.per_class, other.per_class),
            sums=sums,
            auc_counts=add(self.auc_counts, other.auc_counts),
            auc_low=pick(self.auc_low, other.auc_low, np.minimum),
            auc_high=pick(self.auc_high, other.auc_high, np.maximum),
            tally_values=values,
            tally_counts=counts,
        )

    _ARRAYS = ("confusion", "per_class", "auc_counts", "auc_low", "auc_high", "tally_values",
               "tally_counts")  # fmt: skip

    def to_parts(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        """(JSON-ready header, arrays) for :meth:`mlotel.drift.Partial.to_bytes`."""
        header = {
            "rows": self.rows,
            "used": self.used,
            "sums": {k: hex(v) for k, v in self.sums.items()},  # exact integers, any size
        }
        arrays = {k: getattr(self, k) for k in self._ARRAYS if getattr(self, k) is not None}
        return header, arrays

    @classmethod
    def from_parts(cls, header: Mapping[str, Any], arrays: Mapping[str, Any]) -> PerformanceState:
        """The state :meth:`to_parts` described."""
        return cls(
            rows=int(header["rows"]),
            used=int(header["used"]),
            sums={k: int(v, 16) for k, v in header["sums"].items()},
            **{k: arrays.get(k) for k in cls._ARRAYS},
        )


def _merge_tallies(
    a: tuple[np.ndarray | None, np.ndarray | None], b: tuple[np.ndarray | None, np.ndarray | None]
) -> tuple[np.ndarray | None, np.ndarray | None]:
    if a[0] is None or b[0] is None:
        return b if a[0] is None else a
    assert a[1] is not None and b[1] is not None
    values, inverse = np.unique(np.concatenate((a[0], b[0])), return_inverse=True)
    counts = np.zeros((2, values.size), dtype=np.int64)
    both = np.concatenate((a[1], b[1]), axis=1)
    for row in (0, 1):
        counts[row] = np.bincount(inverse, weights=both[row], minlength=values.size).astype(
            np.int64
        )
    return values, counts


# --- one chunk --------------------------------------------------------------------------------


def _floats(column: Any) -> np.ndarray:
    """float64 values of an Arrow column (booleans as 0/1, missing as NaN)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks()
    if pa.types.is_dictionary(column.type):
        column = column.dictionary_decode()
    if pa.types.is_boolean(column.type):
        column = pc.cast(column, pa.int8())
    values = pc.cast(column, pa.float64()).to_numpy(zero_copy_only=False)
    return np.asarray(values, dtype=np.float64)


def _codes(column: Any, plan: PerformancePlan) -> np.ndarray:
    """Each row's class index (-1: missing)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if plan.text_labels:
        if isinstance(column, pa.ChunkedArray):
            column = column.combine_chunks()
        if pa.types.is_dictionary(column.type):
            column = column.dictionary_decode()
        found = pc.index_in(pc.cast(column, pa.string()), value_set=pa.array(plan.classes))
        return np.asarray(found.fill_null(-1).to_numpy(zero_copy_only=False), dtype=np.int64)
    values = _floats(column)
    keys = np.asarray(plan.classes, dtype=np.float64)
    where = np.clip(np.searchsorted(keys, values), 0, keys.size - 1)
    found_mask = keys[where] == values  # False for NaN
    return np.where(found_mask, where, -1).astype(np.int64)


def _bucket(scores: np.ndarray, plan: PerformancePlan) -> np.ndarray:
    """Score buckets: monotone in the score (each step of the formula is)."""
    assert plan.score_range is not None
    low, high = plan.score_range
    if high <= low:
        return np.zeros(scores.size, dtype=np.int64)
    index = np.floor((scores - low) / (high - low) * AUC_BUCKETS)
    return np.clip(index, 0, AUC_BUCKETS - 1).astype(np.int64)


def summarize_performance(table: Any, plan: PerformancePlan) -> PerformanceState:
    """The performance summary of one chunk (an Arrow table or record batch)."""
    rows = int(table.num_rows)
    names = set(table.schema.names)
    if not set(plan.columns) <= names:  # a side without the columns: nothing to count
        return PerformanceState(rows=rows)
    if plan.task == "regression":
        return _regression_state(table, plan, rows)
    actual = _codes(table.column(plan.target), plan)
    predicted = _codes(table.column(plan.prediction), plan)
    used = (actual >= 0) & (predicted >= 0)
    scores = None
    if plan.score is not None:
        scores = _floats(table.column(plan.score))
        used &= np.isfinite(scores)
    actual, predicted = actual[used], predicted[used]
    state = PerformanceState(rows=rows, used=int(np.count_nonzero(used)))
    if plan.resolve is not None:  # pass 3: the scores of the overlapping buckets
        assert scores is not None and plan.positive is not None
        scores = scores[used]
        buckets = _bucket(scores, plan)
        keep = np.isin(buckets, np.asarray(plan.resolve, dtype=np.int64))
        positive = (actual[keep] == plan.positive).astype(np.int64)
        values, inverse = np.unique(scores[keep], return_inverse=True)
        counts = np.zeros((2, values.size), dtype=np.int64)
        for row in (0, 1):
            counts[row] = np.bincount(inverse[positive == row], minlength=values.size)
        state.used = 0  # counted in pass 2
        state.rows = 0
        state.tally_values, state.tally_counts = values, counts
        return state
    k = len(plan.classes)
    if k <= CONFUSION_CAP:
        state.confusion = np.bincount(actual * k + predicted, minlength=k * k).reshape(k, k)
    else:
        hits = actual == predicted
        state.per_class = np.stack((
            np.bincount(actual[hits], minlength=k),
            np.bincount(predicted, minlength=k),
            np.bincount(actual, minlength=k),
        ))  # fmt: skip
    if scores is not None and plan.positive is not None:
        scores = scores[used]
        is_positive = actual == plan.positive
        # sklearn's log loss: the probability of the true class, clipped to [eps, 1 - eps].
        of_truth = np.clip(np.where(is_positive, scores, 1.0 - scores), _EPS, 1 - _EPS)
        state.sums["log_loss"] = exact_sum(-np.log(of_truth))
        flat = is_positive.astype(np.int64) * AUC_BUCKETS + _bucket(scores, plan)
        state.auc_counts = np.bincount(flat, minlength=2 * AUC_BUCKETS).reshape(2, -1)
        low = np.full(2 * AUC_BUCKETS, np.inf)
        high = np.full(2 * AUC_BUCKETS, -np.inf)
        np.minimum.at(low, flat, scores)
        np.maximum.at(high, flat, scores)
        state.auc_low, state.auc_high = low.reshape(2, -1), high.reshape(2, -1)
    return state


def _regression_state(table: Any, plan: PerformancePlan, rows: int) -> PerformanceState:
    actual = _floats(table.column(plan.target))
    predicted = _floats(table.column(plan.prediction))
    used = np.isfinite(actual) & np.isfinite(predicted)
    actual, predicted = actual[used], predicted[used]
    error = actual - predicted
    return PerformanceState(
        rows=rows,
        used=int(actual.size),
        sums={
            "abs_error": exact_sum(np.abs(error)),
            "sq_error": exact_square_sum(error),
            "target": exact_sum(actual),
            "target_sq": exact_square_sum(actual),
        },
    )


# --- results ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SidePerformance:
    """Performance of the model on one data set (reference or current)."""

    rows: int
    """Rows the metrics used: target and prediction (and score, when named) present."""
    skipped_rows: int
    """Rows left out: a missing or non-finite target, prediction or score."""
    metrics: Mapping[str, float]
    """Metric name -> value (the names of ``ml.model.performance``)."""
    confusion_matrix: tuple[tuple[int, ...], ...] | None = None
    """Rows: actual labels, columns: predicted labels (``Performance.labels`` order)."""
    roc_auc_error_bound: float | None = None
    """Largest possible |roc_auc - exact ROC AUC| (None or 0.0: exact)."""

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready data (non-finite numbers become None)."""
        return {
            "rows": self.rows,
            "skipped_rows": self.skipped_rows,
            "metrics": {k: (v if math.isfinite(v) else None) for k, v in self.metrics.items()},
            "confusion_matrix": None
            if self.confusion_matrix is None
            else [list(row) for row in self.confusion_matrix],
            "roc_auc_error_bound": self.roc_auc_error_bound,
        }


@dataclass(frozen=True)
class Performance:
    """The performance section of a report: the same metrics on reference and current data.

    >>> import pandas as pd
    >>> from mlotel.drift import report
    >>> ref = pd.DataFrame({"y": [0, 1, 1, 0], "p": [0, 1, 0, 0]})
    >>> cur = pd.DataFrame({"y": [1, 1, 0, 0], "p": [1, 1, 0, 0]})
    >>> section = report(ref, cur, target="y", prediction="p").performance
    >>> section.task, section.metric("accuracy"), section.positive_label
    ('classification', (0.75, 1.0), '1')
    """

    task: str
    target: str
    prediction: str
    score: str | None = None
    labels: tuple[str, ...] = ()
    """Class labels as text (classifiers), the confusion matrices' order."""
    positive_label: str | None = None
    reference: SidePerformance | None = None
    current: SidePerformance | None = None
    message: str | None = None
    """Why a side or a metric is missing (None when everything was computed)."""

    def metric(self, name: str) -> tuple[float | None, float | None]:
        """(reference, current) value of a metric (None where not computed)."""
        return tuple(  # type: ignore[return-value]
            None if side is None else side.metrics.get(name)
            for side in (self.reference, self.current)
        )

    def metric_names(self) -> list[str]:
        """The metrics computed on either side, in a fixed order."""
        order = CLASSIFICATION_METRICS if self.task == "classification" else REGRESSION_METRICS
        sides = [s for s in (self.reference, self.current) if s is not None]
        return [m for m in order if any(m in s.metrics for s in sides)]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready data (keys documented in docs/drift-report.md)."""
        return {
            "task": self.task,
            "target": self.target,
            "prediction": self.prediction,
            "score": self.score,
            "labels": list(self.labels),
            "positive_label": self.positive_label,
            "metrics": self.metric_names(),
            "reference": None if self.reference is None else self.reference.to_dict(),
            "current": None if self.current is None else self.current.to_dict(),
            "message": self.message,
        }


# --- planning -----------------------------------------------------------------------------------


class Sketch(Protocol):
    """What planning reads of a pass-1 column sketch (``mlotel.drift.Partial`` columns)."""

    kind: str
    rows: int
    missing: int
    count: int
    min: float
    max: float
    distinct: dict[Any, int] | None

    def category_tally(self) -> dict[Any, int] | None: ...


def _label_text(key: Any, booleans: bool) -> str:
    if isinstance(key, str):
        return key
    if booleans and key in (0.0, 1.0):
        return str(bool(key))
    return str(int(key)) if float(key).is_integer() else repr(float(key))


class PerformancePlanner:
    """Plans a report's performance passes from pass 1's sketches and builds the section.

    ``mapping`` holds the roles (target, prediction, score), ``task`` and
    ``positive_label``; the planner is used by the report's jobs, in memory and on
    datasets alike, so both compute the section the same way.
    """

    def __init__(
        self,
        target: str,
        prediction: str,
        score: str | None = None,
        task: str | None = None,
        positive_label: Any = None,
    ) -> None:
        self.target, self.prediction, self.score = target, prediction, score
        self.task = task
        self.positive_label = positive_label
        self.plan: PerformancePlan | None = None
        self.message: str | None = None
        self.notes: list[str] = []
        self.absent: dict[str, str] = {}
        self._booleans = False  # 0/1 labels shown as False/True (a boolean target)

    # pass 2 ---------------------------------------------------------------------------------
    def count_plan(self, sketches: Mapping[str, Mapping[str, Sketch]]) -> PerformancePlan | None:
        """The pass-2 plan, from each side's pass-1 sketches (None: nothing to compute;
        :attr:`message` says why). Raises ValueError for a ``positive_label`` that is no
        label of the data."""
        roles = [self.target, self.prediction] + ([self.score] if self.score else [])
        for side, columns in sketches.items():
            lacking = [name for name in roles if name not in columns]
            if lacking:
                self.absent[side] = f"no column {', '.join(map(repr, lacking))} in the {side} data"
        present = [s for s in sketches if s not in self.absent]
        if not present:
            self.message = "; ".join(self.absent.values())
            return None
        target = [sketches[s][self.target] for s in present]
        prediction = [sketches[s][self.prediction] for s in present]
        task = self.task or _infer_task(target, self.score is not None)
        try:
            if task == "regression":
                self.plan = self._regression(target, prediction)
            else:
                scores = [sketches[s][self.score] for s in present] if self.score else []
                self.plan = self._classification(target, prediction, scores)
        except _NotComputed as reason:
            self.message = str(reason)
            return None
        return self.plan

    def _regression(self, target: list[Sketch], prediction: list[Sketch]) -> PerformancePlan:
        for role, name, sketches in (("target", self.target, target),
                                     ("prediction", self.prediction, prediction)):  # fmt: skip
            if any(s.kind not in ("int", "float") for s in sketches if s.rows > s.missing):
                raise _NotComputed(
                    f"regression needs numbers: the {role} column {name!r} holds other values "
                    "(for a classifier pass task='classification')"
                )
        if self.score is not None:
            self.notes.append(f"score column {self.score!r} not used: regression")
        return PerformancePlan("regression", self.target, self.prediction)

    def _classification(
        self, target: list[Sketch], prediction: list[Sketch], scores: list[Sketch]
    ) -> PerformancePlan:
        self._booleans = any(s.kind == "bool" for s in target)
        kinds = {s.kind for s in (*target, *prediction) if s.rows > s.missing}
        text = "string" in kinds
        if text and kinds != {"string"}:
            raise _NotComputed(
                f"the target {self.target!r} and prediction {self.prediction!r} hold labels of "
                "different types (text and numbers)"
            )
        if kinds - {"string", "int", "float", "bool"}:
            raise _NotComputed("labels must be text, numbers or booleans")
        keys: set[Any] = set()
        target_keys: set[Any] = set()
        for role, name, sketches in (("target", self.target, target),
                                     ("prediction", self.prediction, prediction)):  # fmt: skip
            for sketch in sketches:
                tally = sketch.category_tally()
                if tally is None:
                    raise _NotComputed(
                        f"the {role} column {name!r} holds too many distinct values to be "
                        "class labels"
                        + (" (name a probability column score=, the labels prediction=)"
                           if role == "prediction" else " (a regressor: task='regression')")
                    )
                found = {str(k) if text else float(k) for k in tally}
                keys |= found
                if role == "target":
                    target_keys |= found
        if not text and all(float(k).is_integer() for k in target_keys) and not all(
            float(k).is_integer() for k in keys
        ):
            raise _NotComputed(
                f"the prediction column {self.prediction!r} holds scores, not labels: name "
                "the predicted labels prediction= and the probability score="
            )
        if len(keys) > CLASS_CAP:
            raise _NotComputed(f"more than {CLASS_CAP:,} classes")
        classes = tuple(sorted(keys))
        positive = self._positive(classes, text)
        binary = positive is not None
        score = self.score if binary else None
        if self.score is not None and not binary:
            self.notes.append(
                f"score column {self.score!r} not used: log loss and ROC AUC need a binary "
                + ("target" if len(classes) > 2 else "target with its positive label named")
            )
        score_range = None
        if score is not None:
            if any(s.kind not in ("int", "float") for s in scores if s.rows > s.missing):
                raise _NotComputed(f"the score column {score!r} does not hold numbers")
            counted = [s for s in scores if s.count]
            if counted:
                score_range = (min(s.min for s in counted), max(s.max for s in counted))
            else:
                score_range = (0.0, 1.0)
        return PerformancePlan(
            "classification",
            self.target,
            self.prediction,
            score,
            text_labels=text,
            classes=classes,
            positive=positive,
            score_range=score_range,
        )

    def _positive(self, classes: tuple[Any, ...], text: bool) -> int | None:
        label = self.positive_label
        if label is not None:
            key: Any
            if text:
                key = str(label)
            elif isinstance(label, str) and label.strip().lower() in ("true", "false"):
                key = 1.0 if label.strip().lower() == "true" else 0.0
            else:
                try:
                    key = float(label)
                except (TypeError, ValueError):
                    key = None
            if key not in classes:
                shown = ", ".join(_label_text(c, False) for c in classes[:10])
                raise ValueError(
                    f"positive_label {label!r} is not a label of the target {self.target!r} "
                    f"or the prediction {self.prediction!r} (labels: {shown})"
                )
            if len(classes) > 2:
                self.notes.append(
                    f"positive_label {label!r} not used: {len(classes)} labels (multiclass)"
                )
                return None
            return classes.index(key)
        if len(classes) == 2:
            return 1  # the larger label: sklearn's classes_[1], which predict_proba[:, 1] scores
        return None

    # pass 3 ---------------------------------------------------------------------------------
    def resolve_plan(self, states: Mapping[str, PerformanceState]) -> PerformancePlan | None:
        """The pass-3 plan: the overlapping score buckets to collect, when they hold at most
        :data:`AUC_EXACT_CAP` values over both sides (None: no pass 3)."""
        plan = self.plan
        if plan is None or plan.score is None:
            return None
        overlapping: set[int] = set()
        for state in states.values():
            if state.auc_counts is not None:
                overlapping |= set(_ambiguous(state).tolist())
        if not overlapping:
            return None
        chosen = np.array(sorted(overlapping), dtype=np.int64)
        values = sum(
            int(state.auc_counts[:, chosen].sum())
            for state in states.values()
            if state.auc_counts is not None
        )
        if values > AUC_EXACT_CAP:
            return None
        return replace(plan, resolve=tuple(chosen.tolist()))

    # result ---------------------------------------------------------------------------------
    def result(
        self,
        counted: Mapping[str, PerformanceState | None],
        resolved: Mapping[str, PerformanceState | None],
    ) -> Performance:
        """The section from each side's merged pass-2 (and pass-3) states."""
        plan = self.plan
        task = plan.task if plan is not None else (self.task or "classification")
        messages = [m for m in (self.message, *self.absent.values(), *self.notes) if m]
        if plan is None:
            return Performance(
                task, self.target, self.prediction, self.score, message="; ".join(messages)
            )
        sides: dict[str, SidePerformance | None] = {}
        for side in ("reference", "current"):
            state = counted.get(side)
            if side in self.absent or state is None:
                sides[side] = None
                continue
            sides[side] = _side(plan, state, resolved.get(side))
            if not state.used:
                messages.append(f"no {side} row has every column of the section present")
        labels: tuple[str, ...] = ()
        positive = None
        if plan.task == "classification":
            labels = tuple(_label_text(c, self._booleans) for c in plan.classes)
            positive = None if plan.positive is None else labels[plan.positive]
        return Performance(
            plan.task,
            self.target,
            self.prediction,
            plan.score,
            labels=labels,
            positive_label=positive,
            reference=sides["reference"],
            current=sides["current"],
            message="; ".join(messages) or None,
        )


class _NotComputed(Exception):
    """The data does not allow the section (the report says why, in its message)."""


def _infer_task(target: list[Sketch], scored: bool) -> str:
    if scored:
        return "classification"
    sketch = next((s for s in target if s.rows > s.missing), target[0])
    if sketch.kind in ("string", "bool"):
        return "classification"
    tally = sketch.category_tally() if sketch.kind in ("int", "float") else None
    if tally is not None and len(tally) <= LABEL_LIMIT and all(
        float(k).is_integer() for k in tally
    ):
        return "classification"
    return "regression"


def _ambiguous(state: PerformanceState) -> np.ndarray:
    """Score buckets where negatives and positives may interleave."""
    assert state.auc_counts is not None and state.auc_low is not None
    assert state.auc_high is not None
    both = (state.auc_counts[0] > 0) & (state.auc_counts[1] > 0)
    low, high = state.auc_low, state.auc_high
    ordered = (high[0] < low[1]) | (high[1] < low[0])
    tied = (low[0] == high[0]) & (low[1] == high[1]) & (low[0] == low[1])
    found: np.ndarray = np.flatnonzero(both & ~ordered & ~tied)
    return found


def _side(
    plan: PerformancePlan, state: PerformanceState, resolved: PerformanceState | None
) -> SidePerformance:
    n = state.used
    skipped = state.rows - n
    if plan.task == "regression":
        return SidePerformance(n, skipped, _regression_metrics(state.sums, n) if n else {})
    if state.confusion is not None:
        matrix = state.confusion
        per_class = np.stack((np.diag(matrix), matrix.sum(axis=0), matrix.sum(axis=1)))
    else:
        assert state.per_class is not None
        matrix, per_class = None, state.per_class
    if not n:
        return SidePerformance(0, skipped, {})
    metrics = class_count_metrics(per_class[0], per_class[1], per_class[2], n, plan.positive)
    bound = None
    if plan.positive is not None and plan.score is not None:
        metrics["log_loss"] = exact_sum_value(state.sums["log_loss"], n)
        auc = _roc_auc(plan, state, resolved)
        if auc is not None:
            metrics["roc_auc"], bound = auc
    ordered = {m: metrics[m] for m in CLASSIFICATION_METRICS if m in metrics}
    return SidePerformance(
        n,
        skipped,
        ordered,
        confusion_matrix=None
        if matrix is None
        else tuple(tuple(int(v) for v in row) for row in matrix.tolist()),
        roc_auc_error_bound=bound,
    )


def _regression_metrics(sums: Mapping[str, int], n: int) -> dict[str, float]:
    unit = Fraction(1, 1 << _UNIT_BITS)
    residual = sums["sq_error"] * unit
    total = sums["target_sq"] * unit - (sums["target"] * unit) ** 2 / n
    # sklearn's force_finite: constant targets give 1.0 for a perfect fit, else 0.0.
    r2 = float(1 - residual / total) if total else (1.0 if residual == 0 else 0.0)
    return {
        "mae": exact_sum_value(sums["abs_error"], n),
        "rmse": math.sqrt(exact_sum_value(sums["sq_error"], n)),
        "r2": r2,
    }


def _roc_auc(
    plan: PerformancePlan, state: PerformanceState, resolved: PerformanceState | None
) -> tuple[float, float] | None:
    """(ROC AUC, error bound) from the bucket counts and the collected scores."""
    assert state.auc_counts is not None and state.auc_low is not None
    assert state.auc_high is not None
    negatives, positives = (state.auc_counts[i].astype(np.int64) for i in (0, 1))
    n_pos, n_neg = int(positives.sum()), int(negatives.sum())
    if n_pos == 0 or n_neg == 0:
        return None
    below = np.concatenate(([0], np.cumsum(negatives)[:-1]))
    # Twice the Mann-Whitney U (ties count half): integers throughout.
    twice_u = 2 * sum(int(p) * int(b) for p, b in zip(positives.tolist(), below.tolist()) if p)
    low, high = state.auc_low, state.auc_high
    both = (negatives > 0) & (positives > 0)
    above = both & (high[0] < low[1])  # every negative below every positive
    tied = both & (low[0] == high[0]) & (low[1] == high[1]) & (low[0] == low[1])
    pairs = positives * negatives
    twice_u += 2 * int(pairs[above].sum()) + int(pairs[tied].sum())
    open_buckets = set(_ambiguous(state).tolist())
    if resolved is not None and resolved.tally_values is not None:
        assert resolved.tally_counts is not None
        values, counts = resolved.tally_values, resolved.tally_counts
        buckets = _bucket(values, plan)
        for bucket in np.unique(buckets).tolist():
            if bucket not in open_buckets:
                continue
            mine = buckets == bucket
            neg, pos = counts[0][mine], counts[1][mine]
            neg_before = np.concatenate(([0], np.cumsum(neg)[:-1]))
            twice_u += int(np.sum(pos * (2 * neg_before + neg)))
            open_buckets.discard(bucket)
    error = 0
    for bucket in open_buckets:  # not collected: count half the bucket's pairs
        twice_u += int(pairs[bucket])
        error += int(pairs[bucket])
    total = 2 * n_pos * n_neg
    return twice_u / total, error / total
