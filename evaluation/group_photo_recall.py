"""Every face in a group photo: face recall and mask IoU per face on scenes the project makes itself.

    .venv/bin/python -m evaluation.group_photo_recall               # 150 scenes, writes reports/group_photos.json
    .venv/bin/python -m evaluation.group_photo_recall --cascades    # the earlier detector: reports/group_photos_cascades.json
    .venv/bin/python -m evaluation.group_photo_recall --sweep       # detector scale factor / neighbours: recall, time
    .venv/bin/python -m evaluation.group_photo_recall --calibrate   # profile box -> face box, on *train* faces

Scenes (evaluation/group_photos.py): 640x480, 1-8 people from lfw_parts validation and
celebamask_mini val (never trained on), faces 24-220 px tall, 30 % turned 10-25 degrees in the
image plane, half mirrored, 25 % partly covered by a hand or a rectangle; seed fixed.

A ground-truth face counts for recall when at least half of it is visible. A detection matches a
face when its face box's centre lies in the face's bounding box and its size is within a factor
of 2 (greedy, nearest centre first). IoU per face is between the matched face's `segment_all` mask
and the visible face pixels; a missed face scores 0 in "mean IoU, all faces". The box study
segments every face from its true bounding box, and from that box 20 % smaller and 20 % larger
about the same centre.
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import cv2
import numpy as np

from core.detect.cnn import CnnFaceDetector
from core.detect.detection import MultiFaceDetector, MultiFaceOptions, FaceDetection
from core.masks.batch import DEFAULT_MIN_SCORE
from core.io.files import write_text
from core.segment.segmentation import FaceSegmenter
from evaluation.group_photos import GroupPhoto, GroupPhotoMaker

REPO = Path(__file__).resolve().parents[1]
SCORE_THRESHOLDS = (0.0, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8)
SIZE_BINS = ((0, 32), (32, 48), (48, 80), (80, 140), (140, 1000))


def scenes(split: str, count: int, seed: int) -> list[GroupPhoto]:
    maker = GroupPhotoMaker(split)
    rng = np.random.default_rng(seed)
    return [maker.make(int(rng.integers(1, 9)), seed * 100_000 + i) for i in range(count)]


def iou(a: np.ndarray, b: np.ndarray) -> float:
    union = np.count_nonzero(a | b)
    return np.count_nonzero(a & b) / union if union else 1.0


def match(face_boxes: list, photo: GroupPhoto) -> dict[int, int]:
    """ground-truth face index -> detection index (centre inside the face box, size within 2x)."""
    pairs = []
    for gi, face in enumerate(photo.faces):
        x, y, w, h = face.face_box
        for di, (bx, by, bw, bh) in enumerate(face_boxes):
            cx, cy = bx + bw / 2, by + bh / 2
            if x <= cx <= x + w and y <= cy <= y + h and 0.5 <= bw / max(w, h) <= 2.0:
                pairs.append((np.hypot(cx - x - w / 2, cy - y - h / 2), gi, di))
    out: dict[int, int] = {}
    used = set()
    for _, gi, di in sorted(pairs):
        if gi not in out and di not in used:
            out[gi] = di
            used.add(di)
    return out


def counted(face) -> bool:
    return face.visible_share >= 0.5


def size_bin(height: float) -> str:
    for lo, hi in SIZE_BINS:
        if lo <= height < hi:
            return f"{lo}-{hi}px"
    return "other"


def scaled_box(box, factor: float):
    x, y, w, h = box
    cx, cy = x + w / 2, y + h / 2
    return (cx - w * factor / 2, cy - h * factor / 2, w * factor, h * factor)


def evaluate(photos: list[GroupPhoto], detector: MultiFaceDetector, segmenter: FaceSegmenter,
             min_score: float = 0.0) -> dict:
    rows, false_positives, detect_ms = [], 0, []
    box_iou = {"0.8": [], "1.0": [], "1.2": []}
    by_threshold = {t: [0, 0] for t in SCORE_THRESHOLDS}    # threshold -> [faces found, false positives]
    for photo in photos:
        t0 = time.perf_counter()
        detections = detector.detect(photo.image)
        detect_ms.append((time.perf_counter() - t0) * 1000)
        every = segmenter.segment_all(photo.image, [d.face_box for d in detections])
        for t in SCORE_THRESHOLDS:
            boxes = [f.box for f in every if f.score >= t]
            matched = match(boxes, photo)
            by_threshold[t][0] += sum(gi in matched for gi, f in enumerate(photo.faces) if counted(f))
            by_threshold[t][1] += len(boxes) - len(matched)
        faces = [f for f in every if f.score >= min_score]
        kept = [f.box for f in faces]
        matched = match(kept, photo)
        false_positives += len(kept) - len(matched)
        for gi, face in enumerate(photo.faces):
            if not counted(face):
                continue
            found = gi in matched
            rows.append({"found": found, "iou": iou(faces[matched[gi]].mask > 0, face.visible > 0) if found else 0.0,
                         "height": face.height_px, "turned": abs(face.angle_deg) >= 10, "covered": face.covered,
                         "source": face.source.split("/")[0]})
        for factor in box_iou:
            boxes = [scaled_box(f.face_box, float(factor)) for f in photo.faces if counted(f)]
            truth = [f.visible for f in photo.faces if counted(f)]
            for result, visible in zip(segmenter.segment_all(photo.image, boxes), truth):
                box_iou[factor].append(iou(result.mask > 0, visible > 0))
    out = summarise(rows, false_positives, len(photos), detect_ms, box_iou)
    out["by_min_score"] = {str(t): {"recall": found / max(len(rows), 1), "false_positives_per_photo": fp / len(photos)}
                           for t, (found, fp) in by_threshold.items()}
    return out


def summarise(rows, false_positives, n_photos, detect_ms, box_iou) -> dict:
    def group(selected):
        if not selected:
            return {"faces": 0}
        found = [r for r in selected if r["found"]]
        return {"faces": len(selected), "recall": len(found) / len(selected),
                "mean_iou_found": float(np.mean([r["iou"] for r in found])) if found else 0.0,
                "mean_iou_all": float(np.mean([r["iou"] for r in selected]))}
    out = {"photos": n_photos, "all": group(rows),
           "false_positives_per_photo": false_positives / max(n_photos, 1),
           "detection_ms_median": float(np.median(detect_ms)) if detect_ms else None,
           "by_height": {f"{lo}-{hi}px": group([r for r in rows if lo <= r["height"] < hi]) for lo, hi in SIZE_BINS},
           "upright": group([r for r in rows if not r["turned"]]),
           "turned_10_25deg": group([r for r in rows if r["turned"]]),
           "uncovered": group([r for r in rows if not r["covered"]]),
           "hand": group([r for r in rows if r["covered"] == "hand"]),
           "rectangle": group([r for r in rows if r["covered"] == "rectangle"]),
           "lfw_parts": group([r for r in rows if r["source"] == "lfw_parts"]),
           "celebamask_mini": group([r for r in rows if r["source"] == "celebamask_mini"])}
    if box_iou is not None:
        out["true_box_iou"] = {f"box x{k}": float(np.mean(v)) for k, v in box_iou.items()}
    return out


SWEEP = (  # MultiFaceOptions tried by --sweep (each row names every setting that differs between rows; the
           # rolled and profile passes take the row's scale factor and neighbours)
    {"scale_factor": 1.1, "min_neighbors": 4, "profile_max_width_px": 640, "rolled_deg": ()},
    {"scale_factor": 1.1, "min_neighbors": 4, "profile_max_width_px": 320, "rolled_deg": ()},
    {"scale_factor": 1.2, "min_neighbors": 4, "profile_max_width_px": 320, "rolled_deg": ()},
    {"scale_factor": 1.3, "min_neighbors": 4, "profile_max_width_px": 320, "rolled_deg": ()},
    {"scale_factor": 1.2, "min_neighbors": 4, "max_width_px": 480, "profile_max_width_px": 320, "rolled_deg": ()},
    {"scale_factor": 1.2, "min_neighbors": 5, "profile_max_width_px": 320, "rolled_deg": ()},
    {"scale_factor": 1.2, "min_neighbors": 3, "profile_max_width_px": 320, "rolled_deg": ()},
    {"scale_factor": 1.2, "min_neighbors": 2, "profile_max_width_px": 320, "rolled_deg": ()},
    {"scale_factor": 1.15, "min_neighbors": 3, "profile_max_width_px": 320, "rolled_deg": ()},
    {"scale_factor": 1.1, "min_neighbors": 3, "profile_max_width_px": 320, "rolled_deg": ()},
    {"scale_factor": 1.1, "min_neighbors": 3, "profile_max_width_px": 640, "rolled_deg": ()},
    {"scale_factor": 1.2, "min_neighbors": 3, "profile_cascade": None, "profile_max_width_px": 320, "rolled_deg": ()},
    {"scale_factor": 1.2, "min_neighbors": 3, "frontal_cascade": "haarcascade_frontalface_alt2.xml",
     "profile_max_width_px": 320, "rolled_deg": ()},
    {"scale_factor": 1.1, "min_neighbors": 3, "profile_max_width_px": 640, "rolled_deg": (-20.0, 20.0)},
    {"scale_factor": 1.2, "min_neighbors": 3, "profile_max_width_px": 320, "rolled_deg": (-20.0, 20.0)},
)


def sweep(photos, segmenter, rows=None) -> list[dict]:
    """Recall, false positives and detection time against the cascades' scale factor and neighbours."""
    results = []
    for changes in (SWEEP if rows is None else [SWEEP[i] for i in rows]):
        options = MultiFaceOptions(**{"extra_scale_factor": None, "extra_min_neighbors": None, **changes})
        with MultiFaceDetector(options) as detector:
            rows, fps, ms = [], 0, []
            for photo in photos:
                t0 = time.perf_counter()
                boxes = [d.face_box for d in detector.detect(photo.image)]
                ms.append((time.perf_counter() - t0) * 1000)
                matched = match(boxes, photo)
                fps += len(boxes) - len(matched)
                rows += [gi in matched for gi, f in enumerate(photo.faces) if counted(f)]
        row = {**changes, "recall": float(np.mean(rows)),
               "false_positives_per_photo": fps / len(photos), "detection_ms_median": float(np.median(ms))}
        print(json.dumps(row), flush=True)
        results.append(row)
    return results


def calibrate(photos) -> dict:
    """Median (dx, dy, size) of the true face box against matched cascade boxes, per cascade, in
    the cascade's own orientation (mirrored passes flip dx), in units of the cascade box width."""
    ratios: dict[str, list] = {"frontal": [], "profile": []}
    with MultiFaceDetector(MultiFaceOptions.thorough()) as detector:   # the settings PROFILE_TO_FACE was measured with
        for photo in photos:
            detections: list[FaceDetection] = detector.detect(photo.image)
            matched = match([d.face_box for d in detections], photo)
            for gi, di in matched.items():
                d = detections[di]
                x, y, w, h = photo.faces[gi].face_box
                bx, by, bw, bh = d.box
                dx = (x + w / 2 - bx - bw / 2) / bw
                ratios["frontal" if d.kind == "frontal" else "profile"].append(
                    [-dx if d.kind == "profile_mirrored" else dx, (y + h / 2 - by - bh / 2) / bw, max(w, h) / bw])
    return {k: {"n": len(v), "median_dx_dy_size": np.median(np.array(v), axis=0).round(3).tolist() if v else None}
            for k, v in ratios.items()}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scenes", type=int, default=150, help="number of scenes (--sweep: 40 is enough)")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--min-score", type=float, default=DEFAULT_MIN_SCORE, help="drop faces the segmenter scores below this")
    ap.add_argument("--cascades", action="store_true", help="OpenCV's cascades (MultiFaceDetector) instead of the CNN")
    ap.add_argument("--rolled-deg", type=float, nargs="*", help="with --cascades: rolled frontal passes instead of "
                    "the default (none given: no rolled passes)")
    ap.add_argument("--sweep", action="store_true", help="detector settings: recall, false positives, time")
    ap.add_argument("--sweep-rows", type=int, nargs="*", help="only these rows of SWEEP (0-based)")
    ap.add_argument("--calibrate", action="store_true", help="profile box to face box, on train faces")
    ap.add_argument("--json", type=Path, default=REPO / "reports" / "group_photos.json")
    args = ap.parse_args(argv)
    cv2.setNumThreads(1)   # one thread, as in a batch worker (timings are per core)
    if args.calibrate:
        print(json.dumps(calibrate(scenes("train", args.scenes, args.seed + 1)), indent=2))
        return
    photos = scenes("validation", args.scenes, args.seed)
    with FaceSegmenter() as segmenter:
        if args.sweep:
            out = {"sweep": sweep(photos, segmenter, args.sweep_rows)}
            args.json = args.json.with_name(args.json.stem + ("_sweep.json" if args.sweep_rows is None else "_sweep_rows.json"))
        else:
            if args.cascades:
                options = MultiFaceOptions() if args.rolled_deg is None else MultiFaceOptions(rolled_deg=tuple(args.rolled_deg))
                detector = MultiFaceDetector(options)
                args.json = args.json.with_name(args.json.stem + "_cascades.json")
            else:
                detector = CnnFaceDetector()
                options = detector.options
            with detector:
                out = evaluate(photos, detector, segmenter, args.min_score)
            out["detector"] = "cascades" if args.cascades else "cnn"
            out["options"] = {k: str(v) for k, v in vars(options).items()}
            out["min_score"] = args.min_score
            print(json.dumps({k: out[k] for k in ("all", "false_positives_per_photo", "true_box_iou",
                                                  "detection_ms_median", "by_min_score")}, indent=2))
            print(json.dumps(out["by_height"], indent=2))
    out["scenes"] = args.scenes
    out["seed"] = args.seed
    write_text(args.json, json.dumps(out, indent=2))
    print(f"saved {args.json}")


if __name__ == "__main__":
    main()
