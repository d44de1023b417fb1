"""Background traffic for live tests: calls ``step()`` from a thread every 20 ms.

A failure inside the thread is kept and raised again by ``stop()``, in the test's
thread, so an assertion about the traffic (e.g. every outcome matched) fails the test.
"""

from __future__ import annotations

import threading
from typing import Any

import numpy as np


class BackgroundTraffic:
    """Subclasses implement :meth:`step` (one model call and its outcomes)."""

    interval = 0.02

    def __init__(self, model: Any, features: np.ndarray, target: np.ndarray) -> None:
        self.model, self.features, self.target = model, features, target
        self.calls = 0
        self.failure: BaseException | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def step(self) -> None:
        raise NotImplementedError

    def _run(self) -> None:
        try:
            while not self._stop.wait(self.interval):
                self.step()
        except BaseException as exc:  # reported by stop(), in the test's thread
            self.failure = exc

    def start(self) -> BackgroundTraffic:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)
        if self.failure is not None:
            raise AssertionError("the traffic thread failed") from self.failure
