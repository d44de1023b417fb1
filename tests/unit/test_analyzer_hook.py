"""The flush-time analyzer hook (drift and outcomes build on it) and gauge export."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

import mlotel.testing
from mlotel import semconv
from mlotel._aggregator import CallRecord, ModelAggregator
from mlotel._call import ModelSpec, observe_sync
from mlotel._metric_store import MetricStore


class RowCounter:
    """Counts input rows into a gauge; optionally fails to prove containment."""

    name = "row_counter"

    def __init__(self, needs_inputs: bool = True, fail: bool = False) -> None:
        self.needs_inputs = needs_inputs
        self.fail = fail
        self.seen: list[Any] = []

    def process(
        self, records: Sequence[CallRecord], monitor: ModelAggregator, store: MetricStore
    ) -> None:
        if self.fail:
            raise RuntimeError("analyzer bug")
        self.seen.extend(r.inputs for r in records)
        total = sum(len(r.inputs) for r in records if r.inputs is not None)
        store.set_gauge(semconv.DATASET_DRIFT_SHARE, monitor.base_attrs, total)


def _spec(*analyzers: Any) -> ModelSpec:
    return ModelSpec("m", None, None, "predict", None, "auto", analyzers=analyzers)


def _observed(fn: Any, *analyzers: Any) -> Any:
    """``fn`` observed through the call path integrations use, with these analyzers."""
    spec = _spec(*analyzers)
    return lambda rows: observe_sync(spec, fn, None, (rows,), {})


def test_analyzer_sees_inputs_and_exports_a_gauge() -> None:
    counter = RowCounter()
    predict = _observed(lambda rows: [0] * len(rows), counter)
    with mlotel.testing.capture_telemetry() as captured:
        batch = np.zeros((3, 2))
        rows = [[0.0, 0.0], [0.0, 0.0]]
        predict(batch)
        predict(rows)
        captured.flush()
        (point,) = captured.points("ml.dataset.drift.share")
    assert point.value == 5.0
    # An array is copied when the call starts (the model may change it in place); other
    # inputs are the caller's object.
    assert counter.seen[0] is not batch and counter.seen[0].tolist() == batch.tolist()
    assert counter.seen[1] is rows


def test_analyzer_without_inputs_gets_none_and_operations_share_one_analyzer() -> None:
    counter = RowCounter(needs_inputs=False)

    class Model:
        def predict(self, rows: Any) -> list[int]:
            return [1] * len(rows)

        def predict_proba(self, rows: Any) -> list[list[float]]:
            return [[0.5, 0.5]] * len(rows)

    model, spec = Model(), _spec(counter)
    with mlotel.testing.capture_telemetry() as captured:
        observe_sync(spec, model.predict, None, ([[1.0]],), {})
        proba_spec = spec.with_operation("predict_proba")
        observe_sync(proba_spec, model.predict_proba, None, ([[1.0]],), {})
        captured.flush()
    assert counter.seen == [None, None]  # both operations reach the one analyzer


def test_failing_analyzer_is_counted_and_the_call_still_reports() -> None:
    predict = _observed(lambda rows: [0] * len(rows), RowCounter(fail=True))
    with mlotel.testing.capture_telemetry() as captured:
        assert predict([[1.0]]) == [0]
        captured.flush()
        assert captured.histogram_count("ml.inference.duration") == 1
        assert (
            captured.counter_value(
                "mlotel.internal.errors", {"mlotel.component": "analyzer.row_counter"}
            )
            == 1
        )


def test_gauge_can_be_cleared() -> None:
    store = MetricStore()
    store.add_reader(1)
    attrs = (("ml.model.name", "m"),)
    store.set_gauge(semconv.MODEL_PERFORMANCE, attrs, 0.9)
    assert [m.name for m in store.collect(1)] == ["ml.model.performance"]
    store.clear_gauge(semconv.MODEL_PERFORMANCE, attrs)
    assert store.collect(1) == []


def test_a_second_analyzer_of_the_same_name_replaces_the_first() -> None:
    first, second = RowCounter(), RowCounter()
    predict = _observed(lambda rows: [0] * len(rows), first)
    predict_again = _observed(lambda rows: [0] * len(rows), second)
    with mlotel.testing.capture_telemetry() as captured:
        predict(np.zeros((3, 2)))
        captured.flush()
        predict_again(np.zeros((2, 2)))  # same model name: its monitor takes `second`
        predict(np.zeros((4, 2)))
        captured.flush()
        (point,) = captured.points("ml.dataset.drift.share")
    assert len(first.seen) == 1  # only the call before the replacement
    assert len(second.seen) == 2  # never both: no row is counted twice
    assert point.value == 6.0


def test_two_instrument_calls_with_one_reference_count_each_row_once() -> None:
    from mlotel.drift import Profile

    rng = np.random.default_rng(0)
    reference = Profile.from_data(rng.normal(size=(1000, 2)), feature_names=["a", "b"])

    @mlotel.instrument(model_name="twice", reference=reference, feature_names=["a", "b"])
    def predict(rows: Any) -> Any:
        return rows[:, 0] > 0

    @mlotel.instrument(model_name="twice", reference=reference, feature_names=["a", "b"])
    def predict_proba(rows: Any) -> Any:
        return np.column_stack([rows[:, 0] <= 0, rows[:, 0] > 0]).astype(float)

    with mlotel.testing.capture_telemetry() as captured:
        for _ in range(3):
            predict(rng.normal(size=(100, 2)))
            predict_proba(rng.normal(size=(100, 2)))
        captured.flush()
        counted = sum(
            p.value
            for p in captured.points("ml.feature.bin.count")
            if p.attributes["ml.feature.name"] == "a"
        )
    assert counted == 600
