"""Benchmark of one 68-point fit (target: under 50 ms median on this 2-core machine).

Run: .venv/bin/python -m bench.bench_fitting
Times fit_landmarks on synthetic faces (and landmarks68 faces when ../shared/data is there),
against a rigid-only baseline in the same run (OpenCV iterative PnP of the mean face), and
writes bench/results/fitting.json. NumPy's BLAS runs on one thread: the matrices are small and
the tracker's other threads need the second core.
"""
from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse  # noqa: E402

import cv2  # noqa: E402
import numpy as np  # noqa: E402

from core.face.camera import camera_matrix, focal_from_mm  # noqa: E402
from core.face.face_model import load_face_model  # noqa: E402
from core.face.fitting import fit_landmarks  # noqa: E402
from evaluation.synthetic import random_face  # noqa: E402

from .common import machine, summary, time_calls, write_json  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--faces", type=int, default=60)
    args = parser.parse_args()
    cv2.setNumThreads(1)
    model = load_face_model()
    rng = np.random.default_rng(0)
    faces = [random_face(model, rng) for _ in range(args.faces)]
    fit_landmarks(model, faces[0].landmarks, faces[0].image_size)  # warm caches

    mean_landmarks = model.neutral[model.landmark_vertex_ids].astype(np.float64)
    k = camera_matrix(focal_from_mm(50.0, 640), (640, 480))

    def rigid(points):
        cv2.solvePnP(mean_landmarks, points, k, None, flags=cv2.SOLVEPNP_ITERATIVE)

    results = {"machine": machine()}
    baseline = summary(time_calls(rigid, [(f.landmarks,) for f in faces], repeat=3))
    full = summary(time_calls(lambda p, s: fit_landmarks(model, p, s), [(f.landmarks, f.image_size) for f in faces]))
    results["synthetic_640x480"] = {"fit": full, "baseline_rigid_pnp": baseline,
                                    "ratio_fit_over_baseline": full["median_ms"] / baseline["median_ms"]}
    try:
        from training.regressor.fit_landmarks68 import load_samples

        samples = load_samples()[:: max(1, 1207 // args.faces)]
        real = summary(time_calls(lambda s: fit_landmarks(model, s.landmarks, (256, 256), focal_px=s.focal_prior_px),
                                  [(s,) for s in samples]))
        results["landmarks68_256x256"] = {"fit": real}
    except FileNotFoundError as exc:
        results["landmarks68_256x256"] = {"skipped": str(exc)}
    path = write_json("fitting.json", results)
    for key in ("synthetic_640x480", "landmarks68_256x256"):
        r = results[key]
        if "fit" in r:
            line = f"{key}: fit median {r['fit']['median_ms']:.1f} ms, p95 {r['fit']['p95_ms']:.1f} ms"
            if "baseline_rigid_pnp" in r:
                line += (f"; rigid PnP baseline {r['baseline_rigid_pnp']['median_ms']:.2f} ms "
                         f"(x{r['ratio_fit_over_baseline']:.0f})")
            print(line)
        else:
            print(f"{key}: {r['skipped']}")
    print(f"machine: {results['machine']['cpu']} ({results['machine']['cores']} cores); saved {path}")


if __name__ == "__main__":
    main()
