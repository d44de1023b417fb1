"""Prediction ids: generated ``"<call id>-<row>"`` ids, ids supplied by the caller, and
the ids of the last call made in this thread / async task.

Every predicted row has an id. Generated ids are ``"<call id>-<row>"`` (the call
id is the span's and log record's ``ml.prediction.id``, 16 hex digits; the row
is the 0-based row of the call's output). Ids supplied by the caller
(:func:`prediction_ids`, ``instrument(prediction_ids=...)``) replace them.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator
from contextvars import ContextVar
from typing import Any, Protocol

from .._self_telemetry import tally

__all__ = [
    "IdentifiedCall",
    "as_list",
    "get_supplied",
    "last_prediction_ids",
    "prediction_ids",
    "set_last_ids",
    "span_ids",
    "supplied_ids",
]

_MAX_SPAN_IDS = 64  # user-supplied ids put on the span (all of them go to the store)



class IdentifiedCall(Protocol):
    """What :func:`last_prediction_ids` reads of the last call (an ``ObservedCall``)."""

    prediction_id: str
    rows: int
    output_rows: int
    row_ids: Any


_last_ids: ContextVar[IdentifiedCall | None] = ContextVar(
    "mlotel_last_prediction_ids", default=None
)
_supplied: ContextVar[Any] = ContextVar("mlotel_prediction_ids", default=None)
set_last_ids = _last_ids.set
"""Record the call that just finished (None: it has no prediction ids)."""
get_supplied = _supplied.get
"""The ids supplied by an enclosing :func:`prediction_ids` block, or None."""


def as_list(ids: Any) -> list[Any]:
    if isinstance(ids, (str, bytes)) or not isinstance(ids, Iterable):
        return [ids]  # one id for a one-row call
    tolist = getattr(ids, "tolist", None)  # numpy arrays, pandas Series/Index
    return list(tolist()) if callable(tolist) else list(ids)


def last_prediction_ids() -> list[str]:
    """Ids of the rows of the last instrumented call made in this thread / async task.

    One id per output row, in row order: the ids given through
    :func:`prediction_ids` / ``instrument(prediction_ids=...)``, else generated
    ``"<call id>-<row>"`` ids. Empty before any call, after a failed call, and after a
    call whose output is no prediction to join outcomes to (``transform``,
    ``decision_function``, ``score_samples``, ``embed``, or ``output="none"``).

    >>> import mlotel, mlotel.testing
    >>> with mlotel.testing.capture_telemetry():
    ...     double = mlotel.instrument(lambda rows: [2 * r[0] for r in rows], model_name="x2")
    ...     _ = double([[1.0], [2.0]])
    ...     ids = mlotel.last_prediction_ids()
    >>> len(ids), ids[1].endswith("-1")
    (2, True)
    """
    call = _last_ids.get()
    if call is None:
        return []
    if call.row_ids is not None:
        return [str(v) for v in as_list(call.row_ids)]
    call_id = call.prediction_id
    return [f"{call_id}-{row}" for row in range(call.output_rows or call.rows)]


@contextlib.contextmanager
def prediction_ids(ids: Any) -> Iterator[None]:
    """Use your own ids (order ids, request ids) for the rows predicted inside the block.

    ``ids`` is one id per row of each call made in the block (a list, array,
    Series, or a single id for a one-row call); they are converted with ``str``.

    >>> import mlotel, mlotel.testing
    >>> with mlotel.testing.capture_telemetry():
    ...     score = mlotel.instrument(lambda rows: [0.5 for _ in rows], model_name="s")
    ...     with mlotel.prediction_ids(["order-17", "order-18"]):
    ...         _ = score([[1.0], [2.0]])
    ...     mlotel.last_prediction_ids()
    ['order-17', 'order-18']
    """
    token = _supplied.set(ids)
    try:
        yield
    finally:
        _supplied.reset(token)


def supplied_ids(source: Any, features: Any) -> Any:
    """Ids from ``instrument(prediction_ids=...)``: a callable of the input, or the name
    of an id column of a DataFrame / dict input."""
    if callable(source):
        return source(features)
    try:
        return features[source]
    except (KeyError, IndexError, TypeError, ValueError):
        # An input without the id column: generated ids, a counted drop (not a fault).
        tally.drop("outcomes", "prediction_ids_column")
        return None


def span_ids(ids: Any) -> list[str]:
    """The first user-supplied ids of a call, for its span attribute (bounded work)."""
    if isinstance(ids, (str, bytes)) or not isinstance(ids, Iterable):
        return [str(ids)]
    head = ids[:_MAX_SPAN_IDS] if hasattr(ids, "__getitem__") else ids
    return [str(v) for v in as_list(head)[:_MAX_SPAN_IDS]]
