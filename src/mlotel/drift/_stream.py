"""The streaming drift and data-quality monitor (a flush-time analyzer).

At each flush the monitor turns the buffered calls' inputs into one column per
reference feature, bins every column against the reference in one vectorised
pass (``np.searchsorted`` for numeric features, ``np.unique`` for categorical
ones) into *extended slots* (bins plus data-quality slots, see ``_binning``), and
adds the per-slot counts to a rolling window: a ring of ``buckets`` count
vectors, each covering ``window_rows / buckets`` rows and at most
``window_seconds / buckets`` seconds. Memory is ``buckets x slots`` integers,
independent of traffic. Drift distances are computed from the window's counts.

Decisions are made per *decision window*: consecutive, non-overlapping blocks of
``window_rows`` rows (or ``window_seconds`` with at least ``min_samples`` rows). When a
block completes, its bin counts join the last ``max(sequential_lags)`` blocks' (the
sequential evidence) and every column is tested (``_calibrated``); the multivariate test
reads the block's mean PCA reconstruction error (``_multivariate``).
"""

from __future__ import annotations

import math
import os
import queue
import threading
import time
import weakref
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .. import semconv
from .._metric_store import AttrKey, MetricStore
from .._model_io import DeferredArray, columnar_rows, is_dataframe, is_torch, torch_to_numpy
from .._self_telemetry import logger, tally
from ._binning import MISSING, WRONG_TYPE, category_keys, labels_text, numeric_column
from ._calibrated import (
    DEFAULT_TEST_SHARES,
    LIMIT_METHODS,
    ColumnDecision,
    DecisionPlan,
    DriftTestResult,
    Evidence,
    MultivariateReference,
    ReferenceColumn,
    column_decision,
    fleet_limits,
    multivariate_decision,
)
from ._config import DECISION_METHODS, METHODS, DriftConfig, with_deprecated_keywords
from ._constraints import Constraint, MaxMissingShare
from ._profile import FeatureProfile, Profile
from ._streaming_stats import bin_centers, jensenshannon, psi, wasserstein_binned
from ._text import describes_text, documents_of, text_descriptors

__all__ = ["DriftEvent", "DriftMonitor"]

_BUCKETS = 10
_EVENT_QUEUE = 256


@dataclass(frozen=True)
class DriftEvent:
    """Handed to ``on_drift`` when the decision flags a feature (or the prediction).

    With the calibrated decision (the default), ``method`` is the deciding test
    (``location``, ``scale``, ``chisquare``, or ``multivariate`` with ``feature`` ""),
    ``value`` its adjusted p-value and ``threshold`` the false-alarm rate (flagged when
    ``value <= threshold``), ``lag`` the windows of evidence and ``effect`` the change in
    sigma-equivalents. With ``decision="threshold"``, ``method``/``value``/``threshold``
    are the deciding distance's (flagged when ``value >= threshold``) and ``values`` holds
    every distance.

    >>> import queue, numpy as np, mlotel, mlotel.testing
    >>> from mlotel.drift import Profile
    >>> rng = np.random.default_rng(1)
    >>> ref = Profile.from_data(rng.normal(0, 1, (2000, 2)), feature_names=["a", "b"])
    >>> events = queue.Queue()
    >>> with mlotel.testing.capture_telemetry() as captured:
    ...     predict = mlotel.instrument(
    ...         lambda x: x[:, 0] > 0, model_name="m", reference=ref,
    ...         drift=mlotel.DriftConfig(window_rows=1000, on_drift=events.put))
    ...     _ = predict(rng.normal(0, 1, (1000, 2)) + [0.5, 0.0])  # shift feature a only
    ...     captured.flush()
    ...     event = events.get(timeout=5)
    >>> event.model_name, event.feature, event.method, event.value <= event.threshold
    ('m', 'a', 'location', True)
    >>> event.decision, event.lag, 0.4 < event.values["shift"] < 0.7  # in reference stds
    ('calibrated', 1, True)
    """

    model_name: str
    model_version: str | None
    feature: str
    method: str
    value: float
    threshold: float
    window_values: int
    values: Mapping[str, float] = field(default_factory=dict)
    prediction: bool = False
    decision: str = "threshold"
    """``calibrated`` or ``threshold``: the rule that flagged."""
    lag: int = 1
    """Decision windows pooled by the deciding test (1: the last window alone)."""
    effect: float | None = None
    """Size of the change in sigma-equivalents (calibrated decisions)."""


# --- layout: one flat vector of slots for all features ------------------------------


class _FeatureSet:
    """Slot layout and binning of a list of profile columns."""

    def __init__(
        self, features: Sequence[FeatureProfile], extra_constraints: Mapping[str, Sequence[Any]]
    ) -> None:
        self.features = list(features)
        self.names = [f.name for f in self.features]
        self.offsets: list[int] = []
        self.sizes: list[int] = []
        self.ext_edges: list[np.ndarray] = []
        self.lookups: list[dict[str, int]] = []
        self.constraints: list[tuple[Constraint, ...]] = []
        ref_index: list[int] = []  # per slot: reference bin (global) or -1
        ref_offsets: list[int] = []
        offset = ref_offset = 0
        self.issue_slots: list[list[tuple[str, list[int]]]] = []
        for feature in self.features:
            k = len(feature.bin_counts) or 1
            if feature.kind == "numeric":
                size = k + 5
                if feature.count and feature.min is not None and feature.max is not None:
                    edges = np.array(
                        [feature.min, *feature.edges, np.nextafter(feature.max, np.inf)]
                    )
                    below = [0]
                    above = [k + 1]
                else:  # no reference values: one catch-all bin, nothing is "out of range"
                    edges = np.array([-np.inf])
                    below = above = []
                self.ext_edges.append(edges)
                self.lookups.append({})
                slot_ref = [0, *range(k), k - 1, -1, -1, -1]
                if not below:
                    slot_ref[0] = -1
                issues = [
                    ("missing", [k + 2]),
                    ("non_finite", [k + 3]),
                    ("out_of_range", below + above),
                    ("wrong_type", [k + 4]),
                ]
            else:
                n = len(feature.categories)
                size = n + 4
                self.ext_edges.append(np.empty(0))
                lookup = {c: i for i, c in enumerate(feature.categories)}
                if feature.known_categories is not None:
                    for c in feature.known_categories:
                        lookup.setdefault(c, n)
                self.lookups.append(lookup)
                slot_ref = [*range(n), n, n, -1, -1]
                issues = [
                    ("missing", [n + 2]),
                    ("new_category", [n + 1] if feature.known_categories is not None else []),
                    ("wrong_type", [n + 3]),
                ]
            self.offsets.append(offset)
            self.sizes.append(size)
            ref_offsets.append(ref_offset)
            ref_index.extend(ref_offset + r if r >= 0 else -1 for r in slot_ref)
            self.issue_slots.append([(name, [offset + s for s in slots]) for name, slots in issues])
            self.constraints.append(
                (*feature.constraints, *extra_constraints.get(feature.name, ()))
            )
            offset += size
            ref_offset += k
        self.total_slots = offset
        self.total_bins = ref_offset
        self.ref_offsets = ref_offsets
        mapping = np.asarray(ref_index, dtype=np.int64)
        self._ext_to_ref = np.where(mapping < 0, ref_offset, mapping)  # dump slot at the end
        self.ref_shares = [f.shares for f in self.features]
        self.bin_labels = [labels_text(f.bin_labels) for f in self.features]
        self.centers = [
            bin_centers(np.asarray(f.edges), f.min, f.max)
            if f.kind == "numeric" and f.min is not None and f.max is not None
            else np.empty(0)
            for f in self.features
        ]

    def ref_counts(self, ext_counts: np.ndarray) -> np.ndarray:
        """Counts per reference bin (out-of-range values fold into the open end bins)."""
        folded = np.bincount(self._ext_to_ref, weights=ext_counts, minlength=self.total_bins + 1)
        return folded[: self.total_bins]

    def bin_column(self, j: int, column: np.ndarray | None, n: int) -> tuple[np.ndarray, Any]:
        """Local slot of each value of feature ``j`` (and what constraints need)."""
        feature = self.features[j]
        k = len(feature.bin_counts) or 1
        if column is None:  # the feature is absent from these inputs
            slot = k + 2 if feature.kind == "numeric" else len(feature.categories) + 2
            return np.full(n, slot, dtype=np.intp), None
        if feature.kind == "numeric":
            values, missing, wrong = numeric_column(column)
            edges = self.ext_edges[j]
            total = values.sum() if missing is None else 0.0
            if math.isfinite(total) and missing is None:  # fast path: every value finite
                return np.searchsorted(edges, values, side="right"), (values, missing)
            finite = np.isfinite(values)
            slots = np.searchsorted(edges, np.where(finite, values, edges[0]), side="right")
            slots[np.isnan(values)] = k + 2
            slots[np.isinf(values)] = k + 3
            if missing is not None:
                slots[missing] = k + 2
            if wrong is not None:
                slots[wrong] = k + 4
            return slots, (values, missing if missing is not None else np.isnan(values))
        n_cat = len(feature.categories)
        keys, index = category_keys(column)
        lookup = self.lookups[j]
        text_reference = feature.value_type == "text"
        per_key = np.empty(len(keys), dtype=np.intp)
        for i, key in enumerate(keys):  # once per distinct value, not per value
            if key == MISSING:
                per_key[i] = n_cat + 2
            elif key == WRONG_TYPE or (not text_reference and _is_text_value(key, column)):
                per_key[i] = n_cat + 3
            else:
                per_key[i] = lookup.get(key, n_cat + 1)
        return per_key[index], (keys, index)


def _is_text_value(key: str, column: np.ndarray) -> bool:
    """Whether a key of a number-valued reference came from text that is no number."""
    if column.dtype.kind in "biuf":
        return False
    try:
        float(key)
    except ValueError:
        return True
    return False


# --- rolling window -----------------------------------------------------------------


class _Window:
    """The last ``rows`` rows (and at most ``seconds``) as a ring of per-bucket slot counts.

    ``buckets`` buckets of ``rows / buckets`` rows each plus one older bucket, of which
    only the share that completes ``rows`` is counted (scaled), so the window slides
    in steps of one bucket with an exact row count.
    """

    def __init__(self, slots: int, rows: int, seconds: float, buckets: int = _BUCKETS) -> None:
        self.window_rows = rows
        self.buckets = buckets + 1
        self.bucket_rows = max(1, math.ceil(rows / buckets))
        self.bucket_seconds = seconds / buckets
        self.seconds = seconds
        self.counts = np.zeros((self.buckets, slots), dtype=np.int64)
        self.rows = np.zeros(self.buckets, dtype=np.int64)
        self.started = np.full(self.buckets, -math.inf)
        self.current = 0
        self.started[0] = time.monotonic()

    def _rotate(self, now: float) -> None:
        self.current = (self.current + 1) % self.buckets
        self.counts[self.current] = 0
        self.rows[self.current] = 0
        self.started[self.current] = now

    def plan(self, n: int, now: float) -> tuple[int, list[tuple[int, int, bool]]]:
        """Split ``n`` new rows into bucket ranges ``(start, stop, starts a new bucket)``.

        Returns also how many leading rows leave the window at once (counted, not kept).
        """
        if now - self.started[self.current] >= self.bucket_seconds:
            self._rotate(now)
        room = self.bucket_rows - int(self.rows[self.current])
        ranges: list[tuple[int, int, bool]] = []
        pos = 0
        if room > 0:
            pos = min(room, n)
            ranges.append((0, pos, False))
        while pos < n:
            stop = min(pos + self.bucket_rows, n)
            ranges.append((pos, stop, True))
            pos = stop
        skipped = 0
        if len(ranges) > self.buckets:
            ranges = ranges[-self.buckets :]
            skipped = ranges[0][0]
        return skipped, ranges

    def add(self, new_bucket: bool, counts: np.ndarray, rows: int, now: float) -> None:
        if new_bucket:
            self._rotate(now)
        self.counts[self.current] += counts
        self.rows[self.current] += rows

    def totals(self, now: float) -> np.ndarray:
        """Slot counts of the window (float: the oldest bucket may count in part)."""
        order = [(self.current - i) % self.buckets for i in range(self.buckets)]
        live = [b for b in order if now - self.started[b] <= self.seconds]
        newest = live[: self.buckets - 1]
        total: np.ndarray = self.counts[newest].sum(axis=0).astype(np.float64)
        if len(live) == self.buckets:
            oldest = live[-1]
            missing = self.window_rows - int(self.rows[newest].sum())
            if missing > 0 and self.rows[oldest] > 0:
                total += self.counts[oldest] * min(1.0, missing / float(self.rows[oldest]))
        return total


class _Block:
    """The current decision window: reference-bin counts and the multivariate sums."""

    def __init__(self, bins: int, now: float) -> None:
        self.counts = np.zeros(bins)
        self.rows = 0
        self.mv_rows = 0.0
        self.mv_total = 0.0
        self.started = now

    def close(self, now: float) -> tuple[np.ndarray, int, float, float]:
        """The completed window's ``(counts, rows, mv rows, mv error sum)``; starts anew."""
        done = (self.counts, self.rows, self.mv_rows, self.mv_total)
        self.counts = np.zeros_like(self.counts)
        self.rows = 0
        self.mv_rows = self.mv_total = 0.0
        self.started = now
        return done


# --- input assembly -----------------------------------------------------------------


def _as_matrix(x: Any) -> np.ndarray | None:
    """A numeric 2-D array for array-like inputs, else None."""
    if isinstance(x, np.ndarray):
        arr = x
    elif is_torch(x):
        arr = torch_to_numpy(x)
    elif type(x) is DeferredArray:  # a device input copied to the host without waiting
        arr = x.resolved()
    elif isinstance(x, (list, tuple)) and x and isinstance(x[0], (list, tuple, np.ndarray)):
        try:
            arr = np.asarray(x)
        except ValueError:  # ragged rows
            return None
    else:
        return None
    if arr.ndim == 1:
        arr = arr.reshape(1, -1)
    if arr.ndim != 2:
        return None
    return arr


def _named_columns(x: Any) -> tuple[int, dict[str, np.ndarray]] | None:
    if is_dataframe(x):
        return len(x), {str(c): x[c].to_numpy() for c in x.columns}
    if isinstance(x, Mapping):
        rows = columnar_rows(x)
        if rows is None:  # one record
            return 1, {str(k): _object_column([v]) for k, v in x.items()}
        return rows, {
            str(k): _pad(_object_column(v) if not isinstance(v, np.ndarray) else v, rows)
            for k, v in x.items()
        }
    if isinstance(x, (list, tuple)) and x and isinstance(x[0], Mapping):
        keys = dict.fromkeys(k for row in x if isinstance(row, Mapping) for k in row)
        return len(x), {
            str(k): _object_column([row.get(k) if isinstance(row, Mapping) else None for row in x])
            for k in keys
        }
    return None


def _object_column(values: Sequence[Any]) -> np.ndarray:
    column = np.empty(len(values), dtype=object)
    column[:] = list(values)
    return column


def _pad(column: np.ndarray, rows: int) -> np.ndarray:
    if len(column) >= rows:
        return column
    padded = np.empty(rows, dtype=object)
    padded[: len(column)] = column.tolist()
    padded[len(column) :] = None
    return padded


# --- the analyzer -------------------------------------------------------------------


class DriftMonitor:
    """Streaming drift and data-quality analyzer for one model (see ``docs/drift.md``).

    Usually built by ``mlotel.instrument(model, reference=...)``.

    >>> import numpy as np, mlotel, mlotel.testing
    >>> from mlotel.drift import Profile
    >>> rng = np.random.default_rng(1)
    >>> ref = Profile.from_data(rng.normal(0, 1, (5000, 2)), feature_names=["a", "b"])
    >>> with mlotel.testing.capture_telemetry() as captured:
    ...     predict = mlotel.instrument(lambda x: x[:, 0] > 0, model_name="m", reference=ref,
    ...                                 drift=mlotel.DriftConfig(window_rows=1000))
    ...     _ = predict(rng.normal(0, 1, (1000, 2)) + [3.0, 0.0])  # shift feature a only
    ...     captured.flush()
    ...     psi_a = captured.points("ml.feature.drift", {"ml.feature.name": "a",
    ...                                                  "ml.drift.method": "psi"})[0].value
    ...     share = captured.points("ml.dataset.drift.share")[0].value
    ...     detected = {p.attributes["ml.feature.name"]: p.value
    ...                 for p in captured.points("ml.feature.drift.detected")}
    >>> psi_a > 1.0, share, detected
    (True, 0.5, {'a': 1.0, 'b': 0.0})
    """

    name = "drift"
    needs_inputs = True

    def __init__(
        self,
        reference: Profile | str | os.PathLike[str],
        config: DriftConfig | None = None,
        *,
        feature_names: Sequence[str] | None = None,
        export_bins: bool = True,
        **deprecated: Any,
    ) -> None:
        config = with_deprecated_keywords(
            config, deprecated, _DEPRECATED_KEYWORDS, "DriftMonitor", stacklevel=2
        ) or DriftConfig()
        profile = reference if isinstance(reference, Profile) else Profile.load(reference)
        if isinstance(reference, (str, Path)):
            self.source = str(reference)
        extra = {k: tuple(v) for k, v in (config.constraints or {}).items()}
        unknown = set(extra) - {f.name for f in profile.features}
        if unknown:
            raise ValueError(f"constraints name no profile column: {', '.join(sorted(unknown))}")
        self.profile = profile
        self.config = config
        self.thresholds = {method: config.threshold(method) for method in METHODS}
        self.drift_method = config.method
        self.min_samples = config.min_samples
        self.window_rows = window_rows = config.window_rows
        self.window_seconds = window_seconds = config.window_seconds
        self.on_drift = config.on_drift
        self.export_bins = export_bins
        self.calibrated = config.decision == "calibrated"
        inputs = [f for f in profile.features if f.role == "feature"]
        self._inputs = _FeatureSet(inputs, extra)
        self._describes_text = describes_text(profile)  # documents in: their descriptors
        outputs = [f for f in profile.features if f.role in ("prediction", "score")]
        self._outputs = _FeatureSet(outputs, {})
        self._input_window = _Window(self._inputs.total_slots, window_rows, window_seconds)
        self._output_window = _Window(self._outputs.total_slots, window_rows, window_seconds)
        # Calibrated decisions: the reference columns, the multivariate model, the plan.
        self._in_columns = _reference_columns(self._inputs)
        self._out_columns = _reference_columns(self._outputs)
        index = {n: j for j, n in enumerate(self._inputs.names)}
        model = profile.multivariate if config.multivariate else None
        if model is not None and not all(
            index.get(n) is not None and self._inputs.features[index[n]].kind == "numeric"
            for n in model.features
        ):
            model = None  # a model over other columns than the profile's numeric inputs
        self._mv_model = model
        self._mv_index = [index[n] for n in model.features] if model is not None else []
        self._mv_reference = (
            MultivariateReference(model.error_mean, model.error_std, model.calibration_rows)
            if model is not None
            else None
        )
        monitored = sum(c is not None for c in (*self._in_columns, *self._out_columns))
        self.plan = DecisionPlan(
            false_alarm_rate=config.false_alarm_rate,
            columns=monitored,
            lags=tuple(sorted(set(config.sequential_lags))),
            multivariate=model is not None,
            multivariate_share=config.multivariate_share,
            test_shares=dict(config.test_shares or DEFAULT_TEST_SHARES),
        )
        self._floors = [config.floor(n) for n in self._inputs.names]
        self._out_floors = [config.floor(n) for n in self._outputs.names]
        now = time.monotonic()
        self._in_block = _Block(self._inputs.total_bins, now)
        self._out_block = _Block(self._outputs.total_bins, now)
        self._in_evidence = Evidence(self._inputs.total_bins, self.plan.lags)
        self._out_evidence = Evidence(self._outputs.total_bins, self.plan.lags)
        self.detected: dict[str, bool] = {}
        """The latest decision per column (input features and prediction columns), as the
        ``*.drift.detected`` gauges show it; a column without a decision yet is absent."""
        self.multivariate_detected: bool | None = None
        """The latest multivariate decision (None before the first one, or without a model)."""
        # Array columns map to these names by position.
        names = list(feature_names) if feature_names is not None else self._inputs.names
        self._positional = [index.get(str(n), -1) for n in names]
        self._index = index
        self._absent = _AbsentColumns(self._inputs.names)
        self._rejected: list[bool] = []
        self._lock = threading.RLock()  # a signal handler may re-enter on this thread
        if hasattr(os, "register_at_fork"):
            # A fork while the flusher held the lock must not deadlock the child.
            this = weakref.ref(self)
            os.register_at_fork(after_in_child=lambda: _after_fork(this))
        self._initialised_stores: list[Any] = []  # weak identity of stores seen (few)
        self._fired: dict[str, tuple[int, float]] = {}
        self._rows_seen = 0
        self._prediction_rows_seen = 0
        self._attrs_cache: dict[tuple[AttrKey, Any], _Attrs] = {}
        self._events: queue.Queue[DriftEvent] | None = None
        self._worker_pid = 0

    # --- Analyzer protocol ----------------------------------------------------------
    def process(self, records: Sequence[Any], monitor: Any, store: MetricStore) -> None:
        """Add one flush's calls to the windows and record drift and data-quality metrics."""
        with self._lock:
            attrs = self._attrs(monitor.base_attrs, getattr(monitor, "redactor", None))
            if not any(s is store for s in self._initialised_stores):
                self._initialise(store, attrs)
            now = time.monotonic()
            inputs = [r.inputs for r in records if r.inputs is not None]
            # Inputs the model rejected (the call raised) count as traffic, but do not
            # make the absent-column hint guess at the profile.
            self._rejected = [
                getattr(r, "error_type", None) is not None for r in records if r.inputs is not None
            ]
            if inputs and self._inputs.features:
                self._process_inputs(inputs, store, attrs, monitor, now)
            if self._outputs.features:
                self._process_outputs(store, attrs, monitor, now)
            # A decision window also closes by age (with enough rows), traffic or not.
            for block, prediction in ((self._in_block, False), (self._out_block, True)):
                if block.rows >= self.min_samples and now - block.started >= self.window_seconds:
                    self._decide([block.close(now)], store, attrs, monitor, prediction)

    def _attrs(self, base: AttrKey, redactor: Any) -> _Attrs:
        cached = self._attrs_cache.get((base, redactor))
        if cached is None:
            cached = _Attrs(base, self._inputs, self._outputs, redactor)
            self._attrs_cache[(base, redactor)] = cached
        return cached

    def _initialise(self, store: MetricStore, attrs: _Attrs) -> None:
        """Export the reference shares and create every bin counter at 0."""
        if len(self._initialised_stores) >= 8:
            self._initialised_stores.pop(0)
        self._initialised_stores.append(store)
        if not self.export_bins:
            return
        for j, _feature in enumerate(self._inputs.features):
            for b, share in enumerate(self._inputs.ref_shares[j].tolist()):
                store.set_gauge(semconv.FEATURE_REFERENCE_SHARE, attrs.bins[j][b], share)
                store.add(semconv.FEATURE_BIN_COUNT, attrs.bins[j][b], 0)
        # What the fleet rules need to reach the calibrated decision from summed counters.
        for j, column in enumerate(self._in_columns):
            if column is None:
                continue
            store.set_gauge(semconv.FEATURE_REFERENCE_SIZE, attrs.feature[j], column.size)
            for method, limit in fleet_limits(column, self.plan, self._floors[j]).items():
                store.set_gauge(semconv.FEATURE_DRIFT_LIMIT, attrs.limits[j][method], limit)
            if column.ordered:
                for b, score in enumerate(column.location_scores.tolist()):
                    store.set_gauge(semconv.FEATURE_BIN_SCORE, attrs.bins[j][b], score)

    # --- inputs ---------------------------------------------------------------------
    def _columns(self, inputs: list[Any]) -> tuple[int, list[np.ndarray | None]]:
        features = self._inputs
        width = len(self._positional)
        matrices: list[np.ndarray] = []
        named: list[tuple[int, dict[str, np.ndarray]]] = []
        rejected = self._rejected if len(self._rejected) == len(inputs) else []
        for index, x in enumerate(inputs):
            try:
                documents = documents_of(x) if self._describes_text else None
                if documents is not None:
                    x = text_descriptors(documents)
                found = _named_columns(x)
                if found is not None:
                    named.append(found)
                    continue
                matrix = _as_matrix(x)
            except Exception as exc:
                tally.error("drift.inputs", exc)
                continue
            if matrix is None:
                tally.drop("drift", "input_format", 1)
            elif matrix.shape[1] != width:
                tally.drop("drift", "input_width", int(matrix.shape[0]))
                if not (rejected and rejected[index]):
                    self._absent.wrong_width(int(matrix.shape[1]), width)
            else:
                matrices.append(matrix)
        pieces: list[list[np.ndarray | None]] = [[] for _ in features.features]
        n = 0
        if matrices:
            block = matrices[0] if len(matrices) == 1 else np.concatenate(matrices)
            if block.dtype.kind in "biu":
                block = block.astype(np.float64)
            rows = int(block.shape[0])
            for column, j in enumerate(self._positional):
                if j >= 0:
                    pieces[j].append(block[:, column])
            self._absent.present(j for j in self._positional if j >= 0)
            for got in pieces:
                if not got:  # not among the positional names: missing
                    got.append(np.full(rows, np.nan))
            n += rows
        for rows, columns in named:
            self._absent.present(j for j, name in enumerate(features.names) if name in columns)
            for j, name in enumerate(features.names):
                present = columns.get(name)
                pieces[j].append(present if present is not None else np.full(rows, np.nan))
            n += rows
        merged: list[np.ndarray | None] = []
        for got in pieces:
            arrays = [g for g in got if g is not None]
            if not arrays:
                merged.append(None)
            elif len(arrays) == 1:
                merged.append(arrays[0])
            else:
                kinds = {a.dtype.kind for a in arrays}
                if len(kinds) > 1 and not kinds <= set("biuf"):
                    arrays = [a.astype(object) for a in arrays]
                merged.append(np.concatenate(arrays))
        return n, merged

    def _process_inputs(
        self, inputs: list[Any], store: MetricStore, attrs: _Attrs, monitor: Any, now: float
    ) -> None:
        features = self._inputs
        n, columns = self._columns(inputs)
        self._absent.check(monitor.model_name, n)
        if n == 0:
            return
        slots: list[np.ndarray] = []
        details: list[Any] = []
        for j, column in enumerate(columns):
            local, detail = features.bin_column(j, column, n)
            slots.append(local)
            details.append(detail)
            if features.constraints[j]:
                self._check_constraints(j, column, local, detail, store, attrs)
        errors = self._row_errors(slots, details, n)
        batch, closed = self._window_add(
            self._input_window, features, slots, n, now, self._in_block, errors
        )
        self._rows_seen += n
        # Data quality and fleet counters from this batch.
        ref = features.ref_counts(batch)
        for j in range(len(features.features)):
            for issue, issue_slots in features.issue_slots[j]:
                count = int(sum(batch[s] for s in issue_slots))
                if count:
                    store.add(semconv.DATA_QUALITY_ISSUES, attrs.issue(j, issue), count)
            if self.export_bins:
                o = features.ref_offsets[j]
                for b, count in enumerate(ref[o : o + len(features.ref_shares[j])].tolist()):
                    if count:
                        store.add(semconv.FEATURE_BIN_COUNT, attrs.bins[j][b], int(count))
        window = self._input_window.totals(now)
        self._window_constraints(window, batch, store, attrs)
        self._publish(features, window, store, attrs, monitor, now, prediction=False)
        if closed:
            self._decide(closed, store, attrs, monitor, prediction=False)

    def _row_errors(
        self, slots: list[np.ndarray], details: list[Any], n: int
    ) -> np.ndarray | None:
        """Each row's multivariate reconstruction error (None without a model)."""
        model = self._mv_model
        if model is None:
            return None
        try:
            matrix = np.empty((n, len(self._mv_index)))
            for i, j in enumerate(self._mv_index):
                detail = details[j]
                if detail is None:  # the feature is absent: imputed
                    matrix[:, i] = np.nan
                    continue
                matrix[:, i] = detail[0]
                if detail[1] is not None:  # not all finite numbers: impute missing,
                    # non-finite and wrong-type values too (their slots follow the bins)
                    bad = slots[j] >= len(self._inputs.features[j].bin_counts) + 2
                    matrix[bad, i] = np.nan
            return model.errors(matrix)
        except Exception as exc:
            tally.error("drift.multivariate", exc)
            return None

    def _window_add(
        self,
        window: _Window,
        features: _FeatureSet,
        slots: list[np.ndarray],
        n: int,
        now: float,
        block: _Block,
        errors: np.ndarray | None = None,
    ) -> tuple[np.ndarray, list[tuple[np.ndarray, int, float, float]]]:
        """Add one batch's slots to the rolling window and to the decision window.

        Returns the batch's total slot counts and the decision windows it completed.
        """
        total = np.zeros(features.total_slots, dtype=np.int64)
        skipped, ranges = window.plan(n, now)
        pieces = [(0, skipped, False, False)] if skipped else []
        pieces += [(a, b, new_bucket, True) for a, b, new_bucket in ranges]
        # Cut the pieces where the decision window fills up.
        cuts = list(range(self.window_rows - block.rows, n, self.window_rows))
        if cuts:
            split = []
            for a, b, new_bucket, in_ring in pieces:
                for cut in (c for c in cuts if a < c < b):
                    split.append((a, cut, new_bucket, in_ring))
                    a, new_bucket = cut, False
                split.append((a, b, new_bucket, in_ring))
            pieces = split
        cumulative = None if errors is None else np.concatenate(([0.0], np.cumsum(errors)))
        closed = []
        for a, b, new_bucket, in_ring in pieces:
            counts = self._count(features, slots, a, b)
            total += counts
            if in_ring:
                window.add(new_bucket, counts, b - a, now)
            block.counts += features.ref_counts(counts)
            block.rows += b - a
            if cumulative is not None:
                block.mv_rows += b - a
                block.mv_total += float(cumulative[b] - cumulative[a])
            if block.rows >= self.window_rows:
                closed.append(block.close(now))
        return total, closed

    @staticmethod
    def _count(features: _FeatureSet, slots: list[np.ndarray], a: int, b: int) -> np.ndarray:
        counts = np.zeros(features.total_slots, dtype=np.int64)
        whole = a == 0 and b == len(slots[0]) if slots else True
        for j, local in enumerate(slots):
            o = features.offsets[j]
            size = features.sizes[j]
            part = local if whole else local[a:b]
            counts[o : o + size] = np.bincount(part, minlength=size)
        return counts

    def _check_constraints(
        self,
        j: int,
        column: np.ndarray | None,
        local: np.ndarray,
        detail: Any,
        store: MetricStore,
        attrs: _Attrs,
    ) -> None:
        features = self._inputs
        feature = features.features[j]
        k = len(feature.bin_counts) or 1
        missing_slot = k + 2 if feature.kind == "numeric" else len(feature.categories) + 2
        missing = local == missing_slot
        if column is None:
            values: np.ndarray = np.full(len(local), np.nan)
            keys = None
        elif feature.kind == "numeric":
            values = detail[0]
            keys = None
        else:
            values = column
            keys = detail
        for constraint in features.constraints[j]:
            try:
                count = constraint.violations(values, missing, keys)
            except Exception as exc:
                tally.error("drift.constraint", exc)
                continue
            if count:
                store.add(semconv.DATA_QUALITY_ISSUES, attrs.issue(j, constraint.name), count)

    def _window_constraints(
        self, window: np.ndarray, batch: np.ndarray, store: MetricStore, attrs: _Attrs
    ) -> None:
        features = self._inputs
        for j, constraints in enumerate(features.constraints):
            for constraint in constraints:
                if not isinstance(constraint, MaxMissingShare):
                    continue
                o, size = features.offsets[j], features.sizes[j]
                missing_slot = dict(features.issue_slots[j])["missing"][0]
                count = constraint.window_violations(
                    round(float(window[missing_slot])),
                    round(float(window[o : o + size].sum())),
                    int(batch[missing_slot]),
                )
                if count:
                    store.add(semconv.DATA_QUALITY_ISSUES, attrs.issue(j, constraint.name), count)

    # --- outputs --------------------------------------------------------------------
    def _process_outputs(self, store: MetricStore, attrs: _Attrs, monitor: Any, now: float) -> None:
        # The monitor has just stacked and read this flush's outputs group by group
        # (labels, values, top scores): reuse its reading.
        predictions: list[np.ndarray] = []
        scores: list[np.ndarray] = []
        for group in monitor.output_groups.values():
            if group.block is None:
                continue  # the monitor could not read it (its error is counted)
            shown = group.labels if group.labels is not None else group.values
            if shown is not None:
                predictions.append(shown)
            if group.top is not None:
                scores.append(group.top)
        columns: list[np.ndarray | None] = []
        for feature in self._outputs.features:
            got = predictions if feature.role == "prediction" else scores
            columns.append(np.concatenate(got) if got else None)
        n = max((len(c) for c in columns if c is not None), default=0)
        if n == 0:
            return
        slots = []
        for j, column in enumerate(columns):
            if column is not None and len(column) != n:
                column = None  # predictions and scores from different calls: skip the short one
            slots.append(self._outputs.bin_column(j, column, n)[0])
        _, closed = self._window_add(
            self._output_window, self._outputs, slots, n, now, self._out_block
        )
        self._prediction_rows_seen += n
        window = self._output_window.totals(now)
        self._publish(self._outputs, window, store, attrs, monitor, now, prediction=True)
        if closed:
            self._decide(closed, store, attrs, monitor, prediction=True)

    # --- drift ----------------------------------------------------------------------
    def _publish(
        self,
        features: _FeatureSet,
        window: np.ndarray,
        store: MetricStore,
        attrs: _Attrs,
        monitor: Any,
        now: float,
        prediction: bool,
    ) -> None:
        ref = features.ref_counts(window)
        monitored = drifted = 0
        for j, feature in enumerate(features.features):
            o = features.ref_offsets[j]
            counts = ref[o : o + len(features.ref_shares[j])]
            total = round(float(counts.sum()))
            gauge_attrs = attrs.out_drift[j] if prediction else attrs.drift[j]
            instrument = semconv.PREDICTION_DRIFT if prediction else semconv.FEATURE_DRIFT
            detected_instrument, detected_attrs = (
                (semconv.PREDICTION_DRIFT_DETECTED, attrs.out_feature[j])
                if prediction
                else (semconv.FEATURE_DRIFT_DETECTED, attrs.feature[j])
            )
            if total < self.min_samples or not feature.count:
                for method in METHODS:
                    store.clear_gauge(instrument, gauge_attrs[method])
                if not self.calibrated:
                    store.clear_gauge(detected_instrument, detected_attrs)
                    self.detected.pop(feature.name, None)
                continue
            values = self._drift_values(features, j, counts)
            for method, value in values.items():
                store.set_gauge(instrument, gauge_attrs[method], value)
            if self.calibrated:
                continue  # decisions are made per completed decision window (_decide)
            method = self.drift_method if self.drift_method in values else "jensenshannon"
            is_drifted = values[method] >= self.thresholds[method]
            store.set_gauge(detected_instrument, detected_attrs, float(is_drifted))
            self.detected[feature.name] = is_drifted
            if not prediction:
                monitored += 1
                drifted += is_drifted
            if is_drifted and self.on_drift is not None:
                self._maybe_fire(monitor, feature.name, method, values, total, now, prediction)
        if not prediction and not self.calibrated:
            self._publish_dataset(store, attrs, monitored, drifted)

    def _publish_dataset(
        self, store: MetricStore, attrs: _Attrs, monitored: int, drifted: int
    ) -> None:
        """The share of flagged features and the any-feature decision."""
        if monitored:
            store.set_gauge(semconv.DATASET_DRIFT_SHARE, attrs.base, drifted / monitored)
            store.set_gauge(
                semconv.DATASET_DRIFT_DETECTED, attrs.dataset_features, float(drifted > 0)
            )
        else:
            store.clear_gauge(semconv.DATASET_DRIFT_SHARE, attrs.base)
            store.clear_gauge(semconv.DATASET_DRIFT_DETECTED, attrs.dataset_features)

    # --- calibrated decisions ---------------------------------------------------------
    def _decide(
        self,
        closed: list[tuple[np.ndarray, int, float, float]],
        store: MetricStore,
        attrs: _Attrs,
        monitor: Any,
        prediction: bool,
    ) -> None:
        """Test each completed decision window; publish the last one's decisions."""
        features = self._outputs if prediction else self._inputs
        columns = self._out_columns if prediction else self._in_columns
        floors = self._out_floors if prediction else self._floors
        evidence = self._out_evidence if prediction else self._in_evidence
        flagged: dict[str, DriftEvent] = {}
        decisions: list[ColumnDecision | None] = []
        multivariate: tuple[bool, float, DriftTestResult | None] | None = None
        # Every completed window joins the evidence; when one flush completes several,
        # the last is decided (the gauges show the latest decision).
        for counts, _rows, mv_rows, mv_total in closed:
            evidence.push(counts, mv_rows, mv_total)
        if closed:
            pooled = evidence.pooled()
            decisions = []
            for j, column in enumerate(columns):
                if column is None:
                    decisions.append(None)
                    continue
                o = features.ref_offsets[j]
                k = len(column.counts)
                decisions.append(
                    column_decision(
                        column,
                        [(lag, c[o : o + k]) for lag, c in pooled],
                        self.plan,
                        floors[j],
                        self.min_samples,
                    )
                )
            pooled_mv = evidence.pooled_multivariate()
            if (
                not prediction
                and self._mv_reference is not None
                and any(rows >= self.min_samples for _, rows, _ in pooled_mv)
            ):
                multivariate = multivariate_decision(
                    self._mv_reference,
                    pooled_mv,
                    self.plan,
                    self.config.effect_floor,
                    self.min_samples,
                )
                detected, p_value, deciding = multivariate
                if detected and deciding is not None:
                    flagged[""] = self._decision_event(monitor, "", p_value, deciding, None, False)
            if self.calibrated:
                for d in decisions:
                    if d is not None and d.detected and d.deciding is not None:
                        flagged[d.name] = self._decision_event(
                            monitor, d.name, d.p_value, d.deciding, d.shift, prediction
                        )
        self._publish_decisions(features, decisions, multivariate, store, attrs, prediction)
        if self.on_drift is not None:
            for event in flagged.values():
                self._dispatch(event)

    def _decision_event(
        self,
        monitor: Any,
        feature: str,
        p_value: float,
        deciding: DriftTestResult,
        shift: float | None,
        prediction: bool,
    ) -> DriftEvent:
        values = {"p_value": p_value, "effect": deciding.effect, "statistic": deciding.statistic}
        if shift is not None:
            values["shift"] = shift
        return DriftEvent(
            monitor.model_name,
            monitor.model_version,
            feature,
            deciding.test,
            p_value,
            self.plan.false_alarm_rate,
            deciding.values,
            values,
            prediction,
            decision="calibrated",
            lag=deciding.lag,
            effect=deciding.effect,
        )

    def _publish_decisions(
        self,
        features: _FeatureSet,
        decisions: list[ColumnDecision | None],
        multivariate: tuple[bool, float, DriftTestResult | None] | None,
        store: MetricStore,
        attrs: _Attrs,
        prediction: bool,
    ) -> None:
        instrument = semconv.PREDICTION_DRIFT if prediction else semconv.FEATURE_DRIFT
        detected_instrument = (
            semconv.PREDICTION_DRIFT_DETECTED if prediction else semconv.FEATURE_DRIFT_DETECTED
        )
        monitored = drifted = 0
        for j, decision in enumerate(decisions):
            gauge_attrs = attrs.out_drift[j] if prediction else attrs.drift[j]
            detected_attrs = attrs.out_feature[j] if prediction else attrs.feature[j]
            if decision is None or not decision.results:  # too few values: no decision
                for method in DECISION_METHODS:
                    store.clear_gauge(instrument, gauge_attrs[method])
                if self.calibrated:
                    store.clear_gauge(detected_instrument, detected_attrs)
                    self.detected.pop(features.names[j], None)
                continue
            store.set_gauge(instrument, gauge_attrs["p_value"], decision.p_value)
            if decision.shift is not None:
                store.set_gauge(instrument, gauge_attrs["shift"], decision.shift)
            if self.calibrated:
                store.set_gauge(detected_instrument, detected_attrs, float(decision.detected))
                self.detected[decision.name] = decision.detected
                monitored += 1
                drifted += decision.detected
        if not prediction:
            if self.calibrated:
                self._publish_dataset(store, attrs, monitored, drifted)
            if multivariate is not None:
                self.multivariate_detected = multivariate[0]
                store.set_gauge(
                    semconv.DATASET_DRIFT_DETECTED,
                    attrs.dataset_multivariate,
                    float(multivariate[0]),
                )

    def _drift_values(self, features: _FeatureSet, j: int, counts: np.ndarray) -> dict[str, float]:
        shares = features.ref_shares[j]
        values = {"psi": psi(shares, counts), "jensenshannon": jensenshannon(shares, counts)}
        feature = features.features[j]
        if feature.kind == "numeric" and feature.std is not None:
            values["wasserstein"] = wasserstein_binned(
                shares, counts, features.centers[j], feature.std
            )
        return values

    def _maybe_fire(
        self,
        monitor: Any,
        feature: str,
        method: str,
        values: dict[str, float],
        total: int,
        now: float,
        prediction: bool,
    ) -> None:
        key = ("prediction:" if prediction else "feature:") + feature
        seen = self._prediction_rows_seen if prediction else self._rows_seen
        last = self._fired.get(key)
        if (
            last is not None
            and seen - last[0] < self.window_rows
            and (now - last[1] < self.window_seconds)
        ):
            return  # at most once per window per feature
        self._fired[key] = (seen, now)
        event = DriftEvent(
            monitor.model_name,
            monitor.model_version,
            feature,
            method,
            values[method],
            self.thresholds[method],
            total,
            dict(values),
            prediction,
        )
        self._dispatch(event)

    def _dispatch(self, event: DriftEvent) -> None:
        """Hand the event to the callback thread (started on first use, per process)."""
        if self._events is None or self._worker_pid != os.getpid():
            self._events = queue.Queue(maxsize=_EVENT_QUEUE)
            self._worker_pid = os.getpid()
            threading.Thread(
                target=self._run_callbacks,
                args=(self._events,),
                name="mlotel-on-drift",
                daemon=True,
            ).start()
        try:
            self._events.put_nowait(event)
        except queue.Full:
            tally.drop("drift", "on_drift_queue_full")

    def _run_callbacks(self, events: queue.Queue[DriftEvent]) -> None:
        callback = self.on_drift
        while callback is not None:
            event = events.get()
            try:
                callback(event)
            except Exception as exc:  # the user's callback: contained, counted
                tally.error("drift.on_drift", exc)
            finally:
                events.task_done()

    def wait_for_callbacks(self, timeout: float = 5.0) -> bool:
        """Block until queued ``on_drift`` calls ran (for tests and shutdown); True if so."""
        events = self._events
        if events is None:
            return True
        deadline = time.monotonic() + timeout
        while events.unfinished_tasks:
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.005)
        return True


class _AbsentColumns:
    """Profile columns absent from every input seen, warned about once per model.

    The usual cause: a training frame that still held the label, profiled without
    ``target=``, so the label became a feature the model never gets. Each such row is
    already counted (a ``missing`` data-quality issue, or a drop for the input width);
    this only says why, once, through the ``mlotel`` logger: the monitor runs on the
    flusher thread, where ``warnings.warn`` would point at no line of the user's code
    and its once-per-location filter would hide a second model's warning.
    """

    def __init__(self, names: Sequence[str]) -> None:
        self.names = list(names)
        self.seen = np.zeros(len(self.names), dtype=bool)
        self.rows = 0
        self.width: tuple[int, int] | None = None  # (input width, profile width) of a drop
        self.warned = False

    def present(self, columns: Iterable[int]) -> None:
        if not self.warned:
            self.seen[list(columns)] = True

    def wrong_width(self, width: int, expected: int) -> None:
        if self.width is None:
            self.width = (width, expected)

    def check(self, model_name: str, rows: int) -> None:
        """After one flush's inputs: warn (once) when a column was never present."""
        if self.warned:
            return
        self.rows += rows
        absent = [name for name, seen in zip(self.names, self.seen.tolist()) if not seen]
        if self.rows and absent:
            shown = ", ".join(repr(name) for name in absent[:5])
            more = f" and {len(absent) - 5} more" if len(absent) > 5 else ""
            problem = (
                f"profile column(s) {shown}{more} absent from every input so far "
                f"({self.rows} rows): each row counts as a missing value in "
                "ml.data_quality.issues"
            )
        elif self.width is not None:
            width, expected = self.width
            problem = (
                f"inputs have {width} columns where the reference profile has {expected} "
                "feature columns: those calls are left out of drift (counted in "
                "mlotel.internal.dropped{reason=input_width})"
            )
        else:
            return
        self.warned = True
        logger.warning(
            "mlotel: drift of model %r: %s. Is it the label (or another column the model "
            "does not get)? Pass target=LABEL to Profile.from_data (mlotel profile --target) "
            "to keep it out of the features. Logged once per model.",
            model_name,
            problem,
        )


def _reference_columns(features: _FeatureSet) -> list[ReferenceColumn | None]:
    """What the calibrated tests need of each column (None for a column without values)."""
    return [
        ReferenceColumn(f.name, np.asarray(f.bin_counts, dtype=np.float64), f.kind == "numeric")
        if f.count and sum(f.bin_counts) > 0
        else None
        for f in features.features
    ]


def _after_fork(ref: weakref.ReferenceType[DriftMonitor]) -> None:
    monitor = ref()
    if monitor is not None:
        monitor._lock = threading.RLock()
        monitor._events = None  # the callback thread did not survive the fork


class _Attrs:
    """Attribute tuples of one model's series, built once."""

    def __init__(
        self, base: AttrKey, inputs: _FeatureSet, outputs: _FeatureSet, redactor: Any = None
    ) -> None:
        self.base = base
        feature_key = semconv.ATTR_FEATURE_NAME
        method_key = semconv.ATTR_DRIFT_METHOD
        methods = (*METHODS, *DECISION_METHODS)
        self.drift = [
            {m: (*base, (feature_key, name), (method_key, m)) for m in methods}
            for name in inputs.names
        ]
        self.out_drift = [
            {m: (*base, (feature_key, name), (method_key, m)) for m in methods}
            for name in outputs.names
        ]
        self.feature = [(*base, (feature_key, name)) for name in inputs.names]
        self.out_feature = [(*base, (feature_key, name)) for name in outputs.names]
        self.limits = [
            {m: (*base, (feature_key, name), (method_key, m)) for m in LIMIT_METHODS}
            for name in inputs.names
        ]
        self.dataset_features = (*base, (method_key, semconv.DRIFT_METHOD_FEATURES))
        self.dataset_multivariate = (*base, (method_key, semconv.DRIFT_METHOD_MULTIVARIATE))
        bin_labels = [
            # A redacted categorical feature's categories are values: bins by index.
            [b if b == semconv.OTHER_CLASS else str(i) for i, b in enumerate(labels)]
            if redactor is not None and redactor.hides(name)
            else labels
            for name, labels in zip(inputs.names, inputs.bin_labels)
        ]
        self.bins = [
            [(*base, (feature_key, name), (semconv.ATTR_FEATURE_BIN, b)) for b in labels]
            for name, labels in zip(inputs.names, bin_labels)
        ]
        self._names = inputs.names
        self._issues: dict[tuple[int, str], AttrKey] = {}

    def issue(self, j: int, issue: str) -> AttrKey:
        found = self._issues.get((j, issue))
        if found is None:
            found = self._issues[(j, issue)] = (
                *self.base,
                (semconv.ATTR_FEATURE_NAME, self._names[j]),
                (semconv.ATTR_DATA_QUALITY_ISSUE, issue),
            )
        return found


_DEPRECATED_KEYWORDS = {
    name: name for name in ("window_rows", "window_seconds", "min_samples", "thresholds")
} | {"drift_method": "method", "constraints": "constraints", "on_drift": "on_drift"}
"""Keywords ``DriftMonitor()`` took before :class:`DriftConfig` -> its field names."""
