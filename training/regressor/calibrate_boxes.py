"""Measure the box mappings that core/track/tracker.py uses (DETECTION_TO_LANDMARKS, LANDMARKS_TO_FACE).

Run: .venv/bin/python -m training.regressor.calibrate_boxes [--detector cnn|cascade]  (after
training.regressor.fit_landmarks68 and training.regressor.landmarks68_masks). On the landmarks68 training
faces (our held-out tenth excluded): where the 68 landmarks lie relative to the start detector's box
(the CNN of core.detect.cnn with the tracker's options at --input-side: CNN_DETECTION_TO_LANDMARKS; or the frontal
Viola-Jones cascade: DETECTION_TO_LANDMARKS), and where the face region (the masks rendered from the
fits) lies relative to the landmarks' box; prints medians and 10-90 % ranges.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np

from core.detect.cnn import CnnDetectorOptions, CnnFaceDetector
from core.detect.detection import detect_faces

from training.regressor.fit_landmarks68 import held_out, load_samples
from evaluation.paths import BUILD_DIR, require_data


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--detector", choices=("cnn", "cascade"), default="cnn")
    ap.add_argument("--input-side", type=int, default=320, help="the CNN's input side (320: video, 480: still photos)")
    args = ap.parse_args(argv)
    if args.detector == "cnn":
        cnn = CnnFaceDetector(CnnDetectorOptions(input_side_px=args.input_side, mirror=False))
        detect = lambda image: [f.box for f in cnn.detect(image)]  # noqa: E731
    else:
        detect = detect_faces
    root = require_data("landmarks68")
    samples = load_samples()
    validation = held_out([s.file for s in samples])
    detection, region = [], []
    for s in (s for s, v in zip(samples, validation) if not v):
        lo, hi = s.landmarks.min(0), s.landmarks.max(0)
        centre, size = (lo + hi) / 2, (hi - lo).max()
        for x, y, w, h in detect(cv2.imread(str(root / s.file))):
            if np.linalg.norm(np.array([x + w / 2, y + h / 2]) - centre) < 0.3 * size:
                detection.append([(centre[0] - (x + w / 2)) / w, (centre[1] - (y + h / 2)) / w, size / w])
                break
        mask = cv2.imread(str(BUILD_DIR / "landmarks68_masks" / (Path(s.file).stem + ".png")), cv2.IMREAD_GRAYSCALE)
        if mask is not None and (mask > 127).any():
            ys, xs = np.nonzero(mask > 127)
            span = hi - lo
            region.append([(xs.min() - lo[0]) / span[0], (ys.min() - lo[1]) / span[1],
                           (xs.max() - hi[0]) / span[0], (ys.max() - hi[1]) / span[1]])
    d, r = np.array(detection), np.array(region)
    print(f"{args.detector} found {len(d)} of {int((~validation).sum())} training faces")
    for name, v in zip(("dx", "dy", "size"), d.T):
        print(f"  DETECTION_TO_LANDMARKS {name}: median {np.median(v):.3f} (10-90 %: "
              f"{np.percentile(v, 10):.2f}..{np.percentile(v, 90):.2f})")
    for name, v in zip(("left", "top", "right", "bottom"), r.T):
        print(f"  LANDMARKS_TO_FACE {name}: median {np.median(v):.3f} over {len(r)} masks")


if __name__ == "__main__":
    main()
