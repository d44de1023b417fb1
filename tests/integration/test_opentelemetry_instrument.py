"""Under the real `opentelemetry-instrument` launcher mlotel uses the providers it set up.

The launcher (with opentelemetry-distro) configures global tracer, meter and logger
providers exporting OTLP to the tests' loopback receiver. An unmodified script that
only uses ``@mlotel.instrument`` must export through them, and nothing twice.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

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


def _launcher() -> str:
    found = shutil.which("opentelemetry-instrument", path=str(Path(sys.executable).parent))
    assert found, "opentelemetry-instrument is installed with the test extra"
    return found


def test_uses_the_launchers_providers(tmp_path: Path) -> None:
    script = tmp_path / "app.py"
    script.write_text(SCRIPT)
    with OTLPReceiver() as rx:
        env = {
            **os.environ,
            "OTEL_SERVICE_NAME": "auto-svc",
            "OTEL_TRACES_EXPORTER": "otlp",
            "OTEL_METRICS_EXPORTER": "otlp",
            "OTEL_LOGS_EXPORTER": "otlp",
            "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
            "OTEL_EXPORTER_OTLP_ENDPOINT": rx.http_endpoint,
            "MLOTEL_OUTPUT_DIR": str(tmp_path / "never"),
        }
        env.pop("MLOTEL_SET_GLOBAL", None)
        proc = subprocess.run(
            [_launcher(), sys.executable, str(script)],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            cwd=tmp_path,
        )
        assert proc.returncode == 0, proc.stderr
        assert "done" in proc.stdout
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
