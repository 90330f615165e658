"""Every face of a video: detecting on every frame against detecting every N frames and following
the faces between (core/masks/follow.py), on clips the project makes from group photos.

    .venv/bin/python -m evaluation.following            # 4 clips of 40 frames, about 10 minutes

A clip is a group photo of 3-6 people (lfw_parts validation, celebamask_mini val; seed fixed)
filmed by a camera that pans and zooms in (evaluation.group_photos.camera_clip), so every face moves
4-10 px a frame and grows, and some leave or enter the picture. Per setting: frames per second
(detection and segmentation, one thread), recall, mean IoU per face (found faces; all faces with
a missed one at 0) and false faces per frame, counted as in evaluation/group_photo_recall.py.
Writes reports/following.json.
"""
from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import cv2
import numpy as np

from core.masks.batch import DEFAULT_MIN_SCORE
from core.detect.cnn import CnnFaceDetector
from core.io.files import write_text
from core.masks.follow import FaceFollower, FollowOptions
from core.segment.segmentation import FaceSegmenter
from evaluation.group_photo_recall import counted, iou, match
from evaluation.group_photos import GroupPhotoMaker, camera_clip

REPO = Path(__file__).resolve().parents[1]
DETECT_EVERY = (1, 5, 10, 30)


def score_photo(photo, faces, min_score: float) -> dict:
    """Counts for one frame: faces, found after the score filter, false faces, IoUs."""
    kept = [f for f in faces if f.score >= min_score]
    matched = match([f.box for f in kept], photo)
    truth = [gi for gi, f in enumerate(photo.faces) if counted(f)]
    ious = [iou(kept[matched[gi]].mask > 0, photo.faces[gi].visible > 0) if gi in matched else None for gi in truth]
    return {"faces": len(truth), "found": sum(gi in matched for gi in truth), "false": len(kept) - len(matched),
            "ious": ious}


def summarise(rows: list[dict]) -> dict:
    faces = sum(r["faces"] for r in rows)
    ious = [v for r in rows for v in r["ious"]]
    found = [v for v in ious if v is not None]
    return {"faces": faces, "recall": sum(r["found"] for r in rows) / faces,
            "mean_iou_found": float(np.mean(found)), "mean_iou_all": float(np.mean([v or 0.0 for v in ious])),
            "false_faces_per_frame": sum(r["false"] for r in rows) / len(rows)}


def make_clips(count: int, frames: int, seed: int):
    maker = GroupPhotoMaker("validation")
    rng = np.random.default_rng(seed)
    return [camera_clip(maker.make(int(rng.integers(3, 7)), seed * 1000 + i), frames, seed * 1000 + i)
            for i in range(count)]


def run(clips, segmenter, detector, every: int, min_score: float) -> dict:
    rows, seconds, detections = [], 0.0, 0
    for clip in clips:
        follower = FaceFollower(segmenter, detector, FollowOptions(detect_every=every, min_score=min_score))
        for frame in clip:
            t0 = time.perf_counter()
            faces = follower.step(frame.image)
            seconds += time.perf_counter() - t0
            rows.append(score_photo(frame, faces, min_score))
        detections += follower.detections
    frames = sum(len(c) for c in clips)
    out = summarise(rows)
    return {"detect_every": every, "frames": frames, "frames_detected": detections,
            "frames_per_second": frames / seconds, **out}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clips", type=int, default=4)
    ap.add_argument("--frames", type=int, default=40)
    ap.add_argument("--seed", type=int, default=23)
    ap.add_argument("--every", type=int, nargs="*", default=list(DETECT_EVERY))
    args = ap.parse_args(argv)
    cv2.setNumThreads(1)
    clips = make_clips(args.clips, args.frames, args.seed)
    out = {"clips": args.clips, "frames_per_clip": args.frames, "seed": args.seed, "min_score": DEFAULT_MIN_SCORE,
           "load_average_before": os.getloadavg(), "settings": []}
    with FaceSegmenter() as segmenter, CnnFaceDetector() as detector:
        for every in args.every:
            row = run(clips, segmenter, detector, every, DEFAULT_MIN_SCORE)
            out["settings"].append(row)
            print(f"detect every {every:2d}: {row['frames_per_second']:.2f} frames/s, {row['frames_detected']} of "
                  f"{row['frames']} frames detected, recall {row['recall']:.3f}, IoU found {row['mean_iou_found']:.3f} "
                  f"all {row['mean_iou_all']:.3f}, false {row['false_faces_per_frame']:.2f}/frame", flush=True)
    out["load_average_after"] = os.getloadavg()
    path = REPO / "reports" / "following.json"
    write_text(path, json.dumps(out, indent=2))
    print(f"saved {path}")


if __name__ == "__main__":
    main()
