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
  .venv/bin/python -m training.face_model.build --out out/face_model.npz
  model=out/face_model.npz
else
  echo "$DATA not found: drawing the shipped models/face_model.npz instead of rebuilding it"
  model=models/face_model.npz
fi
.venv/bin/python -m examples.face_model_picture --model "$model" --out out/face_model.png
clip=${1:-$DATA/videos/webcam_hand_occlusion.mp4}
if [ -e "$clip" ]; then
  .venv/bin/python -m core.cli track "$clip" --json out/take.json --csv out/take.csv \
    --preview out/preview.mp4 --contact-sheet out/contact_sheet.png
  echo "wrote out/take.json, out/take.csv (ARKit columns), out/preview.mp4 and out/contact_sheet.png"
else
  echo "no clip to track at $clip (pass one: bash scripts/demo.sh my_clip.mp4)"
fi
# The Blender add-on, headless: build the extension zip for Blender 4.2 to 5.0, install it into bpy 5.0.1 (user folder under
# out/blender_user), add the demo head, bake a clip (yours when given, else a demo clip made from
# scikit-image's astronaut photo), build the compositor tree, render a few frames, and write
# out/demo.blend, out/demo_take.npz, out/demo_render/ and out/demo_contact_sheet.png.
addon_zip=$(.venv/bin/python build_addon.py --platform linux-x64 --blender 4.2 | tail -n 1 | cut -d' ' -f1)
echo "built $addon_zip"
bake_clip=${1:-}
if [ -z "$bake_clip" ]; then
  .venv/bin/python -m examples.demo_clip --out out/demo_clip.mp4
  bake_clip=out/demo_clip.mp4
fi
.venv/bin/python scripts/blender_demo.py --zip "$addon_zip" --clip "$bake_clip" --out out
