"""Many threads and many concurrent coroutines: no lost counts, no crossed contexts."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest
from opentelemetry import trace

import mlotel
from mlotel import semconv
from mlotel.testing import capture_telemetry, log_payload

THREADS = 8
CALLS_PER_THREAD = 10_000  # 80,000 calls; ~7 s on 2 cores
ASYNC_CALLS = 1_000


def test_threads_lose_no_counts() -> None:
    # payload_enabled=False keeps 80,000 log records out of memory; a buffer this small
    # makes callers hit the backpressure flush (8x buffer) and wake the flusher constantly.
    with capture_telemetry(payload_enabled=False, buffer_size=64) as captured:

        @mlotel.instrument(model_name="threaded", model_version="1")
        def predict(rows: list[list[float]]) -> list[int]:
            return [int(rows[0][0]) % 3]

        barrier = threading.Barrier(THREADS)
        mismatches: list[tuple[int, int]] = []
        crashes: list[BaseException] = []

        def worker(thread_index: int) -> None:
            try:
                barrier.wait(timeout=30)
                for i in range(CALLS_PER_THREAD):
                    value = thread_index * CALLS_PER_THREAD + i
                    if predict([[float(value)]]) != [value % 3]:
                        mismatches.append((thread_index, i))
            except BaseException as exc:  # surfaced below
                crashes.append(exc)

        threads = [threading.Thread(target=worker, args=(t,)) for t in range(THREADS)]
        started = time.monotonic()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=240)
        elapsed = time.monotonic() - started
        assert not any(t.is_alive() for t in threads), "worker threads did not finish"
        assert crashes == []
        assert mismatches == []

        total = THREADS * CALLS_PER_THREAD
        assert captured.histogram_count(semconv.INFERENCE_DURATION.name) == total
        assert captured.histogram_count(semconv.INFERENCE_BATCH_SIZE.name) == total
        assert captured.counter_value(semconv.PREDICTIONS.name) == total
        # the same 80,000 calls, split by predicted class
        for cls in range(3):
            expected = sum(1 for v in range(total) if v % 3 == cls)
            assert (
                captured.counter_value(
                    semconv.PREDICTIONS.name, {semconv.ATTR_PREDICTION_CLASS: str(cls)}
                )
                == expected
            )
        # a second collection reports the same cumulative totals (nothing counted twice)
        assert captured.histogram_count(semconv.INFERENCE_DURATION.name) == total
        spans = captured._spans.get_finished_spans()
        assert len(spans) == total
        assert len({s.context.span_id for s in spans}) == total
        assert captured.logs == []  # payloads are off
    assert captured.internal_errors() == 0, captured.points("mlotel.internal.errors")
    print(f"{total} calls on {THREADS} threads in {elapsed:.1f}s")


@pytest.mark.asyncio
async def test_concurrent_coroutines_keep_their_own_parent_span() -> None:
    with capture_telemetry() as captured:
        caller_tracer = captured.runtime.tracer_provider.get_tracer("caller")

        @mlotel.instrument(model_name="async-model", model_version="1")
        async def predict(rows: list[list[float]]) -> list[float]:
            # interleave with the other 999 calls while this call's span is current
            await asyncio.sleep(0)
            inner = trace.get_current_span()
            await asyncio.sleep(0.001 * (int(rows[0][0]) % 3))
            assert trace.get_current_span() is inner
            return [rows[0][0] * 10.0]

        async def caller(i: int) -> tuple[int, int, int]:
            with caller_tracer.start_as_current_span(f"caller-{i}") as span:
                await asyncio.sleep(0)
                result = await predict([[float(i)]])
                assert result == [i * 10.0]
                # the caller's context is restored after the instrumented call
                assert trace.get_current_span() is span
                ctx = span.get_span_context()
                return i, ctx.trace_id, ctx.span_id

        results = await asyncio.wait_for(
            asyncio.gather(*(caller(i) for i in range(ASYNC_CALLS))), timeout=120
        )
        callers = {span_id: (i, trace_id) for i, trace_id, span_id in results}
        assert len(callers) == ASYNC_CALLS

        spans = captured.spans
        model_spans = [s for s in spans if s.name == "predict async-model"]
        assert len(model_spans) == ASYNC_CALLS
        assert len(spans) == 2 * ASYNC_CALLS
        index_of_span: dict[int, int] = {}
        for span in model_spans:
            assert span.parent is not None
            assert span.parent.span_id in callers, "parent is not a caller span"
            i, trace_id = callers[span.parent.span_id]
            assert span.context.trace_id == trace_id
            index_of_span[span.context.span_id] = i
        # each caller has exactly one child
        assert sorted(index_of_span.values()) == list(range(ASYNC_CALLS))

        # ...and each call's log record is in that call's span, with that call's features
        logs = captured.logs
        assert len(logs) == ASYNC_CALLS
        for record in logs:
            i = index_of_span[record.span_id]
            assert log_payload(record)[semconv.ATTR_FEATURES] == {"f0": float(i)}
            assert log_payload(record)[semconv.ATTR_PREDICTION] == pytest.approx(i * 10.0)
        assert captured.histogram_count(semconv.INFERENCE_DURATION.name) == ASYNC_CALLS
