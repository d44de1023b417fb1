"""Delayed ground truth: prediction ids, the outcome join, windowed performance, and
joining outcomes to payload logs in another process.

>>> import mlotel, mlotel.testing
>>> with mlotel.testing.capture_telemetry():
...     clf = mlotel.instrument(lambda rows: [r[0] > 0 for r in rows], model_name="sign")
...     _ = clf([[1.0], [-1.0]])
...     mlotel.outcomes.record_outcomes(mlotel.outcomes.last_prediction_ids(), [True, True])
{'matched': 2, 'unknown_id': 0, 'late': 0, 'duplicate': 0, 'invalid': 0}
"""

from __future__ import annotations

from ._from_logs import performance_from_logs, predictions_from_logs
from ._ids import last_prediction_ids, prediction_ids
from ._join import record_outcome, record_outcomes

__all__ = [
    "last_prediction_ids",
    "performance_from_logs",
    "prediction_ids",
    "predictions_from_logs",
    "record_outcome",
    "record_outcomes",
]
