#!/usr/bin/env bash
# Installs everything the test suite needs on a fresh Debian machine, then runs it.
# Usage: bash scripts/test.sh [pytest args]
set -euo pipefail
cd "$(dirname "$0")/.."

# Real components the tests start: Prometheus + promtool, Alertmanager + amtool (on loopback),
# headless Chromium, which renders the drift report's HTML page, and a Java runtime for the
# local Spark session of mlotel.drift.spark's tests.
APT_PACKAGES=""
if ! command -v prometheus >/dev/null || ! command -v promtool >/dev/null \
  || ! command -v prometheus-alertmanager >/dev/null || ! command -v amtool >/dev/null; then
  APT_PACKAGES="prometheus prometheus-alertmanager"
fi
if ! command -v chromium >/dev/null; then
  APT_PACKAGES="$APT_PACKAGES chromium"
fi
if ! command -v java >/dev/null; then
  APT_PACKAGES="$APT_PACKAGES default-jre-headless"
fi
if [ -n "$APT_PACKAGES" ]; then
  if [ "$(id -u)" = "0" ]; then SUDO=""; else SUDO="sudo"; fi
  $SUDO apt-get update -qq
  # shellcheck disable=SC2086
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq $APT_PACKAGES >/dev/null
fi

PY="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip 2>&1 | grep -v "^WARNING: Location" || true
# torch first, pinned: the CPU wheel (an unpinned torch pulls a multi-GB CUDA build).
.venv/bin/python -m pip install -q torch==2.13.0 2>&1 | grep -v "^WARNING: Location" || true
.venv/bin/python -m pip install -q -e ".[test]" 2>&1 | grep -v "^WARNING: Location" || true
.venv/bin/python -c "import mlotel, pytest, sklearn, torch, transformers, xgboost, lightgbm, onnxruntime, skl2onnx, opentelemetry.proto, scipy, pyspark" >/dev/null

echo "== ruff"
.venv/bin/ruff check src tests benchmarks examples
echo "== mypy"
.venv/bin/mypy
echo "== pytest"
.venv/bin/python -m pytest -q -p no:cacheprovider "$@"
