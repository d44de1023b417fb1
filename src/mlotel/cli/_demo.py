"""``mlotel demo``: a scikit-learn classifier served under synthetic traffic.

It trains a small classifier on a dataset that ships inside scikit-learn (no
download), serves predictions under synthetic traffic for a bounded time on the
embedded default (Prometheus endpoint on 127.0.0.1, OTLP-JSON files for spans and
logs), injects a drift halfway, and prints what to look at.
"""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import re
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

__all__ = ["run_demo"]

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


def run_demo(args: argparse.Namespace) -> int:
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
    target = f"a target of {args.rate:g} calls/s" if args.rate > 0 else "full speed"
    print(f"  serving synthetic traffic for {args.duration:g} s at {target} (1-64 rows a call)")
    print(
        f"  {_MALFORMED:.0%} of the calls are malformed on purpose ({_MALFORMED_WIDTH} of "
        f"{len(names)} features): the model raises ValueError,\n    so they show as failed "
        "calls (error.type=ValueError), not as faults of mlotel"
    )
    print(
        f"  drift injected after {_DRIFT_AT:.0%} of the run: "
        f"{', '.join(_DRIFTED)} shifted by +{_DRIFT_STDS:g} std, and "
        f"{_FLIPPED_LABELS:.0%} of the true labels flipped (concept drift: accuracy falls)"
    )

    rng = np.random.default_rng(0)
    started = time.monotonic()
    deadline = started + args.duration
    labels = _LabelStream()
    served = _ServedSample()
    traffic = _Traffic(started)
    next_report = started + args.report_every
    interval = 1.0 / args.rate if args.rate > 0 else 0.0
    next_call = started
    while time.monotonic() < deadline:
        rows = int(rng.choice([1, 1, 1, 4, 16, 64]))
        picked = rng.integers(0, len(x_test), rows)
        batch = x_test[picked]
        batch = batch * rng.normal(1.0, 0.05, batch.shape)  # live traffic is never the test set
        if time.monotonic() >= drift_start:
            batch = _inject_drift(batch, names, x_train)
            served.add(batch)
        malformed = rng.random() < _MALFORMED
        try:
            if malformed:  # a client sends the wrong number of features
                clf.predict_proba(batch[:, :_MALFORMED_WIDTH])
            elif rng.random() < 0.5:
                clf.predict_proba(batch)
            else:
                clf.predict(batch)
            truth = y_test[picked]
            if time.monotonic() >= drift_start:
                truth = _concept_drift(truth, rng)
            labels.predicted(mlotel.last_prediction_ids(), truth)
            traffic.served(rows)
        except ValueError:
            traffic.failed(malformed)
        labels.deliver_due()
        if next_report < deadline and time.monotonic() >= next_report and cfg.metrics_url:
            next_report += args.report_every
            _report(cfg.metrics_url, traffic, time.monotonic())
        if interval:
            # Calls on a fixed schedule (the time a call takes is part of its interval);
            # after a stall the schedule restarts instead of bursting to catch up.
            next_call = max(next_call + interval, time.monotonic() - 1.0)
            delay = next_call - time.monotonic()
            if delay > 0:
                time.sleep(delay)
    ended = time.monotonic()
    labels.deliver_due(everything=True)  # the labels still in flight arrive
    mlotel.force_flush()
    print(f"  traffic done: {traffic.summary(ended, args.rate)}")
    if cfg.metrics_url:
        print("  at the end (every label delivered):")
        _report(cfg.metrics_url, traffic, ended)
    html = args.report_html or (
        None if to_collector else Path(args.output_dir, "drift-report.html")
    )
    report_path = _write_drift_report(x_train, served, names, html) if html else None
    print()
    print("What to look at:")
    if cfg.metrics_url and args.serve_after > 0:
        print(f"  curl -s {cfg.metrics_url} | grep '^ml_'   (while it is served, see below)")
    elif cfg.metrics_url:
        print(
            "  the metrics endpoint closes with the demo: run with --serve-after SECONDS to "
            "keep it up for curl or Prometheus"
        )
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


# --- demo: traffic, reference profile and injected drift -----------------------------

_MALFORMED = 0.02  # share of calls a "client" sends with too few features
_MALFORMED_WIDTH = 5


class _Traffic:
    """What the demo made: calls, rows, failures, and the rate it achieved."""

    def __init__(self, started: float) -> None:
        self.started = started
        self.calls = 0
        self.rows = 0
        self.malformed = 0  # injected malformed calls (each failed in the model)
        self.other_errors = 0  # any other failed call: not expected

    def served(self, rows: int) -> None:
        self.calls += 1
        self.rows += rows

    def failed(self, malformed: bool) -> None:
        self.calls += 1
        if malformed:
            self.malformed += 1
        else:
            self.other_errors += 1

    def rate(self, now: float) -> float:
        return self.calls / max(now - self.started, 1e-9)

    def summary(self, now: float, target: float) -> str:
        elapsed = now - self.started
        text = (
            f"{self.calls} calls ({self.rows} rows) in {elapsed:.1f} s = "
            f"{self.rate(now):.1f} calls/s"
        )
        if target > 0:
            text += f" (target {target:g} calls/s"
            if self.rate(now) < _KEPT_UP * target:
                text += "; this machine did not keep up"
            text += ")"
        return text


_KEPT_UP = 0.9  # a rate below this share of the target is said to fall short


_DRIFTED = ("mean_radius", "mean_texture", "worst_concavity")
_DRIFT_STDS = 2.5
# Live traffic resamples the 171-row test split, whose bins already differ from the
# training data's by PSI ~0.1 on some features: the demo alarms at 0.2.
_DEMO_PSI_THRESHOLD = 0.2
_DRIFT_AT = 0.5  # share of the run before the drift starts


def _drift_options(model: Any, x_train: Any, names: list[str]) -> dict[str, Any]:
    """instrument() options: a reference profile of the training data (and predictions)."""
    from ..drift import DriftConfig, Profile

    reference = Profile.from_data(x_train, feature_names=names, prediction=model.predict(x_train))
    return {
        "reference": reference,
        # The demo shows PSI over a threshold: its traffic resamples a 171-row split that
        # differs from the training data, which the calibrated tests would (rightly) flag.
        "drift": DriftConfig(
            window_rows=5000, thresholds={"psi": _DEMO_PSI_THRESHOLD}, decision="threshold"
        ),
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


# After the drift the world changes too: the same inputs no longer mean the same label
# for some rows. The model stays confident (the label-free estimate stays high) while
# the labelled accuracy falls: what only ground truth can show.
_FLIPPED_LABELS = 0.3


def _concept_drift(truth: Any, rng: Any) -> Any:
    """Flip a share of binary labels."""
    flip = rng.random(len(truth)) < _FLIPPED_LABELS
    return truth ^ flip


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

        from ..drift import write_report
    except ImportError:
        print("  (drift report skipped: it needs pandas and scipy: pip install 'mlotel[report]')")
        return None
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    current = pd.DataFrame(np.concatenate(served.batches), columns=names)
    # The streaming monitor's test and threshold (Evidently's default KS test flags most
    # columns here: the served rows resample a 171-row test split, not the training data).
    result = write_report(
        pd.DataFrame(x_train, columns=names),
        current,
        html_path=path,
        stattests=dict.fromkeys(names, "psi"),
        thresholds=dict.fromkeys(names, _DEMO_PSI_THRESHOLD),
    )
    print(
        f"  offline drift report: {result.number_of_drifted_columns} of "
        f"{result.number_of_tested_columns} columns drifted "
        f"(PSI >= {_DEMO_PSI_THRESHOLD}) -> {path}"
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


def _report(url: str, traffic: _Traffic, now: float) -> None:
    try:
        seen = _scrape(url)
    except OSError as exc:
        print(f"  (could not read {url}: {exc})")
        return
    calls = traffic.calls
    count = _total(seen, "ml_inference_duration_seconds_count")
    total = _total(seen, "ml_inference_duration_seconds_sum")
    rows = _total(seen, "ml_predictions_total")
    failed = sum(  # every series of a family has the same labels ("" when absent)
        v
        for n, lab, v in seen
        if n == "ml_inference_duration_seconds_count" and lab.get("error_type")
    )
    mean_ms = 1000.0 * total / count if count else 0.0
    unexpected = f", other failures {traffic.other_errors}" if traffic.other_errors else ""
    print(
        f"  calls made {calls:6d} ({traffic.rate(now):6.1f}/s; failed: injected malformed "
        f"{traffic.malformed:3d}{unexpected}) | exported: "
        f"inferences {count:6.0f}, predicted rows {rows:7.0f}, mean latency {mean_ms:6.3f} ms"
    )
    classes = {
        lab.get("ml_prediction_class", "?"): v for n, lab, v in seen if n == "ml_predictions_total"
    }
    shares = ", ".join(f"{k}: {v / rows:.0%}" for k, v in sorted(classes.items()) if rows)
    score_count = _total(seen, "ml_prediction_score_count")
    mean_score = _total(seen, "ml_prediction_score_sum") / score_count if score_count else 0.0
    print(
        f"    error ratio {failed / count if count else 0.0:6.2%} (the malformed calls) | "
        f"class shares {shares} | "
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
