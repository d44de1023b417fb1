"""mlotel.drift.spark against a real local Spark session (local[2], UI off): partials on the
executors, merged on the driver, the same profile and report as on one machine."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

pyspark = pytest.importorskip("pyspark", reason="the test extra installs pyspark")

from mlotel.drift import Profile, report  # noqa: E402
from mlotel.drift import spark as drift_spark  # noqa: E402
from support.spark import local_spark_session  # noqa: E402


@pytest.fixture(scope="module")
def spark() -> Iterator[Any]:
    session = local_spark_session(
        "mlotel-tests",
        {
            "spark.driver.memory": "1g",
            "spark.sql.execution.arrow.maxRecordsPerBatch": "5000",
        },
    )
    yield session
    session.stop()


def frames(rows: int, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    out = []
    for shift in (0.0, 0.4):
        frame = pd.DataFrame(
            {
                "normal": rng.normal(shift, 1.0, rows),
                "skewed": rng.lognormal(0.0, 1.2, rows) * (1 + shift),
                "same": rng.normal(5.0, 2.0, rows),
                "few": rng.choice([0.0, 1.0, 2.0], rows),
                "plan": rng.choice(["basic", "plus", "pro"], rows, p=[0.5, 0.3 + shift / 4,
                                                                       0.2 - shift / 4]),
                "level": rng.integers(0, 5, rows),
            }
        )
        frame.loc[rng.random(rows) < 0.02, "normal"] = np.nan
        out.append(frame)
    return out[0], out[1]


def test_spark_report_equals_the_single_machine_report(spark: Any, tmp_path: Path) -> None:
    ref, cur = frames(30_000, 1)
    ref.to_parquet(tmp_path / "ref.parquet")
    cur.to_parquet(tmp_path / "cur.parquet")
    local = report(tmp_path / "ref.parquet", tmp_path / "cur.parquet")
    in_memory = report(ref, cur)
    result = drift_spark.report(
        spark.createDataFrame(ref).repartition(3), spark.createDataFrame(cur).repartition(4)
    )
    assert [c.name for c in result.columns] == [c.name for c in local.columns]
    for ours, theirs, exact in zip(result.columns, local.columns, in_memory.columns):
        assert (ours.status, ours.stattest, ours.drift_detected) == (
            theirs.status, theirs.stattest, theirs.drift_detected
        ), ours.name
        assert ours.drift_detected == exact.drift_detected
        assert ours.score == pytest.approx(theirs.score, rel=1e-9, abs=1e-12), ours.name
        assert abs(ours.score - exact.score) <= 1e-3, ours.name
        assert ours.quality.to_dict()["reference"]["missing"] == (
            exact.quality.to_dict()["reference"]["missing"]
        )
        assert ours.distribution == theirs.distribution
    assert {c.stattest for c in result.columns} >= {"wasserstein", "jensenshannon"}
    assert result.dataset_drift == local.dataset_drift == in_memory.dataset_drift
    # Same JSON as the CLI's apart from floating-point rounding of means.
    ours_json, theirs_json = json.loads(result.to_json()), json.loads(local.to_json())
    assert ours_json.keys() == theirs_json.keys()
    assert ours_json["number_of_drifted_columns"] == theirs_json["number_of_drifted_columns"]


def test_spark_profile_equals_the_in_memory_profile(spark: Any) -> None:
    ref, _ = frames(25_000, 2)
    expected = Profile.from_data(ref, target="level")
    got = drift_spark.profile(spark.createDataFrame(ref).repartition(3), target="level")
    assert [f.name for f in got.features] == [f.name for f in expected.features]
    for ours, theirs in zip(got.features, expected.features):
        assert (ours.kind, ours.role, ours.count, ours.missing) == (
            theirs.kind, theirs.role, theirs.count, theirs.missing
        )
        assert ours.edges == theirs.edges and ours.bin_counts == theirs.bin_counts
        assert ours.categories == theirs.categories
        assert ours.quantiles == theirs.quantiles
        if ours.mean is not None:
            assert ours.mean == pytest.approx(theirs.mean, rel=1e-12)
            assert ours.std == pytest.approx(theirs.std, rel=1e-9)


def test_spark_report_of_an_empty_side_says_so(spark: Any) -> None:
    ref, cur = frames(2_000, 3)
    empty = spark.createDataFrame(cur).limit(0)
    result = drift_spark.report(spark.createDataFrame(ref), empty)
    assert {c.status for c in result.columns} == {"empty_current"}
    assert result.current_rows == 0 and result.drift_share is None


def test_spark_monitoring_report_has_the_same_performance_as_in_memory(spark: Any) -> None:
    """Target, prediction and score named: confusion counts, exact sums and the ROC AUC
    summaries come back from the executors as partials; the section equals the in-memory
    one bit for bit, and so do the quantiles of the big columns."""
    rng = np.random.default_rng(4)
    sides = []
    for shift in (0.0, 0.5):
        x = rng.normal(shift, 1.0, 20_000)
        score = 1.0 / (1.0 + np.exp(-(x + rng.normal(0.0, 1.0, x.size))))
        sides.append(pd.DataFrame({
            "x": x,
            "plan": rng.choice(["a", "b", "c"], x.size),
            "label": np.where(rng.random(x.size) < 1.0 / (1.0 + np.exp(-x)), "yes", "no"),
            "predicted": np.where(score > 0.5, "yes", "no"),
            "probability": score,
        }))  # fmt: skip
    roles = {"target": "label", "prediction": "predicted", "score": "probability"}
    in_memory = report(sides[0], sides[1], **roles)
    result = drift_spark.report(
        spark.createDataFrame(sides[0]).repartition(3),
        spark.createDataFrame(sides[1]).repartition(4),
        **roles,
    )
    assert result.performance == in_memory.performance
    assert result.performance.positive_label == "yes"
    assert result.performance.current.roc_auc_error_bound == 0.0
    assert result.score_drift.drift_detected == in_memory.score_drift.drift_detected
    ours, exact = result.column("x").quality, in_memory.column("x").quality
    assert ours.reference.quantiles == exact.reference.quantiles
    assert ours.current.quantiles == exact.current.quantiles
