"""The three ways to instrument, their spans, metrics and log records (in memory)."""

from __future__ import annotations

import asyncio
import inspect
import traceback
from typing import Any

import numpy as np
import pytest
from opentelemetry import trace
from opentelemetry.trace import SpanKind, StatusCode

import mlotel
from mlotel import semconv
from mlotel.testing import capture_telemetry, log_payload


class Model:
    """A tiny classifier with the sklearn method names."""

    classes_ = np.array(["no", "yes"])

    def predict_proba(self, x: Any) -> np.ndarray:
        x = np.asarray(x, dtype=float)
        p = 1.0 / (1.0 + np.exp(-x.sum(axis=1)))
        return np.column_stack([1.0 - p, p])

    def predict(self, x: Any) -> np.ndarray:
        return self.classes_[(self.predict_proba(x)[:, 1] > 0.5).astype(int)]


def test_decorator_emits_span_metrics_and_log() -> None:
    with capture_telemetry() as captured:

        @mlotel.instrument(model_name="churn", model_version="3.1.0")
        def predict(features: Any) -> np.ndarray:
            return Model().predict_proba(features)

        result = predict(np.array([[2.0, 1.0]]))
        assert result.shape == (1, 2)
        (span,) = captured.spans
        assert span.name == "predict churn"
        assert span.kind is SpanKind.INTERNAL
        assert span.instrumentation_scope is not None
        assert span.instrumentation_scope.name == "mlotel"
        attrs = dict(span.attributes or {})
        assert attrs[semconv.ATTR_MODEL_NAME] == "churn"
        assert attrs[semconv.ATTR_MODEL_VERSION] == "3.1.0"
        assert attrs[semconv.ATTR_OPERATION_NAME] == "predict"
        assert attrs[semconv.ATTR_BATCH_SIZE] == 1
        assert len(attrs[semconv.ATTR_PREDICTION_ID]) == 16
        int(attrs[semconv.ATTR_PREDICTION_ID], 16)

        (log,) = captured.logs
        assert log.event_name == semconv.EVENT_PREDICTION
        assert log.trace_id == span.context.trace_id
        assert log.span_id == span.context.span_id
        assert log_payload(log)[semconv.ATTR_FEATURES] == {"f0": 2.0, "f1": 1.0}
        assert log_payload(log)[semconv.ATTR_PREDICTION] == 1  # argmax index: no labels given
        assert log_payload(log)[semconv.ATTR_PREDICTION_SCORE] == pytest.approx(result.max())
        assert log.attributes[semconv.ATTR_PREDICTION_ID] == attrs[semconv.ATTR_PREDICTION_ID]

        base = {"ml.model.name": "churn", "ml.model.version": "3.1.0"}
        metrics = captured.metrics()
        duration = metrics["ml.inference.duration"]
        assert duration.unit == "s"
        (point,) = duration.data.data_points
        assert point.count == 1
        assert tuple(point.explicit_bounds) == semconv.DURATION_BUCKETS
        assert dict(point.attributes) == {**base, "ml.operation.name": "predict"}
        batch = metrics["ml.inference.batch.size"]
        assert batch.unit == "{row}"
        assert tuple(batch.data.data_points[0].explicit_bounds) == semconv.BATCH_SIZE_BUCKETS
        score = metrics["ml.prediction.score"]
        assert tuple(score.data.data_points[0].explicit_bounds) == semconv.SCORE_BUCKETS
        assert score.data.data_points[0].sum == pytest.approx(result.max())
        assert captured.counter_value("ml.predictions", {"ml.prediction.class": "1"}) == 1
        assert metrics["ml.predictions"].unit == "{prediction}"


def test_object_proxy_uses_class_labels_and_passes_attributes_through() -> None:
    model = Model()
    with capture_telemetry() as captured:
        clf = mlotel.instrument(model, model_name="churn")
        assert isinstance(clf, Model)
        assert clf.classes_ is model.classes_
        assert not hasattr(clf, "decision_function")
        x = np.array([[3.0, 0.0], [-3.0, 0.0], [4.0, 1.0]])
        labels = clf.predict(x)
        proba = clf.predict_proba(x)
        assert labels.tolist() == ["yes", "no", "yes"]
        assert proba.shape == (3, 2)
        names = sorted(s.name for s in captured.spans)
        assert names == ["predict churn", "predict_proba churn"]
        assert captured.counter_value("ml.predictions", {"ml.prediction.class": "yes"}) == 4
        assert captured.counter_value("ml.predictions", {"ml.prediction.class": "no"}) == 2
        assert captured.histogram_count("ml.prediction.score") == 3
        assert captured.histogram_count("ml.inference.batch.size") == 2
        proba_log = next(
            r for r in captured.logs if r.attributes["ml.operation.name"] == "predict_proba"
        )
        assert list(log_payload(proba_log)["ml.prediction"]) == ["yes", "no", "yes"]


def test_method_decorator_and_default_model_name() -> None:
    class Ranker:
        def __init__(self) -> None:
            self.calls = 0

        @mlotel.instrument
        def predict(self, rows: list[list[float]]) -> list[float]:
            self.calls += 1
            return [sum(r) for r in rows]

    with capture_telemetry() as captured:
        ranker = Ranker()
        assert ranker.predict([[1.0, 2.0], [3.0, 4.0]]) == [3.0, 7.0]
        assert ranker.calls == 1
        (span,) = captured.spans
        assert span.name == "predict Ranker"
        assert span.attributes["ml.batch.size"] == 2
        # float outputs are regression values: counted without a class
        assert captured.counter_value("ml.predictions") == 2
        assert captured.points("ml.predictions", {"ml.prediction.class": "3.0"}) == []


def test_async_function_keeps_caller_context() -> None:
    with capture_telemetry() as captured:
        tracer = captured.runtime.tracer_provider.get_tracer("caller")

        @mlotel.instrument(model_name="scorer")
        async def score(x: list[float]) -> list[int]:
            await asyncio.sleep(0)
            return [1]

        async def handler() -> list[int]:
            with tracer.start_as_current_span("request"):
                return await score([1.0])

        assert asyncio.run(handler()) == [1]
        spans = {s.name: s for s in captured.spans}
        assert spans["predict scorer"].parent is not None
        assert spans["predict scorer"].parent.span_id == spans["request"].context.span_id


def test_model_exception_reraised_unchanged_and_recorded() -> None:
    boom = ValueError("X has 5 features, expected 30")

    @mlotel.instrument(model_name="fragile")
    def predict(x: Any) -> Any:
        raise boom

    with capture_telemetry(payload_sample_rate=0.0) as captured:
        with pytest.raises(ValueError) as info:
            predict([[1.0, 2.0]])
        assert info.value is boom
        frames = [f.name for f in traceback.extract_tb(info.value.__traceback__)]
        assert frames[-1] == "predict"
        (span,) = captured.spans
        assert span.status.status_code is StatusCode.ERROR
        assert span.attributes["error.type"] == "ValueError"
        assert any(e.name == "exception" for e in span.events)
        # failed calls are logged even when sampling drops successful ones
        (log,) = captured.logs
        assert log.attributes["error.type"] == "ValueError"
        assert log.severity_text == "ERROR"
        assert captured.histogram_count("ml.inference.duration", {"error.type": "ValueError"}) == 1
        assert captured.counter_value("ml.predictions") == 0


def test_inference_context_manager_records_explicit_outputs() -> None:
    with capture_telemetry() as captured:
        with mlotel.inference("ranker", model_version="7", operation="rank") as call:
            call.record(
                features={"query_len": 3, "lang": "en"},
                prediction=["a", "b"],
                scores=[[0.9, 0.1], [0.3, 0.7]],
            )
        (span,) = captured.spans
        assert span.name == "rank ranker"
        assert captured.counter_value("ml.predictions", {"ml.prediction.class": "a"}) == 1
        (score,) = captured.points("ml.prediction.score")
        assert score.count == 2
        assert score.sum == pytest.approx(1.6)
        (log,) = captured.logs
        assert log_payload(log)["ml.features"] == {"query_len": 3, "lang": "en"}


def test_inference_block_exception_propagates() -> None:
    with capture_telemetry() as captured:
        with pytest.raises(KeyError), mlotel.inference("lookup"):
            raise KeyError("missing")
        (span,) = captured.spans
        assert span.attributes["error.type"] == "KeyError"


def test_disabled_is_a_pass_through(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_SDK_DISABLED", "true")
    mlotel.configure()
    calls = []

    @mlotel.instrument(model_name="off")
    def predict(x: Any) -> Any:
        calls.append(x)
        return x

    assert predict(5) == 5
    from mlotel import _lifecycle

    runtime = _lifecycle.current
    assert runtime is not None and runtime.disabled
    assert runtime.aggregators == {}
    assert calls == [5]


def test_payload_sampling_redaction_and_cap() -> None:
    with capture_telemetry(
        payload_redact="ssn", payload_max_bytes=256, payload_sample_rate=1.0
    ) as captured:

        @mlotel.instrument(model_name="m", feature_names=["age", "ssn"])
        def predict(x: Any) -> Any:
            return np.zeros(len(x))

        predict(np.array([[40.0, 123456789.0]]))
        predict(np.arange(2000, dtype=float).reshape(1000, 2))
        first, second = captured.logs
        assert log_payload(first)["ml.features"] == {"age": 40.0, "ssn": "[REDACTED]"}
        assert "ml.payload.truncated" not in first.attributes
        assert second.attributes["ml.payload.truncated"] is True
        assert log_payload(second)["ml.features"]["ssn"] == "[REDACTED]"
        assert 0 < len(log_payload(second)["ml.features"]["age"]) < 40

    with capture_telemetry(payload_allow=["age"]) as captured:

        @mlotel.instrument(model_name="m2")
        def predict2(x: Any) -> Any:
            return [0]

        predict2({"age": 3, "income": 9})
        assert log_payload(captured.logs[0])["ml.features"] == {"age": 3, "income": "[REDACTED]"}

    with capture_telemetry(payload_sample_rate=0.0) as captured:
        predict2({"age": 3})
        assert captured.logs == []
        assert captured.histogram_count("ml.inference.duration") == 1


def test_instrument_rejects_classes_and_bad_options() -> None:
    with pytest.raises(TypeError, match="got a class"):
        mlotel.instrument(Model)
    with pytest.raises(ValueError, match="output="):
        mlotel.instrument(model_name="x", output="weird")
    with pytest.raises(TypeError, match="none of"):
        mlotel.instrument(object())


def test_payload_location_attributes() -> None:
    with capture_telemetry(payload_location="attributes") as captured:
        mlotel.instrument(lambda x: [1], model_name="attrs")({"a": 1.0})
        (log,) = captured.logs
        assert log.attributes["ml.features"] == {"a": 1.0}
        assert log.attributes["ml.prediction"] == 1
        assert log.body is None
    with capture_telemetry() as captured:
        mlotel.instrument(lambda x: [1], model_name="body")({"a": 1.0})
        (log,) = captured.logs
        assert "ml.features" not in log.attributes
        assert log.body == {"ml.features": {"a": 1.0}, "ml.prediction": 1}


def test_model_cardinality_is_capped() -> None:
    with capture_telemetry(max_models=2) as captured:
        for version in range(5):
            mlotel.instrument(lambda x: [1], model_name="m", model_version=str(version))([[1]])
        names = {s.attributes["ml.model.version"] for s in captured.spans}
        assert names == {"0", "1", "2", "3", "4"}  # spans keep the real identity
        assert captured.histogram_count("ml.inference.duration", {"ml.model.name": "m"}) == 2
        overflow = {"ml.model.name": "__other__"}
        assert captured.histogram_count("ml.inference.duration", overflow) == 3
        assert captured.dropped("models", "max_models") == 3
        log_versions = sorted(r.attributes["ml.model.version"] for r in captured.logs)
        assert log_versions == ["0", "1", "2", "3", "4"]  # logs keep the real identity too


def test_overflowed_model_logs_keep_identity_when_the_span_is_sampled_out() -> None:
    """The real name/version come from the model, not from its span: an upstream
    service that sampled the trace out leaves the span without attributes."""
    unsampled_parent = trace.NonRecordingSpan(
        trace.SpanContext(0x1, 0x2, is_remote=True, trace_flags=trace.TraceFlags(0))
    )
    with capture_telemetry(max_models=1) as captured:
        mlotel.instrument(lambda x: [1], model_name="first")([[1]])
        with trace.use_span(unsampled_parent):
            mlotel.instrument(lambda x: [1], model_name="late", model_version="7")([[1]])
        assert [s.name for s in captured.spans] == ["predict first"]  # "late" not sampled
        identities = [
            (r.attributes["ml.model.name"], r.attributes.get("ml.model.version"))
            for r in captured.logs
        ]
        assert identities == [("first", None), ("late", "7")]


def test_error_type_and_operation_cardinality_is_capped(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Issue 13, item 11: 2,000 distinct exception classes and inference(operation=...)
    values must not become 2,000 series each."""
    import logging

    from mlotel._self_telemetry import tally

    errors = [type(f"Failure{i}", (RuntimeError,), {}) for i in range(2000)]

    def failing(x: Any) -> Any:
        raise errors[int(x[0][0])]()

    with caplog.at_level(logging.WARNING, logger="mlotel"), capture_telemetry(
        max_error_types=5, max_operations=3
    ) as captured:
        predict = mlotel.instrument(failing, model_name="flaky")
        for i in range(2000):
            with pytest.raises(errors[i]):
                predict([[float(i)]])
            with mlotel.inference("blocks", operation=f"op-{i}") as call:
                call.record(features=[[1.0]], prediction=[1])
        durations = captured.points("ml.inference.duration", {"ml.model.name": "flaky"})
        error_types = {p.attributes["error.type"] for p in durations}
        assert error_types == {f"Failure{i}" for i in range(5)} | {"__other__"}
        other = {"ml.model.name": "flaky", "error.type": "__other__"}
        assert captured.histogram_count("ml.inference.duration", other) == 1995
        sizes = captured.points("ml.inference.batch.size", {"ml.model.name": "blocks"})
        assert {p.attributes["ml.operation.name"] for p in sizes} == {
            "op-0", "op-1", "op-2", "__other__"
        }  # fmt: skip
        blocks = {"ml.model.name": "blocks", "ml.operation.name": "__other__"}
        assert captured.histogram_count("ml.inference.duration", blocks) == 1997
        assert tally.dropped[("error_types", "max_error_types")] == 1995
        assert tally.dropped[("operations", "max_operations")] == 1997
        dropped = {
            p.attributes["mlotel.drop.reason"]: p.value
            for p in captured.points("mlotel.internal.dropped")
        }
        assert dropped["max_error_types"] == 1995 and dropped["max_operations"] == 1997
        # Spans keep the real values.
        span_errors = {s.attributes.get("error.type") for s in captured.spans}
        assert len(span_errors - {None}) == 2000
    warnings = [r.getMessage() for r in caplog.records if "distinct" in r.getMessage()]
    assert len(warnings) == 2, warnings
    assert any("MLOTEL_MAX_ERROR_TYPES" in w for w in warnings)
    assert any("MLOTEL_MAX_OPERATIONS" in w for w in warnings)


def test_async_model_object_is_awaited_inside_its_span() -> None:
    class AsyncModel:
        async def predict(self, x: Any) -> list[int]:
            await asyncio.sleep(0.05)
            inside.append(trace.get_current_span().get_span_context().span_id)
            return [1] * len(x)

    inside: list[int] = []

    with capture_telemetry() as captured:
        clf = mlotel.instrument(AsyncModel(), model_name="remote")
        assert asyncio.run(clf.predict([[1.0], [2.0]])) == [1, 1]
        (span,) = captured.spans
        assert span.end_time - span.start_time >= 40_000_000  # covers the awaited work
        assert captured.counter_value("ml.predictions") == 2


def test_explicit_class_labels_win_over_the_models() -> None:
    with capture_telemetry() as captured:
        clf = mlotel.instrument(Model(), model_name="spam", class_labels=["ham", "spam"])
        clf.predict_proba(np.array([[5.0, 0.0]]))
        assert captured.counter_value("ml.predictions", {"ml.prediction.class": "spam"}) == 1


def test_payload_cap_holds_on_the_wire() -> None:
    from opentelemetry.exporter.otlp.proto.common._log_encoder import encode_logs

    with capture_telemetry(payload_max_bytes=8192) as captured:
        clf = mlotel.instrument(Model(), model_name="wide")
        clf.predict_proba(np.random.default_rng(0).normal(size=(1024, 20)))
        captured.flush()
        (readable,) = captured._logs.get_finished_logs()
        request = encode_logs([readable])
        record = request.resource_logs[0].scope_logs[0].log_records[0]
        assert record.body.ByteSize() <= 8192
        payload = log_payload(captured.logs[0])
        rows = len(payload["ml.features"]["f0"])
        assert payload["ml.payload.truncated"] is True
        assert 10 < rows < 1024
        assert len(payload["ml.prediction"]) == len(payload["ml.prediction.score"]) == rows


def test_proxy_copies_and_reinstrumentation() -> None:
    import copy

    with capture_telemetry() as captured:
        clf = mlotel.instrument(Model(), model_name="a", model_version="1")
        clone = copy.deepcopy(clf)
        assert isinstance(clone, Model) and clone is not clf
        clone.predict(np.array([[1.0, 1.0]]))
        renamed = mlotel.instrument(clf, model_name="b", model_version="2")
        renamed.predict(np.array([[1.0, 1.0]]))
        names = [s.name for s in captured.spans]
        assert names == ["predict a", "predict b"]
        assert renamed.__wrapped__ is clf.__wrapped__


def test_large_outputs_bound_the_buffer_by_bytes() -> None:
    with capture_telemetry(buffer_size=100_000, flush_interval=3600) as captured:
        embed = mlotel.instrument(
            lambda x: np.zeros((len(x), 1024), dtype=np.float64), model_name="emb"
        )
        for _ in range(40):  # 40 outputs of 8 MiB
            embed(np.zeros((1024, 4)))
        aggregator = captured.runtime.aggregators[("emb", None)]
        assert aggregator.buffered <= 8  # 8 outputs of 8 MiB reach the 64 MiB bound: flushed
        assert captured.histogram_count("ml.inference.duration") == 40


def test_async_model_behind_a_sync_wrapper() -> None:
    import functools

    def retry(fn: Any) -> Any:
        @functools.wraps(fn)
        def wrapper(*args: Any) -> Any:
            return fn(*args)

        return wrapper

    class Remote:
        @retry
        async def predict(self, x: Any) -> list[int]:
            await asyncio.sleep(0.05)
            inside.append(trace.get_current_span().get_span_context().span_id)
            return [1] * len(x)

    inside: list[int] = []

    with capture_telemetry() as captured:
        clf = mlotel.instrument(Remote(), model_name="remote")
        pending = clf.predict([[1.0], [2.0]])
        # The span is current while the coroutine runs, not in the caller's context after.
        assert not trace.get_current_span().get_span_context().is_valid
        assert asyncio.run(pending) == [1, 1]
        (span,) = captured.spans
        assert inside == [span.context.span_id]
        assert span.end_time - span.start_time >= 40_000_000
        assert captured.counter_value("ml.predictions") == 2


def test_deepcopy_keeps_self_references() -> None:
    import copy

    class Owned(Model):
        owner: Any = None

    model = Owned()
    clf = mlotel.instrument(model, model_name="owned")
    model.owner = clf
    clone = copy.deepcopy(clf)
    assert clone.owner is clone
    assert clone.__wrapped__ is not model


def test_a_generator_result_comes_back_unchanged_and_its_span_ends() -> None:
    """Issue 13, item 1: on Python 3.10/3.11 ``asyncio.iscoroutine`` is true for
    generators; a streaming predict must still get its generator back, and the span
    ends when the generator is returned (its consumption is not observed)."""
    class Streamer:
        def predict(self, rows: list[list[float]]) -> Any:
            return (row[0] * 2.0 for row in rows)

    with capture_telemetry() as captured:

        @mlotel.instrument(model_name="lazy")
        def stream(rows: list[list[float]]) -> Any:
            for row in rows:
                yield row[0] + 1.0

        gen = stream([[1.0], [2.0]])
        proxied = mlotel.instrument(Streamer(), model_name="proxied").predict([[3.0]])
        # Nothing is left attached: a later span is a root span, not a child of these.
        assert not trace.get_current_span().get_span_context().is_valid
        assert inspect.isgenerator(gen) and inspect.isgenerator(proxied)
        assert list(gen) == [2.0, 3.0] and list(proxied) == [6.0]
        mlotel.instrument(lambda rows: [0 for _ in rows], model_name="after")([[1.0]])
        spans = {s.name: s for s in captured.spans}
        assert set(spans) == {"predict lazy", "predict proxied", "predict after"}
        assert all(s.end_time is not None and s.parent is None for s in spans.values())
        assert captured.histogram_count("ml.inference.duration") == 3
