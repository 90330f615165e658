"""Where the segmenter's probability map spends its time (target: 5 ms median).

    .venv/bin/python -m bench.profile_segmentation

Three measurements, each against a baseline timed in the same interleaved rounds (ratios are
what survives a shared machine; absolute times depend on the load, printed with them):
  * the network per ONNX Runtime operator type (ORT's own profiler, graph optimisation "all");
  * the network under each graph optimisation level (and "all" without the NCHWc layout
    transformer), median over rounds of the fastest of 15 runs, ratio to "all";
  * the 128x128 crop resize of the 640x480 benchmark frames: INTER_AREA as core.segment.segmentation
    does, INTER_LINEAR (aliases), and INTER_LINEAR to 256 then INTER_AREA 2x (an integer ratio,
    OpenCV's fast path), with the mean grey-level difference to INTER_AREA.
Saves bench/results/segmentation_profile.json.
"""
from __future__ import annotations

import argparse
import collections
import json
import os
import tempfile
import time

import cv2
import numpy as np

from bench.bench_segmentation import test_frames
from bench.common import machine, write_json
from core.detect.detection import crop_box_from_face_box
from core.segment.segmentation import CROP_SIZE, _integer_crop, default_segmenter_path


def session(path, level: str, profile_dir: str | None = None):
    import onnxruntime as ort
    levels = {"disable": ort.GraphOptimizationLevel.ORT_DISABLE_ALL, "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
              "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED, "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
              "all-nchwc": ort.GraphOptimizationLevel.ORT_ENABLE_ALL}
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.graph_optimization_level = levels[level]
    so.log_severity_level = 3
    if profile_dir:
        so.enable_profiling = True
        so.profile_file_prefix = os.path.join(profile_dir, "ort")
    extra = {"disabled_optimizers": ["NchwcTransformer"]} if level == "all-nchwc" else {}
    return ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"], **extra)


def operator_shares(path, x, runs: int) -> dict[str, float]:
    """Share of kernel time per operator type, from ONNX Runtime's profiler."""
    with tempfile.TemporaryDirectory() as tmp:
        s = session(path, "all", tmp)
        for _ in range(runs):
            s.run(["fused"], {"crop_bgr": x})
        with open(s.end_profiling()) as f:
            events = json.load(f)
    total = collections.Counter()
    for e in events:
        if e.get("cat") == "Node" and e.get("name", "").endswith("_kernel_time"):
            total[e["args"].get("op_name", "?")] += e["dur"]
    whole = sum(total.values()) or 1
    return {op: round(d / whole, 4) for op, d in total.most_common()}


def interleaved(candidates: dict, rounds: int, inner: int = 15) -> dict:
    """{name: (median ms of the fastest of `inner` calls per round, median ratio to the first)}."""
    times = {k: [] for k in candidates}
    for _ in range(rounds):
        for k, fn in candidates.items():
            best = float("inf")
            for _ in range(inner):
                t0 = time.perf_counter()
                fn()
                best = min(best, time.perf_counter() - t0)
            times[k].append(best * 1000.0)
    base = np.array(times[next(iter(candidates))])
    return {k: {"ms": float(np.median(v)), "ratio": float(np.median(np.array(v) / base))} for k, v in times.items()}


def resize_two_step(region: np.ndarray) -> np.ndarray:
    if region.shape[0] > 2 * CROP_SIZE:
        region = cv2.resize(region, (2 * CROP_SIZE, 2 * CROP_SIZE), interpolation=cv2.INTER_LINEAR)
    return cv2.resize(region, (CROP_SIZE, CROP_SIZE), interpolation=cv2.INTER_AREA)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=30)
    args = ap.parse_args(argv)
    path = default_segmenter_path()
    out = {"machine": machine(), "load_average_before": os.getloadavg(), "model": str(path.name)}
    x = np.random.default_rng(0).uniform(0, 255, (1, 3, CROP_SIZE, CROP_SIZE)).astype(np.float32)

    out["operator_shares"] = operator_shares(path, x, 200)
    sessions = {k: session(path, k) for k in ("all", "extended", "basic", "all-nchwc")}
    out["optimisation_levels"] = interleaved({k: (lambda s=s: s.run(["fused"], {"crop_bgr": x}))
                                              for k, s in sessions.items()}, args.rounds)

    regions = []
    for frame, box in test_frames():
        x0, y0, side = _integer_crop(crop_box_from_face_box(box))
        regions.append(np.ascontiguousarray(frame[max(y0, 0):y0 + side, max(x0, 0):x0 + side]))
    resizers = {"area": lambda r: cv2.resize(r, (CROP_SIZE, CROP_SIZE), interpolation=cv2.INTER_AREA),
                "linear": lambda r: cv2.resize(r, (CROP_SIZE, CROP_SIZE), interpolation=cv2.INTER_LINEAR),
                "linear256+area2x": resize_two_step}
    resize = interleaved({k: (lambda f=f: [f(r) for r in regions]) for k, f in resizers.items()}, args.rounds, 5)
    for k, f in resizers.items():
        resize[k]["ms"] /= len(regions)
        resize[k]["mean_abs_diff_to_area"] = float(np.mean(
            [np.abs(f(r).astype(np.float32) - resizers["area"](r).astype(np.float32)).mean() for r in regions]))
    out["crop_resize"] = resize
    out["load_average_after"] = os.getloadavg()

    print("kernel time by operator: " + ", ".join(f"{k} {100 * v:.0f}%" for k, v in
                                                    list(out["operator_shares"].items())[:8]))
    for k, v in out["optimisation_levels"].items():
        print(f"graph optimisation {k:10s} {v['ms']:.2f} ms  ratio to all {v['ratio']:.3f}")
    for k, v in out["crop_resize"].items():
        print(f"crop resize {k:17s} {v['ms']:.3f} ms  ratio {v['ratio']:.3f}  |diff| {v['mean_abs_diff_to_area']:.2f}")
    print(f"saved {write_json('segmentation_profile.json', out)}")


if __name__ == "__main__":
    main()
