"""Profiles and drift reports of datasets read in passes: the same numbers as in memory,
partials that merge in any order, hive partitions, and one-line errors naming the file."""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from scipy import stats as scipy_stats

from mlotel.drift import (
    DatasetError,
    Partial,
    Profile,
    ProfileJob,
    ReportJob,
    ScanPass,
    _datasets,
    merge_partials,
    report,
)
from support import parquet_parts

BOUND = 1e-3


def sides(rows: int, seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Reference and current frames with every kind of column the report handles."""
    rng = np.random.default_rng(seed)
    out = []
    for shifted in (False, True):
        s = 1.0 if shifted else 0.0
        frame = pd.DataFrame(
            {
                "normal": rng.normal(0.3 * s, 1.0, rows),
                "same": rng.normal(10.0, 2.0, rows),
                "skewed": rng.lognormal(0.0, 1.4, rows) * (1 + 0.2 * s),
                "heavy": rng.standard_t(2, rows),
                "far": 1e9 + rng.normal(0, 1, rows),
                "few": rng.choice([0.0, 1.0, 2.0], rows, p=[0.5, 0.3, 0.2]),
                "flag01": (rng.random(rows) < 0.3 + 0.05 * s).astype(float),
                "level": rng.integers(0, 6, rows),
                "count": rng.poisson(30, rows),
                "plan": rng.choice(["basic", "plus", "pro"] + (["edu"] if shifted else []),
                                   rows),
                "yes": rng.random(rows) < 0.5,
                "uid": [f"id{i}-{seed}-{s}" for i in range(rows)],
                "empty": np.full(rows, np.nan),
            }
        )
        frame.loc[rng.random(rows) < 0.05, "normal"] = np.nan
        frame.loc[rng.random(rows) < 0.01, "skewed"] = np.inf
        out.append(frame)
    out[1]["only_current"] = 1.0
    return out[0], out[1]


write_parts = partial(parquet_parts.write_parts, parts=3, row_group_size=4_000)


def assert_same_report(streamed: Any, in_memory: Any) -> None:
    assert [c.name for c in streamed.columns] == [c.name for c in in_memory.columns]
    for ours, exact in zip(streamed.columns, in_memory.columns):
        where = f"column {ours.name}"
        assert (ours.column_type, ours.status, ours.stattest) == (
            exact.column_type, exact.status, exact.stattest
        ), where
        assert ours.drift_detected == exact.drift_detected, where
        assert (ours.reference_size, ours.current_size) == (
            exact.reference_size, exact.current_size
        ), where
        if exact.score is not None:
            bound = ours.score_error_bound or 0.0
            assert bound <= BOUND, where
            assert abs(ours.score - exact.score) <= max(bound, 1e-12) + 1e-12, where
        ours_q = None if ours.quality is None else ours.quality.to_dict()
        exact_q = None if exact.quality is None else exact.quality.to_dict()
        if exact_q is not None:
            assert ours_q is not None
            for side in ("reference", "current"):
                a, b = ours_q[side], exact_q[side]
                if b is None:
                    assert a is None, where
                    continue
                assert a is not None, where
                # Moments: merged from partials (Chan's update), not summed in one go. A
                # column of 1e9 + N(0, 1) loses ~9 of its std's digits to the mean's size.
                for key, rel in (("mean", 1e-12), ("std", 1e-9)):
                    if b.get(key) is not None:
                        assert a.pop(key) == pytest.approx(b.pop(key), rel=rel), where
                assert a == b, where
            for key in ("new_categories", "new_category_count", "new_category_share",
                        "out_of_range_share"):
                assert ours_q[key] == exact_q[key], where
        assert ours.distribution == exact.distribution, where
    assert (streamed.dataset_drift, streamed.drift_share) == (
        in_memory.dataset_drift, in_memory.drift_share
    )
    assert (streamed.reference_rows, streamed.current_rows) == (
        in_memory.reference_rows, in_memory.current_rows
    )


@pytest.mark.parametrize("rows", [800, 40_000])
def test_streamed_report_equals_the_in_memory_report(tmp_path: Path, rows: int) -> None:
    ref, cur = sides(rows)
    ref_dir = write_parts(ref, tmp_path / "ref")
    cur_dir = write_parts(cur, tmp_path / "cur")
    in_memory = report(pd.read_parquet(ref_dir), pd.read_parquet(cur_dir))
    streamed = report(ref_dir, str(cur_dir / "*.parquet"))
    assert_same_report(streamed, in_memory)
    tests = {c.name: c.stattest for c in streamed.columns}
    if rows == 800:  # Evidently's small-sample tests
        assert {"ks", "chisquare", "z"} <= set(tests.values())
    else:
        assert tests["normal"] == tests["far"] == "wasserstein"
        assert tests["plan"] == "jensenshannon"
        assert any(c.score_error_bound for c in streamed.columns)
    statuses = {c.name: c.status for c in streamed.columns}
    assert statuses["uid"] == "unsupported_type"
    assert statuses["empty"] == "empty_reference"
    assert statuses["only_current"] == "missing_in_reference"


def test_small_reference_big_current_ks_matches_scipy(tmp_path: Path) -> None:
    rng = np.random.default_rng(5)
    ref = pd.DataFrame({"x": rng.normal(0, 1, 600)})
    cur = pd.DataFrame({"x": rng.normal(0.05, 1, 25_000)})
    ref.to_parquet(tmp_path / "r.parquet")
    write_parts(cur, tmp_path / "c", parts=4)
    column = report(tmp_path / "r.parquet", tmp_path / "c").column("x")
    exact = scipy_stats.ks_2samp(ref["x"], cur["x"]).pvalue
    assert column.stattest == "ks"
    assert column.score == pytest.approx(exact, rel=1e-12, abs=1e-300)


def test_named_tests_on_big_columns(tmp_path: Path) -> None:
    ref, cur = sides(20_000, seed=3)
    ref, cur = ref[["normal", "skewed", "plan"]], cur[["normal", "skewed", "plan"]]
    ref.to_parquet(tmp_path / "r.parquet")
    cur.to_parquet(tmp_path / "c.parquet")
    options: dict[str, Any] = {
        "stattests": {"normal": "psi", "skewed": "kl_div", "plan": "chisquare"},
    }
    assert_same_report(report(tmp_path / "r.parquet", tmp_path / "c.parquet", **options),
                       report(ref, cur, **options))
    ks = report(tmp_path / "r.parquet", tmp_path / "c.parquet", stattests={"normal": "ks"})
    assert ks.column("normal").status == "test_failed"
    assert "at most 10,000 reference values" in (ks.column("normal").message or "")


def test_an_empty_column_list_tests_no_features(tmp_path: Path) -> None:
    # columns=[] is "no feature columns", not "all of them", in memory and from files.
    frame = pd.DataFrame({"a": np.arange(50.0), "y": [0, 1] * 25, "p": [1, 0] * 25})
    frame.to_parquet(tmp_path / "d.parquet")
    path = tmp_path / "d.parquet"
    for ref, cur in ((frame, frame), (path, path)):
        assert report(ref, cur, columns=[]).columns == ()
        roles = report(ref, cur, columns=[], target="y", prediction="p")
        assert roles.columns == () and roles.target_drift is not None
        with pytest.raises(ValueError, match=r"stattests names column\(s\) \['a'\]"):
            report(ref, cur, columns=[], stattests={"a": "ks"})


@pytest.mark.parametrize("text_side", ["reference", "current"])
def test_big_text_column_named_numerical_is_a_type_mismatch(
    tmp_path: Path, text_side: str
) -> None:
    # More values than RAW_CAP, so pass 2 would count the column's histogram.
    rng = np.random.default_rng(7)
    rows = 30_000
    text = rng.normal(size=rows).astype(str).astype(object)
    text[::7] = "x"
    numbers = pd.DataFrame({"v": rng.normal(size=rows)})
    frames = {"reference": numbers, "current": numbers}
    frames[text_side] = pd.DataFrame({"v": text})
    for side, frame in frames.items():
        frame.to_parquet(tmp_path / f"{side}.parquet")
    streamed = report(tmp_path / "reference.parquet", tmp_path / "current.parquet",
                      numerical=["v"]).column("v")
    in_memory = report(frames["reference"], frames["current"], numerical=["v"]).column("v")
    assert streamed.status == in_memory.status == "type_mismatch"
    assert streamed.message == in_memory.message
    what = "reference values are not numbers" if text_side == "reference" else "(e.g. 'x')"
    assert what in (streamed.message or "")


def test_report_of_opened_datasets_equals_the_report_of_their_paths(tmp_path: Path) -> None:
    # The CLI opens each side once (for its column names) and hands the Datasets on.
    ref, cur = sides(12_000, seed=4)
    ref_dir, cur_dir = write_parts(ref, tmp_path / "ref"), write_parts(cur, tmp_path / "cur")
    opened = report(_datasets.open_dataset(ref_dir), _datasets.open_dataset(cur_dir))
    assert opened.to_dict() | {"mlotel_version": None} == report(ref_dir, cur_dir).to_dict() | {
        "mlotel_version": None
    }
    assert opened.column("normal").score_error_bound is not None  # streamed, not in memory


def test_hive_partitioned_directories(tmp_path: Path) -> None:
    ref, cur = sides(12_000, seed=7)
    for frame, name in ((ref, "ref"), (cur, "cur")):
        frame = frame.drop(columns=["uid"]).assign(region=np.where(frame.index % 3, "eu", "us"))
        pq.write_to_dataset(
            pa.Table.from_pandas(frame, preserve_index=False), tmp_path / name,
            partition_cols=["region"],
        )
    streamed = report(tmp_path / "ref", tmp_path / "cur")
    in_memory = report(pd.read_parquet(tmp_path / "ref"), pd.read_parquet(tmp_path / "cur"))
    # pandas puts the partition key last and reads it as a category, like the stream.
    assert streamed.column("region").column_type == "categorical"
    assert streamed.column("region").quality.reference.rows == len(ref)
    assert_same_report(streamed, in_memory)


def test_profile_of_a_dataset_equals_the_in_memory_profile(tmp_path: Path) -> None:
    ref, _ = sides(30_000, seed=11)
    ref = ref.drop(columns=["uid", "empty"])
    folder = write_parts(ref, tmp_path / "train", parts=4)
    streamed = Profile.from_data(folder, target="level", bins=7)
    expected = Profile.from_data(pd.read_parquet(folder), target="level", bins=7)
    assert streamed.rows == expected.rows
    for ours, theirs in zip(streamed.features, expected.features, strict=True):
        assert (ours.name, ours.kind, ours.role, ours.count, ours.missing, ours.non_finite) == (
            theirs.name, theirs.kind, theirs.role, theirs.count, theirs.missing,
            theirs.non_finite,
        )
        assert ours.edges == theirs.edges, ours.name
        assert ours.bin_counts == theirs.bin_counts, ours.name
        assert ours.quantiles == theirs.quantiles, ours.name
        assert (ours.categories, ours.known_categories, ours.value_type) == (
            theirs.categories, theirs.known_categories, theirs.value_type
        )
        if theirs.mean is not None:
            assert ours.mean == pytest.approx(theirs.mean, rel=1e-12)
            assert ours.std == pytest.approx(theirs.std, rel=1e-9)


def test_partials_merge_exactly_in_any_order() -> None:
    ref, cur = sides(9_000, seed=13)
    chunks = [ref.iloc[i : i + 1_500] for i in range(0, len(ref), 1_500)]
    step = ScanPass(1)
    parts = [step.summarize(chunk) for chunk in chunks]
    orders = [parts, parts[::-1], [parts[i] for i in (3, 0, 5, 1, 4, 2)]]
    merged = [merge_partials(order) for order in orders]
    # Tree-shaped merges too (what executors then the driver do).
    merged.append(merge_partials([merge_partials(parts[:2]), merge_partials(parts[2:])]))
    first = merged[0]
    for other in merged[1:]:
        assert other.rows == first.rows == len(ref)
        for name, state in first.columns.items():
            theirs = other.columns[name]
            for key in ("kind", "rows", "missing", "non_finite", "count", "min", "max",
                        "distinct", "categories"):
                assert getattr(theirs, key) == getattr(state, key), (name, key)
            assert theirs.mean == pytest.approx(state.mean, rel=1e-13, abs=1e-13)
            # (the column near 1e9 loses digits to its mean in any summation order)
            assert theirs.m2 == pytest.approx(state.m2, rel=1e-8)
            raw = (state.raw, theirs.raw)
            assert (raw[0] is None and raw[1] is None) or np.array_equal(*raw)
    again = Partial.from_bytes(first.to_bytes())
    assert again.columns["plan"].categories == first.columns["plan"].categories
    assert again.columns["level"].distinct == first.columns["level"].distinct
    # The whole job, chunks in two different orders: identical reports.
    results = []
    for order in (lambda xs: xs, lambda xs: xs[::-1]):
        job = ReportJob()
        while (step := job.next_pass()) is not None:
            job.add(*[step.summarize(c, "reference") for c in order(chunks)])
            job.add(*[step.summarize(c, "current") for c in order([cur])])
        results.append(job.result())
    for a, b in zip(results[0].columns, results[1].columns, strict=True):
        assert (a.status, a.score is None) == (b.status, b.score is None)
        if a.score is not None:
            assert a.score == pytest.approx(b.score, rel=1e-9, abs=1e-12)
    assert [c.drift_detected for c in results[0].columns] == [
        c.drift_detected for c in results[1].columns
    ]


def test_a_thousand_columns(tmp_path: Path) -> None:
    rng = np.random.default_rng(17)
    width, rows = 1_000, 11_000
    data = {f"c{i:04d}": rng.normal(i % 7, 1 + i % 3, rows) for i in range(width)}
    ref = pd.DataFrame(data)
    cur = ref.copy()
    cur.iloc[:, :300] += 0.5  # 300 of 1,000 columns shifted
    write_parts(ref, tmp_path / "r", parts=2)
    write_parts(cur, tmp_path / "c", parts=2)
    streamed = report(tmp_path / "r", tmp_path / "c", workers=2)
    assert len(streamed.columns) == width
    assert streamed.number_of_drifted_columns == 300
    sample = ["c0000", "c0299", "c0300", "c0999"]
    assert_same_report(
        report(tmp_path / "r", tmp_path / "c", columns=sample),
        report(ref, cur, columns=sample),
    )


def test_csv_files_listed_and_widened(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "a.csv").write_text("n,plan\n" + "".join(f"{i},a\n" for i in range(3000)))
    (tmp_path / "b.csv").write_text("n,plan\n" + "".join(f"{i + 0.5},b\n" for i in range(3000)))
    # Small blocks: the type read from the first rows of c.csv (integers) meets 2.5 later.
    lines = "".join(f"{i},c\n" for i in range(3000)) + "2.5,c\n"
    (tmp_path / "c.csv").write_text("n,plan\n" + lines)
    monkeypatch.setattr(_datasets, "CSV_BLOCK_BYTES", 1 << 12)
    files = [str(tmp_path / n) for n in ("a.csv", "b.csv", "c.csv")]
    profile = Profile.from_data(files, bins=4)
    frame = pd.concat([pd.read_csv(f) for f in files], ignore_index=True)
    expected = Profile.from_data(frame, bins=4)
    assert profile["n"].kind == "numeric" and profile["n"].count == 9001
    assert profile["n"].edges == expected["n"].edges
    assert profile["plan"].bin_counts == expected["plan"].bin_counts


def test_row_progress_reports_rows_and_totals(tmp_path: Path) -> None:
    ref, cur = sides(20_000, seed=19)
    ref[["same"]].to_parquet(tmp_path / "r.parquet")
    cur[["same"]].to_parquet(tmp_path / "c.parquet")
    calls: list[tuple[int, str, int, int | None]] = []
    report(tmp_path / "r.parquet", tmp_path / "c.parquet",
           row_progress=lambda *args: calls.append(args))
    last = {(step, side): (rows, total) for step, side, rows, total in calls}
    # Pass 3 reads the values of the few fine buckets holding the exact quantiles.
    assert last == {(s, side): (20_000, 20_000) for s in (1, 2, 3) for side in
                    ("reference", "current")}


# --- bad inputs: one line naming the file, nothing written ---------------------------------


def truncated(folder: Path) -> Path:
    ref, _ = sides(5_000, seed=23)
    write_parts(ref.drop(columns=["uid"]), folder, parts=3)
    victim = folder / "part-1.parquet"
    victim.write_bytes(victim.read_bytes()[: victim.stat().st_size // 2])
    return victim


def test_a_file_cut_short_names_the_file(tmp_path: Path) -> None:
    victim = truncated(tmp_path / "ref")
    with pytest.raises(DatasetError) as caught:
        Profile.from_data(tmp_path / "ref")
    assert str(caught.value).startswith(f"{victim}: not a readable Parquet file (")
    assert "\n" not in str(caught.value)


def test_a_schema_that_differs_names_the_file(tmp_path: Path) -> None:
    pq.write_table(pa.table({"x": [1.0, 2.0], "c": ["a", "b"]}), tmp_path / "a.parquet")
    pq.write_table(pa.table({"x": ["1", "2"], "c": ["a", "b"]}), tmp_path / "b.parquet")
    pq.write_table(pa.table({"x": [1.0]}), tmp_path / "c.parquet")
    with pytest.raises(DatasetError, match=r"b\.parquet: column 'x' is string here but double"):
        report(tmp_path / "a.parquet", [tmp_path / "a.parquet", tmp_path / "b.parquet"])
    with pytest.raises(DatasetError, match=r"c\.parquet: has no column 'c'"):
        report(tmp_path / "a.parquet", [tmp_path / "a.parquet", tmp_path / "c.parquet"])
    with pytest.raises(DatasetError, match=r"nothing\*\.parquet: no file matches"):
        report(tmp_path / "a.parquet", str(tmp_path / "nothing*.parquet"))


@pytest.mark.parametrize("case", ["truncated", "schema"])
def test_cli_bad_dataset_writes_nothing(tmp_path: Path, case: str) -> None:
    cur = tmp_path / "cur.parquet"
    pq.write_table(pa.table({"normal": [1.0, 2.0, 3.0]}), cur)
    if case == "truncated":
        victim = truncated(tmp_path / "ref")
        expected = f"mlotel report: --reference {victim}: not a readable Parquet file ("
    else:
        (tmp_path / "ref").mkdir()
        pq.write_table(pa.table({"normal": [1.0]}), tmp_path / "ref" / "a.parquet")
        pq.write_table(pa.table({"normal": ["x"]}), tmp_path / "ref" / "b.parquet")
        victim = tmp_path / "ref" / "b.parquet"
        expected = f"mlotel report: --reference {victim}: column 'normal' is string here"
    html, out = tmp_path / "r.html", tmp_path / "r.json"
    proc = subprocess.run(
        [sys.executable, "-m", "mlotel.cli", "report", "--reference", str(tmp_path / "ref"),
         "--current", str(cur), "--html", str(html), "--json", str(out)],
        capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(expected), proc.stderr
    assert not html.exists() and not out.exists()
    assert list(tmp_path.glob("*.tmp")) == [] and list(tmp_path.glob(".*.tmp")) == []


def test_cli_report_of_globs_and_directories(tmp_path: Path) -> None:
    ref, cur = sides(15_000, seed=29)
    write_parts(ref, tmp_path / "ref")
    write_parts(cur, tmp_path / "cur")
    out = tmp_path / "drift.json"
    proc = subprocess.run(
        [sys.executable, "-m", "mlotel.cli", "report",
         "--reference", *sorted(str(p) for p in (tmp_path / "ref").glob("*.parquet")),
         "--current", str(tmp_path / "cur" / "part-*.parquet"), "--json", str(out)],
        capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    data = json.loads(out.read_text())
    expected = report(pd.read_parquet(tmp_path / "ref"), pd.read_parquet(tmp_path / "cur"))
    assert data["number_of_drifted_columns"] == expected.number_of_drifted_columns
    assert data["reference_rows"] == 15_000
    for name, column in data["columns"].items():
        exact = expected.column(name)
        if exact.score is not None:
            assert abs(column["score"] - exact.score) <= BOUND


def test_profile_job_rejects_arrays_for_roles() -> None:
    with pytest.raises(ValueError, match="prediction must name a column"):
        ProfileJob(prediction=np.zeros(3))  # type: ignore[arg-type]


def test_sturges_and_quantile_helpers_match_numpy() -> None:
    from mlotel.drift._partials import exact_quantiles, quantile_ranks, sturges_edges

    rng = np.random.default_rng(31)
    probs = [0.01, 0.25, 0.5, 0.75, 0.99, 1 / 3, 2 / 3]
    for n, scale in itertools.product([1, 2, 3, 17, 1000, 4097], [1.0, 1e-9, 1e9]):
        values = np.sort(rng.normal(0, scale, n))
        ranks = quantile_ranks(probs, n)
        got = exact_quantiles(probs, n, {r: float(values[r]) for r in ranks})
        assert got == np.quantile(values, probs).tolist()
        assert np.array_equal(
            sturges_edges(values.min(), values.max(), n),
            np.histogram_bin_edges(values, "sturges"),
        )


def test_cli_progress_line_shows_share_rate_and_time_left(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from mlotel.cli._commands import RowProgress

    progress = RowProgress("mlotel report")
    progress.enabled = True  # as on a terminal
    progress.started -= 2.0  # two seconds in
    progress(1, "reference", 500_000, 1_000_000)
    line = capsys.readouterr().err
    assert line.startswith("\rmlotel report: pass 1, reference: 500,000/1,000,000 rows (50%), ")
    rate = int(line.split("%), ")[1].split(" rows/s")[0].replace(",", ""))
    assert 200_000 <= rate <= 250_000  # 500,000 rows in a bit over 2 s
    assert "ETA 0:00:0" in line  # ~2 s left
