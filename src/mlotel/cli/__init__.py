"""The ``mlotel`` command: ``mlotel demo``, ``mlotel profile``, ``mlotel report`` and
``mlotel version``.

``mlotel demo`` trains a small scikit-learn classifier on a dataset that ships
inside scikit-learn (no download), serves predictions under synthetic traffic
for a bounded time on the embedded default (Prometheus endpoint on 127.0.0.1,
OTLP-JSON files for spans and logs), and prints what to look at.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence

from ._commands import profile_command, report_command, stattest_option
from ._demo import run_demo

__all__ = ["main"]


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``mlotel`` console script."""
    parser = argparse.ArgumentParser(prog="mlotel", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="run an instrumented model under synthetic traffic")
    demo.add_argument("--duration", type=float, default=20.0, help="seconds of traffic (20)")
    demo.add_argument("--rate", type=float, default=200.0, help="calls per second (200)")
    demo.add_argument("--host", default="127.0.0.1", help="metrics endpoint host (127.0.0.1)")
    demo.add_argument("--port", type=int, default=9464, help="metrics endpoint port (9464)")
    demo.add_argument("--output-dir", default="mlotel-telemetry", help="spans/logs directory")
    demo.add_argument("--report-every", type=float, default=5.0, help="seconds between reports")
    demo.add_argument(
        "--serve-after", type=float, default=0.0, help="keep serving metrics this long after"
    )
    demo.add_argument(
        "--report-html",
        help="offline drift report to write at the end (default: OUTPUT_DIR/drift-report.html; "
        "none when exporting to a collector)",
    )
    rep = sub.add_parser(
        "report",
        help="offline drift report of two CSV files (Evidently 0.7 DataDriftPreset's tests)",
    )
    rep.add_argument("--reference", required=True, help="reference data (CSV or Parquet)")
    rep.add_argument("--current", required=True, help="current data (CSV or Parquet)")
    rep.add_argument("--html", help="write the HTML report here")
    rep.add_argument("--json", help="write the JSON report here ('-': to stdout, nothing else)")
    rep.add_argument(
        "--numerical", action="append", default=[], metavar="COLUMN", help="test as numerical"
    )
    rep.add_argument(
        "--categorical", action="append", default=[], metavar="COLUMN", help="test as categorical"
    )
    rep.add_argument(
        "--stattest",
        action="append",
        default=[],
        type=stattest_option,
        metavar="COLUMN=TEST",
        help="use this test for a column (ks, wasserstein, chisquare, z, jensenshannon, psi, "
        "kl_div)",
    )
    rep.add_argument(
        "--method",
        choices=("evidently", "calibrated"),
        default="evidently",
        help="the decision: Evidently 0.7's tests (default) or mlotel's calibrated tests "
        "(false-alarm rate 1%% over all columns)",
    )
    profile = sub.add_parser(
        "profile", help="write a reference profile (JSON) of a CSV or Parquet file"
    )
    profile.add_argument("data", help="training data: CSV, or Parquet (.parquet, needs pyarrow)")
    profile.add_argument("-o", "--output", required=True, help="profile JSON to write")
    profile.add_argument("--categorical", nargs="*", default=[], help="columns to treat as such")
    profile.add_argument("--numeric", nargs="*", default=[], help="columns to treat as numeric")
    profile.add_argument("--target", help="the label column")
    profile.add_argument("--prediction", help="the model's prediction column")
    profile.add_argument("--score", help="the model's score column")
    profile.add_argument(
        "--bins",
        type=int,
        default=None,
        help="bins per numeric column (default: one per 200 values, 10 to 50)",
    )
    profile.add_argument(
        "--top-categories", type=int, default=20, help="categories kept per column (20)"
    )
    sub.add_parser("version", help="print the mlotel version")
    args = parser.parse_args(argv)
    if args.command == "profile":
        return profile_command(args)
    if args.command == "version":
        import mlotel

        print(json.dumps({"mlotel": mlotel.__version__}))
        return 0
    if args.command == "report":
        return report_command(args)
    if args.duration <= 0 or args.duration > 86_400:
        parser.error("--duration must be between 0 and 86400 seconds")
    return run_demo(args)

