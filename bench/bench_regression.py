"""Benchmark of one DDE regression (target: at most 4 ms per frame on this machine).

Run: .venv/bin/python -m bench.bench_regression
Times FernCascade.run (all stages: landmark projection, feature sampling, ferns, updates) on
held-out landmarks68 faces, against fitting the face model to the same faces' landmarks in the
same run (the per-frame optimisation that the regressor replaces). Writes
bench/results/regression.json.
"""
from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import cv2  # noqa: E402
import numpy as np  # noqa: E402

from core.face.camera import focal_from_mm, principal_point  # noqa: E402
from core.face.face_model import load_face_model  # noqa: E402
from core.face.fitting import fit_landmarks  # noqa: E402
from core.track.regressor import LandmarkModel, mean_face_in_box  # noqa: E402
from core.track.tracker import FaceTracker, TrackerOptions  # noqa: E402

from .common import machine, summary, time_calls, write_json  # noqa: E402


def main() -> None:
    from evaluation.tracker_stills import held_out_samples
    from training.regressor.fit_landmarks68 import load_samples
    from evaluation.paths import require_data

    cv2.setNumThreads(1)
    root = require_data("landmarks68")
    samples = held_out_samples(load_samples())[:60]
    model = load_face_model()
    tracker = FaceTracker(TrackerOptions(segmenter=None), face_model=model)
    lm = LandmarkModel.from_face_model(model)
    focal, center = focal_from_mm(50.0, 256), principal_point((256, 256))
    cases = []
    for s in samples:
        gray = cv2.imread(str(root / s.file), cv2.IMREAD_GRAYSCALE)
        lo, hi = s.landmarks.min(0), s.landmarks.max(0)
        side = (hi - lo).max()
        start = mean_face_in_box(lm, (lo[0], lo[1], side, side), focal, center)
        cases.append((gray, np.ones_like(gray), start))
    run = tracker.cascade.run
    run(cases[0][0], cases[0][1], cases[0][2], lm, focal, center)  # compile the numba kernels
    regression = summary(time_calls(lambda g, m, st: run(g, m, st, lm, focal, center), cases, repeat=3))
    fitting = summary(time_calls(lambda p: fit_landmarks(model, p, (256, 256), focal_px=focal),
                                 [(s.landmarks,) for s in samples[:30]]))
    result = {"machine": machine(), "regression": regression, "baseline_fit_eq4": fitting,
              "stages": len(tracker.cascade.stages),
              "ratio_fit_over_regression": fitting["median_ms"] / regression["median_ms"]}
    path = write_json("regression.json", result)
    print(f"regression: median {regression['median_ms']:.2f} ms, p95 {regression['p95_ms']:.2f} ms "
          f"({result['stages']} stages); fitting the same faces (Eq. 4): median {fitting['median_ms']:.1f} ms "
          f"(x{result['ratio_fit_over_regression']:.0f}); saved {path}")


if __name__ == "__main__":
    main()
