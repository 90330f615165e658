"""Where the segmenter fails under synthetic hands, on lfw_parts validation crops (issue 3).

    .venv/bin/python -m training.diagnose_hands [--model PATH] [--split train]

The 500 validation crops with one recoloured hand each (the crops that select the weights in
training.train_segmentation), the fused stream thresholded at 0.5. Prints the mean face IoU,
IoU by the share of the face the hand covers, and the pooled errors: face pixels under the hand
still called face, visible face pixels missed near the hand (within 4 px: slivers between
fingers) and far from it, against the clean crops' miss rate; and ceilings: the IoU if the hand
were known exactly, and if the true mask were drawn at 16, 32 or 64 px. Writes
build/diagnose_hands.png: the worst crops (clean | with hand | prediction in red | target). With --split train, the same on
the first 500 lfw_parts training crops (un-jittered, hands seeded alike): equal figures on both
splits say the network underfits (too small or too briefly trained) rather than overfits.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np

from core.segmentation import FaceSegmenter, SegmenterOptions
from training.paths import BUILD_DIR
from training.segmentation_data import hand_occluded, lfw_parts_source, load_hands, validation_crops

COVER_BINS = (0.0, 0.1, 0.3, 0.5, 0.8, 1.01)


def per_crop_iou(pred: np.ndarray, target: np.ndarray) -> np.ndarray:
    inter, union = (pred & target).sum((1, 2)), (pred | target).sum((1, 2))
    return np.where(union > 0, inter / np.maximum(union, 1), 1.0)


def error_breakdown(pred, clean_face, visible_face) -> dict[str, float]:
    """Pooled shares: hand-covered face called face; visible face missed near / far from the hand."""
    under_hand = clean_face & ~visible_face
    near = np.stack([cv2.dilate(u.astype(np.uint8), np.ones((9, 9), np.uint8)) > 0 for u in under_hand])
    missed = ~pred & visible_face
    return {"under_hand_called_face": float((pred & under_hand).sum() / max(under_hand.sum(), 1)),
            "visible_missed_near_hand": float((missed & near).sum() / max(visible_face.sum(), 1)),
            "visible_missed_far_from_hand": float((missed & ~near).sum() / max(visible_face.sum(), 1)),
            "not_face_called_face": float((pred & ~clean_face).sum() / max(visible_face.sum(), 1))}


def through_grid(masks: np.ndarray, size: int) -> np.ndarray:
    """Masks averaged down to size x size and bilinearly back up, thresholded at 0.5: the best a
    prediction made at that resolution can draw."""
    full = masks.shape[-1]
    return np.stack([cv2.resize(cv2.resize(m.astype(np.float32), (size, size), interpolation=cv2.INTER_AREA),
                                (full, full), interpolation=cv2.INTER_LINEAR) > 0.5 for m in masks])


def ceilings(clean_pred, pred, clean_face, visible) -> dict[str, float]:
    """Mean IoU under the hand if part of the problem were solved: the hand known exactly and taken
    from the clean crop's prediction (what is left is the clean crop's own error) or from this
    prediction (what is left is visible face missed and background called face); and the true
    mask drawn at 16, 32 and 64 px (what resolution alone costs)."""
    under_hand = clean_face & ~visible
    out = {"hand known, clean prediction": per_crop_iou(clean_pred & ~under_hand, visible).mean(),
           "hand known, this prediction": per_crop_iou(pred & ~under_hand, visible).mean()}
    for size in (16, 32, 64):
        out[f"true mask drawn at {size} px"] = per_crop_iou(through_grid(visible, size), visible).mean()
    return {k: float(v) for k, v in out.items()}


def picture(val, occluded, pred, order, count: int = 6) -> np.ndarray:
    rows = []
    for k in order[:count]:
        shown = occluded[0][k].copy()
        shown[pred[k]] = (0.5 * shown[pred[k]] + [0, 0, 127]).astype(np.uint8)
        target = cv2.cvtColor(occluded[1][k] * 255, cv2.COLOR_GRAY2BGR)
        rows.append(np.hstack([val[0][k], occluded[0][k], shown, target]))
    return np.vstack(rows)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", type=Path, default=None)
    ap.add_argument("--split", choices=("validation", "train"), default="validation")
    args = ap.parse_args(argv)
    val = validation_crops(lfw_parts_source(args.split))
    val = (val[0][:500], val[1][:500])
    occluded = hand_occluded(val, load_hands())
    with FaceSegmenter(args.model, SegmenterOptions(graph_cut=False)) as segmenter:
        clean_pred = segmenter.infer_crops(val[0]) > 0.5
        pred = segmenter.infer_crops(occluded[0]) > 0.5
    clean_face, visible = val[1].astype(bool), occluded[1].astype(bool)
    iou = per_crop_iou(pred, visible)
    print(f"mean face IoU: clean {per_crop_iou(clean_pred, clean_face).mean():.4f}, one hand {iou.mean():.4f}")
    cover = 1.0 - visible.sum((1, 2)) / np.maximum(clean_face.sum((1, 2)), 1)
    print(f"the hand covers {cover.mean():.0%} of the face on average")
    for lo, hi in zip(COVER_BINS[:-1], COVER_BINS[1:]):
        inside = (cover >= lo) & (cover < hi)
        if inside.any():
            print(f"  covered {lo:.0%}-{min(hi, 1):.0%}: {inside.sum():3d} crops, IoU {iou[inside].mean():.3f}")
    for k, v in error_breakdown(pred, clean_face, visible).items():
        print(f"{k:30s} {v:.3f}")
    print(f"{'clean: visible face missed':30s} {(~clean_pred & clean_face).sum() / clean_face.sum():.3f}")
    print("mean IoU under the hand if part of it were solved:")
    for k, v in ceilings(clean_pred, pred, clean_face, visible).items():
        print(f"  {k:30s} {v:.3f}")
    BUILD_DIR.mkdir(exist_ok=True)
    path = BUILD_DIR / f"diagnose_hands{'_train' if args.split == 'train' else ''}.png"
    cv2.imwrite(str(path), picture(val, occluded, pred, np.argsort(iou)))
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
