#!/usr/bin/env bash
# Set up .venv and run the test suite. Extra arguments go to pytest.
#   bash scripts/test.sh               # everything CI runs (the PyTorch training tests skip; the Ray
#                                      # tests run a second time in .venv-ray, where they do not)
#   bash scripts/test.sh --training    # only the training tests, in .venv-train (PyTorch, CPU)
set -euo pipefail
cd "$(dirname "$0")/.."
export OPENBLAS_NUM_THREADS=${OPENBLAS_NUM_THREADS:-1}
if [ "${1:-}" = "--training" ]; then
  shift
  bash scripts/setup_env.sh --training
  exec .venv-train/bin/python -m pytest -q -m training "$@"
fi
bash scripts/setup_env.sh --blender --ray
status=0
.venv/bin/python -m pytest -q "$@" || status=$?
if [ "$status" -eq 5 ]; then
  echo "pytest collected no tests: that is a failure here, the suite is never meant to be empty" >&2
fi
# the Ray cluster tests (they skip in .venv, which has no Ray): in .venv-ray, on a cluster of
# their own on 127.0.0.1; unless the arguments pick tests themselves
if [ "$#" -eq 0 ]; then
  ray_status=0
  .venv-ray/bin/python -m pytest -q -m ray tests/test_cluster.py || ray_status=$?
  [ "$status" -ne 0 ] || status=$ray_status
fi
exit "$status"
