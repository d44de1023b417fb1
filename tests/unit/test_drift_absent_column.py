"""A profile column no input ever holds (the label profiled as a feature) is named in one
warning per model; what the monitor counts for it is counted once, as before."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import LogisticRegression

import mlotel
import mlotel.testing
from mlotel import semconv
from mlotel._self_telemetry import tally
from mlotel.drift import Profile

HINT = "Pass target=LABEL to Profile.from_data"
# The model was fitted on a DataFrame; some calls here send the same rows as an array.
ARRAYS = pytest.mark.filterwarnings("ignore:X does not have valid feature names")


@pytest.fixture(scope="module")
def data() -> tuple[pd.DataFrame, pd.DataFrame, LogisticRegression]:
    frame = load_breast_cancer(as_frame=True).frame.iloc[:, [0, 1, 2, 3, -1]]  # + "target"
    train_df = frame.rename(columns={"target": "malignant"})
    x_train = train_df.drop(columns="malignant")
    model = LogisticRegression(max_iter=1000).fit(x_train, train_df["malignant"])
    return train_df, x_train, model


def _warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == "mlotel"
        and r.levelno == logging.WARNING
        and "drift of model" in r.getMessage()
    ]


def _missing(captured: mlotel.testing.CapturedTelemetry, model: str, feature: str) -> float:
    return sum(
        p.value
        for p in captured.points(
            semconv.DATA_QUALITY_ISSUES.name,
            {
                semconv.ATTR_MODEL_NAME: model,
                semconv.ATTR_FEATURE_NAME: feature,
                semconv.ATTR_DATA_QUALITY_ISSUE: "missing",
            },
        )
    )


def test_label_profiled_as_a_feature_is_named_once_per_model(
    data: tuple[pd.DataFrame, pd.DataFrame, LogisticRegression], caplog: pytest.LogCaptureFixture
) -> None:
    train_df, x_train, model = data
    reference = Profile.from_data(train_df, prediction=model.predict(x_train))  # no target=
    with (
        caplog.at_level(logging.WARNING, logger="mlotel"),
        mlotel.testing.capture_telemetry() as captured,
    ):
        first = mlotel.instrument(model, model_name="first", reference=reference)
        second = mlotel.instrument(model, model_name="second", reference=reference)
        for _ in range(3):  # three flushes: still one warning
            first.predict(x_train.iloc[:50])
            captured.flush()
        second.predict(x_train.iloc[:10])
        captured.flush()
        missing = _missing(captured, "first", "malignant")
        other = _missing(captured, "first", "mean radius")
    found = _warnings(caplog)
    assert len(found) == 2, found  # once per model
    assert "'first'" in found[0] and "'second'" in found[1]
    assert "profile column(s) 'malignant' absent from every input so far (50 rows)" in found[0]
    assert HINT in found[0]
    assert missing == 150 and other == 0  # each row counted once, as before


@ARRAYS
def test_array_inputs_of_another_width_are_explained_once(
    data: tuple[pd.DataFrame, pd.DataFrame, LogisticRegression], caplog: pytest.LogCaptureFixture
) -> None:
    train_df, x_train, model = data
    reference = Profile.from_data(train_df)  # 5 feature columns; the model takes 4
    rows = x_train.to_numpy()[:40]
    with (
        caplog.at_level(logging.WARNING, logger="mlotel"),
        mlotel.testing.capture_telemetry() as captured,
    ):
        clf = mlotel.instrument(model, model_name="arrays", reference=reference)
        for _ in range(2):
            clf.predict(rows)
            captured.flush()
    found = _warnings(caplog)
    assert len(found) == 1, found
    assert "inputs have 4 columns where the reference profile has 5 feature columns" in found[0]
    assert HINT in found[0]
    assert tally.dropped[("drift", "input_width")] == 80  # counted once per row, as before


def test_inputs_the_model_rejected_make_no_guess_about_the_profile(
    data: tuple[pd.DataFrame, pd.DataFrame, LogisticRegression], caplog: pytest.LogCaptureFixture
) -> None:
    train_df, x_train, model = data
    reference = Profile.from_data(train_df, target="malignant")  # right: 4 features
    malformed = x_train.to_numpy()[:10, :2]  # 2 columns: the model raises
    with (
        caplog.at_level(logging.WARNING, logger="mlotel"),
        mlotel.testing.capture_telemetry() as captured,
    ):
        clf = mlotel.instrument(model, model_name="rejects", reference=reference)
        with pytest.raises(ValueError):
            clf.predict(malformed)
        clf.predict(x_train.iloc[:40])
        captured.flush()
        assert captured.dropped("drift", "input_width") == 10  # still counted
    assert _warnings(caplog) == []  # rejected traffic says nothing about the profile


@ARRAYS
def test_no_warning_when_the_label_is_the_target(
    data: tuple[pd.DataFrame, pd.DataFrame, LogisticRegression], caplog: pytest.LogCaptureFixture
) -> None:
    train_df, x_train, model = data
    reference = Profile.from_data(train_df, target="malignant", prediction=model.predict(x_train))
    with (
        caplog.at_level(logging.WARNING, logger="mlotel"),
        mlotel.testing.capture_telemetry() as captured,
    ):
        clf = mlotel.instrument(model, model_name="right", reference=reference)
        clf.predict(x_train.iloc[:50])
        clf.predict(np.asarray(x_train)[:50])
        captured.flush()
        missing = _missing(captured, "right", "malignant")
    assert _warnings(caplog) == []
    assert missing == 0 and tally.dropped[("drift", "input_width")] == 0
