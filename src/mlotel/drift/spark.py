"""Profiles and drift reports of Spark DataFrames: partials on the executors, merged on the
driver.

Each pass of a :class:`~mlotel.drift.ProfileJob` or :class:`~mlotel.drift.ReportJob`
runs as one ``mapInArrow`` over the DataFrame, projected to the columns the pass reads:
every partition summarizes its Arrow batches into one :class:`~mlotel.drift.Partial`
and returns it as a single binary row; the driver collects those rows (one per
partition, nothing else) and merges them. The result is the same
:class:`~mlotel.drift.Profile` or :class:`~mlotel.drift.DriftReport` (same JSON and
HTML) as ``mlotel profile`` / ``mlotel report`` on the same data.

Needs the ``spark`` extra (``pip install 'mlotel[spark]'``: pyspark) and a JVM; pyspark
is imported only here.

.. code-block:: python

    from mlotel.drift import spark as drift_spark

    reference = drift_spark.profile(spark.read.parquet("s3://lake/train/"), target="label")
    result = drift_spark.report(spark.table("train"), spark.table("scoring_2026_01"))
    result.save_html("drift.html")
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from ._partials import Job, Partial, ScanPass
from ._profile import Profile, ProfileJob
from ._report import DriftReport, ReportJob

__all__ = ["profile", "report", "run_job"]

_PARTIAL_SCHEMA = "partial binary"


def _pyspark() -> Any:
    try:
        import pyspark
    except ImportError as exc:
        raise ImportError(
            "mlotel.drift.spark needs pyspark, which is not installed: "
            "pip install 'mlotel[spark]'"
        ) from exc
    return pyspark


def profile(
    df: Any,
    *,
    categorical: Sequence[str] | None = None,
    numeric: Sequence[str] | None = None,
    target: str | None = None,
    prediction: str | None = None,
    score: str | None = None,
    bins: int | None = None,
    top_categories: int = 20,
    columns: Sequence[str] | None = None,
) -> Profile:
    """The reference profile of a Spark DataFrame (options of ``Profile.from_data``;
    ``prediction`` and ``score`` name columns)."""
    job = ProfileJob(
        categorical=categorical,
        numeric=numeric,
        target=target,
        prediction=prediction,
        score=score,
        bins=bins,
        top_categories=top_categories,
        columns=columns,
    )
    run_job(job, {"data": df})
    return job.result()


def report(reference_df: Any, current_df: Any, **options: Any) -> DriftReport:
    """The drift report of two Spark DataFrames (options of :func:`mlotel.drift.report`:
    ``columns``, ``numerical``, ``categorical``, ``stattests``, ``thresholds``,
    ``drift_share`` and the column mapping: ``target``, ``prediction``, ``score``,
    ``task``, ``positive_label`` or ``mapping``)."""
    job = ReportJob(**options)
    run_job(job, {"reference": reference_df, "current": current_df})
    return job.result()


def run_job(job: Job, frames: Mapping[str, Any]) -> None:
    """Drive any mlotel :class:`~mlotel.drift.Job` over Spark DataFrames, one per side."""
    _pyspark()
    while (step := job.next_pass()) is not None:
        for side, frame in frames.items():
            names = step.read_columns([str(n) for n in frame.columns])
            if not names:
                continue
            projected = frame.select(*[_quoted(n) for n in names])
            schema = _arrow_schema(projected)
            rows = projected.mapInArrow(_summarizer(step, side, schema), _PARTIAL_SCHEMA).collect()
            job.add(*(Partial.from_bytes(bytes(row["partial"])) for row in rows))
            if not rows and schema is not None:  # no partition at all: the columns, no rows
                job.add(step.summarize(schema.empty_table(), side))


def _quoted(name: str) -> Any:
    from pyspark.sql import functions

    return functions.col("`" + name.replace("`", "``") + "`")


def _arrow_schema(frame: Any) -> Any:
    from pyspark.sql.pandas.types import to_arrow_schema

    try:
        return to_arrow_schema(frame.schema)
    except (TypeError, ValueError):  # a Spark type without an Arrow form: read as given
        return None


def _summarizer(step: ScanPass, side: str, schema: Any) -> Any:
    """The function each partition runs: its batches in, one serialized partial out."""

    def summarize(batches: Iterator[Any]) -> Iterator[Any]:
        import pyarrow as pa

        merged: Partial | None = None
        for batch in batches:
            part = step.summarize(batch, side)
            if merged is None:
                merged = part
            else:
                merged.absorb(part)
        if merged is None:  # an empty partition still knows its columns
            merged = (
                step.summarize(schema.empty_table(), side)
                if schema is not None
                else Partial(step.step, side)
            )
        yield pa.RecordBatch.from_pydict(
            {"partial": [merged.to_bytes()]}, schema=pa.schema([("partial", pa.binary())])
        )

    return summarize
