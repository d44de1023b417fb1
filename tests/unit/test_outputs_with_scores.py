"""Outputs that carry classes with their scores: Hugging Face style records and
``(labels, probabilities)`` tuples are read as one class and one score per row (issue 13,
item 7)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import mlotel
from mlotel._model_io import classes_and_scores, output_rows
from mlotel.testing import capture_telemetry, log_payload


def _classes(captured: Any) -> dict[str, float]:
    return {
        p.attributes["ml.prediction.class"]: p.value
        for p in captured.points("ml.predictions")
        if "ml.prediction.class" in p.attributes
    }


def test_pipeline_records_count_one_class_per_row_with_its_score() -> None:
    def pipeline(texts: list[str]) -> list[dict[str, Any]]:
        good = ["good" in t for t in texts]
        return [{"label": "POSITIVE" if g else "NEGATIVE", "score": 0.6 + 0.3 * g} for g in good]

    with capture_telemetry() as captured:
        classify = mlotel.instrument(pipeline, model_name="sentiment")
        classify(["good film", "bad plot", "good cast"])
        classify(["good"])
        assert _classes(captured) == {"POSITIVE": 3, "NEGATIVE": 1}
        assert captured.counter_value("ml.predictions") == 4
        (score,) = captured.points("ml.prediction.score")
        assert score.count == 4 and score.sum == pytest.approx(0.9 * 3 + 0.6)
        first = log_payload(captured.logs[0])
        assert first["ml.prediction"] == ["POSITIVE", "NEGATIVE", "POSITIVE"]
        assert first["ml.prediction.score"] == pytest.approx([0.9, 0.6, 0.9])
        assert log_payload(captured.logs[1])["ml.prediction"] == "POSITIVE"


def test_all_classes_per_row_take_the_best_one() -> None:
    rows = [
        [{"label": "a", "score": 0.1}, {"label": "b", "score": 0.7}, {"label": "c", "score": 0.2}],
        [{"label": "a", "score": 0.5}, {"label": "b", "score": 0.3}, {"label": "c", "score": 0.2}],
    ]
    with capture_telemetry() as captured:
        mlotel.instrument(lambda texts: rows, model_name="top-k")(["x", "y"])
        assert _classes(captured) == {"b": 1, "a": 1}
        (score,) = captured.points("ml.prediction.score")
        assert score.sum == pytest.approx(1.2)


def test_labels_probabilities_tuple_is_one_prediction_per_row_and_joins_outcomes() -> None:
    labels = np.array(["cat", "dog", "cat"])
    proba = np.array([[0.8, 0.2], [0.3, 0.7], [0.6, 0.4]])
    with capture_telemetry() as captured:
        model = mlotel.instrument(lambda x: (labels, proba), model_name="pair")
        model(np.zeros((3, 2)))
        ids = mlotel.last_prediction_ids()
        assert len(ids) == 3  # not 2: the tuple is not two predictions
        counts = mlotel.record_outcomes(ids, ["cat", "cat", "cat"])
        assert counts["matched"] == 3
        assert _classes(captured) == {"cat": 2, "dog": 1}
        assert captured.counter_value("ml.predictions") == 3
        (score,) = captured.points("ml.prediction.score")
        assert score.count == 3 and score.sum == pytest.approx(0.8 + 0.7 + 0.6)


def test_tuple_of_labels_and_one_score_each() -> None:
    with capture_telemetry() as captured:
        mlotel.instrument(lambda x: ([1, 0], [0.9, 0.55]), model_name="pair1d")([[1.0], [2.0]])
        assert _classes(captured) == {"1": 1, "0": 1}
        assert log_payload(captured.logs[0])["ml.prediction.score"] == [0.9, 0.55]


@pytest.mark.parametrize(
    "y",
    [
        ((0.1, 0.9), (0.8, 0.2)),  # a two-row probability matrix written as a tuple
        [1, 0, 1],
        np.array([[0.2, 0.8]]),
        ["a", "b"],
        ({"a": 1}, {"a": 2}),
    ],
)
def test_other_outputs_are_not_read_as_classes_and_scores(y: Any) -> None:
    assert classes_and_scores(y) is None


def test_zero_shot_and_rows_of_pairs() -> None:
    read = classes_and_scores({"sequence": "s", "labels": ["x", "y"], "scores": [0.3, 0.7]})
    assert read is not None
    assert read[0].tolist() == ["y"] and read[1] is not None and read[1].tolist() == [0.7]
    assert output_rows((["a", "b", "c"], np.array([0.1, 0.2, 0.3]))) == 3
    assert output_rows(((0.1, 0.9), (0.8, 0.2))) == 2
