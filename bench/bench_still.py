"""Benchmark of still photos (IMAGE mode): the default options against the old ones, same run.

Run: .venv/bin/python -m bench.bench_still [--photos N] [--repeat N]
Times FaceTracker.track in IMAGE mode (detection, segmentation, the detection check, all regressions) on
held-out landmarks68 photos, for each option set in turn on every photo (interleaved, so that a
change of load hits all of them alike), and reports the median per photo and its ratio to the
first ("before": one round of 5 starts, medoid, no mirror, no check). Writes
bench/results/still.json.
"""
from __future__ import annotations

import argparse
import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("NUMBA_NUM_THREADS", "1")

import cv2  # noqa: E402
import numpy as np  # noqa: E402

from core.face.face_model import load_face_model  # noqa: E402
from core.track.tracker import FaceTracker, RunningMode, StillPhotoOptions, TrackerOptions  # noqa: E402

from .common import machine, summary, write_json  # noqa: E402

VARIANTS = {
    "before (5 starts, medoid)": dict(mirror=False, roll_restart=False, check_detection=False),
    "+ detection check": dict(mirror=False, roll_restart=False),
    "+ mirror, median": dict(roll_restart=False),
    "+ roll restart (default)": {},
    "default with 3 starts": dict(starts=3),
}


def main() -> None:
    import time

    from evaluation.tracker_stills import held_out_samples
    from training.regressor.fit_landmarks68 import load_samples
    from evaluation.paths import require_data

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--photos", type=int, default=40)
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args()
    cv2.setNumThreads(1)
    root = require_data("landmarks68")
    photos = [cv2.imread(str(root / s.file)) for s in held_out_samples(load_samples())[:args.photos]]
    model = load_face_model()
    trackers = {name: FaceTracker(TrackerOptions(running_mode=RunningMode.IMAGE, still=StillPhotoOptions(**opts)),
                                  face_model=model) for name, opts in VARIANTS.items()}
    times: dict[str, list[float]] = {name: [] for name in VARIANTS}
    try:
        for t in trackers.values():
            t.track(photos[0])  # compile the kernels, open the segmenter
        for _ in range(args.repeat):
            for photo in photos:
                for name, t in trackers.items():
                    t0 = time.perf_counter()
                    t.track(photo)
                    times[name].append((time.perf_counter() - t0) * 1000.0)
    finally:
        for t in trackers.values():
            t.close()
    first = next(iter(VARIANTS))
    base = float(np.median(times[first]))
    result = {"machine": machine(), "photos": len(photos), "repeat": args.repeat,
              "variants": {name: dict(summary(np.array(ms)), options=VARIANTS[name],
                                      ratio_to_before=float(np.median(ms)) / base)
                           for name, ms in times.items()}}
    path = write_json("still.json", result)
    for name, r in result["variants"].items():
        print(f"{name:28s} median {r['median_ms']:6.1f} ms  p95 {r['p95_ms']:6.1f} ms  x{r['ratio_to_before']:.2f}")
    print(f"saved {path}")


if __name__ == "__main__":
    main()
