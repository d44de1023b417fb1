"""Mergeable partial summaries: how profiles and drift reports scale past one machine.

A job (a profile or a drift report of data too big for memory, or spread over a cluster)
runs in a few passes over the data. Each pass is a :class:`ScanPass`: a small, picklable
description of what to compute. Any engine cuts the data into chunks (record batches,
files, Spark partitions, Dask partitions...), calls :meth:`ScanPass.summarize` on each
chunk wherever it lives, and hands the resulting :class:`Partial` objects back to the job
(:meth:`Job.add`), in any order; partials merge exactly (counts, category tallies, bin
counts, min/max) or to floating-point rounding (means and variances, Chan's pairwise
update). The job then plans the next pass from what it learnt, until it is done:

>>> import numpy as np
>>> from mlotel.drift import ProfileJob
>>> rng = np.random.default_rng(0)
>>> chunks = [{"x": rng.normal(size=5000)} for _ in range(4)]
>>> job = ProfileJob(bins=4)
>>> while (step := job.next_pass()) is not None:
...     job.add(*[step.summarize(chunk) for chunk in reversed(chunks)])
>>> profile = job.result()
>>> profile["x"].count, len(profile["x"].bin_counts)
(20000, 4)

Passes (numpy only; pyarrow when chunks are Arrow data):

1. *sketch*: per column rows, missing, ±inf, finite count, min, max, mean, M2; distinct
   numeric values while there are at most :data:`DISTINCT_CAP`; the finite values
   themselves while there are at most :data:`RAW_CAP` (small data keeps exact tests);
   category tallies while there are at most :data:`CATEGORY_CAP` categories.
2. *histogram*: per numeric column, a fine histogram (counts and sums of standardized
   values) on a log-linear grid fixed by pass 1 (:func:`bucket_index`), plus whatever the
   plan asks (plot bins, Sturges bins, the current data's CDF at the reference values for
   the KS test, values outside the reference range).
3. *select* (profiles only): the values in the few fine buckets that hold the requested
   quantiles, so quantiles and bin edges are exact.
"""

from __future__ import annotations

import io
import json
import math
import os
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np

from ._performance import PerformancePlan, PerformanceState, summarize_performance

__all__ = [
    "CATEGORY_CAP",
    "DISTINCT_CAP",
    "RAW_CAP",
    "ColumnHistogram",
    "ColumnPlan",
    "ColumnSketch",
    "Partial",
    "ScanPass",
    "Job",
    "SummarySample",
    "bucket_edges",
    "canonical_order",
    "bucket_index",
    "exact_quantiles",
    "grid_for",
    "grid_quantiles",
    "merge_partials",
    "order_statistics",
    "quantile_buckets",
    "quantile_ranks",
    "run_job",
    "sturges_edges",
    "worker_count",
    "to_arrow",
]

RAW_CAP = 10_000
"""Finite values kept per column and side: up to this many, tests run on the values."""
DISTINCT_CAP = 64
"""Distinct values of a numeric column counted (beyond: "many")."""
CATEGORY_CAP = 100_000
"""Distinct categories counted per column (beyond: too many to test exactly)."""
GRID_BITS = 10
"""Fine grid: 2**GRID_BITS buckets per unit of standard deviation near the mean, and per
octave of distance from it further out (relative width 2**-GRID_BITS)."""

SIDES = ("data", "reference", "current")
_NUMBER = ("float", "int")
_CATEGORY = ("bool", "string")


def arrow_kind(pa_type: Any) -> str:
    """``float``, ``int``, ``bool``, ``string``, ``datetime`` or ``other``."""
    import pyarrow as pa

    if pa.types.is_dictionary(pa_type):
        return arrow_kind(pa_type.value_type)
    if pa.types.is_floating(pa_type):
        return "float"
    if pa.types.is_integer(pa_type):
        return "int"
    if pa.types.is_boolean(pa_type):
        return "bool"
    if pa.types.is_string(pa_type) or pa.types.is_large_string(pa_type):
        return "string"
    if pa.types.is_timestamp(pa_type) or pa.types.is_date(pa_type):
        return "datetime"
    return "other"


def to_arrow(data: Any) -> Any:
    """A pyarrow RecordBatch or Table of a chunk: Arrow data, a DataFrame, or a dict of columns."""
    import pyarrow as pa

    if isinstance(data, (pa.RecordBatch, pa.Table)):
        return data
    module = type(data).__module__.partition(".")[0]
    if module == "pandas":
        return pa.Table.from_pandas(data, preserve_index=False)
    if isinstance(data, Mapping):
        return pa.table({str(k): _arrow_array(v) for k, v in data.items()})
    raise TypeError(f"cannot summarize a {type(data).__name__}: pass Arrow data, a pandas "
                    "DataFrame or a dict of columns")


def _arrow_array(values: Any) -> Any:
    import pyarrow as pa

    array = np.asarray(values)
    if array.dtype.kind == "f":
        return pa.array(array, from_pandas=False)
    if array.dtype.kind == "O":
        return pa.array(list(values), from_pandas=True)
    return pa.array(array)


# --- the fine grid ------------------------------------------------------------------------


def bucket_index(z: np.ndarray, bits: int = GRID_BITS) -> np.ndarray:
    """Fine-grid bucket of standardized values: linear within one unit of 0, then log-linear.

    Bucket ``j >= 0`` holds ``z`` whose ``1 + z`` has the float64 bit pattern ``j``
    above ``1.0`` in its exponent and top ``bits`` mantissa bits; negative ``z`` mirror
    that as ``-1 - j``. The map is monotone (non-decreasing) in ``z``, exactly, in
    floating point: a value in a lower bucket is always smaller.

    >>> bucket_index(np.array([-1.0, -0.001, 0.0, 0.0005, 0.999, 1.0, 3.0]), 2).tolist()
    [-5, -1, 0, 0, 3, 4, 8]
    """
    a = np.abs(z) + 1.0
    j = (a.view(np.int64) >> (52 - bits)) - (1023 << bits)
    index: np.ndarray = np.where(z < 0, -1 - j, j)
    return index


def bucket_edges(first: int, last: int, bits: int = GRID_BITS) -> np.ndarray:
    """Left edges (in standardized units) of buckets ``first .. last + 1``.

    >>> bucket_edges(-2, 1, 2).tolist()
    [-0.5, -0.25, 0.0, 0.25, 0.5]
    """
    index = np.arange(first, last + 2, dtype=np.int64)
    magnitude = np.abs(index)
    ones = ((magnitude + (1023 << bits)) << (52 - bits)).view(np.float64) - 1.0
    return np.where(index >= 0, ones, -ones)


def _round_sig(value: float, digits: int = 8) -> float:
    """``value`` to a few significant digits: grids then do not depend on summation order."""
    if value == 0.0 or not math.isfinite(value):
        return value
    return float(f"{value:.{digits - 1}e}")


# --- per-column states ------------------------------------------------------------------


@dataclass
class ColumnSketch:
    """Pass 1 of one column: counts, moments, small distinct/raw sets, category tallies."""

    name: str
    kind: str
    rows: int = 0
    missing: int = 0
    non_finite: int = 0
    count: int = 0
    min: float = math.inf
    max: float = -math.inf
    mean: float = 0.0
    m2: float = 0.0
    distinct: dict[Any, int] | None = field(default_factory=dict)
    raw: np.ndarray | None = field(default_factory=lambda: np.empty(0))
    categories: dict[Any, int] | None = field(default_factory=dict)
    not_numeric: int = 0
    example: str | None = None
    """A value of a column to be read as numbers that is no number (the smallest)."""
    tallied: bool = False
    """Values counted as categories (text, bool, or numbers named categorical)."""

    @property
    def numeric(self) -> bool:
        return self.kind in _NUMBER

    @property
    def std(self) -> float:
        return math.sqrt(max(self.m2 / self.count, 0.0)) if self.count else 0.0

    def merge(self, other: ColumnSketch) -> ColumnSketch:
        kind = self.kind if self.kind == other.kind else _merged_kind(self.kind, other.kind)
        merged = ColumnSketch(self.name, kind)
        merged.rows = self.rows + other.rows
        merged.missing = self.missing + other.missing
        merged.non_finite = self.non_finite + other.non_finite
        merged.count, merged.mean, merged.m2 = _chan(
            (self.count, self.mean, self.m2), (other.count, other.mean, other.m2)
        )
        merged.min = min(self.min, other.min)
        merged.max = max(self.max, other.max)
        merged.distinct = _merge_tallies(self.distinct, other.distinct, DISTINCT_CAP)
        merged.categories = _merge_tallies(self.categories, other.categories, CATEGORY_CAP)
        if self.raw is None or other.raw is None or merged.count > RAW_CAP:
            merged.raw = None
        else:
            merged.raw = np.sort(np.concatenate((self.raw, other.raw)))
        merged.not_numeric = self.not_numeric + other.not_numeric
        examples = [e for e in (self.example, other.example) if e is not None]
        merged.example = min(examples) if examples else None
        merged.tallied = self.tallied or other.tallied
        return merged

    def category_tally(self) -> dict[Any, int] | None:
        """Non-missing value -> count, or None when there were too many values."""
        if self.kind in _CATEGORY or self.tallied:
            return self.categories
        if self.distinct is not None and self.kind == "int" and self.missing == 0:
            return {int(v): n for v, n in self.distinct.items()}
        return self.distinct


def _merged_kind(a: str, b: str) -> str:
    if {a, b} <= set(_NUMBER):
        return "float"
    if "other" in (a, b):
        return "other"
    return a if b == "empty" else b if a == "empty" else "other"


def _chan(a: tuple[int, float, float], b: tuple[int, float, float]) -> tuple[int, float, float]:
    """Count, mean and sum of squared deviations of two parts together (Chan et al.)."""
    (na, ma, sa), (nb, mb, sb) = a, b
    if not na:
        return nb, mb, sb
    if not nb:
        return na, ma, sa
    n = na + nb
    delta = mb - ma
    return n, ma + delta * nb / n, sa + sb + delta * delta * na * nb / n


def _merge_tallies(
    a: dict[Any, int] | None, b: dict[Any, int] | None, cap: int
) -> dict[Any, int] | None:
    if a is None or b is None:
        return None
    merged = dict(a)
    for key, n in b.items():
        merged[key] = merged.get(key, 0) + n
    return merged if len(merged) <= cap else None


@dataclass
class ColumnHistogram:
    """Pass 2 (and 3) of one numeric column: counts on bins the plan fixed."""

    name: str
    grid_counts: np.ndarray | None = None
    grid_sums: np.ndarray | None = None
    plot_counts: np.ndarray | None = None
    sturges_counts: np.ndarray | None = None
    ks_le: np.ndarray | None = None
    ks_lt: np.ndarray | None = None
    below: int = 0
    above: int = 0
    selected: dict[float, int] | None = None

    def add(self, other: ColumnHistogram) -> None:
        """Add ``other``'s counts to this histogram's own arrays."""
        for key in ("grid_counts", "grid_sums", "plot_counts", "sturges_counts", "ks_le",
                    "ks_lt"):
            mine, theirs = getattr(self, key), getattr(other, key)
            if theirs is None:
                continue
            if mine is None:
                setattr(self, key, theirs.copy())
            else:
                mine += theirs
        self.below += other.below
        self.above += other.above
        if other.selected is not None:
            self.selected = _merge_tallies(self.selected or {}, other.selected, 1 << 62)

    def merge(self, other: ColumnHistogram) -> ColumnHistogram:
        def add(a: np.ndarray | None, b: np.ndarray | None) -> np.ndarray | None:
            if a is None or b is None:
                return a if b is None else b
            total: np.ndarray = a + b
            return total

        selected = None
        if self.selected is not None or other.selected is not None:
            selected = _merge_tallies(self.selected or {}, other.selected or {}, 1 << 62)
        return ColumnHistogram(
            self.name,
            add(self.grid_counts, other.grid_counts),
            add(self.grid_sums, other.grid_sums),
            add(self.plot_counts, other.plot_counts),
            add(self.sturges_counts, other.sturges_counts),
            add(self.ks_le, other.ks_le),
            add(self.ks_lt, other.ks_lt),
            self.below + other.below,
            self.above + other.above,
            selected,
        )


@dataclass(frozen=True)
class ColumnPlan:
    """What pass 2 or 3 computes for one numeric column (fixed by the passes before)."""

    name: str
    center: float = 0.0
    scale: float = 1.0
    grid: tuple[int, int] | None = None
    """First and last fine bucket (inclusive) of the values of both sides."""
    sums: bool = False
    plot_edges: tuple[float, ...] | None = None
    sturges_edges: tuple[float, ...] | None = None
    ks_points: tuple[float, ...] | None = None
    reference_range: tuple[float, float] | None = None
    selected: tuple[int, ...] | None = None
    """Fine buckets whose values pass 3 collects."""


# --- partials ---------------------------------------------------------------------------


@dataclass
class Partial:
    """The summary of one chunk of one dataset (or of several, merged) for one pass.

    >>> import numpy as np
    >>> step = ScanPass(1)
    >>> a = step.summarize({"x": np.array([1.0, 2.0])})
    >>> b = step.summarize({"x": np.array([3.0, np.nan])})
    >>> both = merge_partials([b, a])
    >>> both.rows, both.columns["x"].count, both.columns["x"].missing, both.columns["x"].max
    (4, 3, 1, 3.0)
    >>> Partial.from_bytes(both.to_bytes()).columns["x"].mean
    2.0
    """

    step: int
    side: str
    rows: int = 0
    columns: dict[str, Any] = field(default_factory=dict)
    performance: PerformanceState | None = None
    """The model-performance summary of a report's pass (target, prediction, score)."""

    def absorb(self, other: Partial) -> None:
        """Merge ``other`` into this partial in place (histogram arrays are added to)."""
        merged = self.merge(other, in_place=True)
        self.rows, self.columns = merged.rows, merged.columns
        self.performance = merged.performance

    def merge(self, other: Partial, *, in_place: bool = False) -> Partial:
        """Both chunks' summary (exact for counts; means and variances to rounding)."""
        if (self.step, self.side) != (other.step, other.side):
            raise ValueError(
                f"cannot merge a pass-{other.step} {other.side} partial into a "
                f"pass-{self.step} {self.side} one"
            )
        columns = self.columns if in_place else dict(self.columns)
        for name, state in other.columns.items():
            mine = columns.get(name)
            if mine is None:
                columns[name] = state
            elif in_place and isinstance(mine, ColumnHistogram):
                mine.add(state)
            else:
                columns[name] = mine.merge(state)
        performance = self.performance
        if other.performance is not None:
            performance = (
                other.performance if performance is None else performance.merge(other.performance)
            )
        return Partial(self.step, self.side, self.rows + other.rows, columns, performance)

    # --- bytes (what travels from executors to the driver) -----------------------------
    def to_bytes(self) -> bytes:
        """A compact binary form (numpy ``.npz`` with a JSON header; no pickle)."""
        arrays: dict[str, np.ndarray] = {}
        columns = []
        for i, (name, state) in enumerate(self.columns.items()):
            entry: dict[str, Any] = {"name": name}
            if isinstance(state, ColumnSketch):
                entry.update(
                    type="sketch", kind=state.kind, rows=state.rows, missing=state.missing,
                    non_finite=state.non_finite, count=state.count, min=state.min,
                    max=state.max, mean=state.mean, m2=state.m2,
                    distinct=_tally_out(state.distinct), categories=_tally_out(state.categories),
                    not_numeric=state.not_numeric, example=state.example,
                    raw=state.raw is not None, tallied=state.tallied,
                )
                if state.raw is not None:
                    arrays[f"{i}.raw"] = state.raw
            else:
                entry.update(type="histogram", below=state.below, above=state.above,
                             selected=_tally_out(state.selected))
                for key in ("grid_counts", "grid_sums", "plot_counts", "sturges_counts",
                            "ks_le", "ks_lt"):
                    value = getattr(state, key)
                    if value is not None:
                        arrays[f"{i}.{key}"] = value
            columns.append(entry)
        header: dict[str, Any] = {
            "step": self.step, "side": self.side, "rows": self.rows, "columns": columns
        }
        if self.performance is not None:
            header["performance"], performance_arrays = self.performance.to_parts()
            arrays.update({f"performance.{k}": v for k, v in performance_arrays.items()})
        arrays["header"] = np.frombuffer(json.dumps(header).encode(), dtype=np.uint8)
        out = io.BytesIO()
        np.savez(out, allow_pickle=False, **arrays)
        return out.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes) -> Partial:
        """The partial :meth:`to_bytes` wrote."""
        with np.load(io.BytesIO(data), allow_pickle=False) as stored:
            header = json.loads(bytes(stored["header"]).decode())
            columns: dict[str, Any] = {}
            for i, entry in enumerate(header["columns"]):
                name = entry["name"]
                if entry["type"] == "sketch":
                    columns[name] = ColumnSketch(
                        name, entry["kind"], entry["rows"], entry["missing"],
                        entry["non_finite"], entry["count"], entry["min"], entry["max"],
                        entry["mean"], entry["m2"], _tally_in(entry["distinct"]),
                        stored[f"{i}.raw"] if entry["raw"] else None,
                        _tally_in(entry["categories"]), entry["not_numeric"], entry["example"],
                        entry["tallied"],
                    )
                else:
                    arrays = {
                        key: stored[f"{i}.{key}"] if f"{i}.{key}" in stored.files else None
                        for key in ("grid_counts", "grid_sums", "plot_counts",
                                    "sturges_counts", "ks_le", "ks_lt")
                    }
                    columns[name] = ColumnHistogram(
                        name, below=entry["below"], above=entry["above"],
                        selected=_tally_in(entry["selected"]), **arrays,
                    )
            performance = None
            if "performance" in header:
                performance = PerformanceState.from_parts(
                    header["performance"],
                    {
                        key.partition(".")[2]: stored[key]
                        for key in stored.files
                        if key.startswith("performance.")
                    },
                )
        return cls(header["step"], header["side"], header["rows"], columns, performance)


def _tally_out(tally: dict[Any, int] | None) -> list[list[Any]] | None:
    return None if tally is None else [[_json_value(k), n] for k, n in tally.items()]


def _tally_in(pairs: list[list[Any]] | None) -> dict[Any, int] | None:
    if pairs is None:
        return None
    return {(k if not isinstance(k, list) else float(k[1])): int(n) for k, n in pairs}


def _json_value(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return ["float", repr(value)]  # JSON has no inf: tagged, read back by _tally_in
    return value


def merge_partials(parts: Iterable[Partial]) -> Partial:
    """All partials merged into one (any order gives the same counts).

    >>> merge_partials([ScanPass(1).summarize({"x": [1.0]})] * 3).rows
    3
    """
    merged: Partial | None = None
    for part in parts:
        merged = part if merged is None else merged.merge(part)
    if merged is None:
        raise ValueError("no partials to merge")
    return merged


# --- one pass ---------------------------------------------------------------------------


@dataclass(frozen=True)
class ScanPass:
    """What one pass over the data computes; :meth:`summarize` runs it on one chunk.

    Small and picklable: ship it to executors (Spark, Dask, Ray, processes) with the chunk
    function, call ``summarize`` there, and return the partial (``to_bytes()`` if the
    engine wants bytes).
    """

    step: int
    columns: tuple[str, ...] | None = None
    """Columns to read (None: all of the chunk)."""
    numerical: frozenset[str] = frozenset()
    categorical: frozenset[str] = frozenset()
    plans: tuple[ColumnPlan, ...] = ()
    sides: tuple[str, ...] = ("data",)
    performance: PerformancePlan | None = None
    """A report's model-performance summary (passes 2 and 3)."""

    def read_columns(self, names: Sequence[str]) -> list[str]:
        """Which of a chunk's columns (``names``) this pass reads, in their order."""
        if self.step == 1:
            return [n for n in names if self.columns is None or n in self.columns]
        wanted = {p.name for p in self.plans}
        if self.performance is not None:
            wanted.update(self.performance.columns)
        return [n for n in names if n in wanted]

    def summarize(self, data: Any, side: str | None = None, *, workers: int = 1) -> Partial:
        """The partial of one chunk (Arrow batch or table, pandas DataFrame, dict of columns).

        ``side`` is ``"reference"`` or ``"current"`` for a drift report's passes (the
        default is the job's only side). ``workers`` threads share the columns.
        """
        side = side or self.sides[0]
        if side not in self.sides:
            raise ValueError(f"side must be one of {', '.join(self.sides)}, not {side!r}")
        table = to_arrow(data)
        names = [str(n) for n in table.schema.names]
        if self.step == 1:
            wanted = [n for n in names if self.columns is None or n in self.columns]
            tasks: list[Any] = [(n, table.column(n), None) for n in wanted]
        else:
            tasks = [(p.name, table.column(p.name), p) for p in self.plans if p.name in names]

        def run(task: tuple[str, Any, ColumnPlan | None]) -> Any:
            name, column, plan = task
            if plan is None:
                return _sketch(name, column, name in self.numerical, name in self.categorical)
            return _histogram(column, plan, side)

        if workers > 1 and len(tasks) > 1:
            with ThreadPoolExecutor(min(workers, len(tasks))) as pool:
                states = list(pool.map(run, tasks))
        else:
            states = [run(task) for task in tasks]
        performance = None
        if self.performance is not None and self.step > 1:
            performance = summarize_performance(table, self.performance)
        return Partial(
            self.step,
            side,
            table.num_rows,
            {t[0]: s for t, s in zip(tasks, states)},
            performance,
        )


def _numbers(column: Any) -> np.ndarray:
    """float64 (or int64 without nulls) numpy values of an Arrow numeric column."""
    import pyarrow as pa

    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks()
    if pa.types.is_dictionary(column.type):
        column = column.dictionary_decode()
    values = column.to_numpy(zero_copy_only=False)
    return np.asarray(values)


def _parsed(column: Any) -> tuple[np.ndarray, int, str | None]:
    """Text read as numbers: (float64 values with NaN for missing, non-numbers, an example)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks()
    try:
        return _numbers(pc.cast(column, pa.float64())), 0, None
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        pass
    texts = column.to_pylist()
    values = np.full(len(texts), np.nan)
    bad: list[str] = []
    for i, text in enumerate(texts):
        if text is None or text == "":
            continue
        try:
            values[i] = float(text)
        except (TypeError, ValueError):
            bad.append(str(text))
    return values, len(bad), min(bad) if bad else None


def _sketch(name: str, column: Any, as_number: bool, as_category: bool) -> ColumnSketch:
    import pyarrow as pa
    import pyarrow.compute as pc

    kind = arrow_kind(column.type)
    rows = len(column)
    if as_number and kind == "string":
        values, bad, example = _parsed(column)
        state = _numeric_sketch(name, "float", values, rows)
        state.not_numeric, state.example = bad, example
        state.missing -= bad
        return state
    if kind in _NUMBER and not as_category:
        return _numeric_sketch(name, kind, _numbers(column), rows)
    if kind in (*_CATEGORY, *_NUMBER):
        if isinstance(column, pa.ChunkedArray):
            column = column.combine_chunks()
        if pa.types.is_dictionary(column.type):
            column = column.dictionary_decode()
        counted = pc.value_counts(column)
        keys = counted.field("values").to_pylist()
        tallies = counted.field("counts").to_numpy()
        counts: dict[Any, int] = {}
        missing = 0
        for key, n in zip(keys, tallies.tolist()):
            if key is None or (isinstance(key, float) and math.isnan(key)):
                missing += n
            else:
                counts[key] = n
        state = ColumnSketch(name, kind, rows, missing)
        state.categories = counts if len(counts) <= CATEGORY_CAP else None
        state.distinct, state.raw, state.tallied = None, None, True
        return state
    state = ColumnSketch(name, kind, rows, int(column.null_count))
    state.distinct, state.raw, state.categories = {}, None, {}
    return state


def _numeric_sketch(name: str, kind: str, values: np.ndarray, rows: int) -> ColumnSketch:
    state = ColumnSketch(name, kind, rows)
    state.categories = {}
    if values.dtype.kind in "iu":
        finite = values.astype(np.float64)
        exact: np.ndarray = values
    else:
        values = values.astype(np.float64, copy=False)
        nan = np.isnan(values)
        state.missing = int(np.count_nonzero(nan))
        finite_mask = np.isfinite(values)
        state.non_finite = rows - state.missing - int(np.count_nonzero(finite_mask))
        finite = values if state.missing == 0 and state.non_finite == 0 else values[finite_mask]
        exact = finite
        if kind == "int":  # integers with nulls: pandas reads them as floats as well
            kind = state.kind = "float"
    state.count = int(finite.size)
    if finite.size:
        state.min = float(finite.min())
        state.max = float(finite.max())
        state.mean = float(finite.mean())
        state.m2 = float(np.sum(np.square(finite - state.mean)))
    state.raw = np.sort(finite) if finite.size <= RAW_CAP else None
    head = np.unique(exact[:4 * DISTINCT_CAP])
    if head.size > DISTINCT_CAP:
        state.distinct = None
    else:
        uniques, counts = np.unique(exact, return_counts=True)
        state.distinct = (
            None if uniques.size > DISTINCT_CAP
            else {_py(u): int(c) for u, c in zip(uniques.tolist(), counts.tolist())}
        )
    return state


def _py(value: Any) -> Any:
    return float(value) if isinstance(value, float) else int(value)


def _histogram(column: Any, plan: ColumnPlan, side: str) -> ColumnHistogram:
    # Text is here only when named numerical: read as pass 1 read it (_sketch).
    if arrow_kind(column.type) == "string":
        values = _parsed(column)[0]
    else:
        values = _numbers(column).astype(np.float64, copy=False)
    finite_mask = np.isfinite(values)
    finite = values if finite_mask.all() else values[finite_mask]
    state = ColumnHistogram(plan.name)
    if plan.grid is not None:
        first, last = plan.grid
        z = (finite - plan.center) / plan.scale
        index = bucket_index(z) - first
        if plan.selected is not None:
            lookup = np.zeros(last - first + 1, dtype=bool)
            lookup[np.asarray(plan.selected, dtype=np.int64) - first] = True
            picked = finite[lookup[index]]
            uniques, counts = np.unique(picked, return_counts=True)
            state.selected = dict(zip(uniques.tolist(), counts.tolist()))
        else:
            size = last - first + 1
            state.grid_counts = np.bincount(index, minlength=size)
            if plan.sums:
                state.grid_sums = np.bincount(index, weights=z, minlength=size)
    if plan.plot_edges is not None:
        inner = np.asarray(plan.plot_edges[1:-1])
        state.plot_counts = np.bincount(
            np.searchsorted(inner, finite, side="right"), minlength=len(plan.plot_edges) - 1
        )
    if plan.sturges_edges is not None:
        state.sturges_counts = np.histogram(finite, np.asarray(plan.sturges_edges))[0]
    if plan.ks_points is not None and side == "current":
        points = np.asarray(plan.ks_points)
        size = points.size + 1
        state.ks_le = np.cumsum(
            np.bincount(np.searchsorted(points, finite, side="left"), minlength=size)
        )[:-1]
        state.ks_lt = np.cumsum(
            np.bincount(np.searchsorted(points, finite, side="right"), minlength=size)
        )[:-1]
    if plan.reference_range is not None and side == "current":
        low, high = plan.reference_range
        state.below = int(np.count_nonzero(finite < low))
        state.above = int(np.count_nonzero(finite > high))
    return state


# --- planning helpers used by the jobs ----------------------------------------------------


def grid_for(sketches: Sequence[ColumnSketch]) -> tuple[float, float, tuple[int, int]]:
    """(center, scale, first and last bucket) of a fine grid over the sketches' values.

    Center and scale are the first sketch's mean and standard deviation (the reference's
    in a report), rounded to 8 significant digits so the grid does not depend on the
    order partials merged in.
    """
    base = sketches[0]
    low = min(s.min for s in sketches if s.count)
    high = max(s.max for s in sketches if s.count)
    center = _round_sig(base.mean if base.count else low)
    scale = _round_sig(base.std) if base.count and base.std > 0 else 0.0
    if scale == 0.0:
        scale = _round_sig(high - low) or 1.0
    ends = bucket_index((np.array([low, high]) - center) / scale)
    return center, scale, (int(ends[0]), int(ends[1]))


def quantile_ranks(probs: Sequence[float], count: int) -> list[int]:
    """Order statistics (0-based ranks) that ``np.quantile(values, probs)`` reads."""
    ranks: set[int] = set()
    for virtual in (count - 1) * np.asarray(probs, dtype=np.float64):
        low = min(max(int(np.floor(virtual)), 0), count - 1)
        ranks.update((low, min(low + 1, count - 1)))
    return sorted(ranks)


def order_statistics(
    ranks: Iterable[int], grid_counts: np.ndarray, first: int, plan: ColumnPlan,
    selected: Mapping[float, int],
) -> dict[int, float]:
    """Values at ``ranks`` (0-based, sorted order) from the fine histogram and the values
    pass 3 collected in the buckets holding those ranks."""
    cumulative = np.cumsum(grid_counts)
    items = sorted(selected.items())
    values = np.array([v for v, _ in items], dtype=np.float64)
    tallies = np.array([n for _, n in items], dtype=np.int64)
    buckets = bucket_index((values - plan.center) / plan.scale) - first
    found: dict[int, float] = {}
    for rank in ranks:
        bucket = int(np.searchsorted(cumulative, rank, side="right"))
        below = int(cumulative[bucket - 1]) if bucket else 0
        mine = buckets == bucket
        running = np.cumsum(tallies[mine])
        found[rank] = float(values[mine][int(np.searchsorted(running, rank - below, "right"))])
    return found


def quantile_buckets(
    probs: Sequence[float], count: int, grid_counts: np.ndarray, plan: ColumnPlan
) -> set[int]:
    """The fine buckets (pass 3's ``selected``) holding the order statistics of ``probs``."""
    assert plan.grid is not None
    ranks = quantile_ranks(probs, count)
    found = np.searchsorted(np.cumsum(grid_counts), ranks, side="right") + plan.grid[0]
    return set(found.tolist())


def grid_quantiles(
    probs: Sequence[float], count: int, grid_counts: np.ndarray, plan: ColumnPlan,
    selected: Mapping[float, int],
) -> list[float]:
    """``np.quantile(values, probs)`` from pass 2's fine histogram and pass 3's values."""
    assert plan.grid is not None
    values = order_statistics(quantile_ranks(probs, count), grid_counts, plan.grid[0], plan,
                              selected)
    return exact_quantiles(probs, count, values)


def exact_quantiles(probs: Sequence[float], count: int, values: Mapping[int, float]) -> list[float]:
    """``np.quantile(data, probs)`` (numpy's default linear method, reproduced step by step)
    from the order statistics :func:`quantile_ranks` names.

    >>> data = np.array([5.0, 1.0, 4.0, 2.0])
    >>> ranks = quantile_ranks([0.1, 0.5, 0.9], 4)
    >>> stats = {r: float(np.sort(data)[r]) for r in ranks}
    >>> exact_quantiles([0.1, 0.5, 0.9], 4, stats) == np.quantile(data, [0.1, 0.5, 0.9]).tolist()
    True
    """
    virtual = (count - 1) * np.asarray(probs, dtype=np.float64)
    result = []
    for v in virtual.tolist():
        if v >= count - 1:
            result.append(values[count - 1])
            continue
        low = max(int(np.floor(v)), 0) if v >= 0 else 0
        a = np.float64(values[low])
        b = np.float64(values[min(low + 1, count - 1)] if v >= 0 else values[0])
        gamma = np.float64(v) - np.float64(np.floor(v) if v >= 0 else 0.0)
        diff = b - a
        result.append(float(b - diff * (1 - gamma) if gamma >= 0.5 else a + diff * gamma))
    return result


def sturges_edges(low: float, high: float, count: int) -> np.ndarray:
    """``np.histogram_bin_edges(values, "sturges")`` from the values' min, max and count.

    >>> values = np.random.default_rng(0).normal(size=1234)
    >>> bool(np.array_equal(sturges_edges(values.min(), values.max(), values.size),
    ...                     np.histogram_bin_edges(values, "sturges")))
    True
    """
    first, last = np.float64(low), np.float64(high)
    width = (last - first) / (np.log2(count) + 1.0)
    if first == last:
        first, last = first - 0.5, last + 0.5
    bins = int(np.ceil((last - first) / width)) if width else 1
    return np.linspace(first, last, bins + 1, endpoint=True, dtype=np.float64)


# --- jobs -------------------------------------------------------------------------------


class Job:
    """A computation over data in passes; engines drive it (see the module docstring).

    ``next_pass()`` returns the next :class:`ScanPass` (None when done); ``add(*partials)``
    takes the partials of that pass (any number, any order, any side); ``result()`` (of
    the concrete job) builds the answer.
    """

    sides: tuple[str, ...] = ("data",)

    def __init__(self) -> None:
        self._pass: ScanPass | None = None
        self._merged: dict[tuple[int, str], Partial] = {}
        self._done = False

    @property
    def step(self) -> int:
        """The current pass (0 before the first)."""
        return 0 if self._pass is None else self._pass.step

    @property
    def done(self) -> bool:
        """True once :meth:`next_pass` said there is nothing more to read."""
        return self._done

    def next_pass(self) -> ScanPass | None:
        """The next pass to run over every chunk of every side, or None when done."""
        if self._done:
            return None
        step = self.step + 1
        self._pass = self._plan(step)
        if self._pass is None:
            self._done = True
        return self._pass

    def add(self, *partials: Partial) -> None:
        """Merge partials of the current pass in (any order; empty chunks are fine)."""
        if self._pass is None:
            raise ValueError("call next_pass() first, and summarize the chunks with it")
        for part in partials:
            if part.step != self._pass.step:
                raise ValueError(f"a pass-{part.step} partial given to pass {self._pass.step}")
            if part.side not in self.sides:
                raise ValueError(f"side must be one of {', '.join(self.sides)}, not {part.side!r}")
            key = (part.step, part.side)
            mine = self._merged.get(key)
            self._merged[key] = part if mine is None else mine.merge(part)

    def merged(self, step: int, side: str) -> Partial:
        """Everything added for ``side`` in pass ``step`` (an empty partial if nothing)."""
        return self._merged.get((step, side)) or Partial(step, side)

    def _plan(self, step: int) -> ScanPass | None:
        raise NotImplementedError


def worker_count(workers: int | None) -> int:
    """Threads to use: ``workers`` (at least 1), or for None the CPU count, at most 8.

    >>> worker_count(3), worker_count(0), 1 <= worker_count(None) <= 8
    (3, 1, True)
    """
    return max(1, min(8, os.cpu_count() or 1)) if workers is None else max(1, workers)


def run_job(
    job: Job,
    sources: Mapping[str, Any],
    *,
    workers: int | None = 1,
    progress: Any = None,
) -> None:
    """Drive ``job`` over local data: ``sources`` maps each side to a :class:`Dataset`
    (read in record batches) or to in-memory data (one chunk).

    Each chunk's columns are summarized in ``workers`` threads (None: the default,
    :func:`worker_count`). ``progress(step, side, rows_done, rows_total_or_None)`` is
    called after each batch.
    A CSV column widened while reading restarts the pass (nothing read before counts).
    """
    from ._datasets import Dataset, SchemaChanged

    workers = worker_count(workers)
    totals = {
        side: (source.count_rows() if isinstance(source, Dataset) else None)
        for side, source in sources.items()
    }
    while (step := job.next_pass()) is not None:
        for attempt in range(64):
            parts: list[Partial] = []
            try:
                for side, source in sources.items():
                    merged = Partial(step.step, side)
                    done = 0
                    chunks = (
                        source.batches(_read_columns(step, source))
                        if isinstance(source, Dataset)
                        else [source]
                    )
                    for chunk in chunks:
                        merged.absorb(step.summarize(chunk, side, workers=workers))
                        done = merged.rows
                        if progress is not None:
                            progress(step.step, side, done, totals[side])
                    parts.append(merged)
            except SchemaChanged:
                if attempt == 63:
                    raise
                continue
            job.add(*parts)
            break


def _read_columns(step: ScanPass, source: Any) -> list[str]:
    return step.read_columns(source.column_names)


# --- a column's summaries as a test sample --------------------------------------------------


def canonical_order(keys: Iterable[Any]) -> list[Any]:
    """Category values in one order whatever order the data came in."""
    return sorted(keys, key=lambda v: (type(v).__name__, v))


def _minority_bound(
    width: np.ndarray, d: np.ndarray, p_r: np.ndarray, p_c: np.ndarray, i_r: np.ndarray,
    i_c: np.ndarray,
) -> np.ndarray:
    """Upper bound of the integral of max(0, P_c - P_r - d) over a bucket.

    P_r and P_c rise from 0 to p_r and p_c inside the bucket with integrals i_r and i_c.
    max(0, y - x - d) is convex, so it lies below its bilinear interpolation between the
    corners (x, y) in {0, p_r} x {0, p_c}; integrated, that interpolation needs the
    integrals of u = P_r/p_r, v = P_c/p_c (U, V) and of uv, which lies between UV/width
    (both rise together: Chebyshev) and min(U, V).
    """
    with np.errstate(divide="ignore", invalid="ignore"):
        u = np.where(p_r > 0, i_r / p_r, 0.0)
        v = np.where(p_c > 0, i_c / p_c, 0.0)
        uv_low = np.where(width > 0, u * v / width, 0.0)
    f00 = np.maximum(0.0, -d)
    f10 = np.maximum(0.0, -d - p_r)
    f01 = np.maximum(0.0, p_c - d)
    f11 = np.maximum(0.0, p_c - p_r - d)
    kappa = f11 - f10 - f01 + f00
    uv = np.where(kappa > 0, np.minimum(u, v), uv_low)
    result: np.ndarray = width * f00 + u * (f10 - f00) + v * (f01 - f00) + uv * kappa
    return result


class SummarySample:
    """What the drift tests need of one column, from the merged summaries of both sides.

    Behaves like the report's in-memory ``ColumnSample`` (sizes, distinct counts, category
    counts) and computes the tests that need values from the summaries: normalised
    Wasserstein from the fine histograms (with :attr:`score_error_bound`), the KS test
    from the current data's CDF at the reference values, binned tests from Sturges counts.
    """

    def __init__(
        self,
        column_type: str,
        reference: ColumnSketch,
        current: ColumnSketch,
        plan: ColumnPlan | None = None,
        reference_counts: ColumnHistogram | None = None,
        current_counts: ColumnHistogram | None = None,
    ) -> None:
        self.column_type = column_type
        self.ref, self.cur = reference, current
        self.plan = plan
        self.ref_hist, self.cur_hist = reference_counts, current_counts
        numeric = column_type == "numerical"
        self.n_reference = reference.count if numeric else sum(
            (reference.category_tally() or {}).values()
        )
        self.n_current = current.count if numeric else sum(
            (current.category_tally() or {}).values()
        )
        self.score_error_bound: float | None = None

    def _tallies(self) -> tuple[dict[Any, int], dict[Any, int]]:
        ref, cur = self.ref.category_tally(), self.cur.category_tally()
        if self.column_type == "numerical":
            ref, cur = self.ref.distinct, self.cur.distinct
            if ref is not None and cur is not None:
                ref = {float(k): n for k, n in ref.items()}
                cur = {float(k): n for k, n in cur.items()}
        if ref is None or cur is None:
            cap = DISTINCT_CAP if self.column_type == "numerical" else CATEGORY_CAP
            raise ValueError(f"more than {cap:,} distinct values: too many to count them all")
        return ref, cur

    @cached_property
    def category_counts(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(distinct values over both sides, their reference counts, current counts)."""
        ref, cur = self._tallies()
        keys = canonical_order(set(ref) | set(cur))
        values = np.empty(len(keys), dtype=object)
        values[:] = keys
        return (
            values,
            np.array([ref.get(k, 0) for k in keys], dtype=np.int64),
            np.array([cur.get(k, 0) for k in keys], dtype=np.int64),
        )

    def n_unique_over(self, limit: int) -> int:
        try:
            ref, cur = self._tallies()
        except ValueError:
            return limit + 1
        return min(len(set(ref) | set(cur)), limit + 1)

    def reference_unique_over(self, limit: int) -> int:
        tally = self.ref.distinct if self.column_type == "numerical" else (
            self.ref.category_tally()
        )
        return limit + 1 if tally is None else min(len(tally), limit + 1)

    def sturges_counts(self) -> tuple[np.ndarray, np.ndarray]:
        if self.ref_hist is None or self.ref_hist.sturges_counts is None:
            raise ValueError("no Sturges counts were planned for this column")
        assert self.cur_hist is not None and self.cur_hist.sturges_counts is not None
        return self.ref_hist.sturges_counts, self.cur_hist.sturges_counts

    def ks_pvalue(self) -> float:
        """scipy's ``ks_2samp`` p-value (asymptotic: over 10,000 current values) from the
        reference values and the current data's counts below and at each of them."""
        from scipy.stats import distributions

        hist = self.cur_hist
        if self.ref.raw is None or hist is None or hist.ks_le is None or hist.ks_lt is None:
            raise ValueError(
                f"the KS test on data this big needs at most {RAW_CAP:,} reference values "
                f"(there are {self.n_reference:,}); use wasserstein"
            )
        ref = self.ref.raw
        n1, n2 = ref.size, self.n_current
        points = np.asarray(self.plan.ks_points if self.plan else ())
        cdf1 = np.searchsorted(ref, points, side="right") / n1
        le = hist.ks_le / n2
        lt = hist.ks_lt / n2
        max_s = float(np.max(cdf1 - le))
        # F_cur just below the next reference value, against F_ref at this one.
        lt_next = np.append(lt[1:], 1.0)
        min_s = max(float(lt[0]), float(np.max(-(cdf1 - le))), float(np.max(-(cdf1 - lt_next))))
        min_s = min(max(min_s, 0.0), 1.0)
        d = min_s if min_s > max_s else max_s
        m, n = sorted([float(n1), float(n2)], reverse=True)
        en = m * n / (m + n)
        return float(np.clip(distributions.kstwo.sf(d, np.round(en)), 0, 1))

    def wasserstein_normed(self) -> float:
        """W1 / max(std(reference), 0.001) from the fine histograms of both sides.

        Per fine bucket, the CDFs at its left edge, the counts and the sums of the values
        in it give the exact area between the CDFs wherever they cannot cross inside the
        bucket; where they can, the area lies between two bounds and the midpoint is used.
        Half the bounds' gaps, summed, is :attr:`score_error_bound`.
        """
        plan, ref_hist, cur_hist = self.plan, self.ref_hist, self.cur_hist
        if (
            plan is None or plan.grid is None or ref_hist is None or cur_hist is None
            or ref_hist.grid_counts is None or cur_hist.grid_counts is None
            or ref_hist.grid_sums is None or cur_hist.grid_sums is None
        ):
            raise ValueError("no fine histogram was planned for this column")
        edges = bucket_edges(*plan.grid)
        left, right = edges[:-1], edges[1:]
        width = right - left
        n_r, n_c = self.n_reference, self.n_current
        c_r = ref_hist.grid_counts.astype(np.float64)
        c_c = cur_hist.grid_counts.astype(np.float64)
        f_r = np.concatenate(([0.0], np.cumsum(c_r)[:-1])) / n_r
        f_c = np.concatenate(([0.0], np.cumsum(c_c)[:-1])) / n_c
        p_r, p_c = c_r / n_r, c_c / n_c
        # Integral over the bucket of the CDF's rise inside it: sum of (right - value).
        i_r = np.clip((c_r * right - ref_hist.grid_sums) / n_r, 0.0, width * p_r)
        i_c = np.clip((c_c * right - cur_hist.grid_sums) / n_c, 0.0, width * p_c)
        d = f_r - f_c
        signed = width * d + i_r - i_c
        lower = np.abs(signed)
        # Where the CDFs may cross inside a bucket, |area| = |signed| + 2 x (area of the
        # minority sign), bounded above by _minority_bound; elsewhere it is exact.
        one_sign = (d - p_c >= 0) | (d + p_r <= 0)
        minority = np.where(
            signed >= 0,
            _minority_bound(width, d, p_r, p_c, i_r, i_c),
            _minority_bound(width, -d, p_c, p_r, i_c, i_r),
        )
        error = np.where(one_sign, 0.0, 2.0 * np.maximum(minority, 0.0))
        estimate = lower
        norm = max(self.ref.std, 0.001)
        self.score_error_bound = float(np.sum(error)) * plan.scale / norm
        return float(np.sum(estimate)) * plan.scale / norm
