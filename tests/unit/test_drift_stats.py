"""Every drift statistic of the offline report against scipy on fixed data, and the rules
that pick a column's default test (Evidently 0.7's)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from scipy.spatial import distance

from mlotel.drift import report
from mlotel.drift._stats import (
    STAT_TESTS,
    ColumnSample,
    binned_shares,
    chisquare_pvalue,
    default_stattest,
    jensenshannon_distance,
    kl_divergence,
    ks_pvalue,
    psi,
    wasserstein_normed,
    z_pvalue,
)

TOLERANCE = 1e-9
RNG = np.random.default_rng(20240601)
NORMAL_REF = RNG.normal(0.0, 1.0, 700)
NORMAL_CUR = RNG.normal(0.25, 1.2, 650)
COLOURS_REF = RNG.choice(["red", "green", "blue", "black"], 900, p=[0.4, 0.3, 0.2, 0.1])
COLOURS_CUR = RNG.choice(["red", "green", "blue", "pink"], 800, p=[0.3, 0.3, 0.3, 0.1])


def numeric(ref: np.ndarray, cur: np.ndarray) -> ColumnSample:
    return ColumnSample(np.asarray(ref, float), np.asarray(cur, float), "numerical")


def categorical(ref: np.ndarray, cur: np.ndarray) -> ColumnSample:
    return ColumnSample(np.asarray(ref, object), np.asarray(cur, object), "categorical")


def counts_over_union(ref: np.ndarray, cur: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    keys = sorted(set(ref.tolist()) | set(cur.tolist()))
    ref_counts = np.array([np.count_nonzero(ref == k) for k in keys], float)
    cur_counts = np.array([np.count_nonzero(cur == k) for k in keys], float)
    return ref_counts, cur_counts


# --- statistics against scipy -----------------------------------------------------------


def test_ks_pvalue_equals_scipy_ks_2samp() -> None:
    expected = stats.ks_2samp(NORMAL_REF, NORMAL_CUR).pvalue
    assert ks_pvalue(numeric(NORMAL_REF, NORMAL_CUR)) == pytest.approx(expected, abs=TOLERANCE)
    assert 0.0 < expected < 0.05  # the fixture really drifts: a wrong p-value would show


@pytest.mark.parametrize(
    ("ref", "cur"),
    [
        (NORMAL_REF, NORMAL_CUR),  # different sizes
        (NORMAL_REF[:500], NORMAL_CUR[:500]),  # equal sizes
        (RNG.integers(0, 7, 1500).astype(float), RNG.integers(1, 9, 1100).astype(float)),  # ties
        (np.full(300, 2.0), np.concatenate([np.full(290, 2.0), np.full(10, 2.5)])),  # std 0
        (RNG.lognormal(0, 2, 3001), RNG.lognormal(0.1, 2, 2999)),  # heavy tail
    ],
)
def test_wasserstein_normed_equals_scipy_over_reference_std(
    ref: np.ndarray, cur: np.ndarray
) -> None:
    expected = stats.wasserstein_distance(ref, cur) / max(np.std(ref), 0.001)
    assert wasserstein_normed(numeric(ref, cur)) == pytest.approx(expected, abs=TOLERANCE)


def test_chisquare_pvalue_equals_scipy_with_reference_scaled_expectation() -> None:
    ref = RNG.choice(["a", "b", "c"], 600, p=[0.5, 0.3, 0.2])
    cur = RNG.choice(["a", "b", "c"], 400, p=[0.45, 0.3, 0.25])
    ref_counts, cur_counts = counts_over_union(ref, cur)
    expected = stats.chisquare(cur_counts, ref_counts * (cur.size / ref.size)).pvalue
    assert chisquare_pvalue(categorical(ref, cur)) == pytest.approx(expected, abs=TOLERANCE)
    assert 0.0 < expected < 1.0


def test_chisquare_pvalue_is_zero_for_a_category_unseen_in_the_reference() -> None:
    assert chisquare_pvalue(categorical(COLOURS_REF, COLOURS_CUR)) == 0.0


def test_z_pvalue_equals_two_proportion_z_test() -> None:
    ref = RNG.choice(["no", "yes"], 800, p=[0.7, 0.3])
    cur = RNG.choice(["no", "yes"], 500, p=[0.62, 0.38])
    # proportion of rows not equal to the smallest value ("no"), pooled variance
    p_ref, p_cur = np.mean(ref != "no"), np.mean(cur != "no")
    pooled = (p_ref * ref.size + p_cur * cur.size) / (ref.size + cur.size)
    z = (p_ref - p_cur) / math.sqrt(pooled * (1 - pooled) * (1 / ref.size + 1 / cur.size))
    expected = 2 * (1 - stats.norm.cdf(abs(z)))
    assert z_pvalue(categorical(ref, cur)) == pytest.approx(expected, abs=TOLERANCE)
    assert expected < 0.05


def test_z_pvalue_is_one_when_both_samples_hold_the_same_single_value() -> None:
    assert z_pvalue(categorical(np.array(["x"] * 10), np.array(["x"] * 4))) == 1.0


def test_jensenshannon_on_categories_equals_scipy_natural_log() -> None:
    ref_counts, cur_counts = counts_over_union(COLOURS_REF, COLOURS_CUR)
    expected = distance.jensenshannon(ref_counts / COLOURS_REF.size, cur_counts / COLOURS_CUR.size)
    got = jensenshannon_distance(categorical(COLOURS_REF, COLOURS_CUR))
    assert got == pytest.approx(expected, abs=TOLERANCE)
    assert got != pytest.approx(
        distance.jensenshannon(
            ref_counts / COLOURS_REF.size, cur_counts / COLOURS_CUR.size, base=2
        ),
        abs=1e-3,
    )


def test_jensenshannon_on_many_valued_numbers_uses_sturges_bins_over_both_samples() -> None:
    edges = np.histogram_bin_edges(np.concatenate([NORMAL_REF, NORMAL_CUR]), bins="sturges")
    ref_shares = np.histogram(NORMAL_REF, edges)[0] / NORMAL_REF.size
    cur_shares = np.histogram(NORMAL_CUR, edges)[0] / NORMAL_CUR.size
    expected = distance.jensenshannon(ref_shares, cur_shares)
    got = jensenshannon_distance(numeric(NORMAL_REF, NORMAL_CUR))
    assert got == pytest.approx(expected, abs=TOLERANCE)


def test_psi_and_kl_div_use_zero_filled_shares() -> None:
    sample = categorical(COLOURS_REF, COLOURS_CUR)  # "black" and "pink" are empty on a side
    ref_counts, cur_counts = counts_over_union(COLOURS_REF, COLOURS_CUR)
    ref_shares, cur_shares = ref_counts / COLOURS_REF.size, cur_counts / COLOURS_CUR.size
    for shares in (ref_shares, cur_shares):
        smallest = shares[shares > 0].min()
        shares[shares == 0] = smallest / 1e6 if smallest <= 1e-4 else 1e-4
    expected_psi = np.sum((ref_shares - cur_shares) * np.log(ref_shares / cur_shares))
    assert psi(sample) == pytest.approx(expected_psi, abs=TOLERANCE)
    assert kl_divergence(sample) == pytest.approx(
        stats.entropy(ref_shares, cur_shares), abs=TOLERANCE
    )


# --- binning and test selection ------------------------------------------------------------


def test_binned_tests_use_sturges_bins_only_above_20_reference_values() -> None:
    values_21 = np.repeat(np.arange(21.0), 30)
    values_20 = np.repeat(np.arange(20.0), 30)
    shifted = values_20 + 0.5  # 20 new values in current: one bin per value of either side
    many = binned_shares(numeric(values_21, values_21), fill_zeroes=False)[0]
    sturges = np.histogram_bin_edges(np.concatenate([values_21, values_21]), bins="sturges")
    assert many.size == sturges.size - 1
    few = binned_shares(numeric(values_20, shifted), fill_zeroes=False)[0]
    assert few.size == 40


@pytest.mark.parametrize(
    ("n_reference", "n_unique", "column_type", "expected"),
    [
        (1000, 6, "numerical", "ks"),
        (1001, 6, "numerical", "wasserstein"),
        (1000, 5, "numerical", "chisquare"),
        (1000, 3, "numerical", "chisquare"),
        (1000, 2, "numerical", "z"),
        (1001, 5, "numerical", "jensenshannon"),
        (1000, 3, "categorical", "chisquare"),
        (1000, 2, "categorical", "z"),
        (1000, 40, "categorical", "chisquare"),
        (1001, 2, "categorical", "jensenshannon"),
        (50_000, 40, "categorical", "jensenshannon"),
    ],
)
def test_default_test_follows_evidently_rules(
    n_reference: int, n_unique: int, column_type: str, expected: str
) -> None:
    assert default_stattest(n_reference, n_unique, column_type).name == expected  # type: ignore[arg-type]


def _column_test(ref: list[object], cur: list[object]) -> str | None:
    return report(pd.DataFrame({"x": ref}), pd.DataFrame({"x": cur})).column("x").stattest


def test_report_counts_reference_rows_after_dropping_missing_and_infinite_values() -> None:
    values = [float(i % 7) for i in range(1000)]
    assert _column_test(values, values) == "ks"
    assert _column_test([*values, 1.0], values) == "wasserstein"
    assert _column_test([*values, np.nan, np.inf], values) == "ks"


def test_report_counts_distinct_values_over_both_samples() -> None:
    five = [float(i % 5) for i in range(500)]
    assert _column_test(five, five) == "chisquare"
    assert _column_test(five, [*five[:-1], 9.0]) == "ks"  # a 6th value only in current
    two = [float(i % 2) for i in range(500)]
    assert _column_test(two, two) == "z"
    assert _column_test([*two] * 3, two) == "jensenshannon"


def test_drift_rules_compare_p_values_and_distances_with_the_right_sign() -> None:
    assert STAT_TESTS["ks"].drifted(0.05, 0.05) is True  # p <= threshold
    assert STAT_TESTS["chisquare"].drifted(0.05, 0.05) is False  # p < threshold
    assert STAT_TESTS["z"].drifted(0.049, 0.05) is True
    assert STAT_TESTS["wasserstein"].drifted(0.1, 0.1) is True  # distance >= threshold
    assert STAT_TESTS["jensenshannon"].drifted(0.0999, 0.1) is False
    assert STAT_TESTS["psi"].drifted(float("nan"), 0.1) is False
