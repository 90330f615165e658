#!/usr/bin/env bash
# Set up .venv and run the test suite. Extra arguments go to pytest.
#   bash scripts/test.sh               # everything CI runs (the PyTorch training tests skip)
#   bash scripts/test.sh --training    # only the training tests, in .venv-train (PyTorch, CPU)
set -euo pipefail
cd "$(dirname "$0")/.."
export OPENBLAS_NUM_THREADS=${OPENBLAS_NUM_THREADS:-1}
if [ "${1:-}" = "--training" ]; then
  shift
  bash scripts/setup_env.sh --training
  exec .venv-train/bin/python -m pytest -q -m training "$@"
fi
bash scripts/setup_env.sh --blender42
status=0
.venv/bin/python -m pytest -q "$@" || status=$?
if [ "$status" -eq 5 ]; then
  echo "pytest collected no tests: that is a failure here, the suite is never meant to be empty" >&2
fi
exit "$status"
