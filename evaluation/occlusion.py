"""The paper's Fig. 8 protocol: tracking error against the size of a synthetic occluder.

Run: .venv/bin/python -m evaluation.occlusion [--clip webcam_talking] [--frames 200]
     [--regressor models/regressor.npz] [--segmenter models/segmenter.onnx] [--no-masks]
The unoccluded track of a clip is the reference. Then every frame gets a grey box centred on the
reference face (placed with a little seeded jitter), 10 % to 60 % of the face box in width and
height, and the clip is tracked again; the error is the mean landmark distance to the reference
(normalised by the reference's outer-eye-corner distance) and the mean absolute difference of
the 46 blendshape weights. With --synchronous-adaptation identity and focal are solved inline,
so a rerun gives the same figures. Writes
reports/occlusion_<clip>_<variant>.json.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from core.io.files import write_text
from core.io.sources import open_source
from core.segment.segmentation import SegmenterOptions
from core.track.tracker import FaceTracker, TrackerOptions

from evaluation.paths import REPO_ROOT, require_data

SIZES = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6)


def occlude(image: np.ndarray, face_box, fraction: float, rng: np.random.Generator) -> np.ndarray:
    """A grey box of fraction x the face box, centred on it with a little jitter."""
    x, y, w, h = face_box
    bw, bh = fraction * w, fraction * h
    cx = x + w / 2 + rng.normal(0, 0.1) * w
    cy = y + h / 2 + rng.normal(0, 0.1) * h
    out = image.copy()
    x0, y0 = int(max(cx - bw / 2, 0)), int(max(cy - bh / 2, 0))
    x1, y1 = int(min(cx + bw / 2, image.shape[1])), int(min(cy + bh / 2, image.shape[0]))
    out[y0:y1, x0:x1] = 128
    return out


def track(frames, options: TrackerOptions):
    with FaceTracker(options) as tracker:
        return [tracker.track(f) for f in frames]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--clip", default="webcam_talking")
    parser.add_argument("--frames", type=int, default=200)
    parser.add_argument("--regressor", type=Path, default=None)
    parser.add_argument("--segmenter", type=Path, default=None, help="a segmenter file other than models/segmenter.onnx")
    parser.add_argument("--no-masks", action="store_true", help="track without segmentation (a variant trained so)")
    parser.add_argument("--variant", default=None, help="name used in the report file")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--synchronous-adaptation", action="store_true",
                        help="solve identity and focal inline: repeatable figures")
    parser.add_argument("--reference-only", action="store_true", help="only the unoccluded track and its steadiness")
    args = parser.parse_args()
    with open_source(require_data("videos") / f"{args.clip}.mp4") as source:
        frames = [f.image for _, f in zip(range(args.frames), source)]
    options = TrackerOptions(regressor_path=args.regressor,
                             segmenter=None if args.no_masks else SegmenterOptions(model_path=args.segmenter),
                             synchronous_adaptation=args.synchronous_adaptation)
    reference = track(frames, options)
    usable = [i for i, r in enumerate(reference) if r.ok]
    io = [np.linalg.norm(reference[i].landmarks[36] - reference[i].landmarks[45]) for i in usable]
    report = {"clip": args.clip, "frames": len(frames), "reference_tracked": len(usable),
              "regressor": str(args.regressor or "models/regressor.npz"), "masks": not args.no_masks,
              "segmenter": str(args.segmenter or "models/segmenter.onnx"),
              "synchronous_adaptation": args.synchronous_adaptation,
              # steadiness: spread of the outer-eye-corner distance over the unoccluded track
              # (small for a clip where the head stays at one distance)
              "reference_interocular_cv": float(np.std(io) / np.mean(io)) if io else None,
              "by_size": {}}
    print(f"reference: tracked {len(usable)}/{len(frames)}, inter-ocular cv {report['reference_interocular_cv']}")
    if not usable:
        report["note"] = "the unoccluded clip was never tracked: no reference"
    for size in SIZES if usable and not args.reference_only else ():
        rng = np.random.default_rng(args.seed)
        occluded = [occlude(f, reference[i].face_box, size, rng) if reference[i].ok else f for i, f in enumerate(frames)]
        results = track(occluded, options)
        lm_err, bs_err, lost = [], [], 0
        for i in usable:
            ref, res = reference[i], results[i]
            if not res.ok or res.landmarks is None:
                lost += 1
                continue
            io = np.linalg.norm(ref.landmarks[36] - ref.landmarks[45])
            lm_err.append(float(np.linalg.norm(res.landmarks - ref.landmarks, axis=1).mean() / io))
            bs_err.append(float(np.abs(res.blendshapes - ref.blendshapes).mean()))
        report["by_size"][f"{size:.1f}"] = {
            "landmark_error": float(np.mean(lm_err)) if lm_err else None,
            "blendshape_error": float(np.mean(bs_err)) if bs_err else None,
            "lost_frames": lost,
        }
        print(f"box {size:.0%}: landmark error {report['by_size'][f'{size:.1f}']['landmark_error']}, "
              f"blendshape error {report['by_size'][f'{size:.1f}']['blendshape_error']}, lost {lost}")
    variant = args.variant or ("no_masks" if args.no_masks else "masks")
    if args.reference_only:
        return
    write_text(REPO_ROOT / "reports" / f"occlusion_{args.clip}_{variant}.json", json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
