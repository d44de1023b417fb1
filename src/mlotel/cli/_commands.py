"""``mlotel profile`` and ``mlotel report``: reference profiles and offline drift reports
of data files."""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from collections.abc import Sequence
from typing import Any

__all__ = [
    "RowProgress",
    "column_names",
    "drift_share_option",
    "profile_command",
    "report_command",
    "stattest_option",
    "threshold_option",
    "version_command",
]

# The comparison of score and threshold that drifts, by ColumnDrift.drift_rule (every
# tested column has one); the score is a p-value for the first two.
_RULE_SIGNS = {"p_value_at_most": "<=", "p_value_below": "<", "score_at_least": ">="}


class RowProgress:
    """Rows read, rows per second and time left, on one rewritten stderr line.

    Only on a terminal; elsewhere the commands stay quiet. Totals come from Parquet
    footers (CSV files have none: no percentage, no ETA).
    """

    def __init__(self, command: str, totals: dict[str, int | None] | None = None) -> None:
        self.command = command
        self.enabled = sys.stderr.isatty()
        self.totals = totals or {}
        self.started = time.monotonic()
        self.last_print = 0.0
        self.previous: dict[tuple[int, str], int] = {}

    def say(self, text: str, end: str = "\n") -> None:
        if self.enabled:
            print(text, end=end, file=sys.stderr, flush=True)

    def __call__(self, step: int, side: str, rows: int, total: int | None) -> None:
        if not self.enabled:
            return
        self.previous[(step, side)] = rows
        now = time.monotonic()
        if now - self.last_print < 0.2 and (total is None or rows < total):
            return
        self.last_print = now
        done = sum(self.previous.values())
        rate = done / max(now - self.started, 1e-9)
        text = f"pass {step}, {side}: {rows:,}" + (f"/{total:,} rows" if total else " rows")
        if total:
            left = (total - rows) / rate if rate > 0 else 0.0
            text += f" ({100 * rows / total:.0f}%), {rate:,.0f} rows/s, ETA {_clock(left)}"
        else:
            text += f", {rate:,.0f} rows/s"
        self.say(f"\r{self.command}: {text}\x1b[K", end="")

    def done(self) -> None:
        self.say("")


def _clock(seconds: float) -> str:
    minutes, secs = divmod(int(seconds + 0.5), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}"


def _source(paths: Sequence[str]) -> Any:
    return paths[0] if len(paths) == 1 else list(paths)


def profile_command(args: argparse.Namespace) -> int:
    from ..drift import DatasetError

    paths = list(args.data)
    progress = RowProgress("mlotel profile")
    try:
        profile = _profile_of(paths, args, progress)
    except DatasetError as exc:
        progress.done()
        print(f"mlotel profile: {exc}", file=sys.stderr)
        return 2
    except ValueError as exc:
        progress.done()
        print(f"mlotel profile: {' '.join(paths)}: {exc}", file=sys.stderr)
        return 2
    progress.done()
    try:
        profile.save(args.output)
    except OSError as exc:
        print(f"mlotel profile: cannot write {args.output}: {exc}", file=sys.stderr)
        return 2
    kinds = [f.kind for f in profile.features]
    print(
        f"profiled {profile.rows} rows x {len(kinds)} columns "
        f"({kinds.count('numeric')} numeric, {kinds.count('categorical')} categorical) "
        f"-> {args.output}"
    )
    return 0


def _profile_of(paths: list[str], args: argparse.Namespace, progress: RowProgress) -> Any:
    from ..drift import Profile, ProfileJob
    from ..drift._datasets import open_dataset, read_table
    from ..drift._profile import profile_dataset

    options = {
        "categorical": args.categorical or None,
        "numeric": args.numerical or None,
        "target": args.target,
        "prediction": args.prediction,
        "score": args.score,
        "bins": args.bins,
        "top_categories": args.top_categories,
    }
    try:
        import pyarrow  # noqa: F401
    except ImportError:  # a CSV file still profiles with numpy alone
        if len(paths) == 1 and paths[0].lower().endswith(".csv"):
            return Profile.from_data(read_table(paths[0]), **options)
    dataset = open_dataset(_source(paths))
    return profile_dataset(dataset, ProfileJob(**options), progress=progress)


def report_command(args: argparse.Namespace) -> int:
    """``mlotel report``: the offline drift report of two CSV (or Parquet) files."""
    try:
        import pandas  # noqa: F401
        import scipy  # noqa: F401
    except ImportError:
        print(
            "mlotel report needs scipy and pandas: pip install 'mlotel[report]'", file=sys.stderr
        )
        return 2
    from ..drift import DatasetError, report

    progress = RowProgress("mlotel report")

    def columns_done(done: int, total: int, column: str) -> None:
        progress.say(f"\rmlotel report: column {done}/{total} {column[:40]:40s}", end="")

    from ..drift._datasets import open_dataset

    try:
        sides = [open_dataset(_source(args.reference)), open_dataset(_source(args.current))]
    except DatasetError as exc:
        side = "--reference" if _names_file(args.reference, str(exc)) else "--current"
        print(f"mlotel report: {side} {exc}", file=sys.stderr)
        return 2
    names = list(sides[0].column_names)
    names += [c for c in sides[1].column_names if c not in set(names)]
    from ..drift import ColumnMapping, MappingError

    try:
        mapping = ColumnMapping.load(args.mapping) if args.mapping else ColumnMapping()
        mapping = mapping.merged(
            ColumnMapping(
                target=args.target,
                prediction=args.prediction,
                score=args.score,
                task=args.task,
                positive_label=args.positive_label,
                numerical=tuple(args.numerical),
                categorical=tuple(args.categorical),
            )
        )
    except MappingError as exc:
        print(f"mlotel report: --mapping {exc}" if args.mapping else f"mlotel report: {exc}",
              file=sys.stderr)  # fmt: skip
        return 2
    for role, name in mapping.roles().items():
        if name not in names:
            where = f"--{role}" if getattr(args, role) == name else f"--mapping {args.mapping}"
            print(f"mlotel report: {where}: no column named {name!r}", file=sys.stderr)
            return 2
    thresholds = {}
    for column, value in args.threshold:  # every column's first, then one column's
        if column is None:
            thresholds.update(dict.fromkeys(names, value))
    for column, value in args.threshold:
        if column is not None:
            thresholds[column] = value
    try:
        result = report(
            sides[0],
            sides[1],
            mapping=mapping,
            stattests=dict(args.stattest),
            thresholds=thresholds,
            drift_share=args.drift_share,
            progress=columns_done,
            row_progress=progress,
            method=args.method,
        )
    except DatasetError as exc:
        progress.done()
        side = "--reference" if _names_file(args.reference, str(exc)) else "--current"
        print(f"mlotel report: {side} {exc}", file=sys.stderr)
        return 2
    except ValueError as exc:
        progress.done()
        print(f"mlotel report: {exc}", file=sys.stderr)
        return 2
    progress.done()
    try:
        if args.html:
            result.save_html(args.html)
        if args.json == "-":
            print(result.to_json())
        elif args.json:
            result.save_json(args.json)
    except BrokenPipeError:
        raise  # stdout's reader stopped reading: main() ends quietly
    except OSError as exc:
        print(f"mlotel report: cannot write the report: {exc}", file=sys.stderr)
        return 2
    if args.json == "-":
        return 0
    untested = len(result.columns) - result.number_of_tested_columns
    if result.drift_share is None:
        print(f"no column could be tested ({untested} columns; see the statuses in the report)")
    else:
        verdict = "DETECTED" if result.dataset_drift else "not detected"
        rule = (
            f"calibrated decision, false-alarm rate {result.false_alarm_rate:g}: any column"
            if result.method == "calibrated"
            else f"threshold {result.drift_share_threshold:.2f}"
        )
        print(
            f"dataset drift {verdict}: {result.number_of_drifted_columns} of "
            f"{result.number_of_tested_columns} tested columns drifted "
            f"(share {result.drift_share:.2f}, {rule})"
            + (f"; {untested} columns not tested" if untested else "")
        )
    for role, name in mapping.roles().items():
        print(f"  {role} column {name!r}: not tested as a feature")
    for label, role_drift in (("target", result.target_drift),
                              ("prediction", result.prediction_drift),
                              ("score", result.score_drift)):  # fmt: skip
        if role_drift is not None:
            print(f"  {label} drift: {role_drift.name} ({_drift_text(role_drift)})")
    if result.performance is not None:
        for line in _performance_lines(result.performance):
            print(f"  {line}")
    for column in result.columns:
        if column.drift_detected:
            print(f"  drift: {column.name} ({_score_text(column)})")
        elif column.status != "tested":
            print(f"  {column.status}: {column.message}")
    for label, path in (("HTML", args.html), ("JSON", args.json)):
        if path:
            print(f"{label} report: {path}")
    return 0


def _drift_text(column: Any) -> str:
    """``drift, ks p-value 1e-09 <= 0.05`` or ``no drift, z p-value 0.76; drift if < 0.05``."""
    if column.status != "tested":
        return f"{column.status}: {column.message}"
    if column.drift_detected:
        return f"drift, {_score_text(column)}"
    kind, score, sign, threshold = _score_rule(column)
    return f"no drift, {kind} {score:.4g}; drift if {sign} {threshold:g}"


def _performance_lines(performance: Any) -> list[str]:
    """``performance (classification): accuracy 0.91 -> 0.84, ...`` and any note."""
    values = []
    names = performance.metric_names()
    for name in names:
        ref, cur = performance.metric(name)
        shown = ["-" if v is None else f"{v:.4g}" for v in (ref, cur)]
        values.append(f"{name} {shown[0]} -> {shown[1]}")
    lines = []
    if values:
        lines.append(
            f"performance ({performance.task}, reference -> current): " + ", ".join(values)
        )
    if performance.message:
        lines.append(f"performance: {performance.message}")
    return lines


def _score_rule(column: Any) -> tuple[str, float, str, float]:
    """A tested column's (what the score is, score, the sign that drifts, threshold):
    ``("ks p-value", 3.6e-53, "<=", 0.05)`` or ``("psi", 1.93, ">=", 0.2)``."""
    sign = _RULE_SIGNS[column.drift_rule]
    p_value = column.drift_rule != "score_at_least"
    kind = f"{column.stattest} p-value" if p_value else str(column.stattest)
    return kind, column.score, sign, column.threshold


def _score_text(column: Any) -> str:
    """``ks p-value 3.6e-53 <= 0.05`` or ``psi 1.93 >= 0.2``: what the score is and the
    rule that made it drift."""
    kind, score, sign, threshold = _score_rule(column)
    return f"{kind} {score:.4g} {sign} {threshold:g}"


def version_command() -> int:
    """``mlotel version``: the version as JSON (``mlotel --version``: plain text)."""
    from .._version import VERSION

    print(json.dumps({"mlotel": VERSION}))
    return 0


def column_names(text: str) -> list[str]:
    """Column names of an option: one, or several separated by commas.

    >>> column_names("plan, region"), column_names("age")
    (['plan', 'region'], ['age'])
    """
    names = [name.strip() for name in text.split(",")]
    if not all(names):
        raise argparse.ArgumentTypeError(f"expected COLUMN[,COLUMN...], got {text!r}")
    return names


def threshold_option(text: str) -> tuple[str | None, float]:
    """``VALUE`` (every column) or ``COLUMN=VALUE`` (one column).

    >>> threshold_option("0.2"), threshold_option("age=0.01")
    ((None, 0.2), ('age', 0.01))
    """
    column, sep, value = text.rpartition("=")
    try:
        number = float(value)
    except ValueError:
        number = math.nan
    if (sep and not column) or not math.isfinite(number) or number < 0:
        raise argparse.ArgumentTypeError(
            f"expected VALUE or COLUMN=VALUE with a number >= 0, got {text!r}"
        )
    return (column if sep else None), number


def drift_share_option(text: str) -> float:
    """A share in (0, 1]."""
    try:
        share = float(text)
    except ValueError:
        share = math.nan
    if not 0.0 < share <= 1.0:
        raise argparse.ArgumentTypeError(f"expected a share in (0, 1], got {text!r}")
    return share


def _names_file(paths: Sequence[str], message: str) -> bool:
    """Whether an error message is about one of ``paths`` (or a file under them)."""
    import glob
    import os

    for path in paths:
        if message.startswith(path):
            return True
        matches = glob.glob(path, recursive=True) or [path]
        if any(message.startswith(os.path.join(m, "")) or message.startswith(m) for m in matches):
            return True
    return False


def stattest_option(text: str) -> tuple[str, str]:
    column, sep, test = text.rpartition("=")
    if not sep or not column or not test:
        raise argparse.ArgumentTypeError(f"expected COLUMN=TEST, got {text!r}")
    return column, test
