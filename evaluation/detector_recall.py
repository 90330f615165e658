"""Face recall of the detectors on hard group photos: small, rolled, covered and profile faces, every skin tone, grey.

    .venv/bin/python -m evaluation.detector_recall                 # 150 scenes, writes reports/detector_recall.json
    .venv/bin/python -m evaluation.detector_recall --calibrate     # CNN box -> face box, on *train* faces

Scenes: evaluation.group_photos.hard_scene_maker, 640x480, 1-8 people from lfw_parts validation
and celebamask_mini val (never trained on, nor on by the detector) and landmarks68 profiles, faces
40-220 px tall, 40 % rolled 10-45 degrees, a third covered by a hand (60 %) or a rectangle, half
mirrored; seed fixed. A face counts when at least half of it is visible; a detection matches it
as in evaluation.group_photo_recall (its face box's centre inside the face's box, its size within
a factor of 2). False faces: detections that match no face at all. Each detector also runs on
greyscale copies of the same photos. Recall is given per group: size, roll, cover, profile and
skin tone (ITA angle groups; uncalibrated photos, so the angles are relative).
"""
from __future__ import annotations

import argparse
import json
import time
from typing import Callable

import cv2
import numpy as np

from core.detect.cnn import CnnDetectorOptions, CnnFaceDetector
from core.io.files import write_text
from evaluation.group_photo_recall import counted, match
from evaluation.group_photos import ITA_GROUPS, GroupPhoto, hard_scene_maker, ita_group
from evaluation.paths import REPO_ROOT

MIN_HEIGHT_PX = 40.0
Detect = Callable[[np.ndarray], list]   # frame -> face boxes (x, y, w, h)


def hard_scenes(split: str, count: int, seed: int) -> list[GroupPhoto]:
    maker = hard_scene_maker(split)
    rng = np.random.default_rng(seed)
    return [maker.make(int(rng.integers(1, 9)), seed * 100_000 + i, min_height=MIN_HEIGHT_PX) for i in range(count)]


def greyscale(image: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(cv2.cvtColor(image, cv2.COLOR_BGR2GRAY), cv2.COLOR_GRAY2BGR)


def face_rows(photo: GroupPhoto, boxes) -> tuple[list[dict], int]:
    """One row per counted face of 40 px and up (found or not, its groups), and the false faces."""
    matched = match(boxes, photo)
    rows = [{"found": gi in matched, "height": f.height_px, "roll": abs(f.angle_deg), "covered": f.covered,
             "profile": f.source.startswith("landmarks68"), "skin": ita_group(f.ita_deg)}
            for gi, f in enumerate(photo.faces) if counted(f) and f.height_px >= MIN_HEIGHT_PX]
    return rows, len(boxes) - len(matched)


def summarise(rows: list[dict], false_faces: int, photos: int) -> dict:
    def group(selected):
        return {"faces": len(selected),
                "recall": round(float(np.mean([r["found"] for r in selected])), 4) if selected else None}
    out = {"all": group(rows), "false_faces_per_photo": round(false_faces / max(photos, 1), 3),
           "40-64px": group([r for r in rows if r["height"] < 64]),
           "64-220px": group([r for r in rows if r["height"] >= 64]),
           "rolled_under_25deg": group([r for r in rows if r["roll"] < 25]),
           "rolled_25_45deg": group([r for r in rows if r["roll"] >= 25]),
           "hand": group([r for r in rows if r["covered"] == "hand"]),
           "rectangle": group([r for r in rows if r["covered"] == "rectangle"]),
           "profile": group([r for r in rows if r["profile"]])}
    out["skin_tone_ita"] = {name: group([r for r in rows if r["skin"] == name]) for name, _, _ in ITA_GROUPS}
    return out


def evaluate(photos: list[GroupPhoto], detect: Detect, grey: bool = False) -> dict:
    """Recall, false faces and the median detection time (ms) of one detector on the photos."""
    rows, false_faces, ms = [], 0, []
    for photo in photos:
        image = greyscale(photo.image) if grey else photo.image
        t0 = time.perf_counter()
        boxes = detect(image)
        ms.append((time.perf_counter() - t0) * 1000)
        found, false = face_rows(photo, boxes)
        rows += found
        false_faces += false
    out = summarise(rows, false_faces, len(photos))
    out["detection_ms_median"] = round(float(np.median(ms)), 1)
    return out


def cnn_detect(detector: CnnFaceDetector) -> Detect:
    return lambda image: [f.face_box for f in detector.detect(image)]


def cascades_detect(min_score: float) -> Detect:
    """The earlier default: MultiFaceDetector's passes, then the segmenter's score filter."""
    from core.detect.detection import MultiFaceDetector
    from core.segment.segmentation import FaceSegmenter
    detector, segmenter = MultiFaceDetector(), FaceSegmenter()
    return lambda image: [f.box for f in segmenter.segment_all(image, [d.face_box for d in detector.detect(image)],
                                                               min_score=min_score)]


def segmented_detect(detector: CnnFaceDetector, min_score: float) -> Detect:
    """The CNN's faces that keep a segmenter score of min_score (what segment_all(min_score=...) returns)."""
    from core.segment.segmentation import FaceSegmenter
    segmenter = FaceSegmenter()
    return lambda image: [f.box for f in segmenter.segment_all(image, [d.face_box for d in detector.detect(image)],
                                                               min_score=min_score)]


def calibrate(photos: list[GroupPhoto], options: CnnDetectorOptions) -> dict:
    """Medians of the true face box against matched CNN boxes: centre shift (dx, dy) in box widths,
    the face box's longer side in box heights."""
    ratios = []
    with CnnFaceDetector(options) as detector:
        for photo in photos:
            found = detector.detect(photo.image)
            for gi, di in match([f.face_box for f in found], photo).items():
                x, y, w, h = photo.faces[gi].face_box
                b = found[di].box
                ratios.append([(x + w / 2 - b.x - b.w / 2) / b.w, (y + h / 2 - b.y - b.h / 2) / b.w, max(w, h) / b.h])
    r = np.array(ratios)
    return {"faces": len(r), "median_dx_dy_size": np.median(r, axis=0).round(3).tolist(),
            "p10": np.percentile(r, 10, axis=0).round(3).tolist(), "p90": np.percentile(r, 90, axis=0).round(3).tolist()}


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scenes", type=int, default=150)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--calibrate", action="store_true", help="CNN box -> face box on scenes of *train* faces")
    ap.add_argument("--no-cascades", action="store_true", help="skip the cascades (about a second a photo)")
    ap.add_argument("--json", default=str(REPO_ROOT / "reports" / "detector_recall.json"))
    args = ap.parse_args(argv)
    cv2.setNumThreads(1)
    if args.calibrate:
        print(json.dumps(calibrate(hard_scenes("train", args.scenes, args.seed + 1), CnnDetectorOptions()), indent=2))
        return
    photos = hard_scenes("validation", args.scenes, args.seed)
    out = {"scenes": args.scenes, "seed": args.seed, "min_height_px": MIN_HEIGHT_PX, "detectors": {}}
    with CnnFaceDetector() as cnn, CnnFaceDetector(CnnDetectorOptions.fast()) as fast:
        runs = {"cnn (default, 960 px)": cnn_detect(cnn),
                "cnn + segmenter score 0.5": segmented_detect(cnn, 0.5),
                "cnn + segmenter score 0.8": segmented_detect(cnn, 0.8),
                "cnn fast (640 px)": cnn_detect(fast)}
        if not args.no_cascades:
            runs["cascades + segmenter score 0.8 (earlier default)"] = cascades_detect(0.8)
        for name, detect in runs.items():
            for grey in (False, True):
                key = name + (", greyscale" if grey else "")
                out["detectors"][key] = result = evaluate(photos, detect, grey)
                print(f"{key}: recall {result['all']['recall']} of {result['all']['faces']}, "
                      f"false faces {result['false_faces_per_photo']}/photo, {result['detection_ms_median']} ms; "
                      + ", ".join(f"{k} {v['recall']}" for k, v in result.items()
                                  if isinstance(v, dict) and "recall" in v and k != "all")
                      + "; skin " + ", ".join(f"{k} {v['recall']} ({v['faces']})" for k, v in result["skin_tone_ita"].items()),
                      flush=True)
    write_text(args.json, json.dumps(out, indent=2))
    print(f"saved {args.json}")


if __name__ == "__main__":
    main()
