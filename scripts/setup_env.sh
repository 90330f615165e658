#!/usr/bin/env bash
# Create (or reuse) the project's virtual environment .venv with the pinned packages (and with
# --blender also .venv-bpy42 and .venv-bpy52; with --ray also .venv-ray; with --training only .venv-train).
# Reinstalls only when requirements or constraints change. Needs python3.11 and pip; --blender also
# needs python3.13 (Blender 5.1 and newer run it): $PYTHON313, python3.13 on the PATH, or pyenv's.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3.11}
command -v "$PY" >/dev/null 2>&1 || PY=python3
"$PY" -c 'import sys; sys.exit(0 if sys.version_info[:2] == (3, 11) else 1)' \
  || { echo "maskcap needs Python 3.11 (Blender 5.0's Python); found $("$PY" --version 2>&1)" >&2; exit 1; }
# venv requirements...: make or update one venv unless its stamp says it holds these pins already
# (with $VENV_PYTHON, not $PY, when that is set)
setup_venv() {
  local venv=$1 stamp=$1/.maskcap-requirements want python=${VENV_PYTHON:-$PY}
  shift
  want=$(cat "$@" | sha256sum | cut -d' ' -f1)
  if [ -x "$venv/bin/python" ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
    return 0
  fi
  echo "setting up $venv (pinned packages; the first run downloads them)..."
  [ -x "$venv/bin/python" ] || "$python" -m venv "$venv"
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
# a CPython 3.13: $PYTHON313, python3.13 on the PATH, or the newest 3.13 that pyenv installed
find_python313() {
  local candidate pyenv_root
  pyenv_root=$(pyenv root 2>/dev/null || echo "${PYENV_ROOT:-$HOME/.pyenv}")
  for candidate in "${PYTHON313:-}" "$(command -v python3.13 2>/dev/null || true)" \
      $(ls -d "$pyenv_root"/versions/3.13*/bin/python3.13 2>/dev/null | sort -rV); do
    if [ -n "$candidate" ] && [ -x "$candidate" ] \
        && "$candidate" -c 'import sys; sys.exit(0 if sys.version_info[:2] == (3, 13) else 1)' 2>/dev/null; then
      echo "$candidate"
      return 0
    fi
  done
  return 1
}
# --blender (the tests): also Blender 4.2 LTS and 5.2 LTS as modules, so that the add-on is tested on
# the oldest Blender it supports and on the newest, which runs Python 3.13 and numpy 2; and --ray,
# .venv-ray, the run-time packages with Ray for `masks --ray` (core/masks/cluster.py), kept out of
# .venv so that the engine and the add-on are tested without it
for option in "$@"; do
  case $option in
    --blender|--blender42)
      setup_venv .venv-bpy42 requirements-blender42.txt
      if ! py313=$(find_python313); then
        echo "maskcap's tests of Blender 5.1 and newer need Python 3.13, which was not found: not as" \
             "\$PYTHON313, not as python3.13 on the PATH, not in $(pyenv root 2>/dev/null || echo "${PYENV_ROOT:-$HOME/.pyenv}")/versions/3.13*." \
             "Install it (e.g. pyenv install 3.13) or set PYTHON313=/path/to/python3.13." >&2
        exit 1
      fi
      VENV_PYTHON=$py313 setup_venv .venv-bpy52 requirements-blender52.txt ;;
    --ray) setup_venv .venv-ray requirements.txt requirements-ray.txt constraints.txt ;;
  esac
done
