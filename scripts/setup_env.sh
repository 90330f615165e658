#!/usr/bin/env bash
# Create (or reuse) the project's virtual environment .venv with the pinned packages (and with
# --blender42 also .venv-bpy42; with --ray also .venv-ray; with --training only .venv-train).
# Reinstalls only when requirements or constraints change. Needs python3.11 and pip.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3.11}
command -v "$PY" >/dev/null 2>&1 || PY=python3
"$PY" -c 'import sys; sys.exit(0 if sys.version_info[:2] == (3, 11) else 1)' \
  || { echo "maskcap needs Python 3.11 (Blender 5.0's Python); found $("$PY" --version 2>&1)" >&2; exit 1; }
# venv requirements...: make or update one venv unless its stamp says it holds these pins already
setup_venv() {
  local venv=$1 stamp=$1/.maskcap-requirements want
  shift
  want=$(cat "$@" | sha256sum | cut -d' ' -f1)
  if [ -x "$venv/bin/python" ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
    return 0
  fi
  echo "setting up $venv (pinned packages; the first run downloads them)..."
  [ -x "$venv/bin/python" ] || "$PY" -m venv "$venv"
  local args=()
  for file in "$@"; do
    case $file in constraints*) args+=(-c "$file") ;; *) args+=(-r "$file") ;; esac
  done
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check "${args[@]}"
  echo "$want" > "$stamp"
}
setup_venv .venv requirements.txt requirements-dev.txt constraints.txt
# --training: .venv-train alone, the run-time packages and PyTorch (training and its tests)
if [ "${1:-}" = "--training" ]; then
  setup_venv .venv-train requirements.txt training/requirements-train.txt
  exit 0
fi
# --blender42 (the tests): also Blender 4.2 LTS as a module, so that the add-on is tested on the
# oldest Blender it supports; and .venv-ray, the run-time packages with Ray for `masks --ray`
# (core/masks/cluster.py), kept out of .venv so that the engine and the add-on are tested without it
for option in "$@"; do
  case $option in
    --blender42) setup_venv .venv-bpy42 requirements-blender42.txt ;;
    --ray) setup_venv .venv-ray requirements.txt requirements-ray.txt constraints.txt ;;
  esac
done
