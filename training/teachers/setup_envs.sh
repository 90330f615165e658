#!/usr/bin/env bash
# Create the teacher venvs (.venv-dlib, .venv-mediapipe) at the repo root. Training only.
set -euo pipefail
cd "$(dirname "$0")/../.."
PY=${PYTHON:-python3.11}
for name in dlib mediapipe; do
  [ -x ".venv-$name/bin/python" ] || "$PY" -m venv ".venv-$name"
  ".venv-$name/bin/pip" install -q -r "training/teachers/requirements-$name.txt"
done
