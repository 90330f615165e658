"""Batch masks throughput at 640x480 with 1, 3 and 10 faces per image.

    .venv/bin/python -m bench.bench_batch                 # 12 images per face count
    .venv/bin/python -m bench.bench_batch --images 4 --skip-command

Per image, in one process (ONNX Runtime and OpenCV on one thread unless the mode says two):
detection (the previous default, OpenCV's cascades in MultiFaceDetector; the CNN of
core.detect.cnn, the default, on one and on two threads; its fast options; the modes take turns
photo by photo, so a busy machine slows them alike), segmentation of every face (segment_all with
the detected boxes), and
the merged frame mask; medians, and images per second = 1000 / median ms. The group photos are made from lfw_parts
validation and celebamask_mini val faces (evaluation/group_photos.py, fixed seeds). Also: the
network on N crops in one ONNX Runtime call against N single calls (does batching help?), and
the whole `masks` command with 1 worker process (its detector on two threads) and with 2 over 3-face
images written to a temporary folder (reading, PNG writing and JSON included), and a 40-frame
clip (evaluation.group_photos.camera_clip) detected on every frame against every 5th and 10th
frame with the faces followed between (core/masks/follow.py). Saves bench/results/batch.json.
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
from core.masks.batch import DEFAULT_MIN_SCORE, BatchOptions, run_batch
from core.detect.cnn import CnnDetectorOptions, CnnFaceDetector
from core.detect.detection import MultiFaceDetector, MultiFaceOptions
from core.masks.follow import FaceFollower, FollowOptions
from core.segment.segmentation import FaceSegmenter, merge_face_masks
from evaluation.group_photos import GroupPhotoMaker, camera_clip

FACE_COUNTS = (1, 3, 10)
MODES = {"cascades (previous default)": MultiFaceOptions(), "cnn (default)": CnnDetectorOptions(),
         "cnn, 2 threads": CnnDetectorOptions(threads=2), "cnn fast": CnnDetectorOptions.fast()}


def make_detector(options):
    return MultiFaceDetector(options) if isinstance(options, MultiFaceOptions) else CnnFaceDetector(options)


def masks_of(segmenter: FaceSegmenter, detector, image: np.ndarray) -> np.ndarray:
    faces = segmenter.segment_all(image, [d.face_box for d in detector.detect(image)], min_score=DEFAULT_MIN_SCORE)
    return merge_face_masks(faces, image.shape)


def time_modes(segmenter, detectors: dict, photos, repeat: int) -> dict:
    """Per mode: detection, segmentation and whole times; the modes take turns photo by photo."""
    times = {m: {"detection": [], "segmentation": [], "whole": [], "detections": []} for m in detectors}
    for detector in detectors.values():
        masks_of(segmenter, detector, photos[0].image)   # warm-up (and the thread pools)
    for _ in range(repeat):
        for photo in photos:
            for mode, detector in detectors.items():
                t = times[mode]
                t["detection"] += list(time_calls(detector.detect, [(photo.image,)]))
                boxes = [d.face_box for d in detector.detect(photo.image)]
                t["detections"].append(len(boxes))
                t["segmentation"] += list(time_calls(segmenter.segment_all, [(photo.image, boxes)]))
                t["whole"] += list(time_calls(lambda im: masks_of(segmenter, detector, im), [(photo.image,)]))
    out = {}
    for mode, t in times.items():
        whole = summary(np.array(t["whole"]))
        out[mode] = {"faces_placed_median": float(np.median([len(p.faces) for p in photos])),
                     "detections_median": float(np.median(t["detections"])),
                     "detection": summary(np.array(t["detection"])), "segmentation": summary(np.array(t["segmentation"])),
                     "whole": whole, "images_per_second": 1000.0 / whole["median_ms"]}
    base = times[next(iter(times))]["whole"]
    for mode, t in times.items():   # per photo, the first mode's time over this mode's
        out[mode]["speedup_vs_first_mode_median"] = float(np.median(np.array(base) / np.array(t["whole"])))
    return out


def time_clip(segmenter, clip, every: int) -> dict:
    """Frames per second of a clip, detecting every `every` frames and following between."""
    with CnnFaceDetector() as detector:
        follower = FaceFollower(segmenter, detector, FollowOptions(detect_every=every, min_score=DEFAULT_MIN_SCORE))
        t0 = time.perf_counter()
        for frame in clip:
            follower.step(frame.image)
        seconds = time.perf_counter() - t0
    return {"detect_every": every, "frames": len(clip), "frames_detected": follower.detections,
            "seconds": seconds, "frames_per_second": len(clip) / seconds}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=10, help="images per face count")
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--skip-command", action="store_true", help="skip the command runs")
    ap.add_argument("--clip-frames", type=int, default=40)
    args = ap.parse_args(argv)
    cv2.setNumThreads(1)
    maker = GroupPhotoMaker("validation")
    out = {"machine": machine(), "frame": [640, 480], "load_average_before": os.getloadavg(),
           "modes": {m: {k: str(v) for k, v in vars(o).items()} for m, o in MODES.items()}, "per_image": {}}
    with FaceSegmenter() as segmenter:
        for n in FACE_COUNTS:
            photos = [maker.make(n, 1000 * n + i, max_height=None if n < 10 else 90.0) for i in range(args.images)]
            detectors = {m: make_detector(o) for m, o in MODES.items()}
            rows = time_modes(segmenter, detectors, photos, args.repeat)
            for d in detectors.values():
                d.close()
            for mode, row in rows.items():
                out["per_image"][f"{n}_{mode}"] = row
                print(f"{n:2d} faces, {mode:27s}: {row['images_per_second']:.2f} images/s (median "
                      f"{row['whole']['median_ms']:.0f} ms: detection {row['detection']['median_ms']:.0f}, "
                      f"segmentation {row['segmentation']['median_ms']:.0f}; {row['detections_median']:.0f} "
                      f"detections for {row['faces_placed_median']:.0f} faces; x{row['speedup_vs_first_mode_median']:.2f} "
                      f"the cascades)", flush=True)
            out[f"load_average_after_{n}_faces"] = os.getloadavg()
        clip = camera_clip(maker.make(4, 777), args.clip_frames, 777)
        out["clip"] = [time_clip(segmenter, clip, every) for every in (1, 5, 10)]
        for row in out["clip"]:
            print(f"clip of {row['frames']} frames, detection every {row['detect_every']:2d}: "
                  f"{row['frames_per_second']:.2f} frames/s ({row['frames_detected']} frames detected)", flush=True)
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
