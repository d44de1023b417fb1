"""mlotel overhead benchmark: ratios against bare and hand-written baselines.

Run ``python benchmarks/overhead.py`` (under 2 minutes) or with ``--quick``
(under 30 s). Every number comes from this one process run; see
``benchmarks/README.md`` for what each ratio means and its target.

Method: each variant is timed as one loop of N calls followed by the flush of
everything deferred (mlotel's aggregators and every provider's background queue).
Two clocks per loop: the *caller's* (the loop alone: what requests wait for,
background threads competing for the GIL included) and *all work* (the loop plus the
flush: every microsecond the process spends on the records). The per-call time of a
variant is the median over several repeats; repeats of the variants being compared
are interleaved to cancel drift. All OTel variants share the same providers and null
exporters. ``--profile`` prints where an mlotel call's microseconds go instead.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import io
import json
import logging
import os
import platform
import pstats
import random
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib.metadata import version
from typing import Any

import numpy as np
from opentelemetry._logs import SeverityNumber
from opentelemetry.sdk._logs import LoggerProvider, ReadableLogRecord
from opentelemetry.sdk._logs.export import (
    BatchLogRecordProcessor,
    LogRecordExporter,
    LogRecordExportResult,
)
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF, ALWAYS_ON, Sampler
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client import Counter as PromCounter
from prometheus_client import Histogram as PromHistogram

import mlotel

MODEL = "churn"
MODEL_VERSION = "1"
SPAN_NAME = f"predict {MODEL}"
N_FEATURES = 20
BATCH_ROWS = 1024
FEATURE_NAMES = tuple(f"f{i}" for i in range(N_FEATURES))
PROM_NAME = "prometheus_client + JSON log, 1 row, unsampled span"


# --- null exporters and shared providers -------------------------------------------------


QUEUE_SIZE = 65_536
"""Batch-processor queue size of both providers. The SDK default (2048) drops records
when its export thread is woken late, which happens on a busy machine and would make
the variant that drops look cheaper; a deep queue keeps every record, and the flush at
the end of each loop exports whatever is left."""


class NullSpanExporter(SpanExporter):
    """Accepts and counts spans (the count checks that nothing was dropped)."""

    exported = 0

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        self.exported += len(spans)
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        return None

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return True


class NullLogExporter(LogRecordExporter):
    """Accepts and counts log records."""

    exported = 0

    def export(self, batch: Sequence[ReadableLogRecord]) -> LogRecordExportResult:
        self.exported += len(batch)
        return LogRecordExportResult.SUCCESS

    def shutdown(self) -> None:
        return None

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return True


@dataclass
class Providers:
    """One tracer provider (per sampler), one logger provider, one meter provider."""

    tracer_provider: TracerProvider
    logger_provider: LoggerProvider
    meter_provider: MeterProvider

    def flush(self) -> None:
        """What every baseline does after its loop: drain each provider's queue."""
        self.tracer_provider.force_flush()
        self.logger_provider.force_flush()
        self.meter_provider.force_flush()


SPANS = NullSpanExporter()
LOGS = NullLogExporter()


def tracer_provider(sampler: Sampler) -> TracerProvider:
    provider = TracerProvider(sampler=sampler)
    provider.add_span_processor(BatchSpanProcessor(SPANS, max_queue_size=QUEUE_SIZE))
    return provider


def logger_provider() -> LoggerProvider:
    provider = LoggerProvider()
    provider.add_log_record_processor(BatchLogRecordProcessor(LOGS, max_queue_size=QUEUE_SIZE))
    return provider


def configure_mlotel(providers: Providers, **settings: Any) -> None:
    mlotel.configure(
        tracer_provider=providers.tracer_provider,
        meter_provider=providers.meter_provider,
        logger_provider=providers.logger_provider,
        set_global=False,
        exporter="none",
        prometheus=False,
        local_sink="none",
        payload_enabled=True,
        payload_sample_rate=1.0,
        **settings,
    )


# --- the model and its inputs -----------------------------------------------------------

_RNG = np.random.default_rng(7)
X_ROW = _RNG.random((1, N_FEATURES))
X_BATCH = _RNG.random((BATCH_ROWS, N_FEATURES))
_P1 = _RNG.random(BATCH_ROWS)
BATCH_PROBA = np.column_stack([_P1, 1.0 - _P1])


def model_row(x: np.ndarray) -> np.ndarray:
    """A trivial single-row model: P(no churn), P(churn)."""
    return np.array([[0.3, 0.7]])


def model_batch(x: np.ndarray) -> np.ndarray:
    """A trivial batch model: a precomputed probability matrix of len(x) rows."""
    return BATCH_PROBA


# --- variants ---------------------------------------------------------------------------

Call = Callable[[np.ndarray], Any]


@dataclass
class Variant:
    name: str
    call: Call
    x: np.ndarray
    flush: Callable[[], None]
    calls: int
    spans: int = 0
    """Spans each call must export (checked: a dropped record would flatter a variant)."""
    logs: int = 0
    """OTel log records each call must export."""
    before: Callable[[], None] | None = None
    """Run before each loop, outside the timed region (e.g. turn auto-instrumentation on)."""


def bare_span(providers: Providers, fn: Call) -> Call:
    tracer = providers.tracer_provider.get_tracer("bench.bare")

    def call(x: np.ndarray) -> Any:
        with tracer.start_as_current_span(SPAN_NAME):
            return fn(x)

    return call


def naive_otel(providers: Providers, fn: Call) -> Call:
    """What a user would write by hand with the OTel API for the same signals."""
    tracer = providers.tracer_provider.get_tracer("bench.naive")
    meter = providers.meter_provider.get_meter("bench.naive")
    otel_logger = providers.logger_provider.get_logger("bench.naive")
    predictions = meter.create_counter("naive.predictions", unit="{prediction}")
    duration = meter.create_histogram("naive.inference.duration", unit="s")
    score_hist = meter.create_histogram("naive.prediction.score", unit="1")
    base = {"ml.model.name": MODEL, "ml.model.version": MODEL_VERSION}

    def call(x: np.ndarray) -> Any:
        with tracer.start_as_current_span(SPAN_NAME, attributes=base) as span:
            start = time.perf_counter()
            y = fn(x)
            elapsed = time.perf_counter() - start
            proba = y[0]
            label = int(proba.argmax())
            score = float(proba[label])
            span.set_attribute("ml.batch.size", len(x))
            predictions.add(1, {**base, "ml.prediction.class": str(label)})
            duration.record(elapsed, base)
            score_hist.record(score, base)
            features = dict(zip(FEATURE_NAMES, x[0].tolist()))
            otel_logger.emit(
                event_name="ml.prediction",
                attributes={
                    **base,
                    "ml.prediction.id": format(span.get_span_context().span_id, "016x"),
                    "ml.prediction": label,
                    "ml.prediction.score": score,
                    "ml.features": features,
                },
            )
            return y

    return call


def sdk_floor(providers: Providers, fn: Call) -> Call:
    """The records mlotel emits for a 1-row call, made by hand with the SDK and nothing
    else: the same span (name and attributes) and one log record with the same
    attributes and map body in the span's context. No metrics: this is the floor the
    SDK itself sets for the records."""
    tracer = providers.tracer_provider.get_tracer("bench.floor")
    otel_logger = providers.logger_provider.get_logger("bench.floor")
    base = {
        "ml.model.name": MODEL,
        "ml.model.version": MODEL_VERSION,
        "ml.operation.name": "predict",
    }

    def call(x: np.ndarray) -> Any:
        prediction_id = format(random.getrandbits(64), "016x")
        identity = {**base, "ml.batch.size": len(x), "ml.prediction.id": prediction_id}
        with tracer.start_as_current_span(SPAN_NAME, attributes=identity):
            y = fn(x)
            proba = y[0]
            label = int(proba.argmax())
            otel_logger.emit(
                timestamp=time.time_ns(),
                severity_number=SeverityNumber.INFO,
                severity_text="INFO",
                event_name="ml.prediction",
                attributes=identity,
                body={
                    "ml.features": dict(zip(FEATURE_NAMES, x[0].tolist())),
                    "ml.prediction": label,
                    "ml.prediction.score": float(proba[label]),
                },
            )
            return y

    return call


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        payload = {
            "ts": record.created,
            "level": record.levelname,
            "msg": record.getMessage(),
            **record.__dict__.get("fields", {}),
        }
        return json.dumps(payload)


@dataclass
class PromJson:
    call: Call
    flush: Callable[[], None]


def prometheus_json(providers: Providers, fn: Call) -> PromJson:
    """prometheus_client metrics + one stdlib-logging JSON line (and the same span)."""
    tracer = providers.tracer_provider.get_tracer("bench.prom")
    registry = CollectorRegistry()
    predictions = PromCounter(
        "predictions", "predictions", ["model", "version", "cls"], registry=registry
    )
    latency = PromHistogram("latency_seconds", "latency", ["model", "version"], registry=registry)
    score_hist = PromHistogram(
        "prediction_score",
        "score",
        ["model", "version"],
        registry=registry,
        buckets=(0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0),
    )
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    json_logger = logging.getLogger("bench.predictions")
    json_logger.handlers[:] = [handler]
    json_logger.setLevel(logging.INFO)
    json_logger.propagate = False

    def call(x: np.ndarray) -> Any:
        with tracer.start_as_current_span(SPAN_NAME) as span:
            start = time.perf_counter()
            y = fn(x)
            elapsed = time.perf_counter() - start
            proba = y[0]
            label = int(proba.argmax())
            score = float(proba[label])
            predictions.labels(MODEL, MODEL_VERSION, str(label)).inc()
            latency.labels(MODEL, MODEL_VERSION).observe(elapsed)
            score_hist.labels(MODEL, MODEL_VERSION).observe(score)
            json_logger.info(
                "prediction",
                extra={
                    "fields": {
                        "model": MODEL,
                        "version": MODEL_VERSION,
                        "prediction_id": format(span.get_span_context().span_id, "016x"),
                        "prediction": label,
                        "score": score,
                        "features": dict(zip(FEATURE_NAMES, x[0].tolist())),
                    }
                },
            )
            return y

    def flush() -> None:
        providers.flush()
        generate_latest(registry)  # one scrape, like the metric collection on the OTel side
        stream.seek(0)
        stream.truncate()

    return PromJson(call, flush)


def sklearn_auto_variants(calls: int, batch_calls: int, providers: Providers) -> list[Variant]:
    """The same LogisticRegression.predict call three ways: bare (the original method),
    auto-instrumented (SklearnInstrumentor) and under ``@mlotel.instrument``."""
    try:
        from sklearn.linear_model import LogisticRegression

        from mlotel.integrations.sklearn import SklearnInstrumentor
    except ImportError:  # scikit-learn or opentelemetry-instrumentation not installed
        return []
    clf = LogisticRegression().fit(X_BATCH, (X_BATCH[:, 0] > 0.5).astype(int))
    instrumentor = SklearnInstrumentor()

    def auto_on() -> None:
        if not instrumentor.is_instrumented_by_opentelemetry:
            instrumentor.instrument()

    def auto_off() -> None:
        # predict calls decision_function: with sklearn instrumented, the "bare" call would
        # observe that inner call, so bare and decorated loops run uninstrumented
        if instrumentor.is_instrumented_by_opentelemetry:
            instrumentor.uninstrument()

    def bare(x: np.ndarray) -> Any:
        return clf.predict(x)

    @mlotel.instrument(model_name="LogisticRegression", framework="sklearn")
    def decorated(x: np.ndarray) -> Any:
        return clf.predict(x)

    def auto(x: np.ndarray) -> Any:  # the same extra frame as the two others
        return clf.predict(x)

    def flush() -> None:
        # large payload records can still be queued after mlotel's flush returns: drain
        # them here, or the next variant (the bare call) would pay for their export
        mlotel.force_flush()
        providers.flush()

    variants = []
    for rows, x, n in ((1, X_ROW, calls), (BATCH_ROWS, X_BATCH, batch_calls)):
        variants += [
            Variant(f"sklearn bare predict, {rows} rows", bare, x, noop, n, before=auto_off),
            Variant(f"sklearn auto-instrumented, {rows} rows", auto, x, flush, n, 1, 1, auto_on),
            Variant(
                f"sklearn @mlotel.instrument, {rows} rows", decorated, x, flush, n, 1, 1, auto_off
            ),
        ]
    return variants


STORE_FILL_CALLS = 100_000 // BATCH_ROWS + 1
"""1024-row calls that fill an outcome store of the default size (100,000 rows)."""


def outcome_variants(
    providers: Providers, ml_row: Call, ml_batch: Call, calls: int, batch_calls: int
) -> list[Variant]:
    """The mlotel variants of ratio 4 with outcome tracking on (the default) and off
    (``outcome_store_size=0``). Each loop starts (untimed) from a fresh configuration
    whose store is already full, like a server's after its first 100,000 rows."""

    def tracking(on: bool) -> Callable[[], None]:
        def before() -> None:
            configure_mlotel(providers, **({} if on else {"outcome_store_size": 0}))
            for _ in range(STORE_FILL_CALLS):
                ml_batch(X_BATCH)
            mlotel.force_flush()

        return before

    variants = []
    for state, on in (("on", True), ("off", False)):
        variants += [
            Variant(
                f"mlotel, 1 row, outcomes {state}",
                ml_row,
                X_ROW,
                mlotel.force_flush,
                calls,
                1,
                1,
                tracking(on),
            ),
            Variant(
                f"mlotel, 1024 rows, outcomes {state}",
                ml_batch,
                X_BATCH,
                mlotel.force_flush,
                batch_calls,
                1,
                1,
                tracking(on),
            ),
        ]
    return variants


# --- timing -----------------------------------------------------------------------------


@dataclass
class Timing:
    """Median seconds per call on both clocks."""

    caller: float
    """The loop alone, wall clock: what the calling thread waited (background threads
    holding the GIL meanwhile included)."""
    caller_cpu: float
    """The loop alone, the calling thread's own CPU time (``time.thread_time``): the work
    done on the caller's thread itself, without the background threads' share."""
    total: float
    """The loop plus the flush of everything deferred: all work."""


def run_once(variant: Variant, calls: int) -> tuple[float, float, float]:
    """Seconds per call for one loop of ``calls`` calls: (loop alone, its CPU time on the
    calling thread, loop + flush)."""
    call, x, flush = variant.call, variant.x, variant.flush
    if variant.before is not None:
        variant.before()
    spans, logs = SPANS.exported, LOGS.exported
    gc.collect()
    start = time.perf_counter()
    cpu_start = time.thread_time()
    for _ in range(calls):
        call(x)
    looped = time.perf_counter() - start
    cpu = time.thread_time() - cpu_start
    flush()
    elapsed = time.perf_counter() - start
    missing_spans = calls * variant.spans - (SPANS.exported - spans)
    missing_logs = calls * variant.logs - (LOGS.exported - logs)
    if missing_spans or missing_logs:
        print(
            f"WARNING: {variant.name}: {missing_spans} spans and {missing_logs} log records "
            "not exported (dropped?); its time is flattered",
            file=sys.stderr,
        )
    return looped / calls, cpu / calls, elapsed / calls


def measure(variants: list[Variant], repeats: int) -> dict[str, Timing]:
    """Median seconds per call of each variant; repeats are interleaved across variants."""
    for variant in variants:  # warm up: caches, lazily built aggregators, first exports
        run_once(variant, max(10, variant.calls // 10))
    samples: dict[str, list[tuple[float, float, float]]] = {v.name: [] for v in variants}
    for _ in range(repeats):
        for variant in variants:
            samples[variant.name].append(run_once(variant, variant.calls))
    return {
        name: Timing(*(statistics.median(sample[i] for sample in values) for i in range(3)))
        for name, values in samples.items()
    }


def noop() -> None:
    return None


# --- main -------------------------------------------------------------------------------


def header(quick: bool, calls: int, repeats: int) -> None:
    print("mlotel overhead benchmark")
    print(
        f"python {platform.python_version()} ({platform.python_implementation()}), "
        f"opentelemetry-sdk {version('opentelemetry-sdk')}, "
        f"opentelemetry-api {version('opentelemetry-api')}, numpy {np.__version__}, "
        f"prometheus_client {version('prometheus_client')}, mlotel {version('mlotel')}"
    )
    print(f"{platform.platform()}, {os.cpu_count()} CPUs")
    print(
        f"mode: {'quick' if quick else 'full'}; {calls} single-row calls / "
        f"{max(1, calls // 10)} batch calls per loop, median of {repeats} loops; "
        "every loop ends with a flush of all deferred work, inside the timed region"
    )
    print()


def report(name: str, value: float, target: float, extra: str = "") -> bool:
    print(f"{name}: {value:.2f}x (target ≤ {target:g}{extra})")
    return value <= target


_GROUPS = (
    ("mlotel", ("/mlotel/",)),
    ("OTel SDK + API", ("/opentelemetry/",)),
    ("numpy", ("/numpy/",)),
)


def _group_of(filename: str) -> str:
    for group, markers in _GROUPS:
        if any(marker in filename for marker in markers):
            return group
    return "builtins / other" if filename.startswith("~") or "<" in filename else "other Python"


def _profile_breakdown(profile: cProfile.Profile, calls: int) -> dict[str, float]:
    """Own time (tottime) per call in µs, grouped by where the code lives."""
    stats = pstats.Stats(profile).stats  # type: ignore[attr-defined]
    found: dict[str, float] = {}
    for (filename, _line, _name), (_cc, _nc, tottime, _ct, _callers) in stats.items():
        group = _group_of(filename)
        found[group] = found.get(group, 0.0) + tottime * 1e6 / calls
    return found


def profile_per_call(calls: int = 20_000) -> None:
    """Where the microseconds of a 1-row mlotel call go: the caller's part and the
    deferred part (flush), by code location. cProfile adds its own overhead to every
    function call (it inflates Python-heavy code more), so read the shares, not the
    absolute values; the absolute, unprofiled costs come from the main run."""
    logs = logger_provider()
    meter_provider = MeterProvider(metric_readers=[InMemoryMetricReader()])
    providers = Providers(tracer_provider(ALWAYS_ON), logs, meter_provider)
    # A buffer large enough to keep the whole loop: the flush is profiled on its own.
    configure_mlotel(providers, buffer_size=calls, flush_interval=3600.0)
    ml_row = mlotel.instrument(model_row, model_name=MODEL, model_version=MODEL_VERSION)
    for _ in range(2000):  # warm up
        ml_row(X_ROW)
    mlotel.force_flush()
    providers.flush()
    gc.collect()
    caller = cProfile.Profile()
    caller.enable()
    for _ in range(calls):
        ml_row(X_ROW)
    caller.disable()
    deferred = cProfile.Profile()
    deferred.enable()
    mlotel.force_flush()
    providers.flush()
    deferred.disable()
    mlotel.shutdown()
    print(f"where a 1-row call's time goes (cProfile own time per call, {calls} calls):")
    for title, profile in (("caller's thread", caller), ("deferred (flush, export)", deferred)):
        breakdown = _profile_breakdown(profile, calls)
        total = sum(breakdown.values())
        parts = ", ".join(
            f"{group} {value:.2f} µs ({value / total:.0%})"
            for group, value in sorted(breakdown.items(), key=lambda item: -item[1])
        )
        print(f"  {title}: {total:.2f} µs = {parts}")
    for title, profile in (("caller's thread", caller), ("deferred", deferred)):
        print()
        print(f"{title}, mlotel functions by own time per call:")
        stats = pstats.Stats(profile).stats  # type: ignore[attr-defined]
        rows = [
            (tottime * 1e6 / calls, f"{os.path.basename(fn)}:{line}({name})")
            for (fn, line, name), (_cc, _nc, tottime, _ct, _callers) in stats.items()
            if "/mlotel/" in fn
        ]
        for value, where in sorted(rows, reverse=True)[:8]:
            print(f"  {value:6.2f} µs  {where}")


# --- generate(): added time per generated token (transformers) ----------------------------

GENERATED_TOKENS = 20


def generate_per_token(quick: bool) -> bool | None:
    """A 20-token ``generate()`` of a tiny GPT-2 (built from a config) on CPU, bare and
    auto-instrumented (one span, token counts, first-token timing, GenAI histograms):
    the time mlotel adds per generated token, relative to the bare call's time per token
    (target ≤ 2 %). Bare and instrumented calls alternate; each repeat's ratio includes
    the flush of what the instrumented calls deferred; the 95 % interval is a bootstrap
    of the median per-repeat ratio. None when transformers is not installed."""
    try:
        import torch
        from transformers import GPT2Config, GPT2LMHeadModel
        from transformers import logging as hf_logging
    except ImportError:
        print("generate(): skipped (transformers is not installed)")
        return None
    from mlotel.integrations.transformers import TransformersInstrumentor

    hf_logging.set_verbosity_error()
    torch.set_num_threads(1)  # one core: steadier on a shared machine
    torch.manual_seed(0)
    config = GPT2Config(n_layer=2, n_embd=64, n_head=2, vocab_size=1000, n_positions=128)
    model = GPT2LMHeadModel(config).eval()
    model.generation_config.pad_token_id = 0
    prompt = torch.randint(1, 1000, (1, 8))
    options = {"max_new_tokens": GENERATED_TOKENS, "min_new_tokens": GENERATED_TOKENS}
    providers = Providers(
        tracer_provider(ALWAYS_ON),
        logger_provider(),
        MeterProvider(metric_readers=[InMemoryMetricReader()]),
    )
    configure_mlotel(providers)
    TransformersInstrumentor().instrument()
    # The bare call is the original method (what the wrapper wraps), so the two variants
    # interleave on one model without patching and unpatching between loops.
    original = type(model).generate.__wrapped__

    def bare_generate(x: Any) -> Any:
        return original(model, prompt, do_sample=False, **options)

    def observed_generate(x: Any) -> Any:
        return model.generate(prompt, do_sample=False, **options)

    calls, repeats = (10, 9) if quick else (20, 21)
    clock = time.perf_counter
    with torch.no_grad():
        for _ in range(3):  # warm-up
            bare_generate(None)
            observed_generate(None)
        mlotel.force_flush()
        ratios, bare_times = [], []
        for _ in range(repeats):
            # Calls alternate one by one (a shared machine's noise hits both alike); the
            # flush of everything the observed calls deferred is added to their time.
            bare_time = observed_time = 0.0
            for _ in range(calls):
                start = clock()
                bare_generate(None)
                middle = clock()
                observed_generate(None)
                bare_time += middle - start
                observed_time += clock() - middle
            start = clock()
            mlotel.force_flush()
            observed_time += clock() - start
            ratios.append(observed_time / bare_time)
            bare_times.append(bare_time / calls)
        own = mlotel_work_per_generate(model, prompt, options, providers, 1000 if quick else 3000)
    TransformersInstrumentor().uninstrument()
    mlotel.shutdown()
    rng = np.random.default_rng(0)
    samples = np.asarray(ratios)
    medians = np.median(rng.choice(samples, (2000, len(samples))), axis=1)
    low, high = np.percentile(medians, [2.5, 97.5])
    per_token = statistics.median(bare_times) / GENERATED_TOKENS
    ratio = statistics.median(ratios)
    print()
    print(
        f"generate() of {GENERATED_TOKENS} tokens, tiny GPT-2 (2 layers, 64 wide) on CPU, "
        f"{calls} alternating call pairs x {repeats} repeats; bare: {per_token * 1e3:.3f} ms "
        "per token"
    )
    print(
        f"  added per generated token: {(ratio - 1) * per_token * 1e6:.1f} µs = "
        f"{(ratio - 1) * 100:+.2f} % (95 % CI {(low - 1) * 100:+.2f} … {(high - 1) * 100:+.2f} %)"
    )
    split = 1.0 + own / GENERATED_TOKENS / per_token
    print(
        f"  mlotel's own work (stand-in generate, calling thread's CPU, least of 5): "
        f"{own * 1e6:.1f} µs per call = {own / GENERATED_TOKENS * 1e6:.2f} µs per token "
        f"= {(split - 1) * 100:+.2f} % of the bare time per token"
    )
    print(
        "  (the target is judged on the direct A/B; the split is mlotel's own code in a tight "
        "loop: a larger A/B figure is cost it does not show, e.g. that code run cold)"
    )
    return report("generate(): instrumented / bare time per generated token", ratio, 1.02)


def mlotel_work_per_generate(
    model: Any, prompt: Any, options: dict[str, Any], providers: Providers, calls: int
) -> float:
    """Seconds mlotel adds to one ``generate()`` call, flush included, measured without the
    model's noise: a subclass whose ``generate`` runs the logits processors for 20 steps
    (as generate() does: mlotel's first-token hook among them) and returns a real output,
    observed (the instrumentor wraps subclasses as they are defined) against its original.
    The calling thread's CPU time, every flush on that thread (no background flush during
    the loop), the least of 5 repeats: what other processes do cannot inflate it."""
    from transformers import LogitsProcessorList

    configure_mlotel(providers, buffer_size=4 * calls, flush_interval=3600.0)
    sequences = model.generate(prompt, do_sample=False, **options)
    scores = np.zeros((1, 8))

    class StandIn(type(model)):  # type: ignore[misc]
        def generate(self, inputs: Any = None, logits_processor: Any = None, **kw: Any) -> Any:
            processors = LogitsProcessorList(logits_processor or [])
            for _ in range(GENERATED_TOKENS):
                processors(inputs, scores)
            return sequences

    stand_in = StandIn(model.config).eval()
    original = StandIn.generate.__wrapped__  # type: ignore[attr-defined]
    assert original is not StandIn.generate, "the subclass was not instrumented"
    clock = time.thread_time
    samples = []
    for _ in range(5):
        start = clock()
        for _ in range(calls):
            original(stand_in, prompt, do_sample=False, **options)
        bare = clock() - start
        start = clock()
        for _ in range(calls):
            stand_in.generate(prompt, do_sample=False, **options)
        mlotel.force_flush()
        samples.append((clock() - start - bare) / calls)
    return min(samples)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer, shorter loops (<30 s)")
    parser.add_argument(
        "--profile", action="store_true", help="only print where a call's microseconds go"
    )
    args = parser.parse_args(argv)
    if args.profile:
        profile_per_call()
        return 0
    calls, repeats = (1500, 7) if args.quick else (6000, 21)
    batch_calls = max(1, calls // 10)
    header(args.quick, calls, repeats)

    logs = logger_provider()
    meter_provider = MeterProvider(metric_readers=[InMemoryMetricReader()])
    sampled = Providers(tracer_provider(ALWAYS_ON), logs, meter_provider)
    unsampled = Providers(tracer_provider(ALWAYS_OFF), logs, meter_provider)

    ml_row = mlotel.instrument(model_row, model_name=MODEL, model_version=MODEL_VERSION)
    ml_batch = mlotel.instrument(model_batch, model_name=MODEL, model_version=MODEL_VERSION)

    def mlotel_flush() -> None:
        mlotel.force_flush()

    gc.collect()
    gc.freeze()  # setup objects out of the way of the collector; gc stays on while timing

    # --- sampled tracing: ratios 1, 2, 3 and 5 -----------------------------------------
    configure_mlotel(sampled)
    bare, span, naive = model_row, bare_span(sampled, model_row), naive_otel(sampled, model_row)
    floor = sdk_floor(sampled, model_row)
    flush_a = sampled.flush
    group_a = [
        Variant("bare function, 1 row", bare, X_ROW, noop, calls),
        Variant("bare OTel span, 1 row", span, X_ROW, flush_a, calls, spans=1),
        Variant("SDK floor: same span + same log record", floor, X_ROW, flush_a, calls, 1, 1),
        Variant("naive OTel, 1 row", naive, X_ROW, flush_a, calls, spans=1, logs=1),
        Variant("mlotel, 1 row", ml_row, X_ROW, mlotel_flush, calls, spans=1, logs=1),
        Variant("bare function, 1024 rows", model_batch, X_BATCH, noop, batch_calls),
        Variant("mlotel, 1024 rows", ml_batch, X_BATCH, mlotel_flush, batch_calls, 1, 1),
    ]
    a = measure(group_a, repeats)

    # --- outcome tracking on / off: ratio 5 both ways ------------------------------------
    # Lighter than group A (the full run must stay under 2 minutes): at most 1,500 single-row
    # calls per loop and 7 loops; the batch loops keep group A's flush size.
    outcomes = measure(
        outcome_variants(sampled, ml_row, ml_batch, min(calls, 1500), batch_calls),
        min(repeats, 7),
    )

    # --- tracing sampled out: ratio 4 ---------------------------------------------------
    configure_mlotel(unsampled)
    prom = prometheus_json(unsampled, model_row)
    group_b = [
        Variant(PROM_NAME, prom.call, X_ROW, prom.flush, calls),
        Variant("mlotel, 1 row, unsampled span", ml_row, X_ROW, mlotel_flush, calls, logs=1),
    ]
    b = measure(group_b, repeats)

    # --- auto-instrumented scikit-learn: ratios 6 and 7 ----------------------------------
    configure_mlotel(sampled)
    auto = sklearn_auto_variants(calls, batch_calls, sampled)
    c = measure(auto, repeats) if auto else {}
    if auto:
        from mlotel.integrations import uninstrument_all

        uninstrument_all()  # the auto variant may have been the last to run
    mlotel.shutdown()

    print(
        "absolute time per call (µs, median): caller's clock (wall | calling thread's CPU) "
        "| all work (flush included)"
    )
    for name, timing in {**a, **outcomes, **b, **c}.items():
        print(
            f"  {name:<52} {timing.caller * 1e6:9.2f} | {timing.caller_cpu * 1e6:9.2f} "
            f"| {timing.total * 1e6:9.2f}"
        )
    print()

    overhead_row = a["mlotel, 1 row"].total - a["bare function, 1 row"].total
    overhead_batch = a["mlotel, 1024 rows"].total - a["bare function, 1024 rows"].total
    results = [
        report(
            "1. caller's clock (calling thread's CPU): mlotel / bare OTel span",
            a["mlotel, 1 row"].caller_cpu / a["bare OTel span, 1 row"].caller_cpu,
            1.25,
            "; wall clock of the loop "
            f"{a['mlotel, 1 row'].caller / a['bare OTel span, 1 row'].caller:.2f}x",
        ),
        report(
            "2. all work: mlotel / SDK floor for the same records (span + log record)",
            a["mlotel, 1 row"].total / a["SDK floor: same span + same log record"].total,
            1.25,
        ),
        report(
            "3. all work: mlotel / naive OTel (span + counter + 2 histograms + log)",
            a["mlotel, 1 row"].total / a["naive OTel, 1 row"].total,
            0.5,
        ),
        report(
            "4. all work: mlotel / prometheus_client + JSON logging (span sampled out)",
            b["mlotel, 1 row, unsampled span"].total / b[PROM_NAME].total,
            1.0,
        ),
        report(
            "5. mlotel overhead per 1024-row call / per 1-row call (all work)",
            overhead_batch / overhead_row,
            3.0,
        ),
    ]
    print(
        "   (for comparison with earlier runs: all work, mlotel / bare OTel span "
        f"{a['mlotel, 1 row'].total / a['bare OTel span, 1 row'].total:.2f}x)"
    )
    print()
    print(
        f"mlotel overhead (all work): {overhead_row * 1e6:.2f} µs per 1-row call, "
        f"{overhead_batch * 1e6:.2f} µs per {BATCH_ROWS}-row call "
        f"(mlotel time minus the bare function)"
    )
    print()
    print(
        "outcome tracking (outcome_store_size: default 100,000 = on, 0 = off; store full; "
        "interleaved):"
    )
    overheads = {}
    for state in ("on", "off"):
        row = outcomes[f"mlotel, 1 row, outcomes {state}"].total - a["bare function, 1 row"].total
        batch = (
            outcomes[f"mlotel, 1024 rows, outcomes {state}"].total
            - a["bare function, 1024 rows"].total
        )
        overheads[state] = batch
        print(
            f"  {state:>3}: overhead {row * 1e6:6.2f} µs per 1-row call, {batch * 1e6:7.2f} µs "
            f"per {BATCH_ROWS}-row call; ratio 5: {batch / row:.2f}x"
        )
    print(
        f"  tracking costs {(overheads['on'] - overheads['off']) * 1e6:+.2f} µs per "
        f"{BATCH_ROWS}-row call"
    )
    if c:
        print()
        print(
            "auto-instrumented sklearn LogisticRegression.predict (opentelemetry-instrument path):"
        )
        for rows in (1, BATCH_ROWS):
            bare_time = c[f"sklearn bare predict, {rows} rows"].total
            auto_time = c[f"sklearn auto-instrumented, {rows} rows"].total
            decorated_time = c[f"sklearn @mlotel.instrument, {rows} rows"].total
            auto_added = auto_time - bare_time
            decorated_added = decorated_time - bare_time
            print(
                f"  {rows:5d} rows: instrumented / uninstrumented {auto_time / bare_time:.2f}x; "
                f"added {auto_added * 1e6:.2f} µs vs decorator {decorated_added * 1e6:.2f} µs"
            )
            results.append(
                report(
                    f"{len(results) + 1}. auto-instrumented added time / decorator added time, "
                    f"{rows} rows",
                    auto_added / decorated_added,
                    1.1,
                )
            )
    generated = generate_per_token(args.quick)
    if generated is not None:
        results.append(generated)
    missed = [str(i) for i, ok in enumerate(results, 1) if not ok]
    print(
        f"targets met: {sum(results)}/{len(results)}"
        + (f" (missed: {', '.join(missed)})" if missed else "")
    )
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
