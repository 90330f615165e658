#!/usr/bin/env bash
# The main job: set up .venv, build the face model from ../shared/data/ict_facekit and draw it,
# then track a clip with a hand passing over the face and write the take, a preview video and a
# contact sheet. Outputs go to out/.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup_env.sh
export OPENBLAS_NUM_THREADS=${OPENBLAS_NUM_THREADS:-1}
DATA=${MASKCAP_DATA:-../shared/data}
mkdir -p out
if [ -d "$DATA/ict_facekit" ]; then
  .venv/bin/python -m training.build_face_model --out out/face_model.npz
  model=out/face_model.npz
else
  echo "$DATA not found: drawing the shipped models/face_model.npz instead of rebuilding it"
  model=models/face_model.npz
fi
.venv/bin/python -m training.face_model_picture --model "$model" --out out/face_model.png
clip=${1:-$DATA/videos/webcam_hand_occlusion.mp4}
if [ -e "$clip" ]; then
  .venv/bin/python -m core.cli track "$clip" --json out/take.json --csv out/take.csv \
    --preview out/preview.mp4 --contact-sheet out/contact_sheet.png
  echo "wrote out/take.json, out/take.csv (ARKit columns), out/preview.mp4 and out/contact_sheet.png"
else
  echo "no clip to track at $clip (pass one: bash scripts/demo.sh my_clip.mp4)"
fi
