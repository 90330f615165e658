"""Segmenter speed on a 640x480 frame and the paper's Table 1 (left) on our data.

    .venv/bin/python -m bench.bench_segmentation            # full: timings + Table 1 on 500 images
    .venv/bin/python -m bench.bench_segmentation --limit 50  # quicker

Timing: medians and p95 of the probability map (crop + network), the graph cut, and the whole
`segment()` of 640x480 frames (an lfw_parts validation face scaled into the frame), ONNX Runtime
on 1 intra-op thread. Table 1: face IoU on lfw_parts validation clean, with a synthetic hand (a
recoloured cut-out), with a synthetic rectangle and with a hand made of the face's own skin (seeded), for the FCN stream, the Deconv stream, both streams, and both
+ graph cut; ms per 640x480 frame for each (one-stream variants timed with one-stream graphs from
build/, written by training/segmenter/train.py, when present). Also celebamask_mini val with
and without ears, and the Viola-Jones box instead of the label box.
Timed in the same run, interleaved with the shipped configuration (the int8 network, one view):
the map averaged with the mirrored crop's (SegmenterOptions.mirror_average, the row beside Table
1 "+mirror"), the graph cut on 4 neighbours with the binary paste (the edges before
evaluation.mask_edges' "after"), the same network in float (build/segmenter_float.onnx, written by
training.segmenter.quantize), and with --before FILE another segmenter file (e.g. the one
shipped before: `git show c225622:models/segmenter.onnx > build/segmenter_deep_float_shipped.onnx`); ratios
are to the shipped configuration's medians.
Saves bench/results/segmentation.json (atomic write), or --out NAME.json there.
"""
from __future__ import annotations

import argparse
import os
from pathlib import Path

import cv2
import numpy as np

from bench.common import machine, summary, time_calls, write_json
from core.segment.segmentation import FaceSegmenter, SegmenterOptions, extract_crop
from core.detect.detection import crop_box_from_face_box
from evaluation.segmentation import VARIANTS, evaluate, label_box, load_samples
from training.segmenter.data import data_dir

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


def time_segmenter(segmenter: FaceSegmenter, frames, repeat: int, raw: bool = False):
    segmenter.segment(*frames[0])  # warm-up
    whole = time_calls(segmenter.segment, frames, repeat)
    crops = [(extract_crop(f, crop_box_from_face_box(b)),) for f, b in frames]
    probs = [segmenter._infer(c[0]) for c in crops]
    prob_ms = time_calls(lambda f, b: segmenter.crop_probability(f, b), frames, repeat)
    gc_ms = time_calls(lambda p, c: segmenter.refine(p, c), [(p, c[0]) for p, c in zip(probs, crops)], repeat)
    times = {"probability_map": prob_ms, "graph_cut": gc_ms, "segment": whole}
    return {k: (list(v) if raw else summary(v)) for k, v in times.items()}


FLOAT_GRAPH = REPO / "build" / "segmenter_float.onnx"


def configurations(before: Path | None = None) -> dict[str, FaceSegmenter]:
    """The shipped segmenter and the same-run baselines that exist on this checkout."""
    configs = {"shipped (int8)": FaceSegmenter(),
               "int8, mirror-averaged": FaceSegmenter(options=SegmenterOptions(mirror_average=True)),
               "4-neighbour graph cut, binary paste": FaceSegmenter(options=SegmenterOptions(
                   graph_cut_neighbours=4, smooth_edges=False, grow_cut_crops=False))}
    if FLOAT_GRAPH.exists():
        configs["same network in float"] = FaceSegmenter(FLOAT_GRAPH)
    if before is not None:
        configs[f"before: {before.name}"] = FaceSegmenter(before)
    return configs


def time_interleaved(configs: dict[str, FaceSegmenter], frames, repeat: int, rounds: int = 5) -> dict:
    """time_segmenter of every configuration in `rounds` alternating rounds, pooled; plus each
    median's ratio to the first configuration's."""
    pooled = {name: {} for name in configs}
    for _ in range(rounds):
        for name, segmenter in configs.items():
            for part, ms in time_segmenter(segmenter, frames, max(1, repeat // rounds), raw=True).items():
                pooled[name].setdefault(part, []).extend(ms)
    out = {name: {part: summary(np.array(ms)) for part, ms in parts.items()} for name, parts in pooled.items()}
    first = out[next(iter(configs))]
    for timing in out.values():
        for part, stats in timing.items():
            stats["ratio_to_shipped"] = stats["median_ms"] / first[part]["median_ms"]
    return out


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
    ap.add_argument("--out", default="segmentation.json",
                    help="file name under bench/results (another name keeps the Table 1 run's file)")
    ap.add_argument("--before", type=Path, default=None, help="another segmenter file to time and evaluate beside")
    args = ap.parse_args(argv)

    frames = test_frames()
    # how busy the machine was (the timings share 2 cores)
    out = {"machine": machine(), "frame": [FRAME_W, FRAME_H], "threads": 1, "load_average_before": os.getloadavg()}
    configs = configurations(args.before)
    timings = time_interleaved(configs, frames, args.repeat)
    for c in configs.values():
        c.close()
    out["timing"] = timings[next(iter(configs))]
    out["timing_baselines"] = timings
    for name, timing in timings.items():
        print(name)
        for k, v in timing.items():
            print(f"  {k:16s} median {v['median_ms']:.2f} ms   p95 {v['p95_ms']:.2f} ms   "
                  f"ratio {v['ratio_to_shipped']:.3f}", flush=True)

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
        # rows beside Table 1: the shipped variant with a mirrored second view, and in float
        extra = {"fused+graphcut+mirror": ("int8, mirror-averaged", {"mirror_average": True})}
        if FLOAT_GRAPH.exists():
            extra["fused+graphcut (float)"] = ("same network in float", {"model_path": FLOAT_GRAPH})
        if args.before is not None:
            extra["fused+graphcut (before)"] = (f"before: {args.before.name}", {"model_path": args.before})
        for row, (config, kwargs) in extra.items():
            more = evaluate(samples, ("fused+graphcut",), TABLE_OCCLUSIONS, **kwargs)
            table[row] = {f"iou_{occ}": more[f"fused+graphcut|{occ}"]["mean_iou"] for occ in TABLE_OCCLUSIONS}
            table[row].update({"global": more["fused+graphcut|none"]["global"],
                               "ave_face": more["fused+graphcut|none"]["ave_face"],
                               "ms_per_frame": timings[config]["segment"]["median_ms"], "timed_graph": config})
        out["table1_lfw_parts_validation"] = table
        out["lfw_parts_validation_all_metrics"] = results
        out["lfw_parts_validation_detector_box"] = evaluate(samples, ("fused+graphcut",), ("none",), box_mode="detect")
        cm = {}
        for fmt in ("celebamask", "celebamask_noears"):
            cm[fmt] = evaluate(load_samples(None, fmt, None), ("fused", "fused+graphcut"), ("none",))
        out["celebamask_val"] = cm
        print("\nTable 1 (left), lfw_parts validation, face IoU; ms per 640x480 frame")
        print(f"{'variant':24s} {'clean':>7s} {'hand':>7s} {'rect':>7s} {'skinhand':>8s} {'ms':>6s}")
        for variant, row in table.items():
            print(f"{variant:24s} {row['iou_none']:7.4f} {row['iou_hand']:7.4f} {row['iou_rectangle']:7.4f} "
                  f"{row['iou_skinhand']:8.4f} {row['ms_per_frame']:6.2f}")
    path = write_json(args.out, out)
    print(f"saved {path}")


if __name__ == "__main__":
    main()
