"""Following faces on real footage: frames per second and agreement with detecting every frame.

    .venv/bin/python -m bench.bench_follow_video                       # multi_person_stage.mp4, 301 frames
    .venv/bin/python -m bench.bench_follow_video --video ../shared/data/videos/webcam_talking.mp4 --frames 300

One process, one thread: FaceFollower over the clip with a detection on every frame (the
reference) and every 5th and 10th frame (faces followed between). There is no ground truth for
this footage, so the followed runs are compared with the reference frame by frame: IoU of the
frame's merged face mask (frames where either run has a face) and how often the face counts
agree (fewer or more faces than the reference). Saves bench/results/follow_video.json.
"""
from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import cv2
import numpy as np

from bench.common import machine, write_json
from core.masks.batch import DEFAULT_MIN_SCORE
from core.detect.cnn import CnnFaceDetector
from core.masks.follow import FaceFollower, FollowOptions
from core.segment.segmentation import FaceSegmenter, merge_face_masks
from core.io.sources import VideoFileSource

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def read_frames(path: Path, limit: int) -> list[np.ndarray]:
    frames = []
    with VideoFileSource(path) as source:
        while len(frames) < limit:
            frame = source.read()
            if frame is None:
                break
            frames.append(frame.image)
    return frames


def run(segmenter, frames, every: int) -> tuple[list, float, int]:
    """Per frame (merged mask, face count), seconds, frames detected."""
    with CnnFaceDetector() as detector:
        follower = FaceFollower(segmenter, detector, FollowOptions(detect_every=every, min_score=DEFAULT_MIN_SCORE))
        out = []
        t0 = time.perf_counter()
        for frame in frames:
            faces = follower.step(frame)
            out.append((merge_face_masks(faces, frame.shape), len(faces)))
        return out, time.perf_counter() - t0, follower.detections


def agreement(reference, other) -> dict:
    ious, same_count, fewer, more = [], 0, 0, 0
    for (m_ref, n_ref), (m, n) in zip(reference, other):
        same_count += n == n_ref
        fewer += n < n_ref
        more += n > n_ref
        union = np.count_nonzero(m_ref | m)
        if union:
            ious.append(np.count_nonzero(m_ref & m) / union)
    return {"mask_iou_mean": float(np.mean(ious)) if ious else None, "frames_with_faces": len(ious),
            "same_face_count_share": same_count / max(len(reference), 1),
            "fewer_faces_share": fewer / max(len(reference), 1), "more_faces_share": more / max(len(reference), 1)}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--video", type=Path, default=DATA / "videos" / "multi_person_stage.mp4")
    ap.add_argument("--frames", type=int, default=301)
    ap.add_argument("--every", type=int, nargs="+", default=[5, 10])
    args = ap.parse_args(argv)
    if not args.video.is_file():
        raise SystemExit(f"video not found: {args.video}")
    cv2.setNumThreads(1)
    frames = read_frames(args.video, args.frames)
    out = {"machine": machine(), "video": args.video.name, "frames": len(frames),
           "size": [frames[0].shape[1], frames[0].shape[0]], "load_average_before": os.getloadavg(), "runs": []}
    with FaceSegmenter() as segmenter:
        reference, seconds, detected = run(segmenter, frames, 1)
        out["runs"].append({"detect_every": 1, "seconds": seconds, "frames_per_second": len(frames) / seconds,
                            "frames_detected": detected, "faces_mean": float(np.mean([n for _, n in reference]))})
        for every in args.every:
            result, seconds, detected = run(segmenter, frames, every)
            out["runs"].append({"detect_every": every, "seconds": seconds, "frames_per_second": len(frames) / seconds,
                                "frames_detected": detected, "faces_mean": float(np.mean([n for _, n in result])),
                                "against_every_frame": agreement(reference, result)})
    out["load_average_after"] = os.getloadavg()
    for row in out["runs"]:
        extra = row.get("against_every_frame")
        print(f"detect every {row['detect_every']:2d}: {row['frames_per_second']:.2f} frames/s, {row['frames_detected']} "
              f"of {len(frames)} frames detected, {row['faces_mean']:.2f} faces a frame" + (f"; against every frame: mask IoU {extra['mask_iou_mean']:.3f}, "
                                                     f"same face count in {extra['same_face_count_share']:.0%} of frames, fewer in "
                                                     f"{extra['fewer_faces_share']:.0%}, more in {extra['more_faces_share']:.0%}"
                                                     if extra else ""), flush=True)
    print(f"saved {write_json('follow_video.json', out)}")


if __name__ == "__main__":
    main()
