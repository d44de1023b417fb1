"""Inputs and outputs understood: numpy, pandas, lists, dicts, scalars, score matrices."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mlotel._model_io import batch_size, features_payload, interpret_output, output_array


@pytest.mark.parametrize(
    ("x", "rows"),
    [
        (np.zeros((7, 3)), 7),
        (np.zeros(3), 1),
        (pd.DataFrame({"a": [1, 2, 3]}), 3),
        (pd.Series({"a": 1, "b": 2}), 1),
        ([[1, 2], [3, 4]], 2),
        ([1.0, 2.0, 3.0], 1),
        ([{"a": 1}, {"a": 2}], 2),
        ({"a": 1, "b": 2}, 1),
        ({"a": [1, 2, 3, 4]}, 4),
        (3.5, 1),
        (None, 1),
    ],
)
def test_batch_size(x: object, rows: int) -> None:
    assert batch_size(x) == rows


def test_feature_names_from_dataframe_columns_and_argument() -> None:
    df = pd.DataFrame({"age": [30, 40], "plan": ["basic", "pro"]})
    payload, truncated, dropped = features_payload(df, None, 8192, 100)
    assert payload == {"age": [30, 40], "plan": ["basic", "pro"]}
    assert not truncated and dropped == 0
    payload, _, _ = features_payload(np.array([[1.0, 2.0]]), ("x", "y"), 8192, 100)
    assert payload == {"x": 1.0, "y": 2.0}
    payload, _, _ = features_payload(np.array([[1.0, 2.0, 3.0]]), None, 8192, 100)
    assert list(payload) == ["f0", "f1", "f2"]


def test_records_series_and_scalars() -> None:
    assert features_payload([{"a": 1, "b": "x"}], None, 8192, 10)[0] == {"a": 1, "b": "x"}
    assert features_payload(pd.Series({"a": 1.5}), None, 8192, 10)[0] == {"a": 1.5}
    assert features_payload(7, None, 8192, 10)[0] == {"f0": 7}


def test_caps_on_features_and_bytes() -> None:
    payload, truncated, dropped = features_payload(np.zeros((1, 50)), None, 8192, 10)
    assert len(payload) == 10 and dropped == 40 and truncated
    payload, truncated, _ = features_payload(np.zeros((5000, 4)), None, 1024, 10)
    assert truncated
    assert 0 < len(payload["f0"]) < 5000


def test_probability_matrix_gives_labels_and_max_scores() -> None:
    proba = np.array([[0.1, 0.9], [0.8, 0.2]])
    labels, scores, values = interpret_output(proba, "predict", "auto", ["no", "yes"])
    assert labels is not None and labels.tolist() == ["yes", "no"]
    assert scores is not None and scores.tolist() == [0.9, 0.8]
    assert values is None


def test_label_and_regression_outputs() -> None:
    labels, scores, _ = interpret_output(np.array([1, 0, 1]), "predict", "auto", None)
    assert labels is not None and labels.tolist() == [1, 0, 1] and scores is None
    labels, scores, values = interpret_output(np.array([0.5, 2.5]), "predict", "auto", None)
    assert labels is None and values is not None and values.tolist() == [0.5, 2.5]
    assert interpret_output(np.zeros((2, 3)), "transform", "auto", None) == (None, None, None)
    log_proba = np.log(np.array([[0.25, 0.75]]))
    _, scores, _ = interpret_output(log_proba, "predict_log_proba", "auto", None)
    assert scores is not None and scores[0] == pytest.approx(0.75)


def test_output_array_is_a_private_copy() -> None:
    y = np.array([1, 2, 3])
    copy = output_array(y)
    y[0] = 99
    assert copy is not None and copy.tolist() == [1, 2, 3]
    ragged = output_array([[1], [2, 3]])
    assert ragged is not None and ragged.dtype == object
