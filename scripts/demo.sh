#!/usr/bin/env bash
# The main job: set up .venv, build the face model from ../shared/data/ict_facekit and write
# a picture of it (neutral and FACS shapes with the 68 landmarks) to out/face_model.png.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup_env.sh
mkdir -p out
if [ -d ../shared/data/ict_facekit ] || [ -n "${MASKCAP_DATA:-}" ]; then
  .venv/bin/python -m training.build_face_model --out out/face_model.npz
  model=out/face_model.npz
else
  echo "../shared/data not found: drawing the shipped models/face_model.npz instead of rebuilding it"
  model=models/face_model.npz
fi
.venv/bin/python -m training.face_model_picture --model "$model" --out out/face_model.png
