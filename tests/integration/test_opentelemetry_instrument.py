"""Under the real `opentelemetry-instrument` launcher mlotel uses the providers it set up.

The launcher (with opentelemetry-distro) configures global tracer, meter and logger
providers exporting OTLP to the tests' loopback receiver. An unmodified script that
only uses ``@mlotel.instrument`` must export through them, and nothing twice.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from support.launcher import run_instrumented
from support.otlp_receiver import OTLPReceiver

SCRIPT = textwrap.dedent(
    """
    import numpy as np
    import mlotel

    @mlotel.instrument(model_name="autoconf", model_version="1")
    def predict(x):
        return np.array([1] * len(x))

    for _ in range(3):
        predict(np.array([[1.0, 2.0]]))
    print("done")
    """
)


def test_uses_the_launchers_providers(tmp_path: Path) -> None:
    with OTLPReceiver() as rx:
        run_instrumented(SCRIPT, tmp_path, rx, "auto-svc")
        assert rx.wait_for(
            lambda: len(rx.logs()) >= 3 and rx.metric_points("ml.inference.duration")
        )
        spans = [(res, s) for res, s in rx.spans() if s.name == "predict autoconf"]
        assert len(spans) == 3  # nothing twice
        assert all(res["service.name"] == "auto-svc" for res, _ in spans)
        # mlotel built no resource of its own: the launcher's resource is on every signal
        assert all("telemetry.distro.name" not in res for res, _ in spans)
        # cumulative points: one per export (the exit flush, the SDK's final collect)
        points = rx.metric_points("ml.inference.duration")
        assert points and all(p.count == 3 for p in points)
        logs = [r for _, r in rx.logs() if r.event_name == "ml.prediction"]
        assert len(logs) == 3
        assert {bytes(r.trace_id) for r in logs} == {bytes(s.trace_id) for _, s in spans}
    assert not (tmp_path / "never").exists()


QUIET_SCRIPT = textwrap.dedent(
    """
    import logging, sys
    import numpy as np
    import mlotel

    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    logging.getLogger("mlotel").addHandler(handler)
    logging.getLogger("mlotel").setLevel(logging.DEBUG)

    @mlotel.instrument(model_name="nometrics", model_version="1")
    def predict(x):
        return np.array([1] * len(x))

    predict(np.array([[1.0, 2.0]]))
    print("done")
    """
)


@pytest.mark.parametrize("metrics_exporter", ["none", "otlp"])
def test_no_metrics_exporter_chosen_is_a_debug_line_not_a_warning(
    tmp_path: Path, metrics_exporter: str
) -> None:
    # opentelemetry-instrument --metrics_exporter none sets OTEL_METRICS_EXPORTER=none.
    with OTLPReceiver() as rx:
        proc = run_instrumented(
            QUIET_SCRIPT, tmp_path, rx, "no-metrics", OTEL_METRICS_EXPORTER=metrics_exporter
        )
        assert rx.wait_for(lambda: rx.spans() and rx.logs())  # the other signals still go
    output = proc.stdout + proc.stderr
    assert "WARNING" not in output and "exposes no SDK metric readers" not in output, output
    chose_none = "DEBUG mlotel: OTEL_METRICS_EXPORTER=none: the global MeterProvider"
    assert (chose_none in proc.stdout) == (metrics_exporter == "none"), output
