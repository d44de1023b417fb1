"""A model that changes its input in place, or a caller that reuses its input buffer,
does not change what mlotel logs or what the drift monitor counts (issue 13, item 6)."""

from __future__ import annotations

from typing import Any

import numpy as np

import mlotel
from mlotel.drift import Profile
from mlotel.testing import CapturedTelemetry, capture_telemetry, log_payload

RNG = np.random.default_rng(7)
TRAIN = RNG.uniform(0.0, 10.0, size=(5_000, 2))
REFERENCE = Profile.from_data(TRAIN, feature_names=["a", "b"])


def _bins(captured: CapturedTelemetry, feature: str) -> dict[str, float]:
    return {
        p.attributes["ml.feature.bin"]: p.value
        for p in captured.points("ml.feature.bin.count", {"ml.feature.name": feature})
    }


def _expected_bins(values: np.ndarray, feature: int) -> dict[str, float]:
    edges = np.asarray(REFERENCE.features[feature].edges)
    counts = np.bincount(np.searchsorted(edges, values, side="left"), minlength=len(edges) + 1)
    return {str(i): float(c) for i, c in enumerate(counts.tolist())}


def normalising_model(x: np.ndarray) -> np.ndarray:
    x -= 100.0  # in place: the caller's array changes during the call
    return (x[:, 0] > -95.0).astype(np.int64)


def test_drift_and_payload_see_the_input_as_passed_when_the_model_mutates_it() -> None:
    batch = RNG.uniform(0.0, 10.0, size=(600, 2))
    original = batch.copy()
    with capture_telemetry() as captured:
        predict = mlotel.instrument(normalising_model, model_name="inplace", reference=REFERENCE)
        predict(batch)
        assert batch.min() < -89.0  # the model really changed the caller's array
        bins = _bins(captured, "a")
        assert sum(bins.values()) == 600
        assert {k: v for k, v in bins.items() if v} == {
            k: v for k, v in _expected_bins(original[:, 0], 0).items() if v
        }
        features = log_payload(captured.logs[0])["ml.features"]
        assert features["f0"][:3] == original[:3, 0].tolist()


def test_one_row_payload_is_the_row_as_passed() -> None:
    row = np.array([[3.0, 4.0]])
    with capture_telemetry() as captured:
        mlotel.instrument(normalising_model, model_name="one-row", feature_names=["a", "b"])(row)
        assert row.tolist() == [[-97.0, -96.0]]
        assert log_payload(captured.logs[0])["ml.features"] == {"a": 3.0, "b": 4.0}


def test_a_reused_buffer_does_not_change_what_drift_counts() -> None:
    buffer = np.empty((600, 2))
    seen: list[np.ndarray] = []
    with capture_telemetry(flush_interval=3600, buffer_size=100_000) as captured:
        predict = mlotel.instrument(
            lambda x: np.zeros(len(x)), model_name="reuse", reference=REFERENCE
        )
        for low in (0.0, 5.0):
            buffer[:] = RNG.uniform(low, low + 5.0, size=(600, 2))  # refilled in place
            seen.append(buffer[:, 0].copy())
            predict(buffer)
        buffer[:] = -1.0
        assert _bins(captured, "a") == _expected_bins(np.concatenate(seen), 0)


def test_other_inputs_are_read_at_flush_time_as_documented() -> None:
    # Lists, dicts and DataFrames are referenced, not copied (see instrument()'s docs).
    rows: list[list[Any]] = [[1.0, 2.0]]
    with capture_telemetry() as captured:
        mlotel.instrument(lambda x: [0], model_name="lists", feature_names=["a", "b"])(rows)
        rows[0][0] = 9.0
        assert log_payload(captured.logs[0])["ml.features"]["a"] == 9.0
