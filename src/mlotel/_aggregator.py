"""Per-model aggregation: the bridge from finished calls to metrics and log records.

Hot path: a finished call appends itself to :attr:`ModelAggregator.buffer` (one
``deque.append``; :meth:`ModelAggregator.after_append` only when the buffer reached its
threshold or the call holds large arrays). Flush (size-triggered in the background,
before every metric collection, and at shutdown): outputs are read, payloads built,
and durations, batch sizes, classes and scores of all buffered calls aggregated with
numpy in one pass; one
``ml.prediction`` log record per sampled call is emitted in that call's span context
with its own timestamp; then the analyzers (drift, outcomes) read the same batch.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple, Protocol

import numpy as np
from opentelemetry import trace
from opentelemetry._logs import SeverityNumber
from opentelemetry.context import Context

from . import semconv
from ._config import Settings
from ._metric_store import AttrKey, ExemplarSample, MetricStore
from ._model_io import (
    classes_and_scores,
    clean_value,
    default_names,
    features_payload,
    interpret_output,
    output_array,
    reduce_rows,
    row_fits,
)
from ._otel_logs import Logger
from ._redaction import Redactor
from ._self_telemetry import logger, tally

__all__ = ["Analyzer", "CallRecord", "ModelAggregator", "OutputGroup"]

_EMPTY_CONTEXT = Context()
_set_span_in_context = trace.set_span_in_context
_get_ident = threading.get_ident
_INFO = (SeverityNumber.INFO, "INFO")
_ERROR = (SeverityNumber.ERROR, "ERROR")
_MAX_BUFFERED_BYTES = 64 * 1024 * 1024  # per model; past it the caller flushes (nothing lost)
_WAKE_INPUT_BYTES = 1024 * 1024  # input copies (drift): wake the flusher early
_MAX_BUFFERED_INPUT_BYTES = 4 * 1024 * 1024  # ... and past this the caller flushes
_MAX_LABEL = 128  # longest ml.prediction.class value
_INT64_MIN = -(2**63)  # clean_value turns integers with abs(v) >= 2**63 into strings
_INT64_LIMIT = 2**63
# Exemplar candidates per series and flush (the store keeps the latest of each bucket),
# and how many of a flush's last calls are looked at for them.
_EXEMPLARS_PER_SERIES = 8
_EXEMPLAR_SCAN = 256
# (setting, drop component, attribute, environment variable) of capped metric attributes
_OPERATION_CAP = (
    "max_operations", "operations", semconv.ATTR_OPERATION_NAME, "MLOTEL_MAX_OPERATIONS"
)
_ERROR_TYPE_CAP = (
    "max_error_types", "error_types", semconv.ATTR_ERROR_TYPE, "MLOTEL_MAX_ERROR_TYPES"
)


class CallRecord(Protocol):
    """A finished call as its aggregator and the analyzers read it at flush time
    (:class:`mlotel._call.ObservedCall`)."""

    end_ns: int
    duration: float
    error_type: str | None
    rows: int
    output: Any  # the model's output; an ndarray (or None) once the flush read it
    output_rows: int  # rows of the untrimmed output (0: unknown, use the input's)
    span: trace.Span | None
    prediction_id: str
    class_labels: Sequence[Any] | None
    feature_names: Sequence[str] | None
    scores: Any  # explicit scores (inference().record(scores=...)); an ndarray after reading
    inputs: Any  # what telemetry reads of the input (a snapshot), or None
    row_ids: Any  # ids the caller supplied for the rows (else "<prediction_id>-<row>")
    sampled: bool  # the call's payload is logged

    @property
    def operation(self) -> str: ...

    @property
    def model_name(self) -> str: ...

    @property
    def model_version(self) -> str | None: ...

    @property
    def output_kind(self) -> str: ...

    @property
    def keep_rows(self) -> int | None: ...


class OutputGroup(NamedTuple):
    """Flushed calls with one output layout, and how the monitor read their outputs.

    Analyzers reuse the reading instead of stacking and interpreting the outputs
    again. ``block`` is None when the monitor could not read the group (its error
    is counted); the other arrays are :func:`~mlotel._model_io.interpret_output`'s
    (``top``: the highest probability of each row, before explicit scores), row
    for row with ``block``.
    """

    indexes: list[int]  # positions of the calls in the flushed records, in call order
    block: np.ndarray | None = None  # their outputs, stacked
    labels: np.ndarray | None = None
    top: np.ndarray | None = None
    values: np.ndarray | None = None
    explicit: np.ndarray | None = None  # the calls' explicit scores, stacked (float64)


class Analyzer(Protocol):
    """A flush-time consumer of one model's finished calls (drift, outcomes).

    ``process`` runs on the flushing thread with the batch of records the monitor
    just aggregated, in call order; it records through ``store`` and must be
    bounded in memory. Exceptions are contained and counted per analyzer.
    """

    @property
    def name(self) -> str:
        """Component name for ``mlotel.internal.errors``."""

    @property
    def needs_inputs(self) -> bool:
        """Whether records must carry the call's input object (``CallRecord.inputs``)."""

    def process(
        self, records: Sequence[CallRecord], aggregator: ModelAggregator, store: MetricStore
    ) -> None:
        """Consume one flushed batch of records."""


class ModelAggregator:
    """Aggregates the calls of one model (name + version)."""

    def __init__(
        self,
        model_name: str,
        model_version: str | None,
        framework: str | None,
        settings: Settings,
        store: MetricStore,
        logger: Logger | None,
        wake: Callable[[], None],
    ) -> None:
        self.model_name = model_name
        self.model_version = model_version
        self.framework = framework
        self._settings = settings
        # Read by every finished call (mlotel._call): which calls' payloads are logged.
        self.sample_all = settings.payload_enabled and settings.payload_sample_rate >= 1.0
        self.payload_enabled = settings.payload_enabled  # failed calls: always logged
        self.sample_rate = settings.payload_sample_rate
        self.payload_max_bytes = settings.payload_max_bytes
        self.redactor = Redactor(settings.payload_redact, settings.payload_allow)
        """Which feature values are logged as ``[REDACTED]`` (the drift monitor hides the
        categories of these features too)."""
        self.exception_messages = settings.exception_messages
        """Whether a failed call's span carries the exception's message (mlotel._call)."""
        self._store = store
        self._logger = logger
        self._wake = wake
        self.buffer: deque[CallRecord] = deque()
        """Finished calls waiting for the flush (appended to by mlotel._call)."""
        self._buffered_bytes = 0
        self._input_bytes = 0  # of input copies kept for the analyzers
        # Re-entrant: a signal handler that runs on top of a flush (shutdown on SIGTERM, a
        # predict that hits backpressure) re-enters on the same thread instead of waiting
        # for itself; the nested flush then does nothing (see flush()).
        self._flush_lock = threading.RLock()
        self._flushing = False
        self._flush_owner: int | None = None  # the thread of the flush in progress
        self.threshold = settings.buffer_size
        """Buffered calls at which :meth:`after_append` must run."""
        self._hard_cap = settings.buffer_size * 8
        base: list[tuple[str, Any]] = [(semconv.ATTR_MODEL_NAME, model_name)]
        if model_version is not None:
            base.append((semconv.ATTR_MODEL_VERSION, model_version))
        self.base_attrs: AttrKey = tuple(base)
        self._log_base: dict[str, Any] = dict(base)
        if framework:
            self._log_base[semconv.ATTR_MODEL_FRAMEWORK] = framework
        self._classes: dict[str, None] = {}
        self._capped_values: dict[str, dict[str, None]] = {}  # per cap: values seen
        self._warned: set[str] = set()
        self._payload_in_attributes = settings.payload_location == "attributes"
        self._overflow = model_name == semconv.OTHER_CLASS  # the max_models overflow monitor
        self.analyzers: tuple[Analyzer, ...] = ()
        self.keeps_inputs = False
        # The flush being analysed: its calls grouped by output layout (key: operation,
        # output kind, id(class_labels), ndim, row shape, dtype kind, score row shape).
        self.output_groups: dict[tuple[Any, ...], OutputGroup] = {}

    def attach(self, analyzer: Analyzer) -> None:
        """Add a flush-time analyzer: one per ``name`` (a second drift monitor for the same
        model, e.g. from two ``instrument(reference=...)`` calls, replaces the first instead
        of counting every row twice). Attaching the same object again does nothing."""
        with self._flush_lock:
            if any(a is analyzer for a in self.analyzers):
                return
            kept = tuple(a for a in self.analyzers if a.name != analyzer.name)
            self.analyzers = (*kept, analyzer)
            self.keeps_inputs = any(a.needs_inputs for a in self.analyzers)

    @property
    def logger(self) -> Logger | None:
        """The logger of this model's log records (None when logs are off)."""
        return self._logger

    @property
    def log_base(self) -> dict[str, Any]:
        """Identifying attributes of this model's log records."""
        return self._log_base

    @property
    def buffered(self) -> int:
        """Calls waiting for the next flush."""
        return len(self.buffer)

    @property
    def flushing(self) -> bool:
        """A flush is in progress (on some thread)."""
        return self._flushing

    # --- hot path -----------------------------------------------------------------
    def after_append(self, record: CallRecord) -> None:
        """Backpressure after ``record`` was appended to :attr:`buffer`: bound the buffer
        by bytes (large outputs, copies of every input row) and by calls. The finished
        call runs this when the buffer reached :attr:`threshold` or it holds an array of
        more than 4 KiB."""
        output = record.output
        if type(output) is np.ndarray and output.nbytes > 4096:
            # Large outputs (embeddings, wide score matrices) bound the buffer by bytes too.
            self._buffered_bytes += output.nbytes
            if self._buffered_bytes >= _MAX_BUFFERED_BYTES:
                self.flush()
                return
        inputs = record.inputs
        if self.keeps_inputs and type(inputs) is np.ndarray and inputs.nbytes > 4096:
            # Copies of every input row (for drift) hold more memory per call: a tighter
            # bound, so a tight loop that outruns the flusher keeps little (no regrowth).
            self._input_bytes += inputs.nbytes
            if self._input_bytes >= _MAX_BUFFERED_INPUT_BYTES:
                self.flush()
                return
            if self._input_bytes >= _WAKE_INPUT_BYTES:
                self._wake()
        size = len(self.buffer)
        if size >= self.threshold:
            if size >= self._hard_cap:
                # The background flusher is behind: the caller flushes (backpressure, no loss).
                self.flush()
            else:
                self._wake()

    # --- flush ----------------------------------------------------------------
    def flush(self, timeout: float | None = None, skip_thread: int | None = None) -> bool:
        """Aggregate and emit everything buffered so far. Thread-safe; never raises.

        Returns False, leaving the calls buffered for the next flush, when it did not
        run: called on a thread that is already inside a flush of this model (a signal
        handler), while ``skip_thread`` is flushing it, or when another thread's flush
        did not finish within ``timeout`` seconds.
        """
        if skip_thread is not None and self._flush_owner == skip_thread:
            return False
        lock = self._flush_lock
        if not lock.acquire(True, -1 if timeout is None else max(0.0, timeout)):
            return False
        try:
            if self._flushing:  # re-entered on this thread, from a signal handler
                return False
            self._flushing = True
            self._flush_owner = _get_ident()
            try:
                self._flush_buffered()
            finally:
                self._flushing = False
                self._flush_owner = None
        finally:
            lock.release()
        return True

    def read_buffered(
        self,
        consume: Callable[[list[CallRecord], dict[tuple[Any, ...], OutputGroup]], None],
        wanted: Callable[[CallRecord], bool],
    ) -> None:
        """Hand the ``wanted`` calls buffered now, their outputs read and grouped by layout
        (groups of indexes only), to ``consume``, leaving them buffered: the outcome store
        takes their rows before the flush does the rest (metrics, logs, drift). Runs
        under the flush lock; does nothing when re-entered on a thread inside a flush."""
        with self._flush_lock:
            if self._flushing:
                return
            records = [rec for rec in list(self.buffer) if wanted(rec)]
            if not records:
                return
            _read_outputs(records)
            groups: dict[tuple[Any, ...], OutputGroup] = {}
            for index, rec in enumerate(records):
                out = rec.output
                if rec.error_type is None and out is not None and out.ndim:
                    key = _output_key(rec, out)
                    group = groups.get(key)
                    if group is None:
                        group = groups[key] = OutputGroup([])
                    group.indexes.append(index)
            consume(records, groups)

    def _flush_buffered(self) -> None:
        buffer = self.buffer
        count = len(buffer)
        if not count:
            # Analyzers with queued work (recorded outcomes) still run.
            if any(getattr(a, "pending", False) for a in self.analyzers):
                self._run_analyzers([])
            return
        records = [buffer.popleft() for _ in range(count)]
        self._buffered_bytes = 0
        self._input_bytes = 0
        try:
            self._aggregate(records)
        except Exception as exc:  # fail open: count, never propagate
            tally.error("monitor.flush", exc)

    def _aggregate(self, records: list[CallRecord]) -> None:
        _read_outputs(records)
        payloads = self._payloads(records) if self._logger is not None else {}
        store = self._store
        base = self.base_attrs
        durations: dict[tuple[str, str | None], list[float]] = {}
        sizes: dict[str, list[int]] = {}
        outputs: dict[tuple[Any, ...], list[int]] = {}
        unknown_rows = 0
        for index, rec in enumerate(records):
            durations.setdefault((rec.operation, rec.error_type), []).append(rec.duration)
            sizes.setdefault(rec.operation, []).append(rec.rows)
            if rec.error_type is not None:
                continue
            out = rec.output
            if out is None or out.ndim == 0:
                unknown_rows += rec.output_rows or rec.rows
                continue
            outputs.setdefault(_output_key(rec, out), []).append(index)
        # Metric attributes from calls' values are capped like classes (per model).
        operations = {op: self._capped(op, len(rows), _OPERATION_CAP) for op, rows in sizes.items()}
        duration_exemplars = _duration_exemplars(records)
        for (operation, error_type), seconds in durations.items():
            attrs = (*base, (semconv.ATTR_OPERATION_NAME, operations[operation]))
            exemplars = duration_exemplars.get((operation, error_type), ())
            if error_type is not None:
                error_type = self._capped(error_type, len(seconds), _ERROR_TYPE_CAP)
                attrs = (*attrs, (semconv.ATTR_ERROR_TYPE, error_type))
            store.record_histogram(
                semconv.INFERENCE_DURATION, attrs, np.asarray(seconds), exemplars
            )
        for operation, rows in sizes.items():
            attrs = (*base, (semconv.ATTR_OPERATION_NAME, operations[operation]))
            store.record_histogram(semconv.INFERENCE_BATCH_SIZE, attrs, np.asarray(rows))
        if unknown_rows:
            store.add(semconv.PREDICTIONS, base, unknown_rows)

        # Per-record prediction payloads, filled group by group.
        log_predictions: dict[int, tuple[Any, Any]] = {}
        groups = {key: OutputGroup(indexes) for key, indexes in outputs.items()}
        for key, indexes in outputs.items():
            try:
                self._aggregate_outputs(records, key, indexes, log_predictions, groups, payloads)
            except Exception as exc:
                # One unreadable output group costs its classes/scores only: the other
                # groups, every duration and every log record still go out.
                tally.error("monitor.outputs", exc)
                store.add(semconv.PREDICTIONS, base, _rows(records, indexes))
        if self._logger is not None:
            self._emit_logs(records, log_predictions, payloads)
        if not self.keeps_inputs:  # kept for the payloads only: no analyzer reads them
            for rec in records:
                rec.inputs = None
        self.output_groups = groups
        self._run_analyzers(records)
        self.output_groups = {}

    def _capped(self, value: str, calls: int, cap: tuple[str, str, str, str]) -> str:
        """``value`` as a metric attribute: itself while the model has seen fewer distinct
        values than the cap allows, else ``__other__`` (the calls counted as dropped)."""
        setting, component, attribute, variable = cap
        known = self._capped_values.setdefault(setting, {})
        if value in known:
            return value
        if len(known) < getattr(self._settings, setting):
            known[value] = None
            return value
        tally.drop(component, setting, calls)
        if setting not in self._warned:
            self._warned.add(setting)
            logger.warning(
                "mlotel: model %r has more than %d distinct %s values; later ones are "
                "reported as %s in metrics and counted in mlotel.internal.dropped{reason=%s} "
                "(spans and log records keep them). Raise %s if they are expected.",
                self.model_name,
                getattr(self._settings, setting),
                attribute,
                semconv.OTHER_CLASS,
                setting,
                variable,
            )
        return semconv.OTHER_CLASS

    def _run_analyzers(self, records: list[CallRecord]) -> None:
        for analyzer in self.analyzers:
            try:
                analyzer.process(records, self, self._store)
            except Exception as exc:  # one analyzer's fault costs its own output only
                tally.error(f"analyzer.{analyzer.name}", exc)

    def _aggregate_outputs(
        self,
        records: list[CallRecord],
        key: tuple[Any, ...],
        indexes: list[int],
        log_predictions: dict[int, tuple[Any, Any]],
        groups: dict[tuple[Any, ...], OutputGroup],
        payloads: dict[int, tuple[dict[str, Any], bool]],
    ) -> None:
        store = self._store
        base = self.base_attrs
        operation, output_kind, _, _, _, _, score_shape = key
        first = records[indexes[0]]
        block = np.concatenate([records[i].output for i in indexes])
        labels, top, values = interpret_output(block, operation, output_kind, first.class_labels)
        scores = top
        explicit = None
        if score_shape is not None:
            try:
                explicit = np.concatenate([records[i].scores for i in indexes]).astype(np.float64)
                scores = _explicit_scores(explicit, len(block))
            except (TypeError, ValueError) as exc:  # e.g. a list of dicts: not scores we read
                tally.error("monitor.scores", exc)
                scores = None
        if self.analyzers:  # outcomes store these rows: hand them the reading
            groups[key] = OutputGroup(indexes, block, labels, top, values, explicit)
        if labels is not None:
            self._count_classes(labels)
        else:
            store.add(semconv.PREDICTIONS, base, _rows(records, indexes))
        if scores is not None:
            store.record_histogram(
                semconv.PREDICTION_SCORE, base, scores, _score_exemplars(records, indexes, scores)
            )
        shown = labels if labels is not None else values
        if shown is None and self._logger is not None:
            shown = block
        self._split_for_logs(records, indexes, shown, scores, log_predictions, payloads)

    def _count_classes(self, labels: np.ndarray) -> None:
        kind = labels.dtype.kind
        if kind in "iu" and labels.size and labels.min() >= 0 and labels.max() < 65_536:
            # Class indexes: one bincount instead of a sort.
            tally_counts = np.bincount(labels)
            present = np.flatnonzero(tally_counts)
            names = [str(u) for u in present.tolist()]
            counts = tally_counts[present]
        elif kind in "biuUS":
            uniques, counts = np.unique(labels, return_counts=True)
            names = [
                u.decode("utf-8", "replace") if isinstance(u, bytes) else str(u)
                for u in uniques.tolist()
            ]
        else:  # objects: compare by their text
            text = np.asarray([str(v) for v in labels.tolist()])
            uniques, counts = np.unique(text, return_counts=True)
            names = uniques.tolist()
        # Label values become Prometheus label values: keep them short.
        names = [n if len(n) <= _MAX_LABEL else n[: _MAX_LABEL - 1] + "…" for n in names]
        known = self._classes
        cap = self._settings.max_classes
        overflow = 0
        for name, count in zip(names, counts.tolist()):
            if name not in known:
                if len(known) >= cap:
                    overflow += count
                    continue
                known[name] = None
            self._store.add(
                semconv.PREDICTIONS,
                (*self.base_attrs, (semconv.ATTR_PREDICTION_CLASS, name)),
                count,
            )
        if overflow:
            self._store.add(
                semconv.PREDICTIONS,
                (*self.base_attrs, (semconv.ATTR_PREDICTION_CLASS, semconv.OTHER_CLASS)),
                overflow,
            )
            tally.drop("classes", "max_classes", overflow)

    def _split_for_logs(
        self,
        records: list[CallRecord],
        indexes: list[int],
        shown: np.ndarray | None,
        scores: np.ndarray | None,
        into: dict[int, tuple[Any, Any]],
        payloads: dict[int, tuple[dict[str, Any], bool]],
    ) -> None:
        if self._logger is None:
            return
        offset = 0
        limit = max(1, self._settings.payload_max_bytes // 16)
        # Convert 1-D blocks to Python values once per group, not once per call.
        # (only when calls are small: a batch logs just the rows whose features fit).
        per_group = shown is not None and len(shown) <= 4 * len(indexes)
        shown_list = (
            _clean_list(shown) if per_group and shown is not None and shown.ndim == 1 else None
        )
        score_list = (
            _clean_list(scores) if per_group and scores is not None and scores.ndim == 1 else None
        )
        for i in indexes:
            rec = records[i]
            n = len(rec.output)
            found = payloads.get(i)
            if found is not None:
                # Log the outputs of the rows whose features were logged, so row i of
                # every list belongs together.
                rows = 1 if rec.rows == 1 else _logged_rows(found[0], rec.rows, limit)
                into[i] = (
                    _slice(shown_list, offset, n, rows)
                    if shown_list is not None
                    else _payload_values(shown, offset, n, rows),
                    _slice(score_list, offset, n, rows)
                    if score_list is not None
                    else _payload_values(scores, offset, n, rows),
                )
            offset += n

    def _payloads(self, records: list[CallRecord]) -> dict[int, tuple[dict[str, Any], bool]]:
        """``{index: (feature map, truncated)}`` of the sampled calls.

        One-row numeric array inputs of the same width and names (the common serving
        call) are converted together: one ``tolist`` for the whole group.
        """
        settings = self._settings
        max_bytes = settings.payload_max_bytes
        max_features = settings.max_features
        found: dict[int, tuple[dict[str, Any], bool]] = {}
        rows_by_layout: dict[tuple[int, Any], list[int]] = {}
        for index, rec in enumerate(records):
            if not rec.sampled:
                continue
            x = rec.inputs
            if (
                type(x) is np.ndarray
                and x.dtype.kind in "bif"
                and (x.ndim == 1 or (x.ndim == 2 and x.shape[0] == 1))
                and x.size <= max_features
            ):
                rows_by_layout.setdefault((x.size, rec.feature_names), []).append(index)
                continue
            found[index] = self._payload(rec)
        for (width, given), indexes in rows_by_layout.items():
            names = self._names(given, width)
            if not row_fits(names, width, max_bytes):
                for index in indexes:
                    found[index] = self._payload(records[index])
                continue
            block = np.concatenate([records[i].inputs.reshape(1, -1) for i in indexes])
            if block.dtype.kind == "u" and block.dtype.itemsize == 8:
                block = block.astype(np.float64)
            for index, row in zip(indexes, block.tolist()):
                found[index] = (self._redact(dict(zip(names, row))), False)
        return found

    @staticmethod
    def _names(given: Sequence[str] | None, width: int) -> tuple[str, ...]:
        if given is not None and len(given) == width:
            return given if type(given) is tuple else tuple(given)
        return default_names(width)

    def _payload(self, rec: CallRecord) -> tuple[dict[str, Any], bool]:
        if rec.inputs is None:
            return {}, False
        try:
            payload, truncated, dropped = features_payload(
                rec.inputs,
                rec.feature_names,
                self._settings.payload_max_bytes,
                self._settings.max_features,
                rec.rows,
                self.redactor.value if self.redactor.nested else None,
            )
        except Exception as exc:
            tally.error("payload", exc)
            return {}, True
        if dropped:
            tally.drop("payload", "max_features", dropped)
        return self._redact(payload), truncated

    def _redact(self, payload: dict[str, Any]) -> dict[str, Any]:
        return self.redactor.payload(payload, walk=False)

    def _emit_logs(
        self,
        records: list[CallRecord],
        predictions: dict[int, tuple[Any, Any]],
        payloads: dict[int, tuple[dict[str, Any], bool]],
    ) -> None:
        logger = self._logger
        assert logger is not None
        for index, rec in enumerate(records):
            found = payloads.get(index)
            if found is None:
                continue
            features, truncated = found
            attributes = dict(self._log_base)
            if self._overflow:
                _real_identity(rec, attributes)
            attributes[semconv.ATTR_OPERATION_NAME] = rec.operation
            attributes[semconv.ATTR_PREDICTION_ID] = rec.prediction_id
            attributes[semconv.ATTR_BATCH_SIZE] = rec.rows
            prediction, score = predictions.get(index, (None, None))
            if rec.row_ids is not None:
                _logged_ids(rec, prediction, attributes)
            payload = attributes if self._payload_in_attributes else {}
            if features:
                payload[semconv.ATTR_FEATURES] = features
            if prediction is not None:
                payload[semconv.ATTR_PREDICTION] = prediction
            if score is not None:
                payload[semconv.ATTR_PREDICTION_SCORE] = score
            if truncated:
                attributes[semconv.ATTR_PAYLOAD_TRUNCATED] = True
            severity, severity_text = _INFO
            if rec.error_type is not None:
                attributes[semconv.ATTR_ERROR_TYPE] = rec.error_type
                severity, severity_text = _ERROR
            # From an empty context, not the flushing thread's: no copy of it per record.
            span = rec.span
            context = None if span is None else _set_span_in_context(span, _EMPTY_CONTEXT)
            try:
                logger.emit(
                    timestamp=rec.end_ns,
                    context=context,
                    severity_number=severity,
                    severity_text=severity_text,
                    event_name=semconv.EVENT_PREDICTION,
                    attributes=attributes,
                    body=None if payload is attributes else payload,
                )
            except Exception as exc:
                tally.error("logs.emit", exc)


def _sampled_ids(span: trace.Span | None) -> tuple[int, int] | None:
    """``(trace_id, span_id)`` of a sampled span, else None (exemplars link only to
    traces that were recorded)."""
    if span is None:
        return None
    context = span.get_span_context()
    if not context.trace_flags.sampled:
        return None
    return context.trace_id, context.span_id


def _duration_exemplars(
    records: list[CallRecord],
) -> dict[tuple[str, str | None], list[ExemplarSample]]:
    """Exemplar candidates of ``ml.inference.duration`` per (operation, error type): the
    latest sampled calls of the flush (at most _EXEMPLARS_PER_SERIES each, among its last
    _EXEMPLAR_SCAN calls), in call order."""
    found: dict[tuple[str, str | None], list[ExemplarSample]] = {}
    for rec in records[-1 : -_EXEMPLAR_SCAN - 1 : -1]:
        key = (rec.operation, rec.error_type)
        chosen = found.get(key)
        if chosen is None:
            chosen = found[key] = []
        elif len(chosen) >= _EXEMPLARS_PER_SERIES:
            continue
        ids = _sampled_ids(rec.span)
        if ids is not None:
            chosen.append((rec.duration, ids[0], ids[1], rec.end_ns))
    for chosen in found.values():
        chosen.reverse()
    return found


def _score_exemplars(
    records: list[CallRecord], indexes: list[int], scores: np.ndarray
) -> list[ExemplarSample]:
    """Exemplar candidates of ``ml.prediction.score``: the first row's score of the
    group's latest sampled calls, in call order."""
    found: list[ExemplarSample] = []
    end = len(scores)
    for i in reversed(indexes[-_EXEMPLARS_PER_SERIES:]):
        rec = records[i]
        start = end - len(rec.output)
        if start < 0:
            break  # (scores not row for row with the outputs)
        ids = _sampled_ids(rec.span)
        if ids is not None and end > start:
            found.append((float(scores[start]), ids[0], ids[1], rec.end_ns))
        end = start
    found.reverse()
    return found


def _output_key(rec: CallRecord, out: np.ndarray) -> tuple[Any, ...]:
    """The output layout calls are grouped by (read together as one block)."""
    return (
        rec.operation,
        rec.output_kind,
        id(rec.class_labels),
        out.ndim,
        out.shape[1:],
        out.dtype.kind,
        None if rec.scores is None else rec.scores.shape[1:],
    )


def _read_outputs(records: list[CallRecord]) -> None:
    """Turn each call's output (and explicit scores) into a numpy array, or None."""
    for rec in records:
        if rec.error_type is not None:
            rec.output = None
            continue
        output = rec.output
        if output is not None and type(output) is not np.ndarray:
            keep = rec.keep_rows if rec.scores is None else None
            try:
                read = classes_and_scores(output)
                if read is not None:  # classes with their scores (pipelines, pairs)
                    rec.output = read[0]
                    if rec.scores is None:
                        rec.scores = read[1]
                else:
                    rec.output = output_array(output, keep)
            except Exception as exc:
                tally.error("data.output", exc)
                rec.output = None
        scores = rec.scores
        if scores is not None and type(scores) is not np.ndarray:
            try:
                rec.scores = output_array(scores)
            except Exception as exc:
                tally.error("data.scores", exc)
                rec.scores = None


def _real_identity(rec: CallRecord, attributes: dict[str, Any]) -> None:
    """Log records of overflowed models keep their real name/version (from their spec:
    a span the sampler dropped carries no attributes)."""
    attributes[semconv.ATTR_MODEL_NAME] = rec.model_name
    if rec.model_version is not None:
        attributes[semconv.ATTR_MODEL_VERSION] = rec.model_version


def _logged_ids(rec: CallRecord, prediction: Any, attributes: dict[str, Any]) -> None:
    """Caller-supplied row ids of the logged rows (``ml.prediction.ids``), row for row."""
    try:
        ids = rec.row_ids
        if isinstance(ids, (str, bytes)) or not hasattr(ids, "__len__"):
            ids = [ids]
        shown = len(prediction) if isinstance(prediction, list) else 1
        head = ids[:shown]
        tolist = getattr(head, "tolist", None)
        attributes[semconv.ATTR_PREDICTION_IDS] = [
            str(v) for v in (tolist() if callable(tolist) else list(head))
        ]
    except Exception as exc:
        tally.error("logs.prediction_ids", exc)


def _rows(records: list[CallRecord], indexes: list[int]) -> int:
    """Predicted rows of some calls: the outputs' row counts (outputs may be trimmed)."""
    return sum(records[i].output_rows or records[i].rows for i in indexes)


def _slice(values: list[Any], offset: int, n: int, rows: int) -> Any:
    """One call's values from a group's list: a scalar for one row, else a list."""
    if n == 1:
        return values[offset]
    return values[offset : offset + min(n, rows)]


def _logged_rows(features: dict[str, Any], rows: int, limit: int) -> int:
    """Rows present in a logged feature map (redacted features are scalars: skip them)."""
    for value in features.values():
        if isinstance(value, list):
            return max(1, min(len(value), limit))
    return max(1, min(rows, limit))


def _explicit_scores(block: np.ndarray, rows: int) -> np.ndarray | None:
    """Max score per row from user-supplied scores (a probability matrix or one score a row)."""
    if block.ndim == 2:
        block = reduce_rows(block, np.maximum)
    block = block.reshape(-1)
    return block if len(block) == rows else None


def _payload_values(values: np.ndarray | None, offset: int, n: int, limit: int) -> Any:
    """One call's slice of a stacked output, as log-friendly Python values (capped)."""
    if values is None:
        return None
    part = values[offset : offset + min(n, limit)]
    if n == 1:
        item = part[0]
        if isinstance(item, np.ndarray):
            return _clean_list(item[:limit])
        return clean_value(item)
    if part.ndim > 1:
        part = part.reshape(len(part), -1)[:, 0]
    return _clean_list(part)


def _clean_list(values: np.ndarray) -> list[Any]:
    """``[clean_value(v) for v in values.tolist()]``, skipping the per-value pass where
    it cannot change anything: bool, float (≤ 64 bit) and integers below ±2**63."""
    kind = values.dtype.kind
    if values.ndim == 1 and (
        kind == "b"
        or (kind == "f" and values.dtype.itemsize <= 8)
        or (
            kind in "iu"
            and (
                values.dtype.itemsize < 8
                or not values.size
                or (values.min() > _INT64_MIN and values.max() < _INT64_LIMIT)
            )
        )
    ):
        return values.tolist()  # type: ignore[no-any-return]
    return [clean_value(v) for v in values.tolist()]
