"""Run a script under the real ``opentelemetry-instrument`` launcher, exporting OTLP
over HTTP to a loopback :class:`~support.otlp_receiver.OTLPReceiver`."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from support.otlp_receiver import OTLPReceiver


def launcher() -> str:
    """The ``opentelemetry-instrument`` of this interpreter's environment."""
    found = shutil.which("opentelemetry-instrument", path=str(Path(sys.executable).parent))
    assert found, "opentelemetry-instrument is installed with the test extra"
    return found


def run_instrumented(
    script: str, tmp_path: Path, rx: OTLPReceiver, service: str, **extra_env: str
) -> subprocess.CompletedProcess[str]:
    """Write ``script`` to ``tmp_path/app.py`` and run it under the launcher; it must
    exit 0 and print ``done``. Every signal goes to ``rx``; nothing to local files."""
    path = tmp_path / "app.py"
    path.write_text(script)
    env = {
        **os.environ,
        "OTEL_SERVICE_NAME": service,
        "OTEL_TRACES_EXPORTER": "otlp",
        "OTEL_METRICS_EXPORTER": "otlp",
        "OTEL_LOGS_EXPORTER": "otlp",
        "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
        "OTEL_EXPORTER_OTLP_ENDPOINT": rx.http_endpoint,
        "MLOTEL_OUTPUT_DIR": str(tmp_path / "never"),
        "MLOTEL_PAYLOAD_SAMPLE_RATE": "1",  # the tests read every call's log record
        **extra_env,
    }
    env.pop("MLOTEL_SET_GLOBAL", None)  # the launcher's providers are the globals
    proc = subprocess.run(
        [launcher(), sys.executable, str(path)],
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    assert "done" in proc.stdout
    return proc
