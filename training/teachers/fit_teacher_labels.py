"""Fit the face model to the dlib teacher's 68 points on lfw_unlabeled: extra regressor targets.

Run: OPENBLAS_NUM_THREADS=1 .venv/bin/python -m training.teachers.fit_teacher_labels
Reads build/teachers/lfw_unlabeled_dlib.json (label_faces.py), writes build/teachers/lfw_unlabeled_fits.npz
with the arrays of training.regressor.fit_landmarks68.save_targets (image_size 160) plus nme per image: the
regressor's extra training faces (training.regressor.train --source lfw_unlabeled).
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from functools import partial
from pathlib import Path

import numpy as np

from core.face.camera import focal_from_mm
from core.face.face_model import load_face_model
from core.face.fitting import fit_landmarks
from training.regressor.fit_landmarks68 import Sample, normalised_error, save_targets, target_options

REPO = Path(__file__).resolve().parents[2]
CROP_SIZE = (160, 160)
# a 160x160 LFW crop keeps the pixel scale of its 250x250 frame: 50 mm equivalent of that frame
FOCAL_PRIOR_PX = focal_from_mm(50.0, 250)


def _fit_one(landmarks: np.ndarray, plain: bool = False):
    fit = fit_landmarks(load_face_model(), landmarks, CROP_SIZE, focal_px=FOCAL_PRIOR_PX, options=target_options(plain))
    return fit, normalised_error(fit, landmarks)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--labels", type=Path, default=REPO / "build/teachers/lfw_unlabeled_dlib.json")
    parser.add_argument("--out", type=Path, default=REPO / "build/teachers/lfw_unlabeled_fits.npz")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--plain", action="store_true", help="targets without the expression priors")
    args = parser.parse_args()
    labels = json.loads(args.labels.read_text())["images"]
    files = sorted(f for f, lab in labels.items() if lab.get("points68"))
    marks = [np.asarray(labels[f]["points68"], np.float64) for f in files]
    t0 = time.time()
    fits, nmes = [], []
    with ProcessPoolExecutor(max_workers=args.workers) as pool:
        for k, (fit, nme) in enumerate(pool.map(partial(_fit_one, plain=args.plain), marks, chunksize=16), 1):
            fits.append(fit)
            nmes.append(nme)
            if k % 100 == 0 or k == len(files):
                print(f"\rfitted {k}/{len(files)} ({time.time() - t0:.0f} s)", end="", file=sys.stderr, flush=True)
    print(file=sys.stderr)
    samples = [Sample(f, "lfw_unlabeled", m, FOCAL_PRIOR_PX) for f, m in zip(files, marks)]
    save_targets(samples, fits, args.out, CROP_SIZE, nme=np.array(nmes, np.float32))
    nmes = np.array(nmes)
    print(f"{len(files)} fits, NME mean {nmes.mean():.4f} median {np.median(nmes):.4f}, "
          f"{time.time() - t0:.0f} s -> {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
