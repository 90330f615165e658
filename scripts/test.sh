#!/usr/bin/env bash
# Set up .venv and run the test suite. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup_env.sh --blender42
export OPENBLAS_NUM_THREADS=${OPENBLAS_NUM_THREADS:-1}
status=0
.venv/bin/python -m pytest -q "$@" || status=$?
if [ "$status" -eq 5 ]; then
  echo "pytest collected no tests: that is a failure here, the suite is never meant to be empty" >&2
fi
exit "$status"
