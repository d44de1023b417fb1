"""A value mlotel cannot read costs only that part of the telemetry, never the call's
duration, count or log record, and never another call's."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest
import scipy.sparse

import mlotel
from mlotel.testing import capture_telemetry, log_payload


class FakeTensor:
    """Looks like a torch tensor (module name, detach) but cannot become numpy."""

    __module__ = "torch"
    shape = (2, 3)

    def detach(self) -> FakeTensor:
        return self

    def cpu(self) -> FakeTensor:
        return self

    def numpy(self) -> np.ndarray:
        raise TypeError("Got unsupported ScalarType BFloat16")

    def __getitem__(self, item: Any) -> FakeTensor:
        return self


class Unprintable(Exception):
    def __str__(self) -> str:
        raise RuntimeError("no str for you")


@pytest.mark.parametrize(
    ("features", "output"),
    [
        (np.array(3.0), [1]),
        ({"a": [1, 2], "b": 3}, [0, 1]),
        (FakeTensor(), [0, 1]),
        ([[1.0, 2.0]], FakeTensor()),
    ],
    ids=["0-d-array", "mixed-dict", "tensor-input", "tensor-output"],
)
def test_unreadable_values_keep_the_call(features: Any, output: Any) -> None:
    with capture_telemetry() as captured:
        predict = mlotel.instrument(lambda x: output, model_name="odd")
        assert predict(features) is output
        assert captured.histogram_count("ml.inference.duration") == 1
        assert len(captured.logs) == 1
        assert len(captured.spans) == 1


def test_dict_with_a_scalar_is_one_record() -> None:
    with capture_telemetry() as captured:
        mlotel.instrument(lambda x: [0], model_name="m")({"a": [1, 2], "b": 3})
        assert log_payload(captured.logs[0])["ml.features"] == {"a": "[1, 2]", "b": 3}
        assert captured.spans[0].attributes["ml.batch.size"] == 1


def test_exception_whose_str_raises() -> None:
    boom = Unprintable()

    @mlotel.instrument(model_name="weird")
    def predict(x: Any) -> Any:
        raise boom

    with capture_telemetry() as captured:
        with pytest.raises(Unprintable) as info:
            predict([[1.0]])
        assert info.value is boom
        (span,) = captured.spans
        assert span.attributes["error.type"] == "Unprintable"
        assert span.status.description == "<unprintable Unprintable>"
        assert len(captured.logs) == 1


def test_one_bad_output_does_not_poison_the_flush() -> None:
    outputs = [np.array([[0.3, 0.7]])] * 20 + [np.array(["yes"])]
    with capture_telemetry() as captured:
        predict = mlotel.instrument(
            lambda x: outputs.pop(0), model_name="m", output="probabilities"
        )
        for _ in range(21):
            predict([[1.0, 2.0]])
        assert len(captured.logs) == 21
        assert captured.histogram_count("ml.prediction.score") == 20
        assert captured.histogram_count("ml.inference.duration") == 21
        assert captured.counter_value("ml.predictions") == 21
    assert captured.internal_errors("monitor.outputs") == 1


def test_pipeline_style_scores_are_skipped_not_fatal() -> None:
    with capture_telemetry() as captured:
        for _ in range(5):
            with mlotel.inference("sentiment") as call:
                call.record(
                    features=["great"], prediction=["POS"], scores=[{"label": "POS", "score": 0.98}]
                )
        assert len(captured.logs) == 5
        assert captured.counter_value("ml.predictions", {"ml.prediction.class": "POS"}) == 5
        assert captured.histogram_count("ml.prediction.score") == 0


@pytest.mark.parametrize(
    "docs",
    [
        ["good movie", "bad plot", "meh"],
        pd.Series(["good movie", "bad plot", "meh"], name="review"),
        np.array(["good movie", "bad plot", "meh"]),
    ],
    ids=["list", "series", "array"],
)
def test_documents_are_rows(docs: Any) -> None:
    with capture_telemetry() as captured:
        mlotel.instrument(lambda x: np.array(["pos", "neg", "neg"]), model_name="text")(docs)
        assert captured.spans[0].attributes["ml.batch.size"] == 3
        payload = log_payload(captured.logs[0])
        assert list(next(iter(payload["ml.features"].values()))) == list(docs)
        assert list(payload["ml.prediction"]) == ["pos", "neg", "neg"]


def test_sparse_matrix_rows() -> None:
    x = scipy.sparse.csr_matrix(np.eye(100, 5))
    with capture_telemetry() as captured:
        mlotel.instrument(lambda m: np.zeros(m.shape[0]), model_name="sparse")(x)
        assert captured.spans[0].attributes["ml.batch.size"] == 100
        assert log_payload(captured.logs[0])["ml.features"]["f0"][:2] == [1.0, 0.0]


def test_redacted_first_feature_keeps_batch_predictions() -> None:
    with capture_telemetry(payload_redact="f0") as captured:
        mlotel.instrument(lambda x: np.arange(10), model_name="m")(np.ones((10, 3)))
        payload = log_payload(captured.logs[0])
        assert payload["ml.features"]["f0"] == "[REDACTED]"
        assert payload["ml.prediction"] == list(range(10))


@pytest.mark.parametrize(
    ("features", "rows"),
    [
        (pd.DataFrame({"age": [30], "color": ["red"], "h": [1.8]}).iloc[0], 1),
        (np.array([1.0, 2.5, 3.0], dtype=object), 1),
        (["red", 3.0], 1),
        ({"user_id": 42, "recent_items": [101, 202, 303, 404]}, 1),
        ({"a": [1, 2, 3], "b": [4, 5, 6]}, 3),
        ([b"doc one", b"doc two"], 2),
    ],
    ids=["series-row", "object-floats", "mixed-list", "record-with-list", "columns", "bytes-docs"],
)
def test_single_rows_are_not_mistaken_for_batches(features: Any, rows: int) -> None:
    with capture_telemetry() as captured:
        mlotel.instrument(lambda x: [0] * rows, model_name="m")(features)
        assert captured.spans[0].attributes["ml.batch.size"] == rows
        assert captured.counter_value("ml.predictions") == rows


def test_prediction_count_follows_the_output() -> None:
    class DMatrixLike:  # an input mlotel cannot read rows from
        pass

    with capture_telemetry() as captured:
        mlotel.instrument(lambda d: np.zeros(500), model_name="booster")(DMatrixLike())
        assert captured.counter_value("ml.predictions") == 500


def test_explicit_scores_survive_output_trimming() -> None:
    with capture_telemetry() as captured:
        with mlotel.inference("emb", operation="transform") as call:
            call.record(
                features=np.zeros((100, 2)), prediction=np.zeros((100, 8)), scores=np.full(100, 0.9)
            )
        assert captured.histogram_count("ml.prediction.score") == 100
