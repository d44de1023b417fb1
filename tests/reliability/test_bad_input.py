"""Hostile inputs and outputs: the caller gets the model's result (or its exception)
unchanged, and what mlotel records stays bounded and honest about truncation."""

from __future__ import annotations

import gc
import math
import threading
import traceback
import tracemalloc
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pytest

import mlotel
from mlotel import semconv
from mlotel.testing import CapturedTelemetry, capture_telemetry, log_payload

MAX_BYTES = 8192  # payload_max_bytes default
BOUND = 4 * MAX_BYTES  # generous bound on the repr of one log record's attributes
TEN_MB = 10 * 1024 * 1024


class ModelError(RuntimeError):
    """Raised by the failing models below."""


class ExplodingRepr:
    def __repr__(self) -> str:
        raise RuntimeError("repr exploded")

    __str__ = __repr__


class HugeRepr:
    def __repr__(self) -> str:
        return "H" * TEN_MB


@pytest.fixture
def captured() -> Iterator[CapturedTelemetry]:
    with capture_telemetry() as cap:
        yield cap
    # Bad input is handled, not merely contained: no internal fault was counted.
    assert cap.internal_errors() == 0, cap.points("mlotel.internal.errors")


def _observe(
    captured: CapturedTelemetry, name: str, features: Any, output: Any = None
) -> tuple[Any, dict[str, Any]]:
    """Call a fresh instrumented model on ``features``; return its output and the log attrs."""
    returned = [0] if output is None else output

    @mlotel.instrument(model_name=name)
    def predict(x: Any) -> Any:
        return returned

    result = predict(features)
    assert result is returned  # the very object the model returned
    records = [r for r in captured.logs if r.attributes[semconv.ATTR_MODEL_NAME] == name]
    assert len(records) == 1, f"expected one log record for {name}, got {len(records)}"
    attrs = log_payload(records[0])
    size = len(repr(attrs))
    assert size < BOUND, f"{name}: log record attributes are {size} chars"
    [span] = [s for s in captured.spans if s.attributes[semconv.ATTR_MODEL_NAME] == name]
    assert span.status.is_ok
    assert records[0].span_id == span.context.span_id
    return result, attrs


def test_nan_inf_none_in_features(captured: CapturedTelemetry) -> None:
    _, attrs = _observe(captured, "nan-array", np.array([[np.nan, np.inf, -np.inf, 1.0]]))
    feats = attrs[semconv.ATTR_FEATURES]
    assert math.isnan(feats["f0"])
    assert feats["f1"] == math.inf and feats["f2"] == -math.inf and feats["f3"] == 1.0
    assert semconv.ATTR_PAYLOAD_TRUNCATED not in attrs

    _, attrs = _observe(captured, "none-list", [[1.0, None, float("nan"), float("-inf")]])
    feats = attrs[semconv.ATTR_FEATURES]
    assert feats["f0"] == 1.0 and feats["f1"] is None and math.isnan(feats["f2"])
    assert feats["f3"] == -math.inf

    _, attrs = _observe(captured, "none-dict", {"age": None, "income": float("nan")})
    assert attrs[semconv.ATTR_FEATURES]["age"] is None
    assert math.isnan(attrs[semconv.ATTR_FEATURES]["income"])

    # NaN/inf in the model's *output* neither crash nor poison the score histogram
    _, attrs = _observe(
        captured, "nan-output", np.array([[1.0, 2.0]]), output=np.array([[np.nan, np.inf]])
    )
    assert (
        captured.histogram_count(
            semconv.INFERENCE_DURATION.name, {semconv.ATTR_MODEL_NAME: "nan-output"}
        )
        == 1
    )


def test_ragged_inputs_and_outputs(captured: CapturedTelemetry) -> None:
    ragged = [[1.0, 2.0], [3.0], [4.0, 5.0, 6.0]]
    _, attrs = _observe(captured, "ragged", ragged, output=[[1], [2, 3], []])
    assert attrs[semconv.ATTR_BATCH_SIZE] == 3
    feats = attrs[semconv.ATTR_FEATURES]
    assert list(feats["f0"]) == [1.0, 3.0, 4.0]
    assert list(feats["f2"]) == [None, None, 6.0]
    assert ragged == [[1.0, 2.0], [3.0], [4.0, 5.0, 6.0]]  # the input was not mutated

    _, attrs = _observe(captured, "ragged-mixed", [[1.0, "a"], 7, ("x",), []])
    assert attrs[semconv.ATTR_BATCH_SIZE] == 4

    _, attrs = _observe(captured, "ragged-dict", {"a": [1, 2, 3], "b": [4]})
    assert attrs[semconv.ATTR_BATCH_SIZE] == 3
    assert list(attrs[semconv.ATTR_FEATURES]["b"]) == [4, None, None]

    _, attrs = _observe(
        captured, "empty-batch", np.zeros((0, 4)), output=np.zeros(0, dtype=np.int64)
    )
    assert attrs[semconv.ATTR_BATCH_SIZE] == 0
    _observe(captured, "empty-list", [], output=[])  # no crash, still logged


def test_ten_megabyte_string_feature_is_cut_and_marked(captured: CapturedTelemetry) -> None:
    text = "x" * TEN_MB
    _, attrs = _observe(captured, "big-string", {"text": text, "n": 1})
    kept = attrs[semconv.ATTR_FEATURES]["text"]
    assert isinstance(kept, str) and len(kept) < MAX_BYTES
    assert attrs[semconv.ATTR_FEATURES]["n"] == 1
    assert attrs.get(semconv.ATTR_PAYLOAD_TRUNCATED) is True

    _, attrs = _observe(captured, "big-bytes", [[b"\xff" * TEN_MB]])
    assert len(attrs[semconv.ATTR_FEATURES]["f0"]) < MAX_BYTES
    assert attrs.get(semconv.ATTR_PAYLOAD_TRUNCATED) is True

    # one row of many long strings: over the byte budget, so values are cut further
    row = {f"col{i}": "y" * 10_000 for i in range(100)}
    _, attrs = _observe(captured, "many-long-strings", row)
    assert attrs.get(semconv.ATTR_PAYLOAD_TRUNCATED) is True

    # strings short enough to keep one by one, but 20 KB together: cut to fit, and marked
    row = {f"col{i}": "z" * 200 for i in range(100)}
    _, attrs = _observe(captured, "many-medium-strings", row)
    assert all(len(v) < 200 for v in attrs[semconv.ATTR_FEATURES].values())
    assert attrs.get(semconv.ATTR_PAYLOAD_TRUNCATED) is True

    # a string of exactly the kept length is not cut, and not marked
    _, attrs = _observe(captured, "exact-string", {"text": "e" * 255 + "…"})
    assert attrs[semconv.ATTR_FEATURES]["text"] == "e" * 255 + "…"
    assert semconv.ATTR_PAYLOAD_TRUNCATED not in attrs


def test_ten_megabyte_arrays_are_bounded_and_marked(captured: CapturedTelemetry) -> None:
    wide = np.zeros((1, TEN_MB // 8))  # one row, 1.3 M features
    dropped_before = captured.dropped("payload", "max_features")
    _, attrs = _observe(captured, "wide", wide)
    assert attrs[semconv.ATTR_PAYLOAD_TRUNCATED] is True
    assert attrs[semconv.ATTR_BATCH_SIZE] == 1
    assert len(attrs[semconv.ATTR_FEATURES]) <= 512  # max_features default
    assert captured.dropped("payload", "max_features") - dropped_before == wide.shape[1] - len(
        attrs[semconv.ATTR_FEATURES]
    )

    tall = np.ones((TEN_MB // 80, 10))  # 131,072 rows of 10 features
    _, attrs = _observe(captured, "tall", tall, output=np.zeros(len(tall), dtype=np.int64))
    assert attrs[semconv.ATTR_PAYLOAD_TRUNCATED] is True
    assert attrs[semconv.ATTR_BATCH_SIZE] == len(tall)
    kept_rows = len(attrs[semconv.ATTR_FEATURES]["f0"])
    assert 0 < kept_rows < len(tall)
    assert captured.counter_value(
        semconv.PREDICTIONS.name, {semconv.ATTR_MODEL_NAME: "tall"}
    ) == len(tall)

    strings = np.array([["s" * 1000] * 10] * 1000)  # 1000 rows of unicode, ~40 MB as U1000
    _, attrs = _observe(captured, "string-array", strings)
    assert attrs[semconv.ATTR_PAYLOAD_TRUNCATED] is True


def test_wide_inputs_do_not_leave_memory_behind(captured: CapturedTelemetry) -> None:
    """Feature names are generated for what is kept, not cached for 1.3 M columns."""

    @mlotel.instrument(model_name="wide-memory")
    def predict(x: Any) -> list[int]:
        return [0]

    predict(np.zeros((1, 3)))  # warm up: monitor, spans, lazily imported code
    captured.clear()
    gc.collect()
    tracemalloc.start()
    try:
        for extra in range(3):  # three distinct widths
            wide = np.zeros((1, TEN_MB // 8 + extra))
            predict(wide)
            del wide
        captured.clear()  # drop the exported records themselves
        gc.collect()
        retained, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert retained < 8 * 1024 * 1024, f"{retained / 1e6:.1f} MB retained after wide inputs"


def test_unpicklable_and_hostile_objects(captured: CapturedTelemetry) -> None:
    def gen() -> Iterator[int]:
        yield 1

    lock = threading.Lock()
    generator = gen()
    row = [lock, generator, lambda: 1, ExplodingRepr(), HugeRepr(), object()]
    _, attrs = _observe(captured, "unpicklable", [row])
    feats = attrs[semconv.ATTR_FEATURES]
    assert len(feats) == len(row)
    for value in feats.values():
        assert isinstance(value, str) and len(value) <= 256
    assert "lock" in feats["f0"]
    assert "generator" in feats["f1"]
    assert feats["f3"] == "<ExplodingRepr>"
    assert attrs.get(semconv.ATTR_PAYLOAD_TRUNCATED) is True  # the 10 MB repr was cut
    assert not lock.locked()
    assert next(generator) == 1  # mlotel did not consume the generator

    # an unpicklable object as the whole input, and as the output
    sentinel_output = threading.Lock()
    _, attrs = _observe(captured, "lock-input", threading.Lock(), output=sentinel_output)
    assert attrs[semconv.ATTR_BATCH_SIZE] == 1

    # a generator as the input: still not consumed by mlotel
    lazy = (i for i in range(3))
    _observe(captured, "generator-input", lazy)
    assert list(lazy) == [0, 1, 2]


def test_non_string_dict_keys(captured: CapturedTelemetry) -> None:
    features = {1: 0.5, (2, 3): 0.7, None: 1.0, 2.5: "a", frozenset({1}): True}
    _, attrs = _observe(captured, "odd-keys", features)
    assert attrs[semconv.ATTR_FEATURES] == {
        "1": 0.5,
        "(2, 3)": 0.7,
        "None": 1.0,
        "2.5": "a",
        "frozenset({1})": True,
    }
    assert all(isinstance(k, str) for k in attrs[semconv.ATTR_FEATURES])

    rows = [{1: 1.0, 2: 2.0}, {1: 3.0, 2: 4.0}]
    _, attrs = _observe(captured, "odd-keys-rows", rows)
    feats = {k: list(v) for k, v in attrs[semconv.ATTR_FEATURES].items()}
    assert feats == {"1": [1.0, 3.0], "2": [2.0, 4.0]}
    assert attrs[semconv.ATTR_BATCH_SIZE] == 2


def test_ten_thousand_class_labels_are_capped(captured: CapturedTelemetry) -> None:
    labels = np.array([f"class-{i:05d}" for i in range(10_000)])
    dropped_before = captured.dropped("classes", "max_classes")
    _, attrs = _observe(captured, "many-classes", np.zeros((10_000, 4)), output=labels)
    assert attrs[semconv.ATTR_PAYLOAD_TRUNCATED] is True
    points = captured.points(semconv.PREDICTIONS.name, {semconv.ATTR_MODEL_NAME: "many-classes"})
    by_class = {dict(p.attributes)[semconv.ATTR_PREDICTION_CLASS]: p.value for p in points}
    assert len(by_class) == 100 + 1  # max_classes default, plus the overflow class
    assert by_class[semconv.OTHER_CLASS] == 10_000 - 100
    assert sum(by_class.values()) == 10_000
    assert all(v == 1 for k, v in by_class.items() if k != semconv.OTHER_CLASS)
    assert captured.dropped("classes", "max_classes") - dropped_before == 9_900
    dropped = captured.counter_value(
        semconv.INTERNAL_DROPPED.name,
        {semconv.ATTR_COMPONENT: "classes", semconv.ATTR_DROP_REASON: "max_classes"},
    )
    assert dropped == 9_900

    # A second call: known classes keep counting, new ones still overflow.
    more = np.array(["class-00000", "class-09999", "brand-new"])
    _observe(captured, "many-classes-2", np.zeros((3, 4)), output=more)
    # (a different model: its own cap, so all three are known there)
    points = captured.points(semconv.PREDICTIONS.name, {semconv.ATTR_MODEL_NAME: "many-classes-2"})
    assert {dict(p.attributes)[semconv.ATTR_PREDICTION_CLASS] for p in points} == set(more)


def _failing_model(rows: Any) -> Any:
    raise ModelError(f"cannot score {len(rows)} rows")


@pytest.mark.parametrize("style", ["decorator", "proxy"])
def test_model_exception_is_reraised_unchanged_and_recorded(style: str) -> None:
    with capture_telemetry(payload_sample_rate=0.0) as captured:
        if style == "decorator":
            predict: Callable[[Any], Any] = mlotel.instrument(_failing_model, model_name="fails")
        else:

            class Model:
                def predict(self, rows: Any) -> Any:
                    return _failing_model(rows)

            predict = mlotel.instrument(Model(), model_name="fails").predict

        with pytest.raises(ModelError) as excinfo:
            predict([[1.0, 2.0]])
        raised = excinfo.value
        assert type(raised) is ModelError
        assert str(raised) == "cannot score 1 rows"
        frames = [f.name for f in traceback.extract_tb(raised.__traceback__)]
        assert "_failing_model" in frames, frames
        assert frames[-1] == "_failing_model"  # raised where the model raised it

        # the same object, not a copy or a wrapper
        sentinel = ModelError("sentinel")

        @mlotel.instrument(model_name="fails")
        def raise_sentinel(rows: Any) -> Any:
            raise sentinel

        with pytest.raises(ModelError) as second:
            raise_sentinel([[0.0]])
        assert second.value is sentinel
        assert second.value.__cause__ is None and second.value.__context__ is None

        # a successful call is not logged at sample rate 0 ...
        @mlotel.instrument(model_name="fails")
        def works(rows: Any) -> list[int]:
            return [1]

        assert works([[3.0, 4.0]]) == [1]

        spans = captured.spans
        failed = [s for s in spans if s.attributes.get(semconv.ATTR_ERROR_TYPE)]
        assert len(failed) == 2
        for span in failed:
            assert span.status.status_code.name == "ERROR"
            assert span.attributes[semconv.ATTR_ERROR_TYPE] == "ModelError"
            assert any(e.name == "exception" for e in span.events)
        ok = [s for s in spans if not s.attributes.get(semconv.ATTR_ERROR_TYPE)]
        assert len(ok) == 1 and ok[0].status.is_ok

        # ... but every failed call is, with its features and error.type
        logs = captured.logs
        assert len(logs) == 2
        first = next(r for r in logs if r.span_id == failed[0].context.span_id)
        assert first.attributes[semconv.ATTR_ERROR_TYPE] == "ModelError"
        assert log_payload(first)[semconv.ATTR_FEATURES] == {"f0": 1.0, "f1": 2.0}
        assert first.severity_number.name == "ERROR"
        assert semconv.ATTR_PREDICTION not in log_payload(first)
        assert {r.span_id for r in logs} == {s.context.span_id for s in failed}

        assert (
            captured.histogram_count(
                semconv.INFERENCE_DURATION.name, {semconv.ATTR_ERROR_TYPE: "ModelError"}
            )
            == 2
        )
        assert captured.histogram_count(semconv.INFERENCE_DURATION.name) == 3
    assert captured.internal_errors() == 0  # a model's own error is no internal fault


def _peak_bytes(work: Callable[[], Any]) -> int:
    """Peak memory traced while ``work`` runs (numpy reports its buffers to tracemalloc)."""
    gc.collect()
    tracemalloc.start()
    try:
        work()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return peak


def _tfidf(rows: int, cols: int, per_row: int, fmt: str) -> Any:
    import scipy.sparse

    rng = np.random.default_rng(1)
    row_index = np.repeat(np.arange(rows), per_row)
    col_index = np.concatenate([rng.choice(cols, per_row, replace=False) for _ in range(rows)])
    values = rng.random(rows * per_row) + 0.5
    return scipy.sparse.coo_matrix((values, (row_index, col_index)), shape=(rows, cols)).asformat(
        fmt
    )


@pytest.mark.parametrize("fmt", ["csr", "csc", "coo"])
def test_sparse_inputs_are_never_densified(captured: CapturedTelemetry, fmt: str) -> None:
    """Issue 13, item 3: a 1,000 x 200,000 TF-IDF matrix (1.6 GB dense) is summarised
    from its non-zeros: the payload holds the columns non-zero in its first rows."""
    x = _tfidf(1_000, 200_000, 100, fmt)
    first = x.tocsr()[0]
    names = [f"term{i}" for i in range(200_000)]
    result: list[Any] = []

    @mlotel.instrument(model_name=f"tfidf-{fmt}", feature_names=names)
    def predict(batch: Any) -> Any:
        return np.zeros(batch.shape[0], dtype=np.int64)

    def call_and_flush() -> None:
        result.append(predict(x))
        captured.flush()

    peak = _peak_bytes(call_and_flush)
    assert peak < 64 * 1024 * 1024, f"peak {peak / 2**20:.0f} MiB"  # dense: 1,526 MiB
    assert result[0].shape == (1_000,)
    (span,) = captured.spans
    assert span.attributes is not None and span.attributes["ml.batch.size"] == 1_000
    (record,) = captured.logs
    payload = log_payload(record)
    features = payload["ml.features"]
    shown = {f"term{c}": v for c, v in zip(first.indices.tolist(), first.data.tolist())}
    assert set(shown) <= set(features)  # row 0's non-zeros, named, with their values
    assert {k: v[0] for k, v in features.items() if k in shown} == shown
    assert all(v[0] == 0.0 for k, v in features.items() if k not in shown)
    assert payload[semconv.ATTR_PAYLOAD_TRUNCATED] is True


def test_sparse_columns_past_max_features_are_counted(captured: CapturedTelemetry) -> None:
    x = _tfidf(3, 50_000, 2_000, "csr")  # row 0 alone has 2,000 non-zero columns
    before = captured.dropped("payload", "max_features")
    _, attrs = _observe(captured, "wide-sparse", x)
    assert len(attrs["ml.features"]) <= 512
    assert captured.dropped("payload", "max_features") - before == 2_000 - 512


def test_large_bytes_inputs_are_cut_before_decoding() -> None:
    """Issue 13, item 3: an image or audio clip is not decoded whole for 256 characters."""
    image = b"\x89PNG" + bytes(range(256)) * (80 * 1024)  # 20 MiB
    clip = bytearray(b"RIFF" * (5 * 1024 * 1024))  # 20 MiB
    seen: dict[str, Any] = {}
    # (no outcome store: its first allocation would dominate the peak)
    with capture_telemetry(outcome_store_size=0) as captured:

        def run() -> None:
            seen["image"] = _observe(captured, "images", image)[1]["ml.features"]
            seen["records"] = _observe(captured, "clips", [{"clip": clip, "id": 1}])[1]

        peak = _peak_bytes(run)
    assert peak < 4 * 1024 * 1024, f"peak {peak / 2**20:.1f} MiB"  # decoding: ≥ 20 MiB
    assert len(seen["image"]["f0"]) == 256 and seen["image"]["f0"].endswith("…")
    features = seen["records"]["ml.features"]
    assert features["clip"].startswith("RIFFRIFF") and features["clip"][-1] == "…"
    assert features["id"] == 1 and seen["records"][semconv.ATTR_PAYLOAD_TRUNCATED] is True


def test_huge_container_values_are_not_stringified_whole() -> None:
    values = list(range(2_000_000))
    seen: dict[str, Any] = {}
    with capture_telemetry(outcome_store_size=0) as captured:
        peak = _peak_bytes(
            lambda: seen.update(_observe(captured, "lists", {"history": values, "n": 1})[1])
        )
    assert peak < 4 * 1024 * 1024, f"peak {peak / 2**20:.1f} MiB"  # str(): ~16 MiB
    history = seen["ml.features"]["history"]
    assert history.startswith("[0, 1, 2, 3") and len(history) <= 256


def test_large_tensors_are_cut_before_the_host_copy() -> None:
    torch = pytest.importorskip("torch")
    # 96 MiB in channels-last layout (a numpy view of it is not contiguous: flattening its
    # rows copies them); a payload shows at most 512 columns of ~250 rows. (On a GPU the
    # cut also bounds the device-to-host copy.)
    images = torch.ones((2048, 3, 64, 64)).to(memory_format=torch.channels_last)
    seen: dict[str, Any] = {}
    with capture_telemetry(outcome_store_size=0) as captured:
        peak = _peak_bytes(lambda: seen.update(_observe(captured, "tensors", images)[1]))
    assert peak < 16 * 1024 * 1024, f"peak {peak / 2**20:.1f} MiB"
    assert len(seen["ml.features"]) == 512 and seen[semconv.ATTR_PAYLOAD_TRUNCATED] is True
