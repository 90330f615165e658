"""Still-photo (IMAGE mode) accuracy on our held-out landmarks68 faces (every 10th by sorted file name).

Run: .venv/bin/python -m evaluation.tracker_stills [--no-segmentation] [--passes N] [--starts N]
     [--resegment] [--no-mirror] [--no-roll-restart] [--no-check-detection]
     [--segment-undetected] [--regressor FILE] [--segmenter FILE]
With --training-photos N, N photos outside that tenth instead (build/tracker_training_photos.json),
to check choices about where a photo's fit starts without choosing on the held-out faces.
Prints and writes reports/tracker_landmarks68.json: detection rate, and the normalised mean
error (mean point distance / outer-eye-corner distance) of the detected faces, overall, on the
even and odd faces (in file-name order) apart, so that a choice made on one half can be checked
on the other, and per face.
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import cv2
import numpy as np

from core.io.files import write_text
from core.segment.segmentation import SegmenterOptions
from core.track.tracker import FaceTracker, RunningMode, TrackerOptions

from training.regressor.fit_landmarks68 import held_out, load_samples, point_error
from evaluation.paths import BUILD_DIR, REPO_ROOT, require_data


def held_out_samples(samples, held: bool = True):
    """Our held-out tenth of landmarks68 (or with held=False the rest), in sorted file-name order."""
    mask = held_out([s.file for s in samples])
    return sorted((s for s, m in zip(samples, mask) if m == held), key=lambda s: s.file)


FAILED_NME = 0.20  # a start on the wrong thing: the fit lands elsewhere (inter-ocular units)


def training_photo_samples(samples, count: int):
    """`count` photos spread over the landmarks68 photos outside the held-out tenth (the
    regressor learnt on them: their error flatters it, but a wrong start fails there too)."""
    others = held_out_samples(samples, held=False)
    return [others[i] for i in np.linspace(0, len(others) - 1, min(count, len(others))).astype(int)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--no-segmentation", action="store_true", help="regress on whole images")
    parser.add_argument("--oracle-masks", action="store_true",
                        help="use the face-region masks rendered from the fits (build/landmarks68_masks) "
                             "instead of the segmenter: what the regressor does with perfect masks")
    parser.add_argument("--passes", type=int, default=None, help="regression passes (default: the tracker's)")
    parser.add_argument("--starts", type=int, default=None, help="start boxes per photo (default: the tracker's)")
    parser.add_argument("--resegment", action=argparse.BooleanOptionalAction, default=None,
                        help="segment again around the first result and regress again (default: the tracker's)")
    parser.add_argument("--mirror", action=argparse.BooleanOptionalAction, default=None,
                        help="regress the mirrored photo too and keep the per-point median (default: the tracker's)")
    parser.add_argument("--roll-restart", action=argparse.BooleanOptionalAction, default=None,
                        help="with --mirror: a second round from the mean face tilted as the first median")
    parser.add_argument("--check-detection", action=argparse.BooleanOptionalAction, default=None,
                        help="move a detection whose face mask is empty or cut by the crop (default: the tracker's)")
    parser.add_argument("--segment-undetected", action=argparse.BooleanOptionalAction, default=None,
                        help="no detection: look for the face with the segmenter on the whole photo")
    parser.add_argument("--regressor", type=Path, default=None, help="a regressor file other than models/regressor.npz")
    parser.add_argument("--segmenter", type=Path, default=None, help="a segmenter file other than models/segmenter.onnx")
    parser.add_argument("--training-photos", type=int, default=None, metavar="N",
                        help="N photos outside the held-out tenth instead (for choices about starts: count the failures)")
    parser.add_argument("--out", type=Path, default=None,
                        help="default reports/tracker_landmarks68.json (held-out) or build/tracker_training_photos.json")
    args = parser.parse_args()
    root = require_data("landmarks68")
    if args.training_photos:
        samples = training_photo_samples(load_samples(), args.training_photos)
        out = args.out or BUILD_DIR / "tracker_training_photos.json"
    else:
        samples = held_out_samples(load_samples())
        out = args.out or REPO_ROOT / "reports" / "tracker_landmarks68.json"
    segmenter = None if (args.no_segmentation or args.oracle_masks) else SegmenterOptions(model_path=args.segmenter)
    opts = TrackerOptions(running_mode=RunningMode.IMAGE, segmenter=segmenter, regressor_path=args.regressor)
    for name, value in (("passes", args.passes), ("starts", args.starts), ("resegment", args.resegment),
                        ("mirror", args.mirror), ("roll_restart", args.roll_restart),
                        ("check_detection", args.check_detection),
                        ("segment_undetected", args.segment_undetected)):
        if value is not None:
            setattr(opts.still, name, value)
    errors, times, missed, per_face = [], [], [], {}
    with FaceTracker(opts) as tracker:
        for k, s in enumerate(samples):
            image = cv2.imread(str(root / s.file))
            t0 = time.perf_counter()
            mask = None
            if args.oracle_masks:
                mask = cv2.imread(str(BUILD_DIR / "landmarks68_masks" / (Path(s.file).stem + ".png")), cv2.IMREAD_GRAYSCALE)
            result = tracker.track(image, mask=mask)
            times.append((time.perf_counter() - t0) * 1000)
            if result.landmarks is None:
                missed.append(s.file)
                continue
            errors.append(point_error(result.landmarks, s.landmarks))
            per_face[s.file] = (k, errors[-1])
    report = {"faces": len(samples), "detected": len(errors), "missed": missed,
              "nme_mean": float(np.mean(errors)), "nme_median": float(np.median(errors)),
              "nme_p90": float(np.percentile(errors, 90)), "ms_median": float(np.median(times)),
              "photos": "training" if args.training_photos else "held-out",
              f"failed_over_{FAILED_NME:.0%}": int(np.sum(np.array(errors) > FAILED_NME)),
              "nme_mean_even": float(np.mean([e for k, e in per_face.values() if k % 2 == 0])),
              "nme_mean_odd": float(np.mean([e for k, e in per_face.values() if k % 2 == 1])),
              "masks": "oracle" if args.oracle_masks else ("none" if args.no_segmentation else "segmenter"),
              "passes": opts.still.passes, "starts": opts.still.starts, "resegment": opts.still.resegment,
              "mirror": opts.still.mirror, "roll_restart": opts.still.roll_restart,
              "check_detection": opts.still.check_detection,
              "segment_undetected": opts.still.segment_undetected,
              "regressor": str(args.regressor or "models/regressor.npz"),
              "segmenter": str(args.segmenter or "models/segmenter.onnx")}
    report["per_face"] = {f: e for f, (_, e) in sorted(per_face.items(), key=lambda kv: -kv[1][1])}
    write_text(out, json.dumps(report, indent=2))
    print(json.dumps({k: v for k, v in report.items() if k not in ("missed", "per_face")}, indent=2))


if __name__ == "__main__":
    main()
