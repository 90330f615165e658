#!/usr/bin/env bash
# Create (or reuse) the project's virtual environment .venv with the pinned packages.
# Reinstalls only when requirements or constraints change. Needs python3.11 and pip.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3.11}
command -v "$PY" >/dev/null 2>&1 || PY=python3
"$PY" -c 'import sys; sys.exit(0 if sys.version_info[:2] == (3, 11) else 1)' \
  || { echo "maskcap needs Python 3.11 (Blender 5.0's Python); found $("$PY" --version 2>&1)" >&2; exit 1; }
stamp=.venv/.maskcap-requirements
want=$(cat requirements.txt requirements-dev.txt constraints.txt | sha256sum | cut -d' ' -f1)
if [ -x .venv/bin/python ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  exit 0
fi
echo "setting up .venv (pinned packages; first run downloads about 150 MB)..."
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/python -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt -c constraints.txt
echo "$want" > "$stamp"
