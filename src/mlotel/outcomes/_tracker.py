"""Delayed ground truth: the bounded store of recent predictions and the outcome join.

Every predicted row has an id. Generated ids are ``"<call id>-<row>"`` (the call
id is the span's and log record's ``ml.prediction.id``, 16 hex digits; the row
is the 0-based row of the call's output). Ids supplied by the caller
(:func:`prediction_ids`, ``instrument(prediction_ids=...)``) replace them.

At flush time each model's :class:`OutcomeTracker` (an analyzer on its monitor)
writes the flushed rows into a ring of numpy arrays: predicted label code or
value, positive-class probability, top score, time, trace ids. Memory is fixed
by ``outcome_store_size``: the oldest rows are overwritten, and unmatched rows
that go this way are counted in ``mlotel.internal.dropped{component=outcomes,
reason=outcome_store_size}``. :func:`record_outcome` looks the id up (a dict
lookup), marks the row matched and queues the pair; the next flush moves the
queued pairs into the sliding window, republishes ``ml.model.performance`` and
emits one ``ml.outcome`` log record per pair in the prediction's span context
(with ``outcome_log="sampled"``, the default, only for rows of calls whose payload
was logged: the log volume follows ``payload_sample_rate``).
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Sequence
from itertools import accumulate
from typing import TYPE_CHECKING, Any

import numpy as np
from opentelemetry import trace
from opentelemetry._logs import SeverityNumber
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags

from .. import semconv
from .._aggregator import OutputGroup
from .._config import Settings
from .._metric_store import AttrKey, MetricStore
from .._model_io import clean_value, interpret_output
from .._self_telemetry import tally
from ._ids import as_list
from ._metrics import (
    classification_metrics,
    estimated_metrics,
    regression_metrics,
    score_metrics,
)

if TYPE_CHECKING:
    from .._aggregator import CallRecord, ModelAggregator

__all__ = ["InvalidActual", "OutcomeTracker"]

MATCHED, UNKNOWN_ID, LATE, DUPLICATE, INVALID = semconv.OUTCOME_STATUSES
_MAX_LABELS = 1024  # distinct labels a model's store tracks; later ones never match
_OTHER_PREDICTED = -1  # code of a predicted label past the cap
_OTHER_ACTUAL = -2  # code of an actual label past the cap (never equal to a prediction)
_MASK64 = (1 << 64) - 1
# Stored next to a row's W3C trace flags (8 bits): its call's payload record was logged.
_PAYLOAD_LOGGED = 0x100
_TRACE_FLAGS = 0xFF
_CHUNK_ROWS = 400  # rows written to the store per step (see OutcomeTracker._insert)
_ROWS_PER_CALL_FILL = 64  # calls this big on average: per-call fields filled call by call
_time_ns = time.time_ns
_ARRAYS = (
    "_seq", "_row", "_time", "_pred", "_proba", "_top", "_matched", "_trace_hi", "_trace_lo",
    "_span", "_flags", "_key", "_keyed",
)  # fmt: skip


# --- labels ----------------------------------------------------------------------------


def _family(value: Any) -> str | None:
    """'number', 'text' or None (unusable: None, NaN, other objects)."""
    if isinstance(value, (bool, np.bool_)):
        return "number"
    if isinstance(value, (int, np.integer)):
        return "number"
    if isinstance(value, (float, np.floating)):
        return None if math.isnan(value) else "number"
    if isinstance(value, (str, bytes)):
        return "text"
    return None


def _plain(value: Any) -> Any:
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    return value


class InvalidActual(ValueError):
    """An outcome's actual value cannot be compared with the model's predictions."""


# --- the tracker -----------------------------------------------------------------------


class OutcomeTracker:
    """Recent predictions of one model, the outcome join and the performance window."""

    name = "outcomes"
    needs_inputs = False

    def __init__(self, monitor: ModelAggregator, store: MetricStore, settings: Settings) -> None:
        self.monitor = monitor
        self.model_name = monitor.model_name
        self._store = store
        self._capacity = settings.outcome_store_size
        self._ttl_ns = int(settings.outcome_ttl * 1e9)
        self._window_size = settings.outcome_window_size
        self._window_ns = int(settings.outcome_window_seconds * 1e9)
        self._min_samples = settings.outcome_min_samples
        self._estimate = settings.performance_estimate
        self._outcome_log = settings.outcome_log
        self._lock = threading.RLock()  # re-entrant: a signal handler on this thread
        self._size = 0  # allocated rows: 0 until the first rows arrive, then the capacity
        self._next = 0  # sequence number of the next stored row
        self._calls: dict[int, int] = {}  # call id (as an integer) -> sequence of its first row
        self._ids: dict[str, int] = {}  # user-supplied row id -> sequence
        self._labels: dict[Any, int] = {}
        self._label_list: list[Any] = []
        self._family: str | None = None  # of the labels predicted so far
        self._positive_label: Any = None
        self._regression = False
        self._pending: list[tuple[Any, ...]] = []
        # id() -> prediction id of buffered calls whose rows insert_buffered() stored
        self._early: dict[int, str] = {}
        self._scored_early = False
        self._window: dict[str, np.ndarray] | None = None
        self._window_count = 0
        self._published: set[str] = set()
        self._attrs_cache: dict[str, AttrKey] = {}
        # The store: one slot per row, allocated on first use (see _ARRAYS).
        self._seq = np.empty(0, np.int64)  # sequence number of the row in the slot
        self._row = np.empty(0, np.int64)  # row within its call
        self._time = np.empty(0, np.int64)  # prediction time (ns)
        self._pred = np.empty(0, np.float64)  # label code or regression value
        self._proba = np.empty(0, np.float64)  # positive-class probability (binary)
        self._top = np.empty(0, np.float64)  # top-class probability
        self._matched = np.empty(0, bool)
        self._trace_hi = np.empty(0, np.uint64)
        self._trace_lo = np.empty(0, np.uint64)
        self._span = np.empty(0, np.uint64)
        self._flags = np.empty(0, np.uint16)  # trace flags | _PAYLOAD_LOGGED
        self._key = np.empty(0, object)  # call id at a call's last row, or a supplied id
        self._keyed = np.empty(0, bool)  # the slot's _key is in the index

    @property
    def pending(self) -> bool:
        """Outcomes (or an estimate) wait for the next flush (the monitor flushes even
        with no calls)."""
        return bool(self._pending) or self._scored_early

    # --- storage ----------------------------------------------------------------------
    def _allocate(self) -> None:
        """Allocate the store at its full capacity, once. ``np.zeros`` takes fresh zero
        pages from the OS (calloc): memory becomes resident only as rows are written,
        and no regrowth copies ever make the heap peak."""
        size = self._capacity
        for name in _ARRAYS:
            dtype = getattr(self, name).dtype
            fresh = np.empty(size, object) if dtype == np.dtype(object) else np.zeros(size, dtype)
            setattr(self, name, fresh)
        self._size = size

    def _code(self, value: Any, predicted: bool) -> int:
        code = self._labels.get(value)
        if code is None:
            if len(self._label_list) >= _MAX_LABELS:
                return _OTHER_PREDICTED if predicted else _OTHER_ACTUAL
            code = len(self._label_list)
            self._labels[value] = code
            self._label_list.append(value)
        return code

    def _codes(self, labels: np.ndarray, cut: int = 0) -> tuple[np.ndarray, np.ndarray]:
        """``(table, index)``: ``table[index]`` are the label codes of ``labels[cut:]``
        (every label of ``labels`` gets a code). The store takes the codes straight from
        the table: no row-sized temporary."""
        if labels.dtype.kind in "iu" and labels.size and labels.min() >= 0 and labels.max() < 4096:
            # Class indexes (or small integer labels): a lookup table instead of a sort.
            present = np.flatnonzero(np.bincount(labels))
            if self._family is None:
                self._family = "number"
            table = np.zeros(int(present[-1]) + 1, np.float64)
            table[present] = [self._code(v, True) for v in present.tolist()]
            return table, labels[cut:]
        try:
            uniques, inverse = np.unique(labels, return_inverse=True)
        except TypeError:  # mixed objects: compare by text
            uniques, inverse = np.unique(labels.astype(str), return_inverse=True)
        values = [_plain(u) for u in uniques.tolist()]
        if self._family is None and values:
            self._family = _family(values[0])
        table = np.array([self._code(v, True) for v in values], dtype=np.float64)
        return table, inverse.reshape(-1)[cut:]

    # --- flush time (monitor's flushing thread) -----------------------------------------
    def process(
        self, records: Sequence[CallRecord], aggregator: ModelAggregator, store: MetricStore
    ) -> None:
        new_scores = self._insert(records, aggregator.output_groups) if records else False
        if self._scored_early:
            new_scores, self._scored_early = True, False
        with self._lock:
            pending, self._pending = self._pending, []
        now = _time_ns()
        if pending:
            self._add_to_window(pending)
            # The outcomes' log records are emitted here, off the recording thread.
            self._emit_logs(pending)
        if self._window is not None and (pending or records):
            self._publish(self._realised(now))
        if new_scores and self._estimate:
            self._publish(self._estimated(now), estimates=True)

    def insert_buffered(self) -> None:
        """Take the rows of the model's calls still buffered into the store now (only
        that: their metrics, log records and drift wait for the flush), so an outcome
        recorded right after its prediction finds it."""
        early = self._early
        self.monitor.read_buffered(
            self._insert_early, lambda rec: early.get(id(rec)) != rec.prediction_id
        )

    def _insert_early(
        self, records: list[CallRecord], groups: dict[tuple[Any, ...], OutputGroup]
    ) -> None:
        # (``records`` leaves out the calls stored early before: see insert_buffered)
        if self._insert(records, groups):
            self._scored_early = True  # the next flush publishes the estimate
        early = self._early
        for group in groups.values():
            for i in group.indexes:
                early[id(records[i])] = records[i].prediction_id

    def _insert(
        self, records: Sequence[CallRecord], groups: dict[tuple[Any, ...], OutputGroup]
    ) -> bool:
        scored = False
        early = self._early
        if early:  # calls whose rows insert_buffered() stored already: not twice
            kept: dict[tuple[Any, ...], OutputGroup] = {}
            for key, group in groups.items():
                indexes = []
                for i in group.indexes:
                    stored = early.pop(id(records[i]), None)
                    if stored != records[i].prediction_id:
                        indexes.append(i)
                if indexes:
                    # (positions change: the monitor's reading no longer lines up)
                    kept[key] = group if len(indexes) == len(group.indexes) else OutputGroup(
                        indexes
                    )
            groups = kept
        # The monitor grouped the flushed records by output layout and read each group's
        # outputs already (labels, top scores, values): the store takes rows of that.
        for key, group in groups.items():
            if key[0] in semconv.NON_PREDICTION_OPERATIONS:
                continue
            calls = [records[i] for i in group.indexes]
            sizes = [len(rec.output) for rec in calls]
            offsets = list(accumulate(sizes, initial=0))  # first row of each call in the group
            # Slices of about _CHUNK_ROWS rows: numpy keeps the GIL on arrays this small, so
            # the flusher never waits a switch interval (5 ms) to get it back after each of
            # its many small operations while the application's threads keep predicting.
            # Calls bigger than that go together in one step: few operations in all.
            chunk: list[int] = []
            large: list[int] = []
            rows = 0
            for position, size in enumerate(sizes):
                if size >= _CHUNK_ROWS:
                    large.append(position)
                    continue
                chunk.append(position)
                rows += size
                if rows >= _CHUNK_ROWS:
                    scored = self._insert_chunk(group, calls, offsets, chunk) or scored
                    chunk, rows = [], 0
            for rest in (chunk, large):
                if rest:
                    scored = self._insert_chunk(group, calls, offsets, rest) or scored
        return scored

    def _insert_chunk(
        self, group: OutputGroup, calls: list[CallRecord], offsets: list[int], positions: list[int]
    ) -> bool:
        try:
            chosen = [calls[p] for p in positions]
            return self._insert_group(chosen, *_read(group, chosen, offsets, positions))
        except Exception as exc:  # one unreadable group costs its rows only
            tally.error("outcomes.store", exc)
            return False

    def _insert_group(
        self,
        group: list[CallRecord],
        block: np.ndarray,
        labels: np.ndarray | None,
        top: np.ndarray | None,
        values: np.ndarray | None,
        explicit: np.ndarray | None,
    ) -> bool:
        first = group[0]
        n = len(block)
        positive = None
        if explicit is not None:
            if len(explicit) == n:
                matrix = explicit if explicit.ndim == 2 else None
                top = explicit.max(axis=1) if matrix is not None else explicit.reshape(-1)
                if matrix is not None and matrix.shape[1] == 2:
                    positive = matrix[:, 1]
        elif top is not None:
            matrix = block.reshape(n, -1)
            if matrix.shape[1] <= 2:
                # P(positive class): the second of two columns, or the only one (a view:
                # the store's float64 slots convert it as they take it).
                positive = matrix[:, -1]
                if first.operation == "predict_log_proba":
                    positive = np.exp(positive.astype(np.float64))
        # Rows past the store's size would be overwritten by this same write: skip them.
        cut = max(0, n - self._capacity)
        if labels is not None:
            if len(labels) != n:
                tally.drop("outcomes", "unreadable_output", n)
                return False
            table, pred = self._codes(labels, cut)
            class_labels = first.class_labels
            if self._positive_label is None and class_labels is not None and len(class_labels) == 2:
                self._positive_label = _plain(class_labels[1])
        elif values is not None and len(values) == n:
            table, pred = None, values[cut:]
            self._regression = True
            top = positive = None
        else:
            # e.g. raw logits without scores=: no label or value a row id could join to.
            tally.drop("outcomes", "unreadable_output", n)
            return False
        if cut:
            top = None if top is None else top[cut:]
            positive = None if positive is None else positive[cut:]
        # One pass over the calls for their row counts, times and span contexts.
        counts: list[int] = []
        ends: list[int] = []
        his: list[int] = []
        los: list[int] = []
        spans: list[int] = []
        flags: list[int] = []
        for rec in group:
            counts.append(len(rec.output))
            ends.append(rec.end_ns)
            logged = _PAYLOAD_LOGGED if rec.sampled else 0
            context = rec.span.get_span_context() if rec.span is not None else None
            if context is not None and context.is_valid:
                trace_id = context.trace_id
                his.append(trace_id >> 64)
                los.append(trace_id & _MASK64)
                spans.append(context.span_id)
                flags.append(int(context.trace_flags) | logged)
            else:
                his.append(0)
                los.append(0)
                spans.append(0)
                flags.append(logged)
        per_call = (ends, his, los, spans, flags)
        with self._lock:
            self._write(group, counts, n, cut, (table, pred), positive, top, per_call)
        return top is not None

    def _write(
        self,
        group: list[CallRecord],
        counts: list[int],
        n: int,
        cut: int,
        pred: tuple[np.ndarray | None, np.ndarray],
        positive: np.ndarray | None,
        top: np.ndarray | None,
        per_call: tuple[list[int], ...],
    ) -> None:
        """Write rows ``cut:n`` of some calls to the ring. ``pred`` is ``(table, index)``
        (label codes ``table[index]``) or ``(None, values)``; its arrays, ``positive`` and
        ``top`` hold just those rows. Call with the lock held."""
        start = self._next
        if not self._size:
            self._allocate()
        size = self._size
        # The rows fill one run of slots, or two where the ring wraps: slice writes.
        first_slot = (start + cut) % size
        runs = [(first_slot, min(size, first_slot + n - cut))]
        if first_slot + n - cut > size:
            runs.append((0, first_slot + n - cut - size))
        self._evict(runs, start)
        table, pred_rows = pred
        done = 0  # rows written so far
        for lo, hi in runs:
            rows = slice(done, done + hi - lo)
            done += hi - lo
            self._seq[lo:hi] = np.arange(start + cut + rows.start, start + cut + rows.stop)
            if table is None:
                self._pred[lo:hi] = pred_rows[rows]
            else:
                np.take(table, pred_rows[rows], out=self._pred[lo:hi])
            self._proba[lo:hi] = np.nan if positive is None else positive[rows]
            self._top[lo:hi] = np.nan if top is None else top[rows]
            self._matched[lo:hi] = False
            self._keyed[lo:hi] = False
        if n >= _ROWS_PER_CALL_FILL * len(counts):
            self._fill_calls(start, cut, counts, per_call)
        else:
            self._spread_calls(start, cut, counts, per_call, runs)
        self._next = start + n
        lowest = start + n - size
        if n > size:
            tally.drop("outcomes", "outcome_store_size", n - size)
        key_slots: list[int] = []
        key_values: list[Any] = []
        calls = self._calls
        offset = start
        for rec, count in zip(group, counts):
            first_seq = offset
            offset += count
            if offset <= lowest:
                continue
            supplied = rec.row_ids
            if supplied is not None:
                try:
                    keys = [str(v) for v in as_list(supplied)]
                except Exception as exc:
                    tally.error("outcomes.ids", exc)
                    keys = []
                if len(keys) == count:
                    for seq, key in enumerate(keys, first_seq):
                        if seq >= lowest:
                            self._ids[key] = seq
                            key_slots.append(seq % size)
                            key_values.append(key)
                    continue
                # Ids that do not pair with the rows: the call falls back to generated ids.
                tally.drop("outcomes", "prediction_ids_length", count)
            # The call's key lives in its last row's slot: it leaves the index when the
            # call's last row is overwritten (its earlier rows went before it).
            # Keyed by the call id's integer, made here: the hot path's id string is not
            # kept alive (long-lived survivors scattered among each call's freed objects
            # would pin the allocator's memory pools; these ints are allocated together).
            call_key = int(rec.prediction_id, 16)
            calls[call_key] = first_seq
            key_slots.append((offset - 1) % size)
            key_values.append(call_key)
        if key_slots:
            where = np.array(key_slots, np.int64)
            keyed = np.empty(len(key_values), object)
            keyed[:] = key_values
            self._key[where] = keyed
            self._keyed[where] = True

    def _fill_calls(
        self, start: int, cut: int, counts: list[int], per_call: tuple[list[int], ...]
    ) -> None:
        """Per-call fields of calls with many rows: one slice fill per call and field
        (no row-sized temporaries). Call with the lock held."""
        size = self._size
        lowest = start + cut  # first written sequence
        first_seq = start
        for count, end, hi, lo, span_id, flags in zip(counts, *per_call):
            seq, stop = max(first_seq, lowest), first_seq + count
            while seq < stop:
                slot = seq % size
                run = min(stop - seq, size - slot)  # up to where the ring wraps
                where = slice(slot, slot + run)
                self._row[where] = np.arange(seq - first_seq, seq - first_seq + run)
                self._time[where] = end
                self._trace_hi[where] = hi
                self._trace_lo[where] = lo
                self._span[where] = span_id
                self._flags[where] = flags
                seq += run
            first_seq = stop

    def _spread_calls(
        self,
        start: int,
        cut: int,
        counts: list[int],
        per_call: tuple[list[int], ...],
        runs: list[tuple[int, int]],
    ) -> None:
        """Per-call fields of many small calls: repeated to rows in numpy (flat lists
        convert fast), then one slice write per field and run. Call with the lock held."""
        n = sum(counts)
        fields: tuple[np.ndarray, ...] = (
            self._time, self._trace_hi, self._trace_lo, self._span, self._flags
        )  # fmt: skip
        if len(counts) == n:  # one row per call: nothing to repeat
            call_rows = np.zeros(n, np.int64)
            per_row: list[np.ndarray] = [np.array(v, f.dtype) for v, f in zip(per_call, fields)]
        else:
            sizes = np.array(counts, np.int64)
            call_rows = np.arange(n) - np.repeat(np.cumsum(sizes) - sizes, sizes)
            per_row = [np.repeat(np.array(v, f.dtype), sizes) for v, f in zip(per_call, fields)]
        done = cut
        for lo, hi in runs:
            rows = slice(done, done + hi - lo)
            done += hi - lo
            self._row[lo:hi] = call_rows[rows]
            for field, values in zip(fields, per_row):
                field[lo:hi] = values[rows]

    def _evict(self, runs: list[tuple[int, int]], start: int) -> None:
        """Forget the rows in the slot ``runs`` before new rows (from sequence ``start``)
        take them. Call with the lock held."""
        lost = 0
        for lo, hi in runs:
            used = min(hi, start)  # slot == sequence until the first wrap: lower slots are used
            if used <= lo:
                continue
            lost += used - lo - int(np.count_nonzero(self._matched[lo:used]))
            keyed = np.flatnonzero(self._keyed[lo:used]) + lo  # slots holding an index key
            if not len(keyed):
                continue
            keys = self._key[keyed].tolist()
            seqs = self._seq[keyed]
            firsts = (seqs - self._row[keyed]).tolist()  # a call's key: its last row
            for key, seq, first in zip(keys, seqs.tolist(), firsts):
                if self._calls.get(key) == first:
                    del self._calls[key]
                elif self._ids.get(key) == seq:
                    del self._ids[key]
        if lost:
            tally.drop("outcomes", "outcome_store_size", lost)

    # --- the join (any thread) ----------------------------------------------------------
    def _slot(self, prediction_id: str) -> int | None:
        """Store slot of a row id, or None. Call with the lock held."""
        seq = self._ids.get(prediction_id)
        row = None
        if seq is None:
            head, sep, tail = prediction_id.rpartition("-")
            if not sep or not tail.isdecimal():
                return None
            try:
                start = self._calls.get(int(head, 16))
            except ValueError:
                return None
            if start is None:
                return None
            row = int(tail)
            seq = start + row
        if seq < self._next - self._size or seq >= self._next:
            return None
        slot = seq % self._size
        if self._seq[slot] != seq or (row is not None and self._row[slot] != row):
            return None  # past the call's last row, or already overwritten
        return slot

    def _actual_value(self, actual: Any) -> float:
        """The comparable value of one actual (a label code or a number); raises
        :class:`InvalidActual` with the reason. Call with the lock held."""
        value = _plain(actual)
        family = _family(value)
        if family is None:
            raise InvalidActual(f"actual {actual!r} is missing or not a label/number")
        if self._regression:
            if family != "number" or isinstance(value, bool) or not math.isfinite(value):
                raise InvalidActual(
                    f"actual {actual!r} is not a finite number (model {self.model_name!r} "
                    "is a regression model)"
                )
            return float(value)
        if self._family is not None and family != self._family:
            raise InvalidActual(
                f"actual {actual!r} is a {family} but model {self.model_name!r} predicts "
                f"{self._family} labels (e.g. {self._label_list[0]!r})"
            )
        return float(self._code(value, False))

    def _match(self, prediction_id: str, slot: int, value: float, now: int) -> None:
        self._matched[slot] = True
        pair = (
            prediction_id,
            float(self._pred[slot]),
            float(self._proba[slot]),
            value,
            now,
            int(self._trace_hi[slot]),
            int(self._trace_lo[slot]),
            int(self._span[slot]),
            int(self._flags[slot]),
        )
        self._pending.append(pair)

    def join_one(self, prediction_id: str, actual: Any, now: int) -> str | None:
        """Status of one outcome, or None when this model does not know the id.
        Raises :class:`InvalidActual` (after counting it) for an unusable actual."""
        with self._lock:
            if not self._size:
                return None
            slot = self._slot(prediction_id)
            if slot is None:
                return None
            if self._matched[slot]:
                return DUPLICATE
            if now - int(self._time[slot]) > self._ttl_ns:
                return LATE
            try:
                value = self._actual_value(actual)
            except InvalidActual:
                self.count(INVALID, 1)
                raise
            self._match(prediction_id, slot, value, now)
        return MATCHED

    def join_many(
        self, ids: list[str], actuals: list[Any], indexes: list[int], now: int
    ) -> tuple[dict[str, int], list[int]]:
        """Join the outcomes at ``indexes``; returns (counts by status, indexes not known)."""
        counts = dict.fromkeys(semconv.OUTCOME_STATUSES, 0)
        with self._lock:
            if not self._size:
                return counts, indexes
            found_index: list[int] = []
            found_slot: list[int] = []
            unknown: list[int] = []
            slot_of = self._slot
            for i in indexes:
                slot = slot_of(ids[i])
                if slot is None:
                    unknown.append(i)
                else:
                    found_index.append(i)
                    found_slot.append(slot)
            if not found_slot:
                return counts, unknown
            slots = np.asarray(found_slot, dtype=np.int64)
            # The first outcome of a row in this batch can match; repeats are duplicates.
            _, first = np.unique(slots, return_index=True)
            is_first = np.zeros(len(slots), bool)
            is_first[first] = True
            duplicate = self._matched[slots] | ~is_first
            late = ~duplicate & (now - self._time[slots] > self._ttl_ns)
            candidates = np.flatnonzero(~duplicate & ~late)
            counts[DUPLICATE] = int(np.count_nonzero(duplicate))
            counts[LATE] = int(np.count_nonzero(late))
            values = self._actual_values([actuals[found_index[k]] for k in candidates.tolist()])
            ok = ~np.isnan(values)
            counts[INVALID] = int(np.count_nonzero(~ok))
            match_slots = slots[candidates[ok]]
            self._matched[match_slots] = True
            match_ids = [ids[found_index[k]] for k in candidates[ok].tolist()]
            hi, lo = self._trace_hi[match_slots].tolist(), self._trace_lo[match_slots].tolist()
            span, flags = self._span[match_slots].tolist(), self._flags[match_slots].tolist()
            matched = list(
                zip(
                    match_ids,
                    self._pred[match_slots].tolist(),
                    self._proba[match_slots].tolist(),
                    values[ok].tolist(),
                    [now] * len(match_ids),
                    hi,
                    lo,
                    span,
                    flags,
                )
            )
            self._pending.extend(matched)
            counts[MATCHED] = len(match_ids)
        return counts, unknown

    def _actual_values(self, actuals: list[Any]) -> np.ndarray:
        """Comparable values of many actuals; NaN marks an invalid one (vectorised for
        numeric and text arrays, one by one for mixed objects)."""
        if not actuals:
            return np.empty(0)
        array = np.asarray(actuals)
        kind = array.dtype.kind if array.ndim == 1 else "O"
        if kind == "U" and not all(isinstance(a, str) for a in actuals):
            kind = "O"  # numpy turned mixed values into text: judge them one by one
        if self._regression and kind in "iuf":
            values = array.astype(np.float64)
            values[~np.isfinite(values)] = np.nan
            return values
        if (
            not self._regression
            and kind in "iubU"
            and (self._family is None or self._family == ("text" if kind == "U" else "number"))
        ):
            uniques, inverse = np.unique(array, return_inverse=True)
            table = np.array([self._actual_value(u) for u in uniques.tolist()], np.float64)
            return table[inverse.reshape(-1)]
        values = np.empty(len(actuals))
        for i, actual in enumerate(actuals):
            try:
                values[i] = self._actual_value(actual)
            except InvalidActual:
                values[i] = np.nan
        return values

    def count(self, status: str, amount: int) -> None:
        if amount:
            self._store.add(semconv.OUTCOMES, self._status_attrs(status), amount)

    def _status_attrs(self, status: str) -> AttrKey:
        found = self._attrs_cache.get(status)
        if found is None:
            found = (*self.monitor.base_attrs, (semconv.ATTR_OUTCOME_STATUS, status))
            self._attrs_cache[status] = found
        return found

    # --- window and metrics (flush time) --------------------------------------------------
    def _add_to_window(self, pending: list[tuple[Any, ...]]) -> None:
        size = self._window_size
        if self._window is None:
            self._window = {
                "pred": np.zeros(size),
                "actual": np.zeros(size),
                "proba": np.full(size, np.nan),
                "time": np.zeros(size, np.int64),
            }
        tail = pending[-size:]
        _, pred, proba, actual, arrived, *_ = zip(*tail)
        positions = (self._window_count + np.arange(len(tail))) % size
        window = self._window
        window["pred"][positions] = pred
        window["actual"][positions] = actual
        window["proba"][positions] = proba
        window["time"][positions] = arrived
        self._window_count += len(pending)

    def _positive_code(self) -> int | None:
        label = self._positive_label
        if label is None and len(self._label_list) == 2:
            try:
                label = max(self._label_list)  # sklearn's classes_[1]: the larger label
            except TypeError:
                return None
        if label is None or len(self._label_list) > 2:
            return None
        return self._labels.get(label)

    def _realised(self, now: int) -> dict[str, float]:
        window = self._window
        assert window is not None
        used = min(self._window_count, self._window_size)
        recent = window["time"][:used] >= now - self._window_ns
        if int(np.count_nonzero(recent)) < self._min_samples:
            return {}
        pred, actual = window["pred"][:used][recent], window["actual"][:used][recent]
        if self._regression:
            return regression_metrics(pred, actual)
        positive = self._positive_code()
        metrics = classification_metrics(pred.astype(np.int64), actual.astype(np.int64), positive)
        proba = window["proba"][:used][recent]
        scored = np.isfinite(proba)
        if positive is not None and int(np.count_nonzero(scored)) >= self._min_samples:
            metrics.update(score_metrics(actual[scored] == positive, proba[scored]))
        return metrics

    def _estimated(self, now: int) -> dict[str, float]:
        """CBPE over the last ``outcome_window_size`` scored rows (looking back at most
        four windows: label-only calls of the same model take rows too)."""
        with self._lock:
            count = min(self._next, self._size, 4 * self._window_size)
            # The last ``count`` slots, oldest first: one run, or two where the ring wraps.
            end = self._next % self._size or self._size
            runs = [slice(max(0, end - count), end)]
            if count > end:
                runs.insert(0, slice(self._size - (count - end), self._size))
            top, proba, times = (
                np.concatenate([field[run] for run in runs])
                for field in (self._top, self._proba, self._time)
            )
            recent = (times >= now - self._window_ns) & np.isfinite(top)
        chosen = np.flatnonzero(recent)[-self._window_size :]
        if len(chosen) < self._min_samples:
            return {"estimated_accuracy": math.nan}
        proba = proba[chosen]
        binary = bool(np.isfinite(proba).all()) and self._positive_label is not None
        return estimated_metrics(top[chosen], proba if binary else None)

    def _publish(self, metrics: dict[str, float], estimates: bool = False) -> None:
        base = self.monitor.base_attrs
        names = {n for n in self._published if n.startswith("estimated_") == estimates}
        for name in names - metrics.keys():
            self._store.clear_gauge(
                semconv.MODEL_PERFORMANCE, (*base, (semconv.ATTR_METRIC_NAME, name))
            )
            self._published.discard(name)
        for name, value in metrics.items():
            attrs = (*base, (semconv.ATTR_METRIC_NAME, name))
            if math.isnan(value):
                self._store.clear_gauge(semconv.MODEL_PERFORMANCE, attrs)
                self._published.discard(name)
            else:
                self._store.set_gauge(semconv.MODEL_PERFORMANCE, attrs, value)
                self._published.add(name)

    def label_of(self, value: float) -> Any:
        if self._regression:
            return value
        code = int(value)
        return clean_value(self._label_list[code]) if 0 <= code < len(self._label_list) else None

    def _emit_logs(self, pending: list[tuple[Any, ...]]) -> None:
        monitor = self.monitor
        logger = monitor.logger
        if logger is None or self._outcome_log == "none":
            return
        every = self._outcome_log == "all"
        base = dict(monitor.log_base)
        for prediction_id, pred, _proba, actual, arrived, hi, lo, span_id, flags in pending:
            if not (every or flags & _PAYLOAD_LOGGED):
                continue  # its prediction's payload was sampled out: so is the outcome
            attributes = {
                **base,
                semconv.ATTR_PREDICTION_ID: prediction_id,
                semconv.ATTR_OUTCOME_STATUS: MATCHED,
                semconv.ATTR_PREDICTION: self.label_of(pred),
                semconv.ATTR_OUTCOME_ACTUAL: self.label_of(actual),
            }
            context = None
            if span_id:
                span_context = SpanContext(
                    (hi << 64) | lo,
                    span_id,
                    is_remote=False,
                    trace_flags=TraceFlags(flags & _TRACE_FLAGS),
                )
                context = trace.set_span_in_context(NonRecordingSpan(span_context))
            try:
                logger.emit(
                    timestamp=arrived,
                    context=context,
                    severity_number=SeverityNumber.INFO,
                    severity_text="INFO",
                    event_name=semconv.EVENT_OUTCOME,
                    attributes=attributes,
                )
            except Exception as exc:
                tally.error("logs.emit", exc)


_Reading = tuple[
    np.ndarray, np.ndarray | None, np.ndarray | None, np.ndarray | None, np.ndarray | None
]


def _read(
    group: OutputGroup, chosen: list[CallRecord], offsets: list[int], positions: list[int]
) -> _Reading:
    """``(block, labels, top, values, explicit scores)`` of some calls of an output group:
    rows of the monitor's reading where it has one, else read here (as the monitor does)."""
    block = group.block
    if _reading_fits(group, chosen, offsets, positions):
        assert block is not None
        first, last = positions[0], positions[-1]
        rows: slice | np.ndarray
        if last - first + 1 == len(positions):  # consecutive calls: views of the group's rows
            rows = slice(offsets[first], offsets[last + 1])
        else:  # calls mixed with bigger ones, which go in a step of their own
            rows = np.concatenate([np.arange(offsets[p], offsets[p + 1]) for p in positions])
        return (
            block[rows],
            None if group.labels is None else group.labels[rows],
            None if group.top is None else group.top[rows],
            None if group.values is None else group.values[rows],
            None if group.explicit is None else group.explicit[rows],
        )
    first_call = chosen[0]
    block = np.concatenate([rec.output for rec in chosen])
    labels, top, values = interpret_output(
        block, first_call.operation, first_call.output_kind, first_call.class_labels
    )
    explicit = None
    if first_call.scores is not None:
        explicit = np.concatenate([rec.scores for rec in chosen]).astype(np.float64)
    return block, labels, top, values, explicit


def _reading_fits(
    group: OutputGroup, chosen: list[CallRecord], offsets: list[int], positions: list[int]
) -> bool:
    """Whether the rows of some calls of the monitor's reading are what reading those
    calls alone gives: a row-for-row reading, and explicit scores paired row for row."""
    block = group.block
    if block is None:
        return False  # the monitor could not read the group
    n = len(block)
    if not (
        (group.labels is not None and len(group.labels) == n)
        or (group.values is not None and len(group.values) == n)
    ):
        return False  # nothing read (e.g. auto-detection over rows of several calls failed)
    if chosen[0].scores is None:
        return True
    if group.explicit is None or len(group.explicit) != n:
        return False
    return all(
        len(rec.scores) == offsets[p + 1] - offsets[p]
        for rec, p in zip(chosen, positions)
    )
