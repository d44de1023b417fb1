"""Signal handlers that call mlotel while the main thread is inside mlotel (issue 13,
item 2): a SIGTERM handler that shuts down, and a handler that predicts, both arriving
while the main thread is in the middle of a flush. Real processes, real signals.

The signal is sent by the process to itself from inside the flush (an analyzer, the hook
drift and outcomes use, calls ``os.kill``), so it lands there every time; Python runs the
handler in the main thread right after, on top of the interrupted flush.
"""

from __future__ import annotations

import subprocess
import textwrap
import time
from pathlib import Path

import pytest

from support.file_sink import file_log_records, file_spans
from support.scripts import json_lines, run_script

SHUTDOWN_TIMEOUT = 2.0
MARGIN = 4.0  # scheduling slack on a loaded machine: this checks a bound, not a speed

_SCRIPT = textwrap.dedent(
    """
    import json, os, signal, sys, time
    import numpy as np
    import mlotel
    from mlotel import _lifecycle

    scenario, out_dir = sys.argv[1], sys.argv[2]
    mlotel.configure(
        exporter="none", local_sink="files", output_dir=out_dir, set_global=False,
        buffer_size=4, shutdown_timeout=__TIMEOUT__, payload_sample_rate=1.0,
    )

    @mlotel.instrument(model_name="served")
    def predict(rows):
        return rows[:, 0] * 2.0

    report = {"handler_calls": 0}

    def emit_and_exit(code):
        sys.stdout.write(json.dumps(report) + "\\n")
        sys.stdout.flush()
        sys.exit(code)

    def on_sigterm(signum, frame):
        # The usual graceful-exit handler: flush what we have, then leave.
        report["in_flush"] = sender.sending
        started = time.monotonic()
        report["shutdown_returned"] = mlotel.shutdown(timeout=__TIMEOUT__)
        report["shutdown_s"] = time.monotonic() - started
        emit_and_exit(0)

    def on_sigusr1(signum, frame):
        report["in_flush"] = sender.sending
        for i in range(100):  # more than the hard cap (8 x buffer_size): backpressure
            out = predict(np.array([[float(i), 1.0]]))
            assert out.tolist() == [2.0 * i], out
            report["handler_calls"] += 1

    signal.signal(signal.SIGTERM, on_sigterm)
    signal.signal(signal.SIGUSR1, on_sigusr1)

    class SignalFromInsideTheFlush:
        name = "signal-sender"
        needs_inputs = False
        sending = False
        sent = False

        def process(self, records, aggregator, store):
            if self.sent or not records:
                return
            self.sent = self.sending = True
            os.kill(os.getpid(), signal.SIGTERM if scenario == "shutdown" else signal.SIGUSR1)
            time.sleep(0.01)  # the handler runs here, on top of this flush
            self.sending = False

    sender = SignalFromInsideTheFlush()
    for i in range(3):
        predict(np.array([[float(i), 0.0]]))
    runtime = _lifecycle.current
    runtime.aggregator("served", None, None).attach(sender)
    mlotel.force_flush()  # the main thread flushes; the signal arrives inside
    report["after_flush"] = True
    report["shutdown_returned"] = mlotel.shutdown(timeout=__TIMEOUT__)
    emit_and_exit(0)
    """
).replace("__TIMEOUT__", repr(SHUTDOWN_TIMEOUT))


def _run(scenario: str, tmp_path: Path) -> tuple[dict[str, object], float, Path]:
    out = tmp_path / "telemetry"
    started = time.monotonic()
    try:
        proc = run_script(_SCRIPT, tmp_path, scenario, str(out), name="signals.py", timeout=30)
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"{scenario}: the process hung (deadlock) and was killed after 30 s: {exc}")
    elapsed = time.monotonic() - started
    assert proc.returncode == 0, proc.stderr[-4000:]
    report = json_lines(proc.stdout)[-1]
    return report, elapsed, out


def test_sigterm_handler_shutdown_during_a_flush_finishes_within_its_timeout(
    tmp_path: Path,
) -> None:
    report, elapsed, out = _run("shutdown", tmp_path)
    assert report["in_flush"] is True  # the handler really ran on top of the flush
    assert "after_flush" not in report  # ... and exited from there
    assert isinstance(report["shutdown_returned"], bool)
    assert float(report["shutdown_s"]) < SHUTDOWN_TIMEOUT + MARGIN  # type: ignore[arg-type]
    assert elapsed < 30.0
    # The calls made before the signal were exported by that shutdown.
    assert len(file_spans(out)) == 3


def test_signal_handler_that_predicts_during_a_flush(tmp_path: Path) -> None:
    report, elapsed, out = _run("predict", tmp_path)
    assert report["in_flush"] is True
    assert report["handler_calls"] == 100  # every prediction returned its result
    assert report["after_flush"] is True and report["shutdown_returned"] is True
    assert elapsed < 30.0
    # Nothing lost: the handler's calls stayed buffered and went out with the next flush.
    assert len(file_spans(out)) == 103
    assert len(file_log_records(out)) == 103
