"""Runs inside .venv-deface (deface 1.5.0 as `pip install deface==1.5.0` sets it up): deface's own
CenterFace class, its default backend, on every frame of an .npy of BGR frames (deface reads frames
as RGB, so they are turned to RGB first, as its imageio reader gives them). Prints one JSON line:
per frame the boxes (x, y, w, h) and scores at the threshold, the milliseconds, and the backend.
Imports nothing from maskcap (this venv has its own numpy and OpenCV).
"""
import argparse
import json
import time

import numpy as np
from deface.centerface import CenterFace


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", required=True)
    ap.add_argument("--threshold", type=float, default=0.2)   # deface's command-line default
    args = ap.parse_args()
    frames = np.load(args.frames, mmap_mode="r")
    centerface = CenterFace(in_shape=None, backend="auto")
    boxes, scores, ms = [], [], []
    for frame in frames:
        rgb = np.ascontiguousarray(frame[:, :, ::-1])
        t0 = time.perf_counter()
        dets, _ = centerface(rgb, threshold=args.threshold)
        ms.append((time.perf_counter() - t0) * 1000.0)
        boxes.append([[float(d[0]), float(d[1]), float(d[2] - d[0]), float(d[3] - d[1])] for d in dets])
        scores.append([float(d[4]) for d in dets])
    print(json.dumps({"backend": centerface.backend, "boxes": boxes, "scores": scores, "ms": ms}))


if __name__ == "__main__":
    main()
