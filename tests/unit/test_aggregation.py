"""The metric store: OTel bucket semantics and per-reader temporality."""

from __future__ import annotations

import numpy as np
from opentelemetry.sdk.metrics import Histogram
from opentelemetry.sdk.metrics.export import AggregationTemporality, InMemoryMetricReader

import mlotel
from mlotel import semconv
from mlotel._metric_store import MetricStore, bucket_counts


def test_bucket_upper_bounds_are_inclusive() -> None:
    bounds = np.array([1.0, 2.0])
    assert bucket_counts(np.array([1.0, 1.5, 2.0, 2.5, -1.0]), bounds).tolist() == [2, 2, 1]


def test_cumulative_and_delta_views() -> None:
    store = MetricStore()
    store.add_reader(1)
    store.add_reader(2, AggregationTemporality.DELTA, AggregationTemporality.DELTA)
    attrs = (("ml.model.name", "m"),)
    store.record_histogram(semconv.PREDICTION_SCORE, attrs, np.array([0.05, 0.95, np.nan]))
    store.add(semconv.PREDICTIONS, attrs, 3)
    first_cum = {m.name: m for m in store.collect(1)}
    first_delta = {m.name: m for m in store.collect(2)}
    store.add(semconv.PREDICTIONS, attrs, 2)
    second_cum = {m.name: m for m in store.collect(1)}
    second_delta = {m.name: m for m in store.collect(2)}
    hist = first_cum["ml.prediction.score"].data.data_points[0]
    assert hist.count == 2  # NaN is not a value
    assert hist.min == 0.05 and hist.max == 0.95
    assert list(hist.bucket_counts) == [1, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0]
    assert first_delta["ml.predictions"].data.data_points[0].value == 3
    assert second_cum["ml.predictions"].data.data_points[0].value == 5
    assert second_delta["ml.predictions"].data.data_points[0].value == 2
    assert "ml.prediction.score" not in second_delta
    assert (
        second_delta["ml.predictions"].data.aggregation_temporality is AggregationTemporality.DELTA
    )


def test_delta_reader_through_configure() -> None:
    reader = InMemoryMetricReader(preferred_temporality={Histogram: AggregationTemporality.DELTA})
    mlotel.configure(exporter="none", metric_readers=[reader], set_global=False)
    predict = mlotel.instrument(lambda x: [1], model_name="d")
    predict([[1.0]])
    predict([[1.0]])
    points = _points(reader, "ml.inference.duration")
    assert sum(p.count for p in points) == 2
    predict([[1.0]])
    points = _points(reader, "ml.inference.duration")
    assert sum(p.count for p in points) == 1
    mlotel.shutdown()


def _points(reader: InMemoryMetricReader, name: str) -> list:
    data = reader.get_metrics_data()
    assert data is not None
    return [
        p
        for rm in data.resource_metrics
        for sm in rm.scope_metrics
        for m in sm.metrics
        if m.name == name
        for p in m.data.data_points
    ]


def test_mixed_temporalities_keep_cumulative_start() -> None:
    store = MetricStore()
    store.add_reader(1, AggregationTemporality.CUMULATIVE, AggregationTemporality.DELTA)
    attrs = (("ml.model.name", "m"),)
    store.record_histogram(semconv.PREDICTION_SCORE, attrs, np.array([0.5]))
    store.add(semconv.PREDICTIONS, attrs, 1)
    first = {m.name: m for m in store.collect(1)}
    store.record_histogram(semconv.PREDICTION_SCORE, attrs, np.array([0.5]))
    store.add(semconv.PREDICTIONS, attrs, 1)
    second = {m.name: m for m in store.collect(1)}
    h1 = first["ml.prediction.score"].data.data_points[0]
    h2 = second["ml.prediction.score"].data.data_points[0]
    assert h2.start_time_unix_nano == h1.start_time_unix_nano and h2.count == 2
    c1 = first["ml.predictions"].data.data_points[0]
    c2 = second["ml.predictions"].data.data_points[0]
    assert c2.start_time_unix_nano == c1.time_unix_nano and c2.value == 1
