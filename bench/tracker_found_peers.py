"""Does the tracker find the face on still photos with hands and boxes over it? maskcap against MediaPipe FaceMesh.

    .venv/bin/python -m bench.tracker_found_peers [--clip-frames 60]

Photos: our held-out tenth of landmarks68 (121 faces, 256x256), as they are, with a hand from
../shared/data/hands recoloured to the face's skin whose bounding box is half the face box's side
(about a quarter of the face; bench.occlusion_peers.hand_occluder), and with a grey box of 0.58 of
the face box's side (a third of it; evaluation.occlusion.occlude), each centred on the face with a
seeded jitter. The face box is the face region around the annotated landmarks. A face counts as
found when FaceTracker.track in IMAGE mode says ok (maskcap; with the CNN start, the default, and with the
frontal cascade, the earlier start, in the same run) or when FaceMesh (static image mode, its own
venv .venv-mediapipe made by training/teachers/setup_envs.sh when missing) returns a face.

Start cost per lost frame (VIDEO mode): FaceTracker.prepare() from a lost state (the detection, the
choice among its boxes and the segmentation around the chosen one) on the frames of a clip
(../shared/data/videos, 400x300), on the same frames blurred (no face, smooth) and on photos from
../shared/data/backgrounds at the clip's size (no face, textured: a camera that lost its performer),
CNN and cascade start in turns per frame; medians. Writes bench/results/tracker_found_peers.json.
"""
from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import cv2  # noqa: E402
import numpy as np  # noqa: E402

from bench.common import machine, write_json  # noqa: E402
from bench.occlusion_peers import hand_occluder  # noqa: E402
from bench.peers import decode, ensure_peer_envs, run_tool  # noqa: E402
from core.track.tracker import FaceTracker, RunningMode, TrackerOptions, face_box_from_landmarks  # noqa: E402
from evaluation.occlusion import occlude  # noqa: E402
from evaluation.paths import require_data  # noqa: E402
from evaluation.tracker_stills import held_out_samples  # noqa: E402
from training.regressor.fit_landmarks68 import load_samples  # noqa: E402

CONDITIONS = ("clean", "hand over a quarter", "grey box over a third")
STARTS = {"cnn": "cnn", "cascade": "cascade"}   # TrackerOptions.start_detector


def occluded_photos() -> dict[str, np.ndarray]:
    """Per condition, the held-out photos (N, 256, 256, 3) BGR."""
    from training.segmenter.data import load_hands, skin_tone_lab
    root = require_data("landmarks68")
    hands = load_hands()
    out = {c: [] for c in CONDITIONS}
    for i, sample in enumerate(held_out_samples(load_samples())):
        image = cv2.imread(str(root / sample.file))
        box = face_box_from_landmarks(sample.landmarks)
        out["clean"].append(image)
        face = np.zeros(image.shape[:2], np.uint8)
        cv2.fillConvexPoly(face, cv2.convexHull(sample.landmarks.astype(np.float32)).astype(np.int32), 1)
        rng = np.random.default_rng(100 + i)
        hand = hands[rng.integers(len(hands))].rgba
        out["hand over a quarter"].append(hand_occluder(image, box, 0.5, hand, skin_tone_lab(image, face), rng))
        out["grey box over a third"].append(occlude(image, box, float(np.sqrt(1 / 3)), np.random.default_rng(200 + i)))
    return {c: np.stack(v) for c, v in out.items()}


def maskcap_found(photos: np.ndarray, start: str) -> np.ndarray:
    with FaceTracker(TrackerOptions(running_mode=RunningMode.IMAGE, start_detector=start)) as tracker:
        return np.array([tracker.track(np.ascontiguousarray(p)).ok for p in photos])


LOST_FRAMES = ("face in the frame", "no face, blurred frame", "no face, background photo")


def start_costs(frames: np.ndarray) -> dict:
    """Median ms of prepare() from a lost state per start detector, on the frames, on the frames
    blurred to a smear and on background photos, the detectors in turns per frame."""
    blank = np.stack([cv2.blur(f, (61, 61)) for f in frames])
    root = require_data("backgrounds")
    size = (frames.shape[2], frames.shape[1])
    scenes = np.stack([cv2.resize(cv2.imread(str(p)), size) for p in sorted(root.glob("*.jpg"))[:len(frames)]])
    trackers = {name: FaceTracker(TrackerOptions(start_detector=start)) for name, start in STARTS.items()}
    times = {f"{name}, {kind}": [] for name in STARTS for kind in LOST_FRAMES}
    try:
        for tracker in trackers.values():
            tracker.prepare(frames[0])   # warm-up (sessions, numba)
        for frame, empty, scene in zip(frames, blank, scenes):
            for name, tracker in trackers.items():
                for kind, image in zip(LOST_FRAMES, (frame, empty, scene)):
                    tracker.reset()
                    t0 = time.perf_counter()
                    tracker.prepare(np.ascontiguousarray(image))
                    times[f"{name}, {kind}"].append((time.perf_counter() - t0) * 1000.0)
    finally:
        for tracker in trackers.values():
            tracker.close()
    out = {k: round(float(np.median(v)), 2) for k, v in times.items()}
    for kind in LOST_FRAMES:
        out[f"cnn minus cascade, {kind} (ms)"] = round(out[f"cnn, {kind}"] - out[f"cascade, {kind}"], 2)
    return out


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clip", default="webcam_hand_occlusion")
    ap.add_argument("--clip-frames", type=int, default=60)
    ap.add_argument("--start-only", action="store_true", help="only the start cost per lost frame")
    args = ap.parse_args(argv)
    ensure_peer_envs()
    cv2.setNumThreads(1)
    photos = {} if args.start_only else occluded_photos()
    out = {"machine": machine(), "photos": int(len(photos.get("clean", []))), "load_average_before": os.getloadavg(),
           "found": {}}
    with tempfile.TemporaryDirectory() as tmp:
        for condition, frames in photos.items():
            row = {}
            for name, start in STARTS.items():
                row[f"maskcap, {name} start"] = int(maskcap_found(frames, start).sum())
            report, arrays = run_tool("mediapipe", "stills", frames, Path(tmp))
            row["mediapipe facemesh"] = int(np.isfinite(arrays["points"][:, 0, 0]).sum())
            out["found"][condition] = row
            print(f"{condition}: " + ", ".join(f"{k} {v}/{len(frames)}" for k, v in row.items()), flush=True)
    frames, _ = decode(args.clip, args.clip_frames)
    out["start_ms_per_lost_frame"] = start_costs(frames)
    out["start_clip"] = {"clip": args.clip, "frames": int(len(frames)), "size": [int(frames.shape[2]), int(frames.shape[1])]}
    print(f"start per lost frame ({args.clip}, {len(frames)} frames): {out['start_ms_per_lost_frame']}", flush=True)
    out["load_average_after"] = os.getloadavg()
    print(f"saved {write_json('tracker_start_cost.json' if args.start_only else 'tracker_found_peers.json', out)}")


if __name__ == "__main__":
    main()
