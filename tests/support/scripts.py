"""Running a Python script in a fresh process with a clean OpenTelemetry environment, and
reading the JSON lines it prints. Usage::

    proc = run_script(SOURCE, tmp_path, "arg", timeout=30, MLOTEL_OUTPUT_DIR=str(out))
    assert proc.returncode == 0, proc.stderr
    report = json_lines(proc.stdout)[-1]
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

__all__ = ["clean_env", "json_lines", "run_python", "run_script"]

_STRIPPED = ("OTEL_", "MLOTEL_")


def clean_env(**env: str) -> dict[str, str]:
    """This process's environment without any ``OTEL_*`` or ``MLOTEL_*`` variable (the
    test runner's own settings must not leak into the script), plus ``env``."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith(_STRIPPED)}
    clean.update(env)
    return clean


def run_python(
    script: Path, *args: str, cwd: Path, timeout: float = 90, **env: str
) -> subprocess.CompletedProcess[str]:
    """``python script args...`` in ``cwd`` with :func:`clean_env` (``env`` set on top);
    stdout and stderr captured as text. Raises ``subprocess.TimeoutExpired`` past
    ``timeout`` seconds."""
    return subprocess.run(
        [sys.executable, str(script), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=clean_env(**env),
        cwd=cwd,
    )


def run_script(
    source: str,
    tmp_path: Path,
    *args: str,
    name: str = "script.py",
    timeout: float = 90,
    **env: str,
) -> subprocess.CompletedProcess[str]:
    """Write ``source`` (dedented) to ``tmp_path / name`` and run it there with
    :func:`run_python`."""
    script = tmp_path / name
    script.write_text(textwrap.dedent(source))
    return run_python(script, *args, cwd=tmp_path, timeout=timeout, **env)


def json_lines(stdout: str) -> list[dict[str, Any]]:
    """Every line of ``stdout`` that is a JSON object (starts with ``{``), parsed, in
    order; other lines are skipped."""
    return [json.loads(line) for line in stdout.splitlines() if line.startswith("{")]
