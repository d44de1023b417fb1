"""``record_outcome`` / ``record_outcomes``: join ground truth to recent predictions.

The ids are looked up in each model's :class:`~mlotel.outcomes._tracker.OutcomeTracker`
of the current configuration. A prediction still in a buffer has its rows put into the
outcome store first (only that); the rest — the window, ``ml.model.performance``, the
outcomes' log records, and the buffered calls' own metrics, logs and drift — is done by
the flush, off the caller's thread (the flusher is woken).
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

from .. import _lifecycle, semconv
from .._metric_store import AttrKey
from .._runtime import Runtime
from ._ids import as_list
from ._tracker import MATCHED, UNKNOWN_ID, InvalidActual, OutcomeTracker

__all__ = ["record_outcome", "record_outcomes"]

_time_ns = time.time_ns


def _runtime_now() -> Runtime | None:
    runtime = _lifecycle.current
    if runtime is None or runtime.stale:
        runtime = _lifecycle.lazy_runtime()
    return None if runtime.disabled else runtime


def _trackers(runtime: Runtime, model_name: str | None) -> list[OutcomeTracker]:
    trackers = list(runtime.outcome_trackers.values())
    if model_name is not None:
        trackers = [t for t in trackers if t.model_name == model_name]
    return trackers


def _count_unknown(runtime: Runtime, model_name: str | None, amount: int) -> None:
    if not amount:
        return
    attrs: AttrKey = ((semconv.ATTR_OUTCOME_STATUS, UNKNOWN_ID),)
    if model_name is not None:
        attrs = ((semconv.ATTR_MODEL_NAME, model_name), *attrs)
    runtime.store.add(semconv.OUTCOMES, attrs, amount)


def _store_buffered(runtime: Runtime, model_name: str | None) -> bool:
    """Put the rows of calls still buffered (or being flushed by another thread right
    now: this waits for it) into the outcome stores: only that, on the caller's thread;
    their metrics, log records and drift wait for the flush. True when a model had any."""
    stored = False
    for tracker in _trackers(runtime, model_name):
        if tracker.monitor.buffered or tracker.monitor.flushing:
            tracker.insert_buffered()  # (waits for a flush in progress)
            stored = True
    return stored


def _wake(runtime: Runtime, counts: dict[str, int] | str) -> None:
    """Matched outcomes wait for the flush (window, metrics, their log records): wake
    the flusher instead of doing that work on the caller's thread."""
    matched = counts == MATCHED if isinstance(counts, str) else counts.get(MATCHED, 0) > 0
    if matched:
        runtime.wake()


def record_outcome(prediction_id: Any, actual: Any, *, model_name: str | None = None) -> str:
    """Join the ground truth of one predicted row; returns its ``ml.outcome.status``.

    ``prediction_id`` is an id from :func:`last_prediction_ids` (or one you
    supplied); ``actual`` is the true label (classifiers) or value (regression).
    ``model_name`` limits the search to that model; by default every model is
    searched. Statuses: ``matched`` (joined; counts toward ``ml.model.performance``),
    ``unknown_id`` (never seen, or evicted from the store), ``late`` (older than
    ``outcome_ttl``), ``duplicate`` (already matched), or ``disabled`` when mlotel is
    off. Raises ``ValueError`` (after counting ``invalid``) when ``actual`` is None,
    NaN, or of another type than the model's predictions.

    >>> import mlotel, mlotel.testing
    >>> with mlotel.testing.capture_telemetry():
    ...     clf = mlotel.instrument(lambda rows: [1 for _ in rows], model_name="ones")
    ...     _ = clf([[0.5], [0.7]])
    ...     first, second = mlotel.last_prediction_ids()
    ...     mlotel.record_outcome(first, 1), mlotel.record_outcome(first, 1)
    ('matched', 'duplicate')
    """
    runtime = _runtime_now()
    if runtime is None:
        return "disabled"
    key = prediction_id if type(prediction_id) is str else str(prediction_id)
    now = _time_ns()
    for attempt in range(2):
        for tracker in _trackers(runtime, model_name):
            try:
                status = tracker.join_one(key, actual, now)
            except InvalidActual as exc:
                raise ValueError(f"mlotel.record_outcome({key!r}): {exc}") from None
            if status is not None:
                tracker.count(status, 1)
                _wake(runtime, status)
                return status
        # The prediction may still sit in a monitor's buffer: store it, then look again.
        if attempt or not _store_buffered(runtime, model_name):
            break
    _count_unknown(runtime, model_name, 1)
    return UNKNOWN_ID


def record_outcomes(
    prediction_ids: Iterable[Any], actuals: Iterable[Any], *, model_name: str | None = None
) -> dict[str, int]:
    """Join many outcomes at once; returns counts by status (``invalid`` included).

    Vectorised: one dict lookup per id, the rest in numpy. Unlike
    :func:`record_outcome` an unusable actual does not raise: it is counted as
    ``invalid`` (in the result and in ``ml.outcomes``).

    >>> import mlotel, mlotel.testing
    >>> with mlotel.testing.capture_telemetry():
    ...     clf = mlotel.instrument(lambda rows: [r[0] > 0 for r in rows], model_name="sign")
    ...     _ = clf([[1.0], [-1.0], [2.0]])
    ...     ids = mlotel.last_prediction_ids()
    ...     counts = mlotel.record_outcomes(ids + ["nope-0"], [True, True, None, False])
    >>> counts["matched"], counts["unknown_id"], counts["invalid"]
    (2, 1, 1)
    """
    ids = [v if type(v) is str else str(v) for v in as_list(prediction_ids)]
    values = as_list(actuals)
    if len(ids) != len(values):
        raise ValueError(
            f"mlotel.record_outcomes: {len(ids)} ids but {len(values)} actuals (one each)"
        )
    totals = dict.fromkeys(semconv.OUTCOME_STATUSES, 0)
    runtime = _runtime_now()
    if runtime is None:
        return totals
    now = _time_ns()
    remaining = list(range(len(ids)))
    for attempt in range(2):
        for tracker in _trackers(runtime, model_name):
            if not remaining:
                break
            counts, remaining = tracker.join_many(ids, values, remaining, now)
            for status, amount in counts.items():
                totals[status] += amount
                tracker.count(status, amount)
        if not remaining or attempt or not _store_buffered(runtime, model_name):
            break
    _wake(runtime, totals)
    totals[UNKNOWN_ID] += len(remaining)
    _count_unknown(runtime, model_name, len(remaining))
    return totals
