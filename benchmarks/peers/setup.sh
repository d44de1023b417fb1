#!/usr/bin/env bash
# Builds .venv-peers (git-ignored): Evidently 0.7 and whylogs, the peers the offline drift
# report is compared against. They stay out of mlotel's own environment: heavy, and their
# pins conflict with ours (Evidently 0.7.23 fails to import under pandas 3). Idempotent: a second run only checks the versions.
# Usage: bash benchmarks/peers/setup.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
PY="${PYTHON:-python3}"
if [ ! -x .venv-peers/bin/python ]; then
  "$PY" -m venv .venv-peers
fi
if ! .venv-peers/bin/python -c "import evidently, whylogs, pandas; assert pandas.__version__ < '3'" >/dev/null 2>&1; then
  .venv-peers/bin/python -m pip install -q --upgrade pip 2>&1 | grep -v "^WARNING: Location" || true
  .venv-peers/bin/python -m pip install -q "evidently==0.7.23" "whylogs==1.6.4" "pandas>=2,<3" scipy 2>&1 \
    | grep -v "^WARNING: Location" || true
fi
.venv-peers/bin/python -c "
from importlib.metadata import version
print('peers ready:', 'evidently', version('evidently'), '| whylogs', version('whylogs'))
"
