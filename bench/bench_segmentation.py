"""Segmenter speed on a 640x480 frame and the paper's Table 1 (left) on our data.

    .venv/bin/python -m bench.bench_segmentation            # full: timings + Table 1 on 500 images
    .venv/bin/python -m bench.bench_segmentation --limit 50  # quicker

Timing: medians and p95 of the probability map (crop + network), the graph cut, and the whole
`segment()` of 640x480 frames (an lfw_parts validation face scaled into the frame), ONNX Runtime
on 1 intra-op thread. Table 1: face IoU on lfw_parts validation clean, with a synthetic hand (a
recoloured cut-out), with a synthetic rectangle and with a hand made of the face's own skin (seeded), for the FCN stream, the Deconv stream, both streams, and both
+ graph cut; ms per 640x480 frame for each (one-stream variants timed with one-stream graphs from
build/, written by training/train_segmentation.py, when present). Also celebamask_mini val with
and without ears, and the Viola-Jones box instead of the label box.
Saves bench/results/segmentation.json (atomic write).
"""
from __future__ import annotations

import argparse
import os
from pathlib import Path

import cv2
import numpy as np

from bench.common import machine, summary, time_calls, write_json
from core.segmentation import FaceSegmenter, SegmenterOptions, extract_crop
from core.detection import crop_box_from_face_box
from training.evaluate_segmentation import VARIANTS, evaluate, label_box, load_samples
from training.segmentation_data import data_dir

REPO = Path(__file__).resolve().parents[1]
TABLE_OCCLUSIONS = ("none", "hand", "rectangle", "skinhand")
FRAME_W, FRAME_H = 640, 480


def test_frames(count: int = 8):
    """640x480 frames with an lfw_parts validation face scaled to 1.9x (face about 200 px tall)."""
    samples = load_samples(data_dir() / "lfw_parts" / "validation", "lfw", None)[::60][:count]
    frames = []
    for _, image, face, _ in samples:
        scale = 1.9
        big = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_LINEAR)
        frame = np.zeros((FRAME_H, FRAME_W, 3), np.uint8)
        frame[:] = (90, 110, 120)
        ox, oy = (FRAME_W - big.shape[1]) // 2, (FRAME_H - big.shape[0]) // 2
        src = big[max(0, -oy):max(0, -oy) + FRAME_H, :]
        frame[max(0, oy):max(0, oy) + src.shape[0], ox:ox + src.shape[1]] = src
        x, y, w, h = label_box(face)
        frames.append((frame, (x * scale + ox, y * scale + oy, w * scale, h * scale)))
    return frames


def time_segmenter(segmenter: FaceSegmenter, frames, repeat: int):
    segmenter.segment(*frames[0])  # warm-up
    whole = time_calls(segmenter.segment, frames, repeat)
    crops = [(extract_crop(f, crop_box_from_face_box(b)),) for f, b in frames]
    probs = [segmenter._infer(c[0]) for c in crops]
    prob_ms = time_calls(lambda f, b: segmenter.crop_probability(f, b), frames, repeat)
    gc_ms = time_calls(lambda p, c: segmenter.refine(p, c), [(p, c[0]) for p, c in zip(probs, crops)], repeat)
    return {"probability_map": summary(prob_ms), "graph_cut": summary(gc_ms), "segment": summary(whole)}


def variant_segmenter(variant: str):
    stream = variant.split("+")[0]
    graph_cut = variant.endswith("+graphcut")
    path = None
    if variant in ("fcn", "deconv"):
        candidate = REPO / "build" / f"segmenter_{stream}.onnx"
        path = candidate if candidate.exists() else None
    return FaceSegmenter(path, SegmenterOptions(stream=stream, graph_cut=graph_cut)), path


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--limit", type=int, default=None, help="evaluate on the first N validation images")
    ap.add_argument("--repeat", type=int, default=25, help="timing passes over the 8 test frames")
    ap.add_argument("--skip-table", action="store_true")
    args = ap.parse_args(argv)

    frames = test_frames()
    # the load average says how much else was running (the timings share 2 cores)
    out = {"machine": machine(), "frame": [FRAME_W, FRAME_H], "threads": 1, "load_average_before": os.getloadavg()}
    with FaceSegmenter() as segmenter:
        out["timing"] = time_segmenter(segmenter, frames, args.repeat)
    for k, v in out["timing"].items():
        print(f"{k:16s} median {v['median_ms']:.2f} ms   p95 {v['p95_ms']:.2f} ms", flush=True)

    if not args.skip_table:
        table = {}
        for variant in VARIANTS:
            segmenter, path = variant_segmenter(variant)
            with segmenter:
                segmenter.segment(*frames[0])
                ms = summary(time_calls(segmenter.segment, frames, max(4, args.repeat // 3)))
            table[variant] = {"ms_per_frame": ms["median_ms"],
                              "timed_graph": str(path.relative_to(REPO)) if path else "models/segmenter.onnx"}
        samples = load_samples(data_dir() / "lfw_parts" / "validation", "lfw", args.limit)
        results = evaluate(samples, VARIANTS, TABLE_OCCLUSIONS)
        for variant in VARIANTS:
            for occ in TABLE_OCCLUSIONS:
                table[variant][f"iou_{occ}"] = results[f"{variant}|{occ}"]["mean_iou"]
            table[variant]["global"] = results[f"{variant}|none"]["global"]
            table[variant]["ave_face"] = results[f"{variant}|none"]["ave_face"]
        out["table1_lfw_parts_validation"] = table
        out["lfw_parts_validation_all_metrics"] = results
        out["lfw_parts_validation_detector_box"] = evaluate(samples, ("fused+graphcut",), ("none",), box_mode="detect")
        cm = {}
        for fmt in ("celebamask", "celebamask_noears"):
            cm[fmt] = evaluate(load_samples(None, fmt, None), ("fused", "fused+graphcut"), ("none",))
        out["celebamask_val"] = cm
        print("\nTable 1 (left), lfw_parts validation, face IoU; ms per 640x480 frame")
        print(f"{'variant':16s} {'clean':>7s} {'hand':>7s} {'rect':>7s} {'skinhand':>8s} {'ms':>6s}")
        for variant, row in table.items():
            print(f"{variant:16s} {row['iou_none']:7.4f} {row['iou_hand']:7.4f} {row['iou_rectangle']:7.4f} "
                  f"{row['iou_skinhand']:8.4f} {row['ms_per_frame']:6.2f}")
    path = write_json("segmentation.json", out)
    print(f"saved {path}")


if __name__ == "__main__":
    main()
