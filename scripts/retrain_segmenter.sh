#!/usr/bin/env bash
# Retrain the shipped face segmenter (models/segmenter.onnx) from ../shared/data: the seven runs of
# training.segmenter.train that made it, each starting from the one before. Runs 1-6 keep the
# pooling switches as a tie-broken mask, as they did when they were made; run 7 moves the network
# to switches kept as differences before the ReLU (faster in ONNX Runtime; see
# training.segmenter.net.pool_with_switches) and fine-tunes it. Runs 1-5 made their
# weights with exports that kept the two-class head layers; exports now fold them (same
# probabilities, training.segmenter.net.face_difference_heads), and a run that starts from one
# loads equivalent two-class layers, so a rerun starts each step from the same function, not
# from bit-for-bit the same parameters.
# PyTorch lives in its own venv, .venv-train (training/requirements-train.txt), never in the run-time one.
# About 7 hours on two CPU cores. Logs and curves: training/logs/segmentation/ (each run after
# the first appends to them). Run the evaluation afterwards:
#   .venv/bin/python -m bench.bench_segmentation
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3.11}
if [ ! -x .venv-train/bin/python ]; then
  "$PY" -m venv .venv-train
  .venv-train/bin/python -m pip install --quiet --disable-pip-version-check -r training/requirements-train.txt
fi
export OPENBLAS_NUM_THREADS=1
train() { .venv-train/bin/python -m training.segmenter.train --switches tie_break "$@"; }
# 1. from scratch on faces with jitter, rectangles and recoloured hands; then negatives
train --minutes 40 --finetune-minutes 10 --threads 2
# 2. more hands
train --init build/segmenter.pt --finetune-minutes 10 --hand-prob 0.7 --threads 2
# 3. hands made of the face's own skin (training.segmenter.skin_hands), a quarter negatives
train --minutes 0 --init-onnx models/segmenter.onnx --finetune-minutes 48 --hand-prob 0.7 \
  --skin-hand-prob 0.5 --negative-fraction 0.25
# 4. the face pixels a hand covers, and those within 4 px of it, weigh 4 in the loss
train --minutes 0 --init-onnx models/segmenter.onnx --finetune-minutes 85 --hand-prob 0.8 \
  --skin-hand-prob 0.5 --negative-fraction 0.25 --hand-weight 3 --finetune-lr 3e-4
# 5. plus a per-crop soft-IoU loss, so that a face mostly hidden by a hand counts as much as any
train --minutes 0 --init-onnx models/segmenter.onnx --finetune-minutes 70 --hand-prob 0.8 \
  --skin-hand-prob 0.5 --negative-fraction 0.25 --hand-weight 3 --iou-weight 1 --finetune-lr 2e-4 --threads 2
# 6. grown into the "deep" shape (stage 5 two convs of 160, fc6 256; training.segmenter.widen)
train --minutes 0 --init-onnx models/segmenter.onnx --shape deep --finetune-minutes 100 --hand-prob 0.8 \
  --skin-hand-prob 0.5 --negative-fraction 0.25 --hand-weight 3 --iou-weight 1 --finetune-lr 3e-4 --threads 2
# 7. switches kept as differences before the ReLU (the last --switches wins), fine-tuned
train --switches difference --minutes 0 --init-onnx models/segmenter.onnx --shape deep --finetune-minutes 60 \
  --hand-prob 0.8 --skin-hand-prob 0.5 --negative-fraction 0.25 --hand-weight 3 --iou-weight 1 \
  --finetune-lr 2e-4 --threads 2
# 8. grown into the "wide" shape (stages 4-5 at 128 and 2 x 256, fc6 384), which int8 makes affordable
train --minutes 0 --init-onnx models/segmenter.onnx --shape wide --finetune-minutes 100 --hand-prob 0.8 \
  --skin-hand-prob 0.5 --negative-fraction 0.25 --hand-weight 3 --iou-weight 1 --finetune-lr 3e-4 --threads 2
# 9. the run-time file in int8 (the float network stays in models/segmenter_streams.onnx); refuses
#    if int8 parts from float on lfw_parts validation
.venv-train/bin/python -m training.segmenter.quantize
echo "wrote models/segmenter.onnx; the tracker's regressor learnt on the previous segmenter's masks:"
echo "retrain it too (README, Tracking) before shipping the pair"
