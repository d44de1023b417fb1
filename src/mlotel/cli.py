"""The ``mlotel`` command: ``mlotel demo`` and ``mlotel version``.

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
        model, model_name="breast-cancer", model_version="1.0.0", feature_names=names
    )

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

    rng = np.random.default_rng(0)
    started = time.monotonic()
    deadline = started + args.duration
    shift = 0.5 * x_train.std(axis=0)
    labels = _LabelStream()
    next_report = time.monotonic() + args.report_every
    calls = errors = 0
    pause = 1.0 / args.rate if args.rate > 0 else 0.0
    while time.monotonic() < deadline:
        rows = int(rng.choice([1, 1, 1, 4, 16, 64]))
        picked = rng.integers(0, len(x_test), rows)
        batch = x_test[picked]
        batch = batch * rng.normal(1.0, 0.05, batch.shape)  # live traffic is never the test set
        batch = _degrade(batch, (time.monotonic() - started) / args.duration, shift)
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
    print()
    print("What to look at:")
    if cfg.metrics_url:
        print(f"  curl -s {cfg.metrics_url} | grep '^ml_'")
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


def _degrade(batch: Any, progress: float, shift: Any) -> Any:
    """From the midpoint on, every feature drifts up by half a training standard deviation:
    the model stays confident but its accuracy falls (about 0.97 to 0.7)."""
    return batch + shift if progress >= 0.5 else batch


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
    sub.add_parser("version", help="print the mlotel version")
    args = parser.parse_args(argv)
    if args.command == "version":
        import mlotel

        print(json.dumps({"mlotel": mlotel.__version__}))
        return 0
    if args.duration <= 0 or args.duration > 86_400:
        parser.error("--duration must be between 0 and 86400 seconds")
    return _demo(args)


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
