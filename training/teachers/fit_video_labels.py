"""Training targets from the teachers' labels of the expressive clips' crops (training only).

Run: OPENBLAS_NUM_THREADS=1 .venv/bin/python -m training.teachers.fit_video_labels [--hold-out CLIP ...]
Reads build/teachers/videos_train/index.json (training.teachers.video_frames) and the two teachers'
labels of its crops (label_faces.py: videos_train_dlib.json, videos_train_mediapipe.json). A crop's
68 points are dlib's, with the eyelid points (37, 38, 40, 41, 43, 44, 46, 47) taken from MediaPipe's
refined eyelids through bench.mediapipe_ibug68's map: dlib's eyes seldom close on a blink, and the
regressor cannot learn blinks from points that do not. MediaPipe's lids sit wider apart than the
68-point convention, so they are shifted per clip by their median offset from dlib's: dlib's
resting lids, MediaPipe's blinks. Crops where the teachers disagree (inner
points over `max_disagreement` of the eye distance apart) are dropped. Each is fitted with the
expression priors (fitting.with_expression_priors), the focal prior being 50 mm equivalent of its
clip's frame. Each clip is one person: one identity and focal length are solved on a dozen of its
crops (Eq. 3, as the tracker adapts them), and every crop is fitted with them held, so that a
closed eye cannot pass for a narrow-eyed identity (fitted alone, only 12 % of the closed-eye crops
got EyeBlink_L >= 0.5). Then each channel's resting value for that person is taken off, and the
target is the rise above it, (x - rest) / (1 - rest), as the tracker reports it
(core.track.temporal.ExpressionFitter): for the eyes and brows their median over the clip (at
rest most of the time), for the rest the 10th percentile (a talking mouth is open half the time).
The fitted weights are kept too (expression_fitted). --per-crop fits each crop alone, --no-rest
keeps the fits' own weights.
Held-out clips (--hold-out, by name) are left out, for measuring. Writes
build/teachers/videos_train_fits.npz (training.regressor.fit_landmarks68.save_targets arrays).
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import cv2
import numpy as np

from core.face.camera import focal_from_mm
from core.face.face_model import load_face_model
from core.face.facs import FACS_NAMES
from core.face.fitting import FitOptions, fit_identity_focal, fit_landmarks, with_expression_priors
from evaluation.paths import BUILD_DIR, require_data
from training.regressor.fit_landmarks68 import Sample, normalised_error, save_targets

REPO = Path(__file__).resolve().parents[2]
EYELIDS = (37, 38, 40, 41, 43, 44, 46, 47)
FOLDER = BUILD_DIR / "teachers" / "videos_train"


def mesh_to_ibug68() -> np.ndarray:
    path = REPO / "bench" / "results" / "mediapipe_to_ibug68.json"
    return np.array(json.loads(path.read_text())["mesh_index_of_ibug68"], np.int64)


def combined_points(dlib_points, mesh_points, mapping: np.ndarray, max_disagreement: float):
    """dlib's 68 points with MediaPipe's eyelids, or None when the teachers disagree."""
    d = np.asarray(dlib_points, np.float64)
    m = np.asarray(mesh_points, np.float64)[mapping]
    eye = np.linalg.norm(d[36] - d[45])
    if np.linalg.norm(d[17:] - m[17:], axis=1).mean() / eye > max_disagreement:
        return None
    out = d.copy()
    out[list(EYELIDS)] = m[list(EYELIDS)]
    return out


REST_PERCENTILE = np.full(46, 10.0)
REST_PERCENTILE[[FACS_NAMES.index(n) for n in FACS_NAMES if n.startswith(("EyeBlink", "EyeSquint", "EyeOpen", "Brows"))]] = 50.0


def above_rest(expression: np.ndarray, clips: np.ndarray) -> np.ndarray:
    """Each clip's weights (N, 46) as their rise above the clip's resting value per channel."""
    out = np.array(expression, np.float64)
    for clip in np.unique(clips):
        rows = clips == clip
        rest = np.minimum([np.percentile(out[rows, k], REST_PERCENTILE[k]) for k in range(out.shape[1])], 0.9)
        out[rows] = np.clip((out[rows] - rest) / (1.0 - rest), 0.0, 1.0)
    return out


KEYFRAMES = 12
# as the tracker's identity adaptation: stronger priors than a single fit's
IDENTITY_FIT = FitOptions(alternations=3, identity_prior=3e-3, focal_prior=2e-2)


def clip_identity(points: list[np.ndarray], focals: list[float]) -> tuple[np.ndarray, float]:
    """Eq. 3 on up to KEYFRAMES crops spread over a clip: (identity, focal length in pixels at
    the median crop scale)."""
    picks = np.unique(np.linspace(0, len(points) - 1, min(KEYFRAMES, len(points))).astype(int))
    focal = float(np.median(focals))
    identity, focal, _ = fit_identity_focal(load_face_model(), [points[k] for k in picks], (256, 256),
                                            focal_px=focal, options=with_expression_priors(IDENTITY_FIT))
    return identity, focal


def _fit_one(item: tuple[np.ndarray, float, np.ndarray | None]):
    points, focal, identity = item
    fit = fit_landmarks(load_face_model(), points, (256, 256), focal_px=focal, identity=identity,
                        fix_focal=identity is not None, options=with_expression_priors(FitOptions()))
    return fit, normalised_error(fit, points)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--folder", type=Path, default=FOLDER)
    parser.add_argument("--hold-out", nargs="*", default=[], help="clips (names) left out of the targets")
    parser.add_argument("--max-disagreement", type=float, default=0.08)
    parser.add_argument("--out", type=Path, default=BUILD_DIR / "teachers" / "videos_train_fits.npz")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--no-rest", action="store_true", help="keep each fit's weights (no per-clip resting value)")
    parser.add_argument("--per-crop", action="store_true", help="fit each crop alone (its own identity and focal length)")
    args = parser.parse_args()
    index = json.loads((args.folder / "index.json").read_text())
    tag = args.folder.name
    dlib = json.loads((args.folder.parent / f"{tag}_dlib.json").read_text())["images"]
    mesh = json.loads((args.folder.parent / f"{tag}_mediapipe.json").read_text())["images"]
    mapping = mesh_to_ibug68()
    widths = {}
    for clip in {f["clip"] for f in index["frames"]}:
        capture = cv2.VideoCapture(str(require_data("videos_train") / f"{clip}.mp4"))
        widths[clip] = capture.get(cv2.CAP_PROP_FRAME_WIDTH)
        capture.release()
    samples, dropped = [], {"no_label": 0, "disagree": 0, "held_out": 0}
    lid_offsets: dict[str, list[np.ndarray]] = {}
    for f in index["frames"]:
        if f["clip"] in args.hold_out:
            dropped["held_out"] += 1
            continue
        a, b = dlib.get(f["file"]), mesh.get(f["file"])
        if not a or not b or not a.get("points68") or not b.get("points478"):
            dropped["no_label"] += 1
            continue
        points = combined_points(a["points68"], b["points478"], mapping, args.max_disagreement)
        if points is None:
            dropped["disagree"] += 1
            continue
        scale = index["crop"] / f["crop_centre_side"][2]
        samples.append(Sample(f["file"], f["group"], points, scale * focal_from_mm(50.0, widths[f["clip"]])))
        lid_offsets.setdefault(f["clip"], []).append(points[list(EYELIDS)] - np.asarray(a["points68"])[list(EYELIDS)])
    for s in samples:  # MediaPipe's lids moved onto dlib's at rest, per clip
        s.landmarks[list(EYELIDS)] -= np.median(lid_offsets[s.file.rsplit("_", 1)[0]], axis=0)
    t0 = time.time()
    clips = np.array([s.file.rsplit("_", 1)[0] for s in samples])
    identities: dict[str, tuple[np.ndarray | None, float]] = {}
    for k, clip in enumerate(np.unique(clips), 1):
        rows = [s for s, c in zip(samples, clips) if c == clip]
        if args.per_crop:
            identities[clip] = (None, 1.0)
            continue
        identity, focal = clip_identity([s.landmarks for s in rows], [s.focal_prior_px for s in rows])
        identities[clip] = (identity, focal / float(np.median([s.focal_prior_px for s in rows])))
        print(f"\ridentity of {k}/{len(np.unique(clips))} clips ({time.time() - t0:.0f} s)", end="", file=sys.stderr, flush=True)
    print(file=sys.stderr)
    fits, nmes = [], []
    with ProcessPoolExecutor(max_workers=args.workers) as pool:
        # the clip's focal length, scaled to each crop (crops of one clip differ a little in scale)
        items = [(s.landmarks, s.focal_prior_px * identities[c][1], identities[c][0]) for s, c in zip(samples, clips)]
        for k, (fit, nme) in enumerate(pool.map(_fit_one, items, chunksize=16), 1):
            fits.append(fit)
            nmes.append(nme)
            if k % 100 == 0 or k == len(samples):
                print(f"\rfitted {k}/{len(samples)} ({time.time() - t0:.0f} s)", end="", file=sys.stderr, flush=True)
    print(file=sys.stderr)
    fitted = np.stack([f.expression for f in fits]).astype(np.float32)
    if not args.no_rest:
        for fit, x in zip(fits, above_rest(fitted, clips)):
            fit.expression = x
    save_targets(samples, fits, args.out, (index["crop"], index["crop"]), nme=np.array(nmes, np.float32), clip=clips,
                 expression_fitted=fitted)
    print(f"{len(samples)} targets, dropped {dropped}, fit NME mean {np.mean(nmes):.4f} -> {args.out}")


if __name__ == "__main__":
    main()
