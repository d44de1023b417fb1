"""``mlotel profile`` and ``mlotel report``: reference profiles and offline drift reports
of data files."""

from __future__ import annotations

import argparse
import sys

__all__ = ["profile_command", "report_command", "stattest_option"]

def profile_command(args: argparse.Namespace) -> int:
    from .._tables import TableError, read_table
    from ..drift import Profile

    try:
        table = read_table(args.data)
        profile = Profile.from_data(
            table,
            categorical=args.categorical or None,
            numeric=args.numeric or None,
            target=args.target,
            prediction=args.prediction,
            score=args.score,
            bins=args.bins,
            top_categories=args.top_categories,
        )
    except TableError as exc:
        print(f"mlotel profile: {exc}", file=sys.stderr)
        return 2
    except ValueError as exc:
        print(f"mlotel profile: {args.data}: {exc}", file=sys.stderr)
        return 2
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
    from .._tables import TableError, read_table
    from ..drift import report

    interactive = sys.stderr.isatty()

    def say(text: str, end: str = "\n") -> None:
        if interactive:
            print(text, end=end, file=sys.stderr, flush=True)

    frames = []
    for flag, path in (("--reference", args.reference), ("--current", args.current)):
        say(f"mlotel report: reading {path} ...")
        try:
            frames.append(read_table(path, dataframe=True))
        except TableError as exc:
            print(f"mlotel report: {flag} {exc}", file=sys.stderr)
            return 2

    def progress(done: int, total: int, column: str) -> None:
        say(f"\rmlotel report: column {done}/{total} {column[:40]:40s}", end="")

    try:
        result = report(
            frames[0],
            frames[1],
            numerical=args.numerical,
            categorical=args.categorical,
            stattests=dict(args.stattest),
            progress=progress,
            method=args.method,
        )
    except ValueError as exc:
        say("")
        print(f"mlotel report: {exc}", file=sys.stderr)
        return 2
    say("")
    try:
        if args.html:
            result.save_html(args.html)
        if args.json == "-":
            print(result.to_json())
        elif args.json:
            result.save_json(args.json)
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
    for column in result.columns:
        if column.drift_detected:
            print(f"  drift: {column.name} ({column.stattest} {column.score:.4g})")
        elif column.status != "tested":
            print(f"  {column.status}: {column.message}")
    for label, path in (("HTML", args.html), ("JSON", args.json)):
        if path:
            print(f"{label} report: {path}")
    return 0


def stattest_option(text: str) -> tuple[str, str]:
    column, sep, test = text.rpartition("=")
    if not sep or not column or not test:
        raise argparse.ArgumentTypeError(f"expected COLUMN=TEST, got {text!r}")
    return column, test
