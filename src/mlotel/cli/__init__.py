"""The ``mlotel`` command: ``mlotel demo``, ``mlotel profile``, ``mlotel report`` and
``mlotel version``.

``mlotel demo`` trains a small scikit-learn classifier on a dataset that ships
inside scikit-learn (no download), serves predictions under synthetic traffic
for a bounded time on the embedded default (Prometheus endpoint on 127.0.0.1,
OTLP-JSON files for spans and logs), and prints what to look at.

Exit codes (also in ``mlotel --help`` and docs/cli.md): 0 success; 1 an unexpected
error (a bug, with its traceback); 2 a usage error, an unreadable input or an
unwritable output (one line on stderr); 130 interrupted; 141 standard output closed
by its reader (``mlotel report --json - | head``): the output stops quietly, as a
Unix tool stopped by SIGPIPE does.

>>> build_parser().parse_args(["profile", "--categorical", "sex,smoker", "data.csv",
...                            "-o", "out.json"]).categorical
['sex', 'smoker']
"""

from __future__ import annotations

import argparse
import errno
import os
import sys
from collections.abc import Sequence
from typing import Any

from .._version import VERSION
from ._commands import (
    column_names,
    drift_share_option,
    profile_command,
    report_command,
    stattest_option,
    threshold_option,
    version_command,
)
from ._demo import run_demo

__all__ = ["EXIT_BROKEN_PIPE", "EXIT_INTERRUPTED", "build_parser", "main"]

EXIT_INTERRUPTED = 130  # 128 + SIGINT, what shells report for Ctrl-C
EXIT_BROKEN_PIPE = 141  # 128 + SIGPIPE, what shells report for `cat big | head`

_DESCRIPTION = """\
OpenTelemetry-native observability for ML inference. These commands run a demo,
write reference profiles of training data, and compare two data sets in an offline
drift report."""

_EXIT_CODES = """\
exit codes:
  0    success (report: whether or not drift was detected)
  1    an unexpected error (a bug: please report it with the traceback)
  2    usage error, unreadable input or unwritable output (one line on stderr)
  130  interrupted (Ctrl-C)
  141  standard output closed by its reader (e.g. piped into head): the output
       stops quietly, as for Unix tools stopped by SIGPIPE
"""

_MAIN_EPILOG = f"""\
examples:
  mlotel demo
  mlotel profile train.csv -o reference.json --target churned --categorical plan,region
  mlotel report --reference train.csv --current week.csv --target churned --html drift.html
  mlotel report --reference train.csv --current week.csv --json - | jq .drift_share
  mlotel report --reference 'lake/train/*.parquet' --current lake/events/week=48/

{_EXIT_CODES}
Run 'mlotel COMMAND --help' for the options of a command.
"""

_DEMO_EPILOG = f"""\
examples:
  mlotel demo                          # 20 s of traffic, then what to look at
  mlotel demo --duration 60 --rate 50 --serve-after 300
  OTEL_EXPORTER_OTLP_ENDPOINT=http://localhost:4318 mlotel demo   # to a collector

{_EXIT_CODES}"""

_PROFILE_EPILOG = f"""\
Column lists take one name per option or several separated by commas
(--categorical plan --categorical region, or --categorical plan,region).

examples:
  mlotel profile train.csv -o reference.json --target churned
  mlotel profile train.parquet -o reference.json --categorical zip_code,plan --numerical age
  mlotel profile lake/train/ -o reference.json      (a directory of Parquet files)

{_EXIT_CODES}"""

_REPORT_EPILOG = f"""\
Each column gets Evidently 0.7 DataDriftPreset's default test for its type and size
(K-S or normalised Wasserstein for numerical columns, chi-square, Z or Jensen-Shannon
for categorical ones) unless --stattest names one. K-S, chi-square and Z give a
p-value (drift when it is under the threshold, 0.05 by default; for K-S also at it);
the others a distance (drift when it is at or over the threshold, 0.1 by default).
The data set drifts when the share of drifted columns is at least --drift-share (0.5).

examples:
  mlotel report --reference train.csv --current week.csv --target churned --html drift.html
  mlotel report --reference scored_train.parquet --current scored_week.parquet \\
      --target churned --prediction predicted --score probability --html report.html
  mlotel report --reference train.csv --current week.csv --mapping mapping.yaml
  mlotel report --reference train.csv --current week.csv --stattest age=psi \\
      --threshold age=0.2 --drift-share 0.3 --json drift.json
  mlotel report --reference train.csv --current week.csv --json - | jq .drift_share
  mlotel report --reference 'lake/train/*.parquet' --current lake/events/week=48/

{_EXIT_CODES}"""


class _Formatter(argparse.RawDescriptionHelpFormatter):
    """Descriptions and epilogs as written (line breaks, examples); the command list
    without argparse's extra ``COMMAND`` line above it."""

    def _format_action(self, action: argparse.Action) -> str:
        text = super()._format_action(action)
        if action.nargs == argparse.PARSER:
            text = text.split("\n", 1)[1]
        return text


def build_parser() -> argparse.ArgumentParser:
    """The ``mlotel`` argument parser (every command and option)."""
    raw = _Formatter
    parser = argparse.ArgumentParser(
        prog="mlotel", description=_DESCRIPTION, epilog=_MAIN_EPILOG, formatter_class=raw
    )
    parser.add_argument(
        "--version",
        action="version",
        version=f"mlotel {VERSION}",
        help="print the mlotel version and exit",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", title="commands")
    demo = sub.add_parser(
        "demo",
        help="run an instrumented scikit-learn model under synthetic traffic",
        description="Train a scikit-learn classifier on a dataset bundled with scikit-learn,\n"
        "serve it under synthetic traffic with a drift injected halfway, print live\n"
        "numbers read back from the metrics endpoint, and write an offline drift report.",
        epilog=_DEMO_EPILOG,
        formatter_class=raw,
    )
    demo.add_argument("--duration", type=float, default=20.0, help="seconds of traffic (20)")
    demo.add_argument(
        "--rate", type=float, default=200.0, help="target calls per second (200; 0: as fast as "
        "possible); the demo prints the rate it achieved"
    )
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
        help="offline drift report of two datasets (Evidently 0.7 DataDriftPreset's tests)",
        description="Compare a reference data set (e.g. the training data) with a current\n"
        "one column by column and print which columns drifted; optionally write the\n"
        "report as one self-contained HTML page and/or JSON. Each side is one or more\n"
        "CSV or Parquet files, directories (hive partitions too) or globs, read in\n"
        "record batches: memory is bounded by the batch, not the rows.",
        epilog=_REPORT_EPILOG,
        formatter_class=raw,
    )
    rep.add_argument(
        "--reference",
        required=True,
        nargs="+",
        metavar="PATH",
        help="reference data: CSV or Parquet files, directories (hive partitions too), globs",
    )
    rep.add_argument(
        "--current", required=True, nargs="+", metavar="PATH", help="current data (same forms)"
    )
    rep.add_argument("--html", metavar="PATH", help="write the HTML report here")
    rep.add_argument(
        "--json", metavar="PATH", help="write the JSON report here ('-': to stdout, nothing else)"
    )
    mapping = rep.add_argument_group(
        "column mapping",
        "Name the model's columns to add target drift, prediction drift and (target and\n"
        "prediction named) model performance, reference vs current. Named columns are\n"
        "left out of the feature drift tests and of the drift share.",
    )
    mapping.add_argument(
        "--mapping",
        metavar="FILE",
        help="column mapping file, JSON or YAML (keys: target, prediction, score, task, "
        "positive_label, numerical, categorical); options given here win over it",
    )
    mapping.add_argument("--target", metavar="COLUMN", help="the label column")
    mapping.add_argument(
        "--prediction",
        metavar="COLUMN",
        help="the model's output: predicted labels (classifier) or values (regressor)",
    )
    mapping.add_argument(
        "--score",
        metavar="COLUMN",
        help="a binary classifier's positive-class probability (log loss, ROC AUC)",
    )
    mapping.add_argument(
        "--task",
        choices=("classification", "regression"),
        help="the model's task (default: inferred from the target: text, booleans or at "
        "most 10 integer values are labels)",
    )
    mapping.add_argument(
        "--positive-label",
        metavar="LABEL",
        help="the positive class of a binary classifier (default: the larger of the two "
        "labels, e.g. 1 of 0/1)",
    )
    _column_list_options(mapping)
    rep.add_argument(
        "--stattest",
        action="append",
        default=[],
        type=stattest_option,
        metavar="COLUMN=TEST",
        help="use this test for a column (ks, wasserstein, chisquare, z, jensenshannon, psi, "
        "kl_div; repeatable)",
    )
    rep.add_argument(
        "--threshold",
        action="append",
        default=[],
        type=threshold_option,
        metavar="[COLUMN=]VALUE",
        help="drift threshold of every column's test, or of one column's (repeatable; a "
        "column's own wins)",
    )
    rep.add_argument(
        "--drift-share",
        type=drift_share_option,
        default=0.5,
        metavar="SHARE",
        help="dataset drift when at least this share of the tested columns drifted (0.5)",
    )
    rep.add_argument(
        "--method",
        choices=("evidently", "calibrated"),
        default="evidently",
        help="the decision: Evidently 0.7's tests (default) or mlotel's calibrated tests "
        "(false-alarm rate 1%% over all columns)",
    )
    profile = sub.add_parser(
        "profile",
        help="write a reference profile (JSON) of CSV or Parquet data",
        description="Profile training data (bins, categories, statistics per column) into\n"
        "the JSON reference that mlotel.instrument(..., reference=PATH) monitors\n"
        "drift against. DATA is one or more CSV or Parquet files, directories (hive\n"
        "partitions too) or globs, read in record batches.",
        epilog=_PROFILE_EPILOG,
        formatter_class=raw,
    )
    profile.add_argument(
        "data",
        nargs="+",
        help="training data: CSV or Parquet files, directories (hive partitions too), globs",
    )
    profile.add_argument("-o", "--output", required=True, help="profile JSON to write")
    profile.add_argument(
        "--target", metavar="COLUMN", help="the label column (profiled, not a feature)"
    )
    profile.add_argument("--prediction", metavar="COLUMN", help="the model's prediction column")
    profile.add_argument("--score", metavar="COLUMN", help="the model's score column")
    _column_list_options(profile)
    profile.add_argument(  # the option's earlier name: hidden, says so when used
        "--numeric",
        dest="numeric_deprecated",
        action="extend",
        default=[],
        type=column_names,
        help=argparse.SUPPRESS,
    )
    profile.add_argument(
        "--bins",
        type=int,
        default=None,
        help="bins per numeric column (default: one per 200 values, 10 to 50)",
    )
    profile.add_argument(
        "--top-categories", type=int, default=20, help="categories kept per column (20)"
    )
    sub.add_parser(
        "version",
        help="print the mlotel version as JSON",
        description='Print {"mlotel": VERSION} (mlotel --version prints plain text).',
    )
    return parser


def _column_list_options(parser: Any) -> None:
    """``--numerical`` / ``--categorical``: the same names and syntax in every command."""
    for name, kind in (("--numerical", "numerical"), ("--categorical", "categorical")):
        parser.add_argument(
            name,
            action="extend",
            default=[],
            type=column_names,
            metavar="COLUMN[,COLUMN...]",
            help=f"treat these columns as {kind} (repeatable)",
        )


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``mlotel`` console script; returns the exit code."""
    try:
        code = _dispatch(argv)
        sys.stdout.flush()  # a closed pipe shows here when the output was small
        return code
    except KeyboardInterrupt:
        print("mlotel: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        _silence_stdout()
        return EXIT_BROKEN_PIPE
    except OSError as exc:
        if exc.errno != errno.EPIPE:
            raise
        _silence_stdout()
        return EXIT_BROKEN_PIPE


def _silence_stdout() -> None:
    """Point stdout at /dev/null: the interpreter's final flush must not fail again
    ("Exception ignored ... BrokenPipeError")."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):  # stdout is no real file (e.g. captured): nothing to do
        pass
    finally:
        os.close(devnull)


def _dispatch(argv: Sequence[str] | None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "profile":
        if args.numeric_deprecated:
            print(
                "mlotel profile: --numeric is deprecated, use --numerical (the same name as in "
                "mlotel report)",
                file=sys.stderr,
            )
            args.numerical += args.numeric_deprecated
        return profile_command(args)
    if args.command == "version":
        return version_command()
    if args.command == "report":
        return report_command(args)
    if args.duration <= 0 or args.duration > 86_400:
        parser.error("--duration must be between 0 and 86400 seconds")
    if args.rate < 0:
        parser.error("--rate must be 0 (as fast as possible) or more")
    return run_demo(args)
