"""mlotel-owned aggregation for hot-path instruments, exported through OTel readers.

Why not call ``Histogram.record`` per value: the SDK's record path costs several
microseconds per value (attribute hashing, locks, exemplar checks), so a
1,024-row batch would cost milliseconds. Monitors instead hand whole numpy
arrays to :class:`MetricStore`, which bins them with one ``searchsorted`` +
``bincount``. At collection time the store turns its state into ordinary SDK
``Metric`` objects and appends them to what the reader collected: the spec's
*MetricProducer* bridge, which the Python SDK has no public hook for yet, so
:func:`attach_store` wraps the reader's collect callback (the one private SDK
touch-point, kept here).

Temporality follows each reader's preference (cumulative for Prometheus, delta
when the OTLP exporter is asked for it). User ``View``\\ s do not apply to these
instruments.
"""

from __future__ import annotations

import math
import re
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from opentelemetry.sdk.metrics import Counter as SDKCounter
from opentelemetry.sdk.metrics import Exemplar
from opentelemetry.sdk.metrics import Histogram as SDKHistogram
from opentelemetry.sdk.metrics.export import (
    AggregationTemporality,
    Gauge,
    Histogram,
    HistogramDataPoint,
    Metric,
    MetricReader,
    MetricsData,
    NumberDataPoint,
    ResourceMetrics,
    ScopeMetrics,
    Sum,
)
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.util.instrumentation import InstrumentationScope

from . import semconv
from .semconv import Instrument

__all__ = [
    "AttrKey",
    "ExemplarSample",
    "MetricStore",
    "PrometheusExemplars",
    "attach_store",
    "bucket_counts",
]

AttrKey = tuple[tuple[str, Any], ...]
"""Attributes as a hashable, ordered tuple of pairs."""


def bucket_counts(values: np.ndarray, bounds: np.ndarray) -> np.ndarray:
    """Counts per explicit bucket, OTel semantics: bucket i holds (bounds[i-1], bounds[i]].

    >>> bucket_counts(np.array([0.1, 0.5, 0.6, 2.0]), np.array([0.5, 1.0])).tolist()
    [2, 1, 1]
    """
    index = np.searchsorted(bounds, values, side="left")
    return np.bincount(index, minlength=len(bounds) + 1)


@dataclass
class _HistogramState:
    counts: np.ndarray
    total: float = 0.0
    count: int = 0
    minimum: float = float("inf")
    maximum: float = float("-inf")


ExemplarSample = tuple[float, int, int, int]
"""A measured value of a sampled call: ``(value, trace_id, span_id, time_unix_nano)``."""


@dataclass
class _ReaderView:
    """What one reader has not yet been told (delta) or everything so far (cumulative)."""

    histogram_temporality: AggregationTemporality
    counter_temporality: AggregationTemporality
    start_ns: int  # histograms' interval start
    histograms: dict[tuple[str, AttrKey], _HistogramState] = field(default_factory=dict)
    counters: dict[tuple[str, AttrKey], float] = field(default_factory=dict)
    counter_start_ns: int = 0
    # The reservoir: the latest exemplar of each bucket of a series (bounded by its buckets).
    exemplars: dict[tuple[str, AttrKey], dict[int, Exemplar]] = field(default_factory=dict)
    collected_exemplars: dict[tuple[str, AttrKey], list[Exemplar]] = field(default_factory=dict)
    """The exemplars of the last collection, for a pull exporter's exposition."""

    def __post_init__(self) -> None:
        self.counter_start_ns = self.start_ns


class MetricStore:
    """Thread-safe aggregation state, one view per attached reader."""

    def __init__(self, scope_version: str = "") -> None:
        self._lock = threading.RLock()  # re-entrant: a signal handler on this thread
        self._views: dict[int, _ReaderView] = {}
        self._instruments: dict[str, Instrument] = {i.name: i for i in semconv.INSTRUMENTS}
        self._bounds: dict[str, np.ndarray] = {
            i.name: np.asarray(i.buckets, dtype=np.float64)
            for i in semconv.INSTRUMENTS
            if i.buckets is not None
        }
        self._scope = InstrumentationScope(semconv.SCOPE_NAME, scope_version)
        # Gauges hold the last value whatever the reader's temporality: one dict for all.
        self._gauges: dict[tuple[str, AttrKey], tuple[float, int]] = {}

    # --- registration ---------------------------------------------------------
    def add_reader(
        self,
        reader_id: int,
        histogram_temporality: AggregationTemporality = AggregationTemporality.CUMULATIVE,
        counter_temporality: AggregationTemporality = AggregationTemporality.CUMULATIVE,
    ) -> None:
        with self._lock:
            self._views[reader_id] = _ReaderView(
                histogram_temporality, counter_temporality, time.time_ns()
            )

    def reset(self) -> None:
        """Forget every value (used in a forked child: its counts start at zero)."""
        with self._lock:
            now = time.time_ns()
            for view in self._views.values():
                view.histograms.clear()
                view.counters.clear()
                view.start_ns = now
                view.counter_start_ns = now
            self._gauges.clear()

    # --- recording (called by monitors at flush time) --------------------------
    def record_histogram(
        self,
        instrument: Instrument,
        attrs: AttrKey,
        values: np.ndarray,
        exemplars: Sequence[ExemplarSample] = (),
    ) -> None:
        """Add many values of one attribute set to a histogram in one vectorised step.

        ``exemplars``: some of the values with the trace of their (sampled) call, in
        call order; each bucket keeps the latest one as its exemplar.
        """
        if exemplars:
            self._record_exemplars(instrument, attrs, exemplars)
        if values.size == 0:
            return
        values = values.astype(np.float64, copy=False)
        finite = values[np.isfinite(values)]
        if finite.size == 0:
            return
        counts = bucket_counts(finite, self._bounds[instrument.name])
        total = float(finite.sum())
        low = float(finite.min())
        high = float(finite.max())
        key = (instrument.name, attrs)
        with self._lock:
            for view in self._views.values():
                state = view.histograms.get(key)
                if state is None:
                    state = _HistogramState(np.zeros(len(counts), dtype=np.int64))
                    view.histograms[key] = state
                state.counts += counts
                state.total += total
                state.count += int(finite.size)
                state.minimum = min(state.minimum, low)
                state.maximum = max(state.maximum, high)

    def _record_exemplars(
        self, instrument: Instrument, attrs: AttrKey, samples: Sequence[ExemplarSample]
    ) -> None:
        kept = [s for s in samples if math.isfinite(s[0]) and s[1] and s[2]]
        if not kept:
            return
        buckets = np.searchsorted(
            self._bounds[instrument.name], [s[0] for s in kept], side="left"
        ).tolist()
        made = [
            (bucket, Exemplar({}, value, time_ns, span_id, trace_id))
            for bucket, (value, trace_id, span_id, time_ns) in zip(buckets, kept)
        ]
        key = (instrument.name, attrs)
        with self._lock:
            for view in self._views.values():
                reservoir = view.exemplars.get(key)
                if reservoir is None:
                    reservoir = view.exemplars[key] = {}
                reservoir.update(made)

    def add(self, instrument: Instrument, attrs: AttrKey, amount: float = 1) -> None:
        """Add to a monotonic counter."""
        key = (instrument.name, attrs)
        with self._lock:
            for view in self._views.values():
                view.counters[key] = view.counters.get(key, 0) + amount

    def set_gauge(self, instrument: Instrument, attrs: AttrKey, value: float) -> None:
        """Set a gauge's current value (exported to every reader until changed or cleared).

        >>> store = MetricStore()
        >>> store.set_gauge(semconv.FEATURE_DRIFT, (("ml.feature.name", "age"),), 0.25)
        >>> store.gauge_value(semconv.FEATURE_DRIFT, (("ml.feature.name", "age"),))
        0.25
        """
        with self._lock:
            self._gauges[(instrument.name, attrs)] = (float(value), time.time_ns())

    def clear_gauge(self, instrument: Instrument, attrs: AttrKey) -> None:
        """Stop exporting a gauge series (e.g. its window fell below the minimum sample)."""
        with self._lock:
            self._gauges.pop((instrument.name, attrs), None)

    def gauge_value(self, instrument: Instrument, attrs: AttrKey) -> float | None:
        """The value a gauge series currently exports, or None."""
        with self._lock:
            found = self._gauges.get((instrument.name, attrs))
        return None if found is None else found[0]

    # --- collection -----------------------------------------------------------
    def collect(self, reader_id: int) -> list[Metric]:
        """SDK ``Metric`` objects for one reader, honouring its temporality."""
        now = time.time_ns()
        with self._lock:
            view = self._views.get(reader_id)
            if view is None:
                return []
            histograms = list(view.histograms.items())
            counters = list(view.counters.items())
            # Each temporality keeps its own start: a delta collect must not move the
            # start of a cumulative series (that would read as a reset).
            hist_start = view.start_ns
            counter_start = view.counter_start_ns
            exemplars = {
                key: [found[b] for b in sorted(found)] for key, found in view.exemplars.items()
            }
            view.collected_exemplars = exemplars
            if view.histogram_temporality is AggregationTemporality.DELTA:
                view.histograms = {}
                view.exemplars = {}
                view.start_ns = now
            if view.counter_temporality is AggregationTemporality.DELTA:
                view.counters = {}
                view.counter_start_ns = now
            hist_points: dict[str, list[HistogramDataPoint]] = {}
            for (name, attrs), state in histograms:
                hist_points.setdefault(name, []).append(
                    HistogramDataPoint(
                        attributes=dict(attrs),
                        start_time_unix_nano=hist_start,
                        time_unix_nano=now,
                        count=state.count,
                        sum=state.total,
                        bucket_counts=state.counts.tolist(),
                        explicit_bounds=self._bounds[name].tolist(),
                        min=state.minimum,
                        max=state.maximum,
                        exemplars=exemplars.get((name, attrs), []),
                    )
                )
            sum_points: dict[str, list[NumberDataPoint]] = {}
            for (name, attrs), value in counters:
                sum_points.setdefault(name, []).append(
                    NumberDataPoint(
                        attributes=dict(attrs),
                        start_time_unix_nano=counter_start,
                        time_unix_nano=now,
                        value=int(value) if float(value).is_integer() else value,
                    )
                )
            hist_temporality = view.histogram_temporality
            counter_temporality = view.counter_temporality
            gauge_points: dict[str, list[NumberDataPoint]] = {}
            for (name, attrs), (gauge_value, _set_at) in list(self._gauges.items()):
                gauge_points.setdefault(name, []).append(
                    NumberDataPoint(
                        attributes=dict(attrs),
                        start_time_unix_nano=0,
                        time_unix_nano=now,
                        value=gauge_value,
                    )
                )
        metrics = [
            self._metric(
                name, Histogram(data_points=points, aggregation_temporality=hist_temporality)
            )
            for name, points in hist_points.items()
        ]
        metrics += [
            self._metric(
                name,
                Sum(
                    data_points=points,
                    aggregation_temporality=counter_temporality,
                    is_monotonic=True,
                ),
            )
            for name, points in sum_points.items()
        ]
        metrics += [
            self._metric(name, Gauge(data_points=points)) for name, points in gauge_points.items()
        ]
        return metrics

    def collected_exemplars(self, reader_id: int) -> dict[tuple[str, AttrKey], list[Exemplar]]:
        """The exemplars the last collection for ``reader_id`` exported, by series."""
        with self._lock:
            view = self._views.get(reader_id)
            return {} if view is None else dict(view.collected_exemplars)

    def bounds(self, instrument_name: str) -> np.ndarray:
        """Bucket bounds of a histogram instrument."""
        return self._bounds[instrument_name]

    def _metric(self, name: str, data: Histogram | Sum | Gauge) -> Metric:
        inst = self._instruments[name]
        return Metric(name=name, description=inst.description, unit=inst.unit, data=data)

    @property
    def scope(self) -> InstrumentationScope:
        return self._scope


_LABEL_CHARACTER = re.compile(r"[^a-zA-Z0-9_]")


class PrometheusExemplars:
    """A prometheus_client collector that serves another registry's metric families (a
    ``PrometheusMetricReader``'s) with the store's exemplars on their histogram buckets.

    The OTel Prometheus exporter (``opentelemetry-exporter-prometheus`` 0.66b2, the
    version pinned here) builds histogram buckets without exemplars, so mlotel adds its
    own: each ``_bucket`` sample of ``ml.inference.duration`` and ``ml.prediction.score``
    whose series and bucket have one gets ``# {trace_id="…",span_id="…"} value
    timestamp``. prometheus_client writes them in the OpenMetrics format only (what a
    Prometheus with ``--enable-feature=exemplar-storage`` asks for); the classic text
    format has no exemplars.
    """

    def __init__(self, source: Any, store: MetricStore, reader_id: int) -> None:
        self._source = source
        self._store = store
        self._reader_id = reader_id
        self._lock = threading.Lock()
        self._family_names = {
            i.prometheus_name: i.name for i in semconv.INSTRUMENTS if i.kind == "histogram"
        }

    def describe(self) -> list[Any]:
        return []  # (registering must not trigger a collection)

    def collect(self) -> Any:
        with self._lock:  # one collection and its exemplars at a time
            families = list(self._source.collect())
            found = self._store.collected_exemplars(self._reader_id)
        if not found:
            yield from families
            return
        from prometheus_client.samples import Exemplar as PrometheusExemplar

        # series labels (as the exporter writes them) -> {bucket index: exemplar}
        by_series: dict[tuple[str, frozenset[tuple[str, str]]], dict[int, Any]] = {}
        for (name, attrs), exemplars in found.items():
            bounds = self._store.bounds(name)
            labels = frozenset((_LABEL_CHARACTER.sub("_", k), str(v)) for k, v in attrs)
            buckets = np.searchsorted(bounds, [e.value for e in exemplars], side="left")
            by_series[(name, labels)] = {
                int(b): PrometheusExemplar(
                    {"trace_id": f"{e.trace_id:032x}", "span_id": f"{e.span_id:016x}"},
                    e.value,
                    e.time_unix_nano / 1e9,
                )
                for b, e in zip(buckets.tolist(), exemplars)
            }
        for family in families:
            instrument = self._family_names.get(family.name)
            if instrument is not None and family.type == "histogram":
                family.samples = [
                    self._annotated(sample, instrument, by_series) for sample in family.samples
                ]
            yield family

    def _annotated(
        self, sample: Any, name: str, by_series: dict[tuple[str, frozenset[Any]], dict[int, Any]]
    ) -> Any:
        if not sample.name.endswith("_bucket") or sample.exemplar is not None:
            return sample
        labels = frozenset(
            (k, v) for k, v in sample.labels.items() if k != "le" and not k.startswith("otel_")
        )
        found = by_series.get((name, labels))
        if not found:
            return sample
        bound = sample.labels.get("le", "+Inf")
        bounds = self._store.bounds(name)
        index = (
            len(bounds)
            if bound == "+Inf"
            else int(np.searchsorted(bounds, float(bound), side="left"))
        )
        exemplar = found.get(index)
        return sample if exemplar is None else sample._replace(exemplar=exemplar)


def _reader_temporality(reader: MetricReader, kind: type) -> AggregationTemporality:
    table: dict[type, AggregationTemporality] = getattr(reader, "_instrument_class_temporality", {})
    for cls, temporality in table.items():
        if isinstance(cls, type) and issubclass(cls, kind):
            return temporality
    return AggregationTemporality.CUMULATIVE


def attach_store(
    reader: MetricReader,
    store: MetricStore,
    resource: Resource,
    before_collect: Callable[[], None] | None = None,
) -> Callable[[], None]:
    """Make ``reader`` export ``store``'s metrics with its own; returns a detach function.

    ``before_collect`` runs first (monitors flush their buffers) so a scrape
    sees every call that finished before it.
    """
    original: Callable[..., MetricsData | None] | None = getattr(reader, "_collect", None)
    if original is None:
        raise RuntimeError("metric reader is not registered with a MeterProvider yet")
    reader_id = id(reader)
    store.add_reader(
        reader_id,
        _reader_temporality(reader, SDKHistogram),
        _reader_temporality(reader, SDKCounter),
    )

    def collect(metric_reader: MetricReader, timeout_millis: float = 10_000) -> MetricsData | None:
        if before_collect is not None:
            before_collect()
        data = original(metric_reader, timeout_millis=timeout_millis)
        extra = store.collect(reader_id)
        if not extra:
            return data
        return _merge(data, ScopeMetrics(scope=store.scope, metrics=extra, schema_url=""), resource)

    reader._set_collect_callback(collect)  # type: ignore[arg-type]

    def detach() -> None:
        reader._set_collect_callback(original)  # type: ignore[arg-type]

    return detach


def _merge(
    data: MetricsData | None, scope_metrics: ScopeMetrics, resource: Resource
) -> MetricsData:
    if data is None or not data.resource_metrics:
        return MetricsData(
            resource_metrics=[
                ResourceMetrics(resource=resource, scope_metrics=[scope_metrics], schema_url="")
            ]
        )
    first, *rest = data.resource_metrics
    merged: Sequence[ScopeMetrics] = [*first.scope_metrics, scope_metrics]
    return MetricsData(
        resource_metrics=[
            ResourceMetrics(
                resource=first.resource, scope_metrics=merged, schema_url=first.schema_url
            ),
            *rest,
        ]
    )
