"""The ``mlotel`` command: ``mlotel demo``, ``mlotel profile``, ``mlotel report`` and
``mlotel version``.

``mlotel demo`` trains a small scikit-learn classifier on a dataset that ships
inside scikit-learn (no download), serves predictions under synthetic traffic
for a bounded time on the embedded default (Prometheus endpoint on 127.0.0.1,
OTLP-JSON files for spans and logs), and prints what to look at.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import re
import sys
import time
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from typing import Any

__all__ = ["main"]

_SERIES = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{([^}]*)\})?\s+(\S+)")
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def _scrape(url: str) -> list[tuple[str, dict[str, str], float]]:
    """Every sample of the endpoint as (name, labels, value)."""
    with urllib.request.urlopen(url, timeout=5) as response:
        text = response.read().decode("utf-8")
    samples = []
    for line in text.splitlines():
        match = _SERIES.match(line)
        if match:
            name, labels, value = match.groups()
            try:
                samples.append((name, dict(_LABEL.findall(labels or "")), float(value)))
            except ValueError:
                continue
    return samples


def _total(samples: list[tuple[str, dict[str, str], float]], name: str, **labels: str) -> float:
    return sum(
        v for n, lab, v in samples if n == name and all(lab.get(k) == x for k, x in labels.items())
    )


def _demo(args: argparse.Namespace) -> int:
    try:
        import numpy as np
        from sklearn.datasets import load_breast_cancer
        from sklearn.linear_model import LogisticRegression
        from sklearn.model_selection import train_test_split
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler
    except ImportError:
        print("mlotel demo needs scikit-learn: pip install 'mlotel[demo]'", file=sys.stderr)
        return 2

    import mlotel

    # With an OTLP endpoint in the environment the demo exports there (collector path);
    # the local Prometheus endpoint stays on so the live numbers below still work.
    to_collector = any(
        os.environ.get(v, "").strip()
        for v in ("OTEL_EXPORTER_OTLP_ENDPOINT", "MLOTEL_OTLP_ENDPOINT")
    )
    cfg = mlotel.configure(
        service_name="mlotel-demo",
        exporter="otlp" if to_collector else "embedded",
        prometheus=True,
        prometheus_host=args.host,
        prometheus_port=args.port,
        output_dir=args.output_dir,
        local_sink="none" if to_collector else "files",
        flush_interval=0.5,
        # A short performance window, so the gauge follows the degradation within seconds.
        outcome_window_size=300,
        outcome_min_samples=50,
    )
    data = load_breast_cancer()
    names = [str(n).replace(" ", "_") for n in data.feature_names]
    x_train, x_test, y_train, y_test = train_test_split(
        data.data, data.target, test_size=0.3, random_state=7
    )
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=500)).fit(x_train, y_train)
    clf = mlotel.instrument(
        model,
        model_name="breast-cancer",
        model_version="1.0.0",
        feature_names=names,
        **_drift_options(model, x_train, names),
    )
    drift_start = time.monotonic() + args.duration * _DRIFT_AT

    print("mlotel demo: model 'breast-cancer' v1.0.0 (scikit-learn LogisticRegression)")
    if cfg.metrics_url:
        print(f"  metrics (Prometheus): {cfg.metrics_url}")
    else:
        print("  metrics endpoint unavailable (port in use?): see the warning above, or --port")
    if to_collector:
        print("  spans, metrics and logs: OTLP to OTEL_EXPORTER_OTLP_ENDPOINT")
    else:
        print(f"  spans: {Path(args.output_dir, 'traces.jsonl')}")
        print(f"  logs:  {Path(args.output_dir, 'logs.jsonl')}")
    print(f"  serving synthetic traffic for {args.duration:.0f} s at ~{args.rate:.0f} calls/s ...")
    print(
        f"  drift injected after {_DRIFT_AT:.0%} of the run: "
        f"{', '.join(_DRIFTED)} shifted by +{_DRIFT_STDS:g} std, "
        f"all features by +{_DEGRADE_STDS:g} std (labelled accuracy falls)"
    )

    rng = np.random.default_rng(0)
    started = time.monotonic()
    deadline = started + args.duration
    shift = _DEGRADE_STDS * x_train.std(axis=0)
    labels = _LabelStream()
    served = _ServedSample()
    next_report = time.monotonic() + args.report_every
    calls = errors = 0
    pause = 1.0 / args.rate if args.rate > 0 else 0.0
    while time.monotonic() < deadline:
        rows = int(rng.choice([1, 1, 1, 4, 16, 64]))
        picked = rng.integers(0, len(x_test), rows)
        batch = x_test[picked]
        batch = batch * rng.normal(1.0, 0.05, batch.shape)  # live traffic is never the test set
        if time.monotonic() >= drift_start:
            batch = _inject_drift(batch, names, x_train) + shift
            served.add(batch)
        try:
            if rng.random() < 0.02:  # a client sends the wrong number of features
                clf.predict_proba(batch[:, :5])
            elif rng.random() < 0.5:
                clf.predict_proba(batch)
            else:
                clf.predict(batch)
            labels.predicted(mlotel.last_prediction_ids(), y_test[picked])
        except ValueError:
            errors += 1
        labels.deliver_due()
        calls += 1
        if time.monotonic() >= next_report and cfg.metrics_url:
            next_report += args.report_every
            _report(cfg.metrics_url, calls, errors)
        if pause:
            time.sleep(pause)
    labels.deliver_due(everything=True)  # the labels still in flight arrive
    mlotel.force_flush()
    if cfg.metrics_url:
        _report(cfg.metrics_url, calls, errors)
    html = args.report_html or (
        None if to_collector else Path(args.output_dir, "drift-report.html")
    )
    report_path = _write_drift_report(x_train, served, names, html) if html else None
    print()
    print("What to look at:")
    if cfg.metrics_url:
        print(f"  curl -s {cfg.metrics_url} | grep '^ml_'")
    if report_path is not None:
        print(f"  open {report_path} (reference vs served data, per feature)")
    if to_collector:
        print("  your collector's backends: the spans, metrics and logs of service mlotel-demo")
    else:
        print(
            f"  jq -c '.resourceSpans[].scopeSpans[].spans[] | {{name, traceId}}' "
            f"{Path(args.output_dir, 'traces.jsonl')} | head"
        )
        print(
            f"  jq -c '.resourceLogs[].scopeLogs[].logRecords[]' "
            f"{Path(args.output_dir, 'logs.jsonl')} | head -1"
        )
        print("  With a collector: OTEL_EXPORTER_OTLP_ENDPOINT=http://localhost:4318 mlotel demo")
    if args.serve_after > 0 and cfg.metrics_url:
        print(f"  serving {cfg.metrics_url} for {args.serve_after:.0f} more s (Ctrl-C stops)")
        with contextlib.suppress(KeyboardInterrupt):
            time.sleep(args.serve_after)
    mlotel.shutdown()
    return 0


# --- demo: reference profile and injected drift --------------------------------------

_DRIFTED = ("mean_radius", "mean_texture", "worst_concavity")
_DRIFT_STDS = 2.5
# Live traffic resamples the 171-row test split, whose bins already differ from the
# training data's by PSI ~0.1 on some features: the demo alarms at 0.2.
_DEMO_PSI_THRESHOLD = 0.2
_DRIFT_AT = 0.5  # share of the run before the drift starts


def _drift_options(model: Any, x_train: Any, names: list[str]) -> dict[str, Any]:
    """instrument() options: a reference profile of the training data (and predictions)."""
    from .drift import Profile

    reference = Profile.from_data(x_train, feature_names=names, prediction=model.predict(x_train))
    return {
        "reference": reference,
        "drift_window_rows": 5000,
        "drift_thresholds": {"psi": _DEMO_PSI_THRESHOLD},
    }


def _inject_drift(batch: Any, names: list[str], x_train: Any) -> Any:
    """Shift the drifted features by a few training standard deviations."""
    shifted = batch.copy()
    for name in _DRIFTED:
        j = names.index(name)
        shifted[:, j] += _DRIFT_STDS * x_train[:, j].std()
    return shifted


def _report_drift(seen: list[tuple[str, dict[str, str], float]]) -> None:
    psi = {
        lab.get("ml_feature_name", "?"): v
        for n, lab, v in seen
        if n == "ml_feature_drift" and lab.get("ml_drift_method") == "psi"
    }
    if not psi:
        print("    drift: not enough rows in the window yet")
        return
    drifted = sorted(
        (name for name, v in psi.items() if v >= _DEMO_PSI_THRESHOLD), key=lambda n: -psi[n]
    )
    share = _total(seen, "ml_dataset_drift_share")
    prediction = _total(seen, "ml_prediction_drift", ml_drift_method="psi")
    listed = ", ".join(f"{name} {psi[name]:.2f}" for name in drifted) or "none"
    print(
        f"    drifted features (PSI >= {_DEMO_PSI_THRESHOLD}): {listed} | "
        f"dataset drift share {share:.0%} | "
        f"prediction PSI {prediction:.3f}"
    )


# On top of the three shifted features, every feature drifts up by half a training
# standard deviation: the model stays confident but its accuracy falls (~0.97 to ~0.7).
_DEGRADE_STDS = 0.5


class _ServedSample:
    """The rows served after the drift (bounded), for the offline report at the end."""

    def __init__(self, limit: int = 5000) -> None:
        self.limit = limit
        self.rows = 0
        self.batches: list[Any] = []

    def add(self, batch: Any) -> None:
        if self.rows < self.limit:
            self.batches.append(batch)
            self.rows += len(batch)


def _write_drift_report(
    x_train: Any, served: _ServedSample, names: list[str], path: str | Path
) -> Path | None:
    """The offline drift report (training data vs what was served after the drift)."""
    if not served.batches:
        return None
    try:
        import numpy as np
        import pandas as pd

        from .drift import write_report
    except ImportError:
        print("  (drift report skipped: it needs pandas and scipy: pip install 'mlotel[report]')")
        return None
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    current = pd.DataFrame(np.concatenate(served.batches), columns=names)
    result = write_report(pd.DataFrame(x_train, columns=names), current, html_path=path)
    print(
        f"  offline drift report: {result.number_of_drifted_columns} of "
        f"{result.number_of_tested_columns} columns drifted -> {path}"
    )
    return path


class _LabelStream:
    """Ground truth that arrives about a second after each prediction, out of order."""

    def __init__(self, delay: float = 1.0) -> None:
        self.delay = delay
        self.waiting: list[tuple[float, list[str], list[Any]]] = []

    def predicted(self, ids: list[str], truth: Any) -> None:
        self.waiting.append((time.monotonic() + self.delay, ids, list(truth)))

    def deliver_due(self, everything: bool = False) -> None:
        import mlotel

        now = math.inf if everything else time.monotonic()
        due = [w for w in self.waiting if w[0] <= now]
        if not due:
            return
        self.waiting = [w for w in self.waiting if w[0] > now]
        ids = [i for _, batch_ids, _ in reversed(due) for i in batch_ids]
        truth = [t for _, _, batch_truth in reversed(due) for t in batch_truth]
        mlotel.record_outcomes(ids, truth)


def _report(url: str, calls: int, errors: int) -> None:
    try:
        seen = _scrape(url)
    except OSError as exc:
        print(f"  (could not read {url}: {exc})")
        return
    count = _total(seen, "ml_inference_duration_seconds_count")
    total = _total(seen, "ml_inference_duration_seconds_sum")
    rows = _total(seen, "ml_predictions_total")
    failed = sum(  # every series of a family has the same labels ("" when absent)
        v
        for n, lab, v in seen
        if n == "ml_inference_duration_seconds_count" and lab.get("error_type")
    )
    mean_ms = 1000.0 * total / count if count else 0.0
    print(
        f"  calls made {calls:6d} (model errors {errors:3d}) | exported: "
        f"inferences {count:6.0f}, predicted rows {rows:7.0f}, mean latency {mean_ms:6.3f} ms"
    )
    classes = {
        lab.get("ml_prediction_class", "?"): v for n, lab, v in seen if n == "ml_predictions_total"
    }
    shares = ", ".join(f"{k}: {v / rows:.0%}" for k, v in sorted(classes.items()) if rows)
    score_count = _total(seen, "ml_prediction_score_count")
    mean_score = _total(seen, "ml_prediction_score_sum") / score_count if score_count else 0.0
    print(
        f"    error ratio {failed / count if count else 0.0:6.2%} | class shares {shares} | "
        f"mean top score {mean_score:.3f}"
    )
    _report_drift(seen)
    performance = {
        lab.get("ml_metric_name"): v for n, lab, v in seen if n == "ml_model_performance"
    }
    matched = _total(seen, "ml_outcomes_total", ml_outcome_status="matched")

    def shown(name: str) -> str:
        value = performance.get(name)
        return "  n/a" if value is None else f"{value:.3f}"

    print(
        f"    outcomes matched {matched:6.0f} | accuracy (last 300 labels) {shown('accuracy')} | "
        f"estimated accuracy (no labels) {shown('estimated_accuracy')}"
    )


def _read_table(path: str) -> Any:
    """A DataFrame (pandas installed) or a dict of columns from a CSV or Parquet file."""
    source = Path(path)
    if not source.is_file():
        raise _CliError(f"{path}: no such file")
    if source.suffix.lower() in (".parquet", ".pq"):
        try:
            import pyarrow.parquet as pq
        except ImportError:
            raise _CliError(
                f"{path}: reading Parquet needs pyarrow: pip install 'mlotel[parquet]'"
            ) from None
        try:
            return pq.read_table(source)
        except Exception as exc:
            raise _CliError(f"{path}: cannot read Parquet ({exc})") from None
    try:
        import pandas as pd
    except ImportError:
        return _read_csv_plain(source)
    try:
        return pd.read_csv(source)
    except Exception as exc:  # pandas raises several parser/encoding error types
        raise _CliError(f"{path}: cannot parse CSV ({str(exc).strip()})") from None


def _read_csv_plain(source: Path) -> dict[str, Any]:
    """CSV without pandas: numeric columns become float arrays, the rest text."""
    import csv

    import numpy as np

    try:
        with source.open(newline="", encoding="utf-8") as handle:
            rows = list(csv.reader(handle))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise _CliError(f"{source}: cannot parse CSV ({exc})") from None
    if not rows:
        raise _CliError(f"{source}: empty file")
    header, body = rows[0], rows[1:]
    if any(len(r) != len(header) for r in body):
        bad = next(i for i, r in enumerate(body, start=2) if len(r) != len(header))
        raise _CliError(f"{source}: line {bad} has a different number of fields than the header")
    columns: dict[str, Any] = {}
    for i, name in enumerate(header):
        texts = [r[i] for r in body]
        try:
            values = np.array([float(t) if t.strip() else np.nan for t in texts])
        except ValueError:
            columns[name] = np.array([t if t else None for t in texts], dtype=object)
            continue
        finite = values[np.isfinite(values)]
        integral = finite.size == values.size and np.all(finite == np.round(finite))
        columns[name] = values.astype(np.int64) if integral else values
    return columns


class _CliError(Exception):
    """A user error: printed without a traceback."""


def _profile(args: argparse.Namespace) -> int:
    from .drift import Profile

    try:
        table = _read_table(args.data)
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
        profile.save(args.output)
    except _CliError as exc:
        print(f"mlotel profile: {exc}", file=sys.stderr)
        return 2
    except (ValueError, OSError) as exc:
        print(f"mlotel profile: {args.data}: {exc}", file=sys.stderr)
        return 2
    kinds = [f.kind for f in profile.features]
    print(
        f"profiled {profile.rows} rows x {len(kinds)} columns "
        f"({kinds.count('numeric')} numeric, {kinds.count('categorical')} categorical) "
        f"-> {args.output}"
    )
    return 0


def _read_frame(path: str, flag: str) -> tuple[Any, str | None]:
    """(DataFrame, None) or (None, a one-line error naming the file and the problem)."""
    import pandas as pd

    source = Path(path)
    if not source.is_file():
        return None, f"{flag} {path}: no such file"
    try:
        if source.suffix.lower() in (".parquet", ".pq"):
            try:
                return pd.read_parquet(source), None
            except ImportError:
                return None, f"{flag} {path}: reading Parquet needs pyarrow: pip install pyarrow"
        return pd.read_csv(source, low_memory=False), None
    except pd.errors.EmptyDataError:
        return None, f"{flag} {path}: the file is empty (no header row)"
    except pd.errors.ParserError as exc:
        detail = str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__
        return None, f"{flag} {path}: not a readable CSV file ({detail})"
    except UnicodeDecodeError as exc:
        return None, f"{flag} {path}: not UTF-8 text ({exc.reason} at byte {exc.start})"
    except (OSError, ValueError) as exc:
        return None, f"{flag} {path}: cannot read it ({exc})"


def _report_command(args: argparse.Namespace) -> int:
    """``mlotel report``: the offline drift report of two CSV (or Parquet) files."""
    try:
        import pandas  # noqa: F401
        import scipy  # noqa: F401
    except ImportError:
        print(
            "mlotel report needs scipy and pandas: pip install 'mlotel[report]'", file=sys.stderr
        )
        return 2
    from mlotel.drift import report

    interactive = sys.stderr.isatty()

    def say(text: str, end: str = "\n") -> None:
        if interactive:
            print(text, end=end, file=sys.stderr, flush=True)

    frames = []
    for flag, path in (("--reference", args.reference), ("--current", args.current)):
        say(f"mlotel report: reading {path} ...")
        frame, error = _read_frame(path, flag)
        if error is not None:
            print(f"mlotel report: {error}", file=sys.stderr)
            return 2
        frames.append(frame)

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
        print(
            f"dataset drift {verdict}: {result.number_of_drifted_columns} of "
            f"{result.number_of_tested_columns} tested columns drifted "
            f"(share {result.drift_share:.2f}, threshold {result.drift_share_threshold:.2f})"
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


def _stattest_option(text: str) -> tuple[str, str]:
    column, sep, test = text.rpartition("=")
    if not sep or not column or not test:
        raise argparse.ArgumentTypeError(f"expected COLUMN=TEST, got {text!r}")
    return column, test


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
        type=_stattest_option,
        metavar="COLUMN=TEST",
        help="use this test for a column (ks, wasserstein, chisquare, z, jensenshannon, psi, "
        "kl_div)",
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
    profile.add_argument("--bins", type=int, default=10, help="bins per numeric column (10)")
    profile.add_argument(
        "--top-categories", type=int, default=20, help="categories kept per column (20)"
    )
    sub.add_parser("version", help="print the mlotel version")
    args = parser.parse_args(argv)
    if args.command == "profile":
        return _profile(args)
    if args.command == "version":
        import mlotel

        print(json.dumps({"mlotel": mlotel.__version__}))
        return 0
    if args.command == "report":
        return _report_command(args)
    if args.duration <= 0 or args.duration > 86_400:
        parser.error("--duration must be between 0 and 86400 seconds")
    return _demo(args)


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
