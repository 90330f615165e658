"""Mask edges at the frame's resolution, before and after: "before" is the graph cut on 4 neighbours,
the binary 128 px mask upsampled and cut, the crop as placed; "after" (SegmenterOptions' defaults)
the graph cut on 8 neighbours (a cut measured by its Euclidean length), the smooth paste and a cut
crop grown; "8 neighbours" and "smooth paste" change one thing each.

    .venv/bin/python -m evaluation.mask_edges                 # lfw_parts validation, scales 1 and 3
    .venv/bin/python -m evaluation.mask_edges --clip ../shared/data/videos/expressions_grimaces.mp4 \\
        --picture reports/mask_edges_before_after.png

Metrics per image, averaged (lfw_parts validation, 500 photos of 250x250, the face box from the
label as a tracker gives it):
  IoU          of the face mask;
  boundary F   the F-score of the mask's outline against the label's: an outline pixel counts as
               found when the other outline passes within 2 pixels (precision: of the mask's
               outline; recall: of the label's).
At 250 px a face's crop is about 200 px, so the 128 px map is upsampled about 1.6x and its stair
steps lie within the 2 px tolerance. --scales 3 also measures the photos upsampled 3x (750 px, a
crop of about 600 px: steps of 4-5 px, what a 640x480 webcam close-up or HD footage gives); their
labels are upsampled smoothly (blurred by 0.7 px, bicubic, cut at 0.5) so that the label's own
outline has no steps. With --clip, the clip is tracked (sequential VIDEO mode, the "before"
segmenter) and each frame is segmented in the box the tracker gives it from the previous frame,
before and after: how often the crop cut the face, how much the masks differ, and the picture of
the frame where they differ most. Writes reports/mask_edges.json.
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import cv2
import numpy as np

from core.io.files import write_image, write_text
from core.segment.segmentation import FaceSegmenter, SegmenterOptions
from evaluation.paths import shared_data_dir

ROOT = Path(__file__).resolve().parents[1]
VARIANTS = {
    "before": SegmenterOptions(graph_cut_neighbours=4, smooth_edges=False, grow_cut_crops=False),
    "8 neighbours": SegmenterOptions(smooth_edges=False, grow_cut_crops=False),
    "smooth paste": SegmenterOptions(graph_cut_neighbours=4, grow_cut_crops=False),
    "after": SegmenterOptions(),
}
TOLERANCE_PX = 2.0


def outline(mask: np.ndarray) -> np.ndarray:
    """The mask's own outline pixels: face pixels with a non-face 8-neighbour (not at the frame's edge)."""
    m = (np.asarray(mask) > 0).astype(np.uint8)
    eroded = cv2.erode(m, np.ones((3, 3), np.uint8), borderType=cv2.BORDER_REPLICATE)
    return (m > 0) & (eroded == 0)


def boundary_f(pred: np.ndarray, truth: np.ndarray, tolerance: float = TOLERANCE_PX) -> tuple[float, float, float]:
    """(precision, recall, F) of pred's outline against truth's within `tolerance` pixels; both
    empty: (1, 1, 1); one empty: (0, 0, 0)."""
    bp, bt = outline(pred), outline(truth)
    if not bp.any() and not bt.any():
        return 1.0, 1.0, 1.0
    if not bp.any() or not bt.any():
        return 0.0, 0.0, 0.0
    to_truth = cv2.distanceTransform((~bt).astype(np.uint8), cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
    to_pred = cv2.distanceTransform((~bp).astype(np.uint8), cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
    precision = float((to_truth[bp] <= tolerance).mean())
    recall = float((to_pred[bt] <= tolerance).mean())
    return precision, recall, (2 * precision * recall / (precision + recall) if precision + recall else 0.0)


def iou(pred: np.ndarray, truth: np.ndarray) -> float:
    p, t = pred > 0, truth > 0
    union = int((p | t).sum())
    return int((p & t).sum()) / union if union else 1.0


def label_box(face: np.ndarray):
    ys, xs = np.nonzero(face)
    if len(xs) == 0:
        return None
    return (int(xs.min()), int(ys.min()), int(xs.max() - xs.min() + 1), int(ys.max() - ys.min() + 1))


def upscaled(image: np.ndarray, face: np.ndarray, scale: int) -> tuple[np.ndarray, np.ndarray]:
    """The photo upsampled bicubically and its label upsampled smoothly (no stair steps of its own)."""
    if scale == 1:
        return image, face
    h, w = face.shape
    size = (w * scale, h * scale)
    big = cv2.resize(image, size, interpolation=cv2.INTER_CUBIC)
    soft = cv2.GaussianBlur(face.astype(np.float32), (0, 0), 0.7)
    return big, (cv2.resize(soft, size, interpolation=cv2.INTER_CUBIC) >= 0.5).astype(np.uint8)


def evaluate_photos(folder: Path, scales=(1, 3), limit: int | None = None) -> dict:
    from training.segmenter.data import label_folder_source

    source = label_folder_source(folder)
    count = len(source) if limit is None else min(limit, len(source))
    segmenters = {name: FaceSegmenter(options=options) for name, options in VARIANTS.items()}
    results = {}
    for scale in scales:
        scores = {name: {"iou": [], "precision": [], "recall": [], "f": []} for name in VARIANTS}
        grown, t0, size = 0, time.perf_counter(), 0
        for i in range(count):
            image, face = upscaled(*source.load(i), scale)
            size = max(size, *face.shape)
            box = label_box(face)
            for name, segmenter in segmenters.items():
                run = segmenter.run(image, box) if box is not None else None
                pred = run.mask if run is not None else np.zeros_like(face)
                p, r, f = boundary_f(pred, face)
                s = scores[name]
                s["iou"].append(iou(pred, face))
                s["precision"].append(p)
                s["recall"].append(r)
                s["f"].append(f)
                if name == "after" and run is not None and run.crop_box != _placed_crop(box):
                    grown += 1
        results[f"scale{scale}"] = {
            "images": count, "size_px": int(size), "crops_grown": grown,
            "seconds": round(time.perf_counter() - t0, 1),
            **{name: {k: round(float(np.mean(v)), 4) for k, v in s.items()} for name, s in scores.items()}}
        r = results[f"scale{scale}"]
        for name in VARIANTS:
            m = r[name]
            print(f"lfw_parts validation x{scale} ({r['size_px']} px) {name:12s}: IoU {m['iou']:.4f}  boundary F "
                  f"{m['f']:.4f} (precision {m['precision']:.4f}, recall {m['recall']:.4f})", flush=True)
        print(f"  crops grown: {grown} of {count}", flush=True)
    for segmenter in segmenters.values():
        segmenter.close()
    return results


def _placed_crop(face_box):
    """The crop the segmenter places about a face box (before any growing)."""
    from core.detect.detection import crop_box_from_face_box
    return crop_box_from_face_box(face_box, VARIANTS["after"].crop_scale)


def evaluate_clip(path: Path, picture: Path | None, max_frames: int | None = None) -> dict:
    """Track the clip, then segment every frame in the tracker's box both ways."""
    from core.capture.take import open_file_source
    from core.track.tracker import FaceTracker, TrackerOptions

    boxes, frames = [], []
    with open_file_source(path) as source:
        with FaceTracker(TrackerOptions(segmenter=VARIANTS["before"], synchronous_adaptation=True)) as tracker:
            previous = None
            for frame in source:
                result = tracker.track(frame.image)
                boxes.append(previous)
                frames.append(frame.image)
                previous = result.face_box if result.ok else None
                if max_frames and len(frames) >= max_frames:
                    break
    before, after = FaceSegmenter(options=VARIANTS["before"]), FaceSegmenter(options=VARIANTS["after"])
    grown, changed, best = 0, [], (0, None)
    for k, (image, box) in enumerate(zip(frames, boxes)):
        if box is None:
            continue
        a, b = before.run(image, box), after.run(image, box)
        grown += b.crop_box != a.crop_box
        differ = int((a.mask != b.mask).sum())
        changed.append(differ / max(int(a.mask.sum()), 1))
        if differ > best[0]:
            best = (differ, k)
    segmented = sum(b is not None for b in boxes)
    print(f"{path.name}: {len(frames)} frames, {segmented} segmented in the tracker's box; the crop cut the face "
          f"in {grown} ({100.0 * grown / max(segmented, 1):.1f} %); the masks differ by {100 * np.mean(changed):.1f} % "
          f"of the face on average, most at frame {best[1]} ({best[0]} px)", flush=True)
    if picture is not None:
        k = best[1] if best[1] is not None else next(i for i, b in enumerate(boxes) if b is not None)
        write_image(picture, before_after_picture(frames[k], before.run(frames[k], boxes[k]),
                                                  after.run(frames[k], boxes[k])))
        print(f"wrote {picture} (frame {k})", flush=True)
    before.close()
    after.close()
    return {"clip": path.name, "frames": len(frames), "segmented": segmented, "crops_grown": grown,
            "mean_changed_share_of_face": round(float(np.mean(changed)), 4) if changed else 0.0,
            "picture_frame": best[1], "most_changed_px": best[0]}


def _panel(image: np.ndarray, mask: np.ndarray, window, zoom: int, title: str) -> np.ndarray:
    """The frame inside window, the face tinted and its outline drawn, enlarged without smoothing."""
    x0, y0, x1, y1 = window
    view = image[y0:y1, x0:x1].astype(np.float32)
    m = mask[y0:y1, x0:x1] > 0
    view[m] = 0.6 * view[m] + 0.4 * np.array([60, 200, 60], np.float32)
    view[outline(mask)[y0:y1, x0:x1]] = (0, 0, 255)
    big = cv2.resize(view.astype(np.uint8), None, fx=zoom, fy=zoom, interpolation=cv2.INTER_NEAREST)
    cv2.putText(big, title, (10, 28), cv2.FONT_HERSHEY_SIMPLEX, 0.8, (255, 255, 255), 2, cv2.LINE_AA)
    return big


def before_after_picture(image: np.ndarray, before, after, zoom: int = 2) -> np.ndarray:
    """Two panels side by side around the face: the mask before and after (VARIANTS)."""
    h, w = image.shape[:2]
    ys, xs = np.nonzero(after.mask | before.mask)
    pad = 20
    x0, x1 = max(int(xs.min()) - pad, 0), min(int(xs.max()) + pad, w)
    y0, y1 = max(int(ys.min()) - pad, 0), min(int(ys.max()) + pad, h)
    left = _panel(image, before.mask, (x0, y0, x1, y1), zoom, "before")
    right = _panel(image, after.mask, (x0, y0, x1, y1), zoom, "after")
    gap = np.full((left.shape[0], 8, 3), 255, np.uint8)
    return np.hstack([left, gap, right])


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--folder", type=Path, default=None, help="default: lfw_parts/validation")
    parser.add_argument("--scales", type=int, nargs="+", default=[1, 3])
    parser.add_argument("--limit", type=int, default=None, help="only the first N photos")
    parser.add_argument("--clip", type=Path, default=None, help="also a video, tracked, segmented both ways")
    parser.add_argument("--frames", type=int, default=None, help="only the clip's first N frames")
    parser.add_argument("--picture", type=Path, default=None, help="with --clip: the before/after picture (PNG)")
    parser.add_argument("--json", type=Path, default=ROOT / "reports" / "mask_edges.json")
    args = parser.parse_args(argv)
    folder = args.folder or shared_data_dir() / "lfw_parts" / "validation"
    payload = {"tolerance_px": TOLERANCE_PX, "folder": folder.name,
               "photos": evaluate_photos(folder, args.scales, args.limit)}
    if args.clip is not None:
        payload["clip"] = evaluate_clip(args.clip, args.picture, args.frames)
    write_text(args.json, json.dumps(payload, indent=1))
    print(f"wrote {args.json}")
    return payload


if __name__ == "__main__":
    main()
