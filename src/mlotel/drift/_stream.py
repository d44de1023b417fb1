"""The streaming drift and data-quality monitor (a flush-time analyzer).

At each flush the monitor turns the buffered calls' inputs into one column per
reference feature, bins every column against the reference in one vectorised
pass (``np.searchsorted`` for numeric features, ``np.unique`` for categorical
ones) into *extended slots* (bins plus data-quality slots, see ``_binning``), and
adds the per-slot counts to a rolling window: a ring of ``buckets`` count
vectors, each covering ``window_rows / buckets`` rows and at most
``window_seconds / buckets`` seconds. Memory is ``buckets x slots`` integers,
independent of traffic. Drift is computed from the window's counts.
"""

from __future__ import annotations

import dataclasses
import math
import os
import queue
import threading
import time
import warnings
import weakref
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .. import semconv
from .._metric_store import AttrKey, MetricStore
from .._model_io import DeferredArray, columnar_rows, is_dataframe, is_torch, torch_to_numpy
from .._self_telemetry import tally
from ._binning import MISSING, WRONG_TYPE, category_keys, labels_text, numeric_column
from ._config import METHODS, DriftConfig
from ._constraints import Constraint, MaxMissingShare
from ._profile import FeatureProfile, Profile
from ._streaming_stats import bin_centers, jensenshannon, psi, wasserstein_binned
from ._text import describes_text, documents_of, text_descriptors

__all__ = ["DriftEvent", "DriftMonitor"]

_BUCKETS = 10
_EVENT_QUEUE = 256


@dataclass(frozen=True)
class DriftEvent:
    """Handed to ``on_drift`` when a feature (or the prediction) crosses its threshold.

    ``values`` holds every method's drift for the window; ``method``/``value``/
    ``threshold`` are those of the deciding method.

    >>> import queue, numpy as np, mlotel, mlotel.testing
    >>> from mlotel.drift import Profile
    >>> rng = np.random.default_rng(1)
    >>> ref = Profile.from_data(rng.normal(0, 1, (2000, 2)), feature_names=["a", "b"])
    >>> events = queue.Queue()
    >>> with mlotel.testing.capture_telemetry() as captured:
    ...     predict = mlotel.instrument(lambda x: x[:, 0] > 0, model_name="m", reference=ref,
    ...                                 drift=mlotel.DriftConfig(on_drift=events.put))
    ...     _ = predict(rng.normal(0, 1, (1000, 2)) + [3.0, 0.0])  # shift feature a only
    ...     captured.flush()
    ...     event = events.get(timeout=5)
    >>> event.model_name, event.feature, event.method, event.value > event.threshold
    ('m', 'a', 'psi', True)
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
    ...     predict = mlotel.instrument(lambda x: x[:, 0] > 0, model_name="m", reference=ref)
    ...     _ = predict(rng.normal(0, 1, (1000, 2)) + [3.0, 0.0])  # shift feature a only
    ...     captured.flush()
    ...     psi_a = captured.points("ml.feature.drift", {"ml.feature.name": "a",
    ...                                                  "ml.drift.method": "psi"})[0].value
    ...     share = captured.points("ml.dataset.drift.share")[0].value
    >>> psi_a > 1.0, share
    (True, 0.5)
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
        config = _with_deprecated(config or DriftConfig(), deprecated)
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
        inputs = [f for f in profile.features if f.role == "feature"]
        self._inputs = _FeatureSet(inputs, extra)
        self._describes_text = describes_text(profile)  # documents in: their descriptors
        outputs = [f for f in profile.features if f.role in ("prediction", "score")]
        self._outputs = _FeatureSet(outputs, {})
        self._input_window = _Window(self._inputs.total_slots, window_rows, window_seconds)
        self._output_window = _Window(self._outputs.total_slots, window_rows, window_seconds)
        # Array columns map to these names by position.
        names = list(feature_names) if feature_names is not None else self._inputs.names
        index = {n: j for j, n in enumerate(self._inputs.names)}
        self._positional = [index.get(str(n), -1) for n in names]
        self._index = index
        self._lock = threading.Lock()
        if hasattr(os, "register_at_fork"):
            # A fork while the flusher held the lock must not deadlock the child.
            this = weakref.ref(self)
            os.register_at_fork(after_in_child=lambda: _after_fork(this))
        self._initialised_stores: list[Any] = []  # weak identity of stores seen (few)
        self._fired: dict[str, tuple[int, float]] = {}
        self._rows_seen = 0
        self._prediction_rows_seen = 0
        self._attrs_cache: dict[AttrKey, _Attrs] = {}
        self._events: queue.Queue[DriftEvent] | None = None
        self._worker_pid = 0

    # --- Analyzer protocol ----------------------------------------------------------
    def process(self, records: Sequence[Any], monitor: Any, store: MetricStore) -> None:
        """Add one flush's calls to the windows and record drift and data-quality metrics."""
        with self._lock:
            attrs = self._attrs(monitor.base_attrs)
            if not any(s is store for s in self._initialised_stores):
                self._initialise(store, attrs)
            now = time.monotonic()
            inputs = [r.inputs for r in records if r.inputs is not None]
            if inputs and self._inputs.features:
                self._process_inputs(inputs, store, attrs, monitor, now)
            if self._outputs.features:
                self._process_outputs(store, attrs, monitor, now)

    def _attrs(self, base: AttrKey) -> _Attrs:
        cached = self._attrs_cache.get(base)
        if cached is None:
            cached = self._attrs_cache[base] = _Attrs(base, self._inputs, self._outputs)
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

    # --- inputs ---------------------------------------------------------------------
    def _columns(self, inputs: list[Any]) -> tuple[int, list[np.ndarray | None]]:
        features = self._inputs
        width = len(self._positional)
        matrices: list[np.ndarray] = []
        named: list[tuple[int, dict[str, np.ndarray]]] = []
        for x in inputs:
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
            for got in pieces:
                if not got:  # not among the positional names: missing
                    got.append(np.full(rows, np.nan))
            n += rows
        for rows, columns in named:
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
        if n == 0:
            return
        slots: list[np.ndarray] = []
        for j, column in enumerate(columns):
            local, detail = features.bin_column(j, column, n)
            slots.append(local)
            if features.constraints[j]:
                self._check_constraints(j, column, local, detail, store, attrs)
        batch = self._window_add(self._input_window, features, slots, n, now)
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

    def _window_add(
        self, window: _Window, features: _FeatureSet, slots: list[np.ndarray], n: int, now: float
    ) -> np.ndarray:
        """Add one batch's slots to the window; returns the batch's total slot counts."""
        total = np.zeros(features.total_slots, dtype=np.int64)
        skipped, ranges = window.plan(n, now)
        if skipped:
            total += self._count(features, slots, 0, skipped)
        for a, b, new_bucket in ranges:
            counts = self._count(features, slots, a, b)
            total += counts
            window.add(new_bucket, counts, b - a, now)
        return total

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
        self._window_add(self._output_window, self._outputs, slots, n, now)
        self._prediction_rows_seen += n
        window = self._output_window.totals(now)
        self._publish(self._outputs, window, store, attrs, monitor, now, prediction=True)

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
            if total < self.min_samples or not feature.count:
                for method_attrs in gauge_attrs.values():
                    store.clear_gauge(instrument, method_attrs)
                continue
            values = self._drift_values(features, j, counts)
            for method, value in values.items():
                store.set_gauge(instrument, gauge_attrs[method], value)
            method = self.drift_method if self.drift_method in values else "jensenshannon"
            is_drifted = values[method] >= self.thresholds[method]
            if not prediction:
                monitored += 1
                drifted += is_drifted
            if is_drifted and self.on_drift is not None:
                self._maybe_fire(monitor, feature.name, method, values, total, now, prediction)
        if not prediction:
            if monitored:
                store.set_gauge(semconv.DATASET_DRIFT_SHARE, attrs.base, drifted / monitored)
            else:
                store.clear_gauge(semconv.DATASET_DRIFT_SHARE, attrs.base)

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


def _after_fork(ref: weakref.ReferenceType[DriftMonitor]) -> None:
    monitor = ref()
    if monitor is not None:
        monitor._lock = threading.Lock()
        monitor._events = None  # the callback thread did not survive the fork


class _Attrs:
    """Attribute tuples of one model's series, built once."""

    def __init__(self, base: AttrKey, inputs: _FeatureSet, outputs: _FeatureSet) -> None:
        self.base = base
        feature_key = semconv.ATTR_FEATURE_NAME
        method_key = semconv.ATTR_DRIFT_METHOD
        self.drift = [
            {m: (*base, (feature_key, name), (method_key, m)) for m in METHODS}
            for name in inputs.names
        ]
        self.out_drift = [
            {m: (*base, (feature_key, name), (method_key, m)) for m in METHODS}
            for name in outputs.names
        ]
        self.bins = [
            [(*base, (feature_key, name), (semconv.ATTR_FEATURE_BIN, b)) for b in labels]
            for name, labels in zip(inputs.names, inputs.bin_labels)
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


_DEPRECATED_NAMES = {
    "window_rows": "window_rows",
    "window_seconds": "window_seconds",
    "min_samples": "min_samples",
    "thresholds": "thresholds",
    "drift_method": "method",
    "constraints": "constraints",
    "on_drift": "on_drift",
}


def _with_deprecated(config: DriftConfig, given: Mapping[str, Any]) -> DriftConfig:
    """``config`` with the pre-DriftConfig keywords applied (each warns once per call)."""
    if not given:
        return config
    unknown = sorted(set(given) - set(_DEPRECATED_NAMES))
    if unknown:
        raise TypeError(f"DriftMonitor() got unexpected keyword(s): {', '.join(unknown)}")
    changes = {_DEPRECATED_NAMES[name]: value for name, value in given.items()}
    warnings.warn(
        f"DriftMonitor({', '.join(f'{n}=' for n in given)}) is deprecated; pass "
        f"DriftConfig({', '.join(f'{_DEPRECATED_NAMES[n]}=' for n in given)})",
        DeprecationWarning,
        stacklevel=3,
    )
    return dataclasses.replace(config, **changes)
