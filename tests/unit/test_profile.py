"""Reference profiles: statistics, bins, type inference, merge and the JSON format."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import mlotel
from mlotel.drift import SCHEMA_VERSION, Profile, ProfileError, Range


@pytest.fixture(scope="module")
def table() -> pd.DataFrame:
    rng = np.random.default_rng(42)
    n = 5000
    income = rng.lognormal(10, 0.5, n)
    income[:50] = np.nan
    income[50:53] = np.inf
    return pd.DataFrame(
        {
            "age": rng.normal(40, 12, n),
            "income": income,
            "children": rng.integers(0, 4, n),  # int, 4 distinct: categorical
            "visits": rng.integers(0, 500, n),  # int, many distinct: numeric
            "plan": rng.choice(
                ["basic", "plus", "pro", "team", "edu"], n, p=[0.4, 0.3, 0.2, 0.07, 0.03]
            ),
            "active": rng.random(n) < 0.7,
            "churned": rng.integers(0, 2, n),
        }
    )


def test_numeric_statistics_match_numpy(table: pd.DataFrame) -> None:
    profile = Profile.from_data(table, target="churned")
    income = profile["income"]
    finite = table["income"].to_numpy()[np.isfinite(table["income"].to_numpy())]
    assert (income.kind, income.count, income.missing, income.non_finite) == (
        "numeric",
        finite.size,
        50,
        3,
    )
    assert income.missing_share == pytest.approx(50 / 5000)
    assert income.min == finite.min() and income.max == finite.max()
    assert income.mean == pytest.approx(finite.mean(), rel=1e-12)
    assert income.std == pytest.approx(finite.std(), rel=1e-12)
    assert income.quantiles["0.5"] == pytest.approx(np.quantile(finite, 0.5))
    assert income.quantiles["0.99"] == pytest.approx(np.quantile(finite, 0.99))


def test_numeric_bins_are_equal_frequency_with_open_ends(table: pd.DataFrame) -> None:
    age = Profile.from_data(table)["age"]
    # 5,000 values: one bin per 200 (auto_bins), i.e. 25 bins.
    assert len(age.edges) == 24 and len(age.bin_counts) == 25
    assert list(age.edges) == sorted(age.edges)
    np.testing.assert_allclose(age.shares, 0.04, atol=0.001)
    assert sum(age.bin_counts) == age.count == 5000
    # The bins are what searchsorted gives: anything below the first edge is bin 0.
    values = table["age"].to_numpy()
    expected = np.bincount(np.searchsorted(age.edges, values, side="right"), minlength=25)
    assert list(age.bin_counts) == expected.tolist()


def test_ties_merge_bins_and_no_empty_first_bin() -> None:
    values = np.array([0.0] * 60 + list(np.linspace(1, 10, 40)))
    feature = Profile.from_data({"x": values})["x"]
    assert feature.bin_counts[0] == 60  # the zeros share one bin
    assert all(c > 0 for c in feature.bin_counts)


def test_categorical_top_n_plus_other(table: pd.DataFrame) -> None:
    profile = Profile.from_data(table, top_categories=3)
    plan = profile["plan"]
    assert plan.kind == "categorical" and plan.value_type == "text"
    counts = table["plan"].value_counts()
    assert plan.categories == ("basic", "plus", "pro")
    assert plan.bin_counts == (
        *counts[["basic", "plus", "pro"]].tolist(),
        counts[["team", "edu"]].sum(),
    )
    assert plan.known_categories == ("edu", "team")
    assert plan.bin_labels == ["basic", "plus", "pro", "__other__"]


def test_type_inference_and_overrides(table: pd.DataFrame) -> None:
    profile = Profile.from_data(table, target="churned")
    kinds = {f.name: (f.kind, f.role) for f in profile.features}
    assert kinds == {
        "age": ("numeric", "feature"),
        "income": ("numeric", "feature"),
        "children": ("categorical", "feature"),  # ints with <= 10 distinct values
        "visits": ("numeric", "feature"),
        "plan": ("categorical", "feature"),
        "active": ("categorical", "feature"),
        "churned": ("categorical", "target"),
    }
    assert profile.feature_names == ["age", "income", "children", "visits", "plan", "active"]
    assert profile["children"].categories[0] in {"0", "1", "2", "3"}
    assert set(profile["active"].categories) == {"True", "False"}
    forced = Profile.from_data(table, categorical=["visits"], numeric=["children"])
    assert forced["visits"].kind == "categorical" and forced["children"].kind == "numeric"
    with pytest.raises(ValueError, match="no column named 'nope'"):
        Profile.from_data(table, categorical=["nope"])


def test_prediction_and_score_arrays_are_profiled_like_features() -> None:
    x = np.random.default_rng(0).normal(size=(200, 2))
    profile = Profile.from_data(
        x, feature_names=["a", "b"], prediction=(x[:, 0] > 0).astype(int), score=np.abs(x[:, 1])
    )
    assert profile.feature_names == ["a", "b"]
    prediction = profile.role("prediction")
    score = profile.role("score")
    assert prediction is not None and prediction.kind == "categorical"
    assert score is not None and score.kind == "numeric" and score.count == 200


def test_array_dict_and_dataframe_inputs_agree() -> None:
    x = np.random.default_rng(1).normal(size=(300, 2))
    from_array = Profile.from_data(x, feature_names=["a", "b"])
    from_dict = Profile.from_data({"a": x[:, 0], "b": x[:, 1]})
    from_frame = Profile.from_data(pd.DataFrame(x, columns=["a", "b"]))
    rows = [{"a": float(r[0]), "b": float(r[1])} for r in x]
    from_rows = Profile.from_data(rows)
    for other in (from_dict, from_frame, from_rows):
        assert other.features == from_array.features
    assert mlotel.Profile is Profile


def test_merge_of_two_parts_gives_the_whole(table: pd.DataFrame) -> None:
    first, second = table.iloc[:2000], table.iloc[2000:]
    part1 = Profile.from_data(first, target="churned")
    part2 = Profile.binned_like(second, part1)
    merged = part1.merge(part2)
    whole = Profile.binned_like(table, part1)
    assert merged.rows == 5000
    for name in table.columns:
        m, w = merged[name], whole[name]
        assert (m.count, m.missing, m.non_finite) == (w.count, w.missing, w.non_finite), name
        if m.kind == "numeric":
            assert m.bin_counts == w.bin_counts
            assert (m.min, m.max) == (w.min, w.max)
            assert m.mean == pytest.approx(w.mean, rel=1e-12)
            assert m.std == pytest.approx(w.std, rel=1e-12)
        else:
            assert dict(zip(m.bin_labels, m.bin_counts)) == dict(zip(w.bin_labels, w.bin_counts))


def test_merge_refuses_different_bins(table: pd.DataFrame) -> None:
    a = Profile.from_data(table.iloc[:100])
    b = Profile.from_data(table.iloc[100:300])
    with pytest.raises(ValueError, match=r"different bin edges.*binned_like"):
        a.merge(b)


def test_json_round_trip_with_constraints(tmp_path: Path, table: pd.DataFrame) -> None:
    profile = Profile.from_data(table, target="churned").with_constraints(
        {"age": [Range(0, 120, name="age_range")]}
    )
    path = tmp_path / "reference.json"
    profile.save(path)
    loaded = Profile.load(path)
    assert loaded == profile
    data = json.loads(path.read_text())
    assert data["format"] == "mlotel.profile" and data["schema_version"] == SCHEMA_VERSION
    assert data["features"][0]["constraints"] == [
        {"type": "range", "name": "age_range", "min": 0, "max": 120}
    ]


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "ref.json"
    path.write_text(text)
    return path


def test_newer_schema_is_a_clear_error_naming_the_file(tmp_path: Path) -> None:
    data = Profile.from_data({"a": [1.0, 2.0]}).to_dict()
    data["schema_version"] = SCHEMA_VERSION + 1
    path = _write(tmp_path, json.dumps(data))
    newer = SCHEMA_VERSION + 1
    with pytest.raises(ProfileError, match=rf"{path}: profile schema_version {newer} is newer"):
        Profile.load(path)


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("{not json", "not valid JSON"),
        ('{"hello": 1}', "not an mlotel profile"),
        (
            '{"format": "mlotel.profile", "schema_version": 1, "features": [{"name": "a"}]}',
            r"features\[0\] lacks field 'kind'",
        ),
        (
            '{"format": "mlotel.profile", "schema_version": 1, "features": [{"name": "a", '
            '"kind": "numeric", "count": 1, "edges": [2, 1], "bin_counts": [1, 0, 0]}]}',
            "edges must be sorted",
        ),
        ('{"format": "mlotel.profile", "schema_version": 1, "features": []}', "no features"),
    ],
)
def test_corrupt_files_name_the_file_and_problem(tmp_path: Path, text: str, problem: str) -> None:
    path = _write(tmp_path, text)
    with pytest.raises(ProfileError, match=f"{path}: .*{problem}"):
        Profile.load(path)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ProfileError, match=r"nope\.json: cannot read"):
        Profile.load(tmp_path / "nope.json")


def test_empty_and_all_missing_columns() -> None:
    profile = Profile.from_data({"a": [np.nan, np.nan], "b": [1.0, 2.0]})
    assert profile["a"].count == 0 and profile["a"].missing == 2 and profile["a"].min is None
    assert Profile.from_json(profile.to_json()) == profile
