"""Reading what telemetry needs from a CUDA device without making the caller wait.

CUDA kernels run asynchronously: any host read of a device tensor (``.cpu()``,
``.item()``, ``.numpy()``) waits for every kernel queued before it, and a caller
that waits can no longer prepare the next batch while the GPU works. So on the
caller's path the torch and transformers integrations only *enqueue* work:

* copies of the rows telemetry reads into pinned host memory
  (``copy_(non_blocking=True)``), bounded: outputs up to :data:`MAX_COPY_BYTES`
  (rows past it are not read, and are counted as dropped ``device_copy_bytes``),
  inputs only as far as a payload log record shows them, or every row (within the
  same bound) when a drift monitor reads them;
* CUDA events at the call's start, at its end, and after the copies.

The flush (the background thread) waits on the last event (normally long
complete by then), reads the copies, and takes the call's GPU time from the events:
``ml.inference.duration`` is the longer of the host time and the GPU time between
the call's start and end events (the call's own kernels; time spent queued behind
earlier GPU work is not in it).

All CUDA calls go through :class:`CudaOps`, so CPU-only tests can replace it with a
recording fake and check that the caller's thread never waits.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .._model_io import DeferredArray, torch_to_numpy
from .._self_telemetry import tally

__all__ = ["MAX_COPY_BYTES", "CudaOps", "PendingReads"]

MAX_COPY_BYTES = 4 * 1024 * 1024
"""Most bytes of one tensor copied to the host for telemetry per call."""



class CudaOps:
    """The CUDA calls of the no-stall path (tests substitute a fake: see the module doc)."""

    def __init__(self, torch: Any) -> None:
        self._torch = torch
        self._event = torch.cuda.Event

    def on_device(self, tensor: Any) -> bool:
        """Whether reading ``tensor`` on the host would wait for a device."""
        return bool(tensor.device.type == "cuda")

    def marker(self) -> Any:
        """A timing event recorded on the current stream now (returns at once)."""
        event = self._event(enable_timing=True)
        event.record()
        return event

    def pinned_empty(self, shape: tuple[int, ...], dtype: Any) -> Any:
        """A page-locked host tensor (from torch's caching host allocator)."""
        return self._torch.empty(shape, dtype=dtype, pin_memory=True)

    def wait(self, marker: Any) -> None:
        """Block until the work before ``marker`` is done (flush thread only)."""
        marker.synchronize()

    def seconds_between(self, start: Any, end: Any) -> float:
        """GPU time between two completed markers."""
        return float(start.elapsed_time(end)) / 1000.0


class PendingReads:
    """Device→host copies and timing markers of one call, resolved at flush time.

    Made after the model returned: ``end`` is recorded first (the copies are not the
    model's time), then each :meth:`copy` enqueues a non-blocking copy, and
    :meth:`seal` records the event the flush waits on.
    """

    __slots__ = ("_done", "_on_resolve", "_ops", "end", "start")

    def __init__(self, ops: CudaOps, start: Any) -> None:
        self._ops = ops
        self.start = start
        self.end = ops.marker() if start is not None else None
        self._done: Any = None
        self._on_resolve: Callable[[float | None], None] | None = None

    def copy(self, tensor: Any, max_rows: int | None, component: str) -> DeferredArray | None:
        """A deferred host copy of ``tensor``'s first ``max_rows`` rows (None: all rows),
        within :data:`MAX_COPY_BYTES`."""
        shape = tuple(tensor.shape)
        if not shape:
            head = tensor.detach().reshape(1)
        else:
            row_bytes = max(1, tensor[:1].numel() * tensor.element_size())
            rows = shape[0] if max_rows is None else min(shape[0], max_rows)
            fit = max(1, MAX_COPY_BYTES // row_bytes)
            if rows > fit:
                if max_rows is None:  # rows a metric would have read: say so
                    tally.drop(component, "device_copy_bytes", rows - fit)
                rows = fit
            head = tensor.detach()[:rows]
        host = self._ops.pinned_empty(tuple(head.shape), head.dtype)
        host.copy_(head, non_blocking=True)
        return DeferredArray(lambda: self._read(host), tuple(host.shape))

    def seal(self, on_resolve: Callable[[float | None], None] | None = None) -> None:
        """Record the event the flush waits on; ``on_resolve`` gets the GPU seconds between
        start and end (None without a start marker) when the first copy is read."""
        self._done = self._ops.marker()
        self._on_resolve = on_resolve

    def _read(self, host: Any) -> Any:
        ops = self._ops
        ops.wait(self._done)
        callback = self._on_resolve
        if callback is not None:
            self._on_resolve = None
            gpu = ops.seconds_between(self.start, self.end) if self.start is not None else None
            callback(gpu)
        return torch_to_numpy(host)
