"""Batch masks throughput at 640x480 with 1, 3 and 10 faces per image.

    .venv/bin/python -m bench.bench_batch                 # 12 images per face count
    .venv/bin/python -m bench.bench_batch --images 4 --skip-command

Per image, in one process on one thread (ONNX Runtime and OpenCV): detection (MultiFaceDetector,
default and fast options), segmentation of every face (segment_all with the detected boxes), and
the merged frame mask; medians, and images per second = 1000 / median ms. The group photos are made from lfw_parts
validation and celebamask_mini val faces (training/group_photos.py, fixed seeds). Also: the
network on N crops in one ONNX Runtime call against N single calls (does batching help?), and
the whole `masks` command with 2 worker processes over 3-face images written to a temporary
folder (reading, PNG writing and JSON included). Saves bench/results/batch.json.
"""
from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

from bench.common import machine, summary, time_calls, write_json
from core.batch import DEFAULT_MIN_SCORE, BatchOptions, run_batch
from core.detection import MultiFaceDetector, MultiFaceOptions
from core.segmentation import FaceSegmenter, merge_face_masks
from training.group_photos import GroupPhotoMaker

FACE_COUNTS = (1, 3, 10)


def masks_of(segmenter: FaceSegmenter, detector: MultiFaceDetector, image: np.ndarray) -> np.ndarray:
    faces = segmenter.segment_all(image, [d.face_box for d in detector.detect(image)], min_score=DEFAULT_MIN_SCORE)
    return merge_face_masks(faces, image.shape)


def time_mode(segmenter, detector, photos, repeat: int) -> dict:
    images = [(p.image,) for p in photos]
    masks_of(segmenter, detector, images[0][0])   # warm-up
    detect = summary(time_calls(detector.detect, images, repeat))
    boxes = [(p.image, [d.face_box for d in detector.detect(p.image)]) for p in photos]
    segment = summary(time_calls(segmenter.segment_all, boxes, repeat))
    whole = summary(time_calls(lambda im: masks_of(segmenter, detector, im), images, repeat))
    return {"faces_placed_median": float(np.median([len(p.faces) for p in photos])),
            "detections_median": float(np.median([len(b) for _, b in boxes])),
            "detection": detect, "segmentation": segment, "whole": whole,
            "images_per_second": 1000.0 / whole["median_ms"]}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=10, help="images per face count")
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--skip-command", action="store_true", help="skip the 2-worker command run")
    args = ap.parse_args(argv)
    cv2.setNumThreads(1)
    maker = GroupPhotoMaker("validation")
    out = {"machine": machine(), "frame": [640, 480], "threads": 1, "load_average_before": os.getloadavg(),
           "per_image": {}}
    with FaceSegmenter() as segmenter:
        for n in FACE_COUNTS:
            photos = [maker.make(n, 1000 * n + i, max_height=None if n < 10 else 90.0) for i in range(args.images)]
            for mode, options in (("default", MultiFaceOptions()), ("fast", MultiFaceOptions.fast())):
                with MultiFaceDetector(options) as detector:
                    row = time_mode(segmenter, detector, photos, args.repeat)
                out["per_image"][f"{n}_{mode}"] = row
                print(f"{n:2d} faces, {mode:7s} detection: {row['images_per_second']:.2f} images/s (median "
                      f"{row['whole']['median_ms']:.0f} ms: detection {row['detection']['median_ms']:.0f}, "
                      f"segmentation {row['segmentation']['median_ms']:.0f}; {row['detections_median']:.0f} "
                      f"detections for {row['faces_placed_median']:.0f} faces)", flush=True)
        crops = np.stack([cv2.resize(p.image, (128, 128)) for p in photos[:10]])
        one_call = summary(time_calls(segmenter.infer_crops, [(crops,)] * 20))
        single = summary(time_calls(lambda c: [segmenter.infer_crops(c[i:i + 1]) for i in range(len(c))],
                                    [(crops,)] * 20))
        out["network_10_crops"] = {"one_call": one_call, "ten_calls": single,
                                   "ratio": single["median_ms"] / one_call["median_ms"]}
        print(f"network, 10 crops: one call {one_call['median_ms']:.1f} ms, ten calls {single['median_ms']:.1f} ms")
    if not args.skip_command:
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp) / "photos"
            folder.mkdir()
            for i in range(3 * args.images):
                cv2.imwrite(str(folder / f"{i:03d}.jpg"), maker.make(3, 5000 + i).image)
            for workers in (1, 2):
                t0 = time.perf_counter()
                report = run_batch([folder], BatchOptions(Path(tmp) / f"out{workers}", workers=workers, quiet=True))
                seconds = time.perf_counter() - t0
                out[f"command_{workers}_workers"] = {"images": report.images_done, "seconds": seconds,
                                                     "images_per_second": report.images_done / seconds}
                print(f"masks command, {workers} worker(s): {report.images_done / seconds:.2f} images/s "
                      f"({report.images_done} images with 3 faces, start-up included)", flush=True)
    out["load_average_after"] = os.getloadavg()
    print(f"saved {write_json('batch.json', out)}")


if __name__ == "__main__":
    main()
