"""An integration instrumented for the length of a ``with`` block. Usage::

    with capture_telemetry() as cap:
        with instrumented(TorchInstrumentor):
            model(x)
        cap.flush()  # after uninstrument(), as a service shutting down would
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from mlotel.integrations import MLInstrumentor

__all__ = ["instrumented"]

InstrumentorT = TypeVar("InstrumentorT", bound=MLInstrumentor)


@contextmanager
def instrumented(cls: type[InstrumentorT], **options: Any) -> Iterator[InstrumentorT]:
    """``cls().instrument(**options)``, then the block, then ``cls().uninstrument()`` even
    when the block raises (instrumentors are singletons: both calls reach the same one)."""
    cls().instrument(**options)
    try:
        yield cls()
    finally:
        cls().uninstrument()
