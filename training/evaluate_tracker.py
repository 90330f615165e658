"""track_image accuracy on our held-out landmarks68 faces (every 10th by sorted file name).

Run: .venv/bin/python -m training.evaluate_tracker [--no-segmentation] [--passes N] [--starts N]
     [--resegment] [--regressor FILE]
Prints and writes reports/tracker_landmarks68.json: detection rate, and the normalised mean
error (mean point distance / outer-eye-corner distance) of the detected faces.
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import cv2
import numpy as np

from core.files import write_text
from core.tracker import FaceTracker, TrackerOptions

from .fit_landmarks68 import held_out, load_samples, point_error
from .paths import BUILD_DIR, REPO_ROOT, require_data


def held_out_samples(samples):
    """Our held-out tenth of landmarks68, in sorted file-name order."""
    mask = held_out([s.file for s in samples])
    return sorted((s for s, m in zip(samples, mask) if m), key=lambda s: s.file)


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
    parser.add_argument("--regressor", type=Path, default=None, help="a regressor file other than models/regressor.npz")
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "reports" / "tracker_landmarks68.json")
    args = parser.parse_args()
    root = require_data("landmarks68")
    samples = held_out_samples(load_samples())
    opts = TrackerOptions(use_segmentation=not (args.no_segmentation or args.oracle_masks), regressor_path=args.regressor)
    for name, value in (("image_passes", args.passes), ("image_starts", args.starts), ("image_resegment", args.resegment)):
        if value is not None:
            setattr(opts, name, value)
    errors, times, missed = [], [], []
    with FaceTracker(opts) as tracker:
        for s in samples:
            image = cv2.imread(str(root / s.file))
            t0 = time.perf_counter()
            mask = None
            if args.oracle_masks:
                mask = cv2.imread(str(BUILD_DIR / "landmarks68_masks" / (Path(s.file).stem + ".png")), cv2.IMREAD_GRAYSCALE)
            result = tracker.track_image(image, mask=mask)
            times.append((time.perf_counter() - t0) * 1000)
            if result.landmarks is None:
                missed.append(s.file)
                continue
            errors.append(point_error(result.landmarks, s.landmarks))
    report = {"faces": len(samples), "detected": len(errors), "missed": missed,
              "nme_mean": float(np.mean(errors)), "nme_median": float(np.median(errors)),
              "nme_p90": float(np.percentile(errors, 90)), "ms_median": float(np.median(times)),
              "masks": "oracle" if args.oracle_masks else ("none" if args.no_segmentation else "segmenter"),
              "passes": opts.image_passes, "starts": opts.image_starts, "resegment": opts.image_resegment,
              "regressor": str(args.regressor or "models/regressor.npz")}
    write_text(args.out, json.dumps(report, indent=2))
    print(json.dumps({k: v for k, v in report.items() if k != "missed"}, indent=2))


if __name__ == "__main__":
    main()
