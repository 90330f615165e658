"""Fit the face model to every landmarks68 image: the tracker's training targets (paper Eq. 4).

Run: .venv/bin/python -m training.regressor.fit_landmarks68 [--limit N] [--workers 2]
Writes build/landmarks68_fits.npz (R, t, x, u, f, D = landmarks - projection, per image),
build/landmarks68_fits.json (per-image errors and the summary) and
build/landmarks68_gallery.jpg (projected meshes over a dozen images). Prints the mean
reprojection error normalised by the inter-ocular (outer eye corner) distance.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import cv2
import numpy as np

from core.face.camera import focal_from_mm
from core.face.face_model import load_face_model
from core.io.files import write_image, write_npz, write_text
from core.face.fitting import FitOptions, FitResult, fit_landmarks, with_expression_priors

from evaluation.paths import BUILD_DIR, require_data

OUTER_EYE_CORNERS = (36, 45)
IMAGE_SIZE = (256, 256)  # landmarks68 crops (SOURCE.md)


@dataclass
class Sample:
    file: str
    subset: str
    landmarks: np.ndarray
    focal_prior_px: float


def load_samples(limit: int | None = None) -> list[Sample]:
    """The landmarks68 training faces, with a 50 mm-equivalent focal prior of their source photo."""
    root = require_data("landmarks68")
    meta = json.loads((root / "landmarks.json").read_text())
    samples = []
    for im in meta["images"]:
        if im["split"] != "train":
            continue
        focal = im["scale"] * focal_from_mm(50.0, max(im["orig_size"]))
        samples.append(Sample(im["file"], im["subset"], np.asarray(im["points"], np.float64), focal))
    return samples[:limit] if limit else samples


def inter_ocular(landmarks: np.ndarray) -> float:
    a, b = OUTER_EYE_CORNERS
    return float(np.linalg.norm(landmarks[a] - landmarks[b]))


def held_out(files: list[str]) -> np.ndarray:
    """Our validation split of landmarks68: every 10th face by sorted file name (a bool mask)."""
    mask = np.zeros(len(files), bool)
    mask[np.argsort(files)[::10]] = True
    return mask


def point_error(predicted: np.ndarray, landmarks: np.ndarray) -> float:
    """Mean point-to-point distance / inter-ocular distance (the NME of 300-W)."""
    return float(np.linalg.norm(predicted - landmarks, axis=1).mean() / inter_ocular(landmarks))


def normalised_error(fit: FitResult, landmarks: np.ndarray) -> float:
    """Mean point-to-point distance between landmarks and fitted projection / inter-ocular."""
    return point_error(fit.projected, landmarks)


def target_options(plain: bool = False) -> FitOptions:
    """Eq. 4's options for training targets: with the expression priors (antagonists apart,
    unobservable channels at 0; fitting.with_expression_priors) unless plain."""
    return FitOptions() if plain else with_expression_priors(FitOptions())


def _fit_one(sample: Sample, plain: bool = False) -> dict:
    model = load_face_model()
    t0 = time.perf_counter()
    fit = fit_landmarks(model, sample.landmarks, IMAGE_SIZE, focal_px=sample.focal_prior_px,
                        options=target_options(plain))
    ms = (time.perf_counter() - t0) * 1000
    return {"fit": fit, "nme": normalised_error(fit, sample.landmarks), "ms": ms}


def gallery(samples: list[Sample], fits: list[FitResult], out: Path, count: int = 12) -> None:
    """Projected meshes over a spread of images, with given (green) and fitted (red) landmarks."""
    from core.face.render import render_face

    model = load_face_model()
    root = require_data("landmarks68")
    picks = np.linspace(0, len(samples) - 1, count).astype(int)
    tiles = []
    for i in picks:
        img = cv2.imread(str(root / samples[i].file))
        fit = fits[i]
        verts = model.vertices(fit.identity, fit.expression)
        over, _, _ = render_face(model, verts, fit.rotation, fit.translation, fit.focal_px, (256, 256),
                                 background=img, alpha=0.45)
        for p in samples[i].landmarks:
            cv2.circle(over, tuple(int(round(v)) for v in p), 2, (0, 220, 0), -1, cv2.LINE_AA)
        for p in fit.projected:
            cv2.circle(over, tuple(int(round(v)) for v in p), 1, (0, 0, 255), -1, cv2.LINE_AA)
        tiles.append(np.hstack([img, over]))
    rows = [np.hstack(tiles[k:k + 3]) for k in range(0, len(tiles), 3)]
    write_image(out, np.vstack(rows))


def save_targets(samples: list[Sample], fits: list[FitResult], out: Path, image_size: tuple[int, int],
                 **extra: np.ndarray) -> None:
    """The regressor's training targets (R, t, x, u, f, D per image) of images of image_size
    (width, height), plus any extra per-image arrays."""
    arrays = {
        "files": np.array([s.file for s in samples]),
        "landmarks": np.stack([s.landmarks for s in samples]).astype(np.float32),
        "rotation": np.stack([f.rotation for f in fits]).astype(np.float32),
        "translation": np.stack([f.translation for f in fits]).astype(np.float32),
        "expression": np.stack([f.expression for f in fits]).astype(np.float32),
        "identity": np.stack([f.identity for f in fits]).astype(np.float32),
        "focal_px": np.array([f.focal_px for f in fits], np.float32),
        "displacements": np.stack([f.displacements for f in fits]).astype(np.float32),
        "vertex_ids": np.stack([f.vertex_ids for f in fits]),
        "image_size": np.array(image_size),
        **extra,
    }
    write_npz(out, **arrays)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--limit", type=int, default=None, help="fit only the first N images")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--out", type=Path, default=BUILD_DIR)
    parser.add_argument("--plain", action="store_true",
                        help="targets without the expression priors (the targets of regressors trained before them)")
    args = parser.parse_args()
    samples = load_samples(args.limit)
    results = []
    with ProcessPoolExecutor(max_workers=args.workers) as pool:
        for k, res in enumerate(pool.map(partial(_fit_one, plain=args.plain), samples, chunksize=8), 1):
            results.append(res)
            if k % 50 == 0 or k == len(samples):
                print(f"\rfitted {k}/{len(samples)}", end="", file=sys.stderr, flush=True)
    print(file=sys.stderr)
    fits = [r["fit"] for r in results]
    nme = np.array([r["nme"] for r in results])
    subsets = np.array([s.subset for s in samples])
    summary = {
        "images": len(samples),
        "nme_mean": float(nme.mean()),
        "nme_median": float(np.median(nme)),
        "nme_p90": float(np.percentile(nme, 90)),
        "nme_by_subset": {s: float(nme[subsets == s].mean()) for s in np.unique(subsets)},
        "fit_ms_median_in_pool": float(np.median([r["ms"] for r in results])),
    }
    save_targets(samples, fits, args.out / "landmarks68_fits.npz", IMAGE_SIZE)
    write_text(args.out / "landmarks68_fits.json", json.dumps(
        {"summary": summary, "per_image": [{"file": s.file, "nme": float(e)} for s, e in zip(samples, nme)]}, indent=1))
    gallery(samples, fits, args.out / "landmarks68_gallery.jpg")
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
