"""Face crops from the expressive training clips (../shared/data/videos_train), for the teachers.

Run: .venv/bin/python -m training.teachers.video_frames [--every 3] [--groups liveportrait grid ...]
Every `every`-th frame of each clip whose name starts with one of `groups` is cropped to a
256x256 square in which the 68 landmarks' box (mapped from the Viola-Jones detection, as the
tracker starts) fills half the side, centred, as in landmarks68; frames without a detection are
skipped. Writes build/teachers/videos_train/<clip>_<frame>.png and index.json (clip, frame, crop
box in the clip's pixels, the clip's terms group). The teachers then label the folder in their own
venvs (training/teachers/README.md). `../shared/data/videos/` (tests and demos) is refused.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import cv2
import numpy as np

from core.detect.detection import detect_faces
from core.io.files import write_image, write_text
from core.track.tracker import landmark_box_from_detection
from evaluation.paths import BUILD_DIR, require_data

CROP = 256
LANDMARK_SHARE = 0.5   # the landmarks' box over the crop's side, as in landmarks68
GROUPS = ("liveportrait", "xportrait", "pyfeat", "grid", "rerender", "styleganex", "mead", "metrical")


def crop_box(frame: np.ndarray) -> tuple[float, float, float] | None:
    """(centre x, centre y, side) of the crop around the largest detection, or None."""
    boxes = detect_faces(frame)
    if not boxes:
        return None
    x, y, w, h = landmark_box_from_detection(boxes[0])
    return x + w / 2, y + h / 2, max(w, h) / LANDMARK_SHARE


def cut(frame: np.ndarray, box) -> np.ndarray:
    """The square crop (edges replicated where it leaves the frame), resized to CROP."""
    cx, cy, side = box
    scale = CROP / side
    m = np.array([[scale, 0, CROP / 2 - cx * scale], [0, scale, CROP / 2 - cy * scale]])
    return cv2.warpAffine(frame, m, (CROP, CROP), flags=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_REPLICATE)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--every", type=int, default=3, help="keep every n-th frame")
    parser.add_argument("--groups", nargs="+", default=list(GROUPS), help="clip name prefixes (terms groups)")
    parser.add_argument("--out", type=Path, default=BUILD_DIR / "teachers" / "videos_train")
    args = parser.parse_args()
    root = require_data("videos_train")
    clips = sorted(p for p in root.glob("*.mp4") if p.stem.startswith(tuple(args.groups)))
    index = []
    for k, clip in enumerate(clips, 1):
        capture = cv2.VideoCapture(str(clip))
        frame_no = kept = 0
        while True:
            ok, frame = capture.read()
            if not ok:
                break
            if frame_no % args.every == 0:
                box = crop_box(frame)
                if box is not None:
                    name = f"{clip.stem}_{frame_no:05d}.png"
                    write_image(args.out / name, cut(frame, box))
                    index.append({"file": name, "clip": clip.stem, "frame": frame_no,
                                  "crop_centre_side": [round(float(v), 2) for v in box],
                                  "group": next(g for g in GROUPS if clip.stem.startswith(g))})
                    kept += 1
            frame_no += 1
        capture.release()
        print(f"\r{k}/{len(clips)} clips, {len(index)} crops ({clip.stem}: {kept} of {frame_no} frames)",
              end="", file=sys.stderr, flush=True)
    print(file=sys.stderr)
    write_text(args.out / "index.json", json.dumps({"every": args.every, "crop": CROP, "frames": index}, indent=0))
    print(f"{len(index)} crops of {len(clips)} clips -> {args.out}")


if __name__ == "__main__":
    main()
