"""How the segmenter treats eyeglasses, where the two labelled sets disagree (issue 3).

    .venv/bin/python -m training.diagnose_glasses [--model PATH]

maskcap's face region leaves out glasses frames and sunglasses; `lfw_parts` labels glasses as
skin (face), `celebamask_mini` gives them their own class (3, frames and lenses together) and we
map that to not-face. On every `celebamask_mini` image (train and val) whose glasses cover at
least MIN_GLASSES_PIXELS and lie in the crop, the un-jittered 128 px crop of its face is segmented (fused map at
0.5) and this prints the share of glasses pixels called face, and face IoU with glasses as not
face (CelebAMask's way) and as face (LFW's way), for all of them and apart for sunglasses (lenses
darker than half the face's median grey) and clear glasses: which convention the network learnt.
"""
from __future__ import annotations

import argparse
import csv
from pathlib import Path

import cv2
import numpy as np

from core.segmentation import FaceSegmenter, SegmenterOptions
from training.diagnose_hands import per_crop_iou
from training.segmentation_data import celebamask_face, crop_affine, data_dir, face_crop_box, warp_crop

CELEBAMASK_GLASSES = 3
MIN_GLASSES_PIXELS = 200  # at 512 px: drops stray labels; every real pair of glasses is far larger
MIN_CROP_PIXELS = 20  # in the 128 px crop
DARK_SHARE = 0.5


def share_called_face(pred: np.ndarray, region: np.ndarray) -> float:
    """Pooled share of the region's pixels that the prediction calls face (nan if it is empty)."""
    total = region.sum()
    return float((pred & region).sum() / total) if total else float("nan")


def dark_lenses(crops: np.ndarray, face: np.ndarray, glasses: np.ndarray) -> np.ndarray:
    """Per crop: are the glasses sunglasses? Their median grey under DARK_SHARE of the face's."""
    grey = np.stack([cv2.cvtColor(c, cv2.COLOR_BGR2GRAY) for c in crops]).astype(np.float32)
    return np.array([np.median(g[m]) < DARK_SHARE * np.median(g[f]) for g, m, f in zip(grey, glasses, face)])


def glasses_crops(min_pixels: int = MIN_GLASSES_PIXELS):
    """(crops, face without glasses, glasses) of the celebamask_mini images that have glasses."""
    root = data_dir() / "celebamask_mini"
    with open(root / "sources.csv", newline="") as f:
        ids = sorted(row["id"] for row in csv.DictReader(f))
    crops, faces, glasses = [], [], []
    for i in ids:
        label = cv2.imread(str(root / "labels" / f"{i}.png"), cv2.IMREAD_UNCHANGED)
        if label is None or (label == CELEBAMASK_GLASSES).sum() < min_pixels:
            continue
        image = cv2.imread(str(root / "images" / f"{i}.jpg"))
        face = celebamask_face(label)
        box = face_crop_box(face)
        if image is None or box is None:
            continue
        matrix = crop_affine(box)
        crop, face_crop = warp_crop(image, face, matrix)
        glasses_crop = warp_crop(image, (label == CELEBAMASK_GLASSES).astype(np.uint8), matrix)[1]
        if glasses_crop.sum() < MIN_CROP_PIXELS:  # glasses pushed up into the hair, off the crop
            continue
        crops.append(crop)
        faces.append(face_crop)
        glasses.append(glasses_crop)
    if not crops:
        raise FileNotFoundError(f"no celebamask_mini image with glasses under {root}")
    return np.stack(crops), np.stack(faces).astype(bool), np.stack(glasses).astype(bool)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", type=Path, default=None)
    args = ap.parse_args(argv)
    crops, face, glasses = glasses_crops()
    with FaceSegmenter(args.model, SegmenterOptions(graph_cut=False)) as segmenter:
        pred = segmenter.infer_crops(crops) > 0.5
    print(f"{len(crops)} celebamask_mini crops with glasses (glasses {glasses.sum() / face.sum():.0%} "
          "of the face's area)")
    dark = dark_lenses(crops, face, glasses)
    for name, chosen in (("all", np.ones_like(dark)), ("sunglasses", dark), ("clear glasses", ~dark)):
        if not chosen.any():
            continue
        p, f, g = pred[chosen], face[chosen], glasses[chosen]
        print(f"{name} ({chosen.sum()} crops): glasses pixels called face {share_called_face(p, g):.3f}, "
              f"face IoU with glasses not face {per_crop_iou(p, f).mean():.4f}, "
              f"as face (LFW's way) {per_crop_iou(p, f | g).mean():.4f}")
    print("(maskcap's face region: frames and sunglasses are not face, eyes seen through clear lenses are;\n"
          " CelebAMask labels the whole of the glasses, lenses too, so for clear glasses neither figure is exact)")


if __name__ == "__main__":
    main()
