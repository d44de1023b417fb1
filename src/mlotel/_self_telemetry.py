"""Fail-open bookkeeping: contained faults and deliberate drops, counted and logged once.

A fault inside mlotel never reaches the caller of ``predict``: it increments
``mlotel.internal.errors{mlotel.component}`` and is logged once per component
through the stdlib ``mlotel`` logger. Deliberate drops (caps) increment
``mlotel.internal.dropped{mlotel.component, mlotel.drop.reason}``.
"""

from __future__ import annotations

import logging
import threading
import traceback
from collections import Counter

from . import semconv
from ._metric_store import MetricStore

__all__ = ["Tally", "logger", "tally"]

logger = logging.getLogger("mlotel")


class Tally:
    """Process-wide counts of contained errors and drops, mirrored into the metric store."""

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self.errors: Counter[str] = Counter()
        self.dropped: Counter[tuple[str, str]] = Counter()
        self._logged: set[str] = set()
        self.store: MetricStore | None = None
        self.hide_messages = False
        """Log internal errors without their messages (set while redaction is configured)."""

    def error(self, component: str, exc: BaseException | None = None, log: bool = True) -> None:
        """Count one contained fault in ``component``; log it the first time."""
        with self._lock:
            self.errors[component] += 1
            first = log and component not in self._logged
            self._logged.add(component)
            store = self.store
        if store is not None:
            store.add(semconv.INTERNAL_ERRORS, ((semconv.ATTR_COMPONENT, component),))
        if first and exc is not None and self.hide_messages:
            # Redaction is configured: an error message may quote an input value.
            logger.warning(
                "mlotel contained an internal error in %s (the predict call was not affected; "
                "further errors here are only counted in mlotel.internal.errors): %s (message "
                "hidden: payload redaction is configured)\n%s",
                component,
                type(exc).__qualname__,
                "".join(traceback.format_tb(exc.__traceback__)),
            )
        elif first:
            logger.warning(
                "mlotel contained an internal error in %s (the predict call was not affected; "
                "further errors here are only counted in mlotel.internal.errors)",
                component,
                exc_info=exc,
            )

    def drop(self, component: str, reason: str, amount: int = 1) -> None:
        """Count values dropped on purpose (a cap was reached)."""
        if amount <= 0:
            return
        with self._lock:
            self.dropped[(component, reason)] += amount
            store = self.store
        if store is not None:
            store.add(
                semconv.INTERNAL_DROPPED,
                ((semconv.ATTR_COMPONENT, component), (semconv.ATTR_DROP_REASON, reason)),
                amount,
            )

    def after_fork(self) -> None:
        self._lock = threading.RLock()
        self.store = None

    def reset(self) -> None:
        with self._lock:
            self.errors.clear()
            self.dropped.clear()
            self._logged.clear()


tally = Tally()
