"""Where the cascades' `masks` path (the earlier default detector, MultiFaceDetector) spends its time on 640x480 group photos.

    .venv/bin/python -m bench.profile_detection             # 30 photos, about 3 minutes on one core
    .venv/bin/python -m bench.profile_detection --thorough  # the previous default's passes

Per photo, one thread: each cascade pass of the default MultiFaceDetector whole, and split by
face size (the pass with minSize/maxSize cut to one band of window sides, in frame pixels), the
frame's resize and equalisation, the merge (non-maximum suppression), and per face of
`segment_all`: crop extraction, the network on all crops in one call, the graph cut, the central
blobs, the paste at frame size. Medians per photo (per face for the per-face parts).
Saves bench/results/detection_profile.json (detection_profile_thorough.json).
"""
from __future__ import annotations

import argparse
import os
import time

import cv2
import numpy as np

from bench.common import machine, write_json
from core.detect.detection import MultiFaceDetector, MultiFaceOptions, merge_detections, _equalized
from core.io.image_input import as_gray_uint8
from core.segment.segmentation import FaceSegmenter, central_components, crop_box_from_face_box, extract_crop, paste_crop_map
from evaluation.group_photo_recall import scenes

SIZE_BANDS = ((24, 34), (34, 48), (48, 68), (68, 96), (96, 10_000))   # window side in frame pixels


def _ms(fn, *args):
    t0 = time.perf_counter()
    out = fn(*args)
    return 1000.0 * (time.perf_counter() - t0), out


def profile_passes(detector: MultiFaceDetector, grays) -> dict:
    """Median ms of every pass, whole and per size band (the band's share of the whole)."""
    out = {}
    o = detector.options
    for one in detector.passes():
        whole = [_ms(detector.run_pass, g, one)[0] for g in grays]
        bands = {}
        for lo, hi in SIZE_BANDS:
            ms = []
            for g in grays:
                img, scale = _equalized(g, one.max_width_px)
                cascade = detector._frontal if one.kind.startswith("frontal") else detector._profile
                lo_px, hi_px = max(8, int(round(lo * scale))), int(round(hi * scale))
                n = o.min_neighbors if one.min_neighbors is None else one.min_neighbors
                ms.append(_ms(cascade.detectMultiScale2, img, one.scale_factor, n, 0,
                              (lo_px, lo_px), (hi_px, hi_px))[0])
            bands[f"{lo}-{hi}px"] = float(np.median(ms))
        name = f"{one.kind}{'' if not one.angle_deg else f' {one.angle_deg:+.0f}deg'}"
        out[name] = {"median_ms": float(np.median(whole)), "by_face_size_ms": bands,
                     "width": one.max_width_px, "scale_factor": one.scale_factor}
        print(f"{name:22s} {np.median(whole):6.0f} ms  " + "  ".join(f"{k} {v:.0f}" for k, v in bands.items()),
              flush=True)
    return out


def profile_segmentation(segmenter: FaceSegmenter, photos, detections) -> dict:
    """Per face: crop, network (one call for the photo's crops, divided by the crop count), graph
    cut, central blobs, paste at the frame's size."""
    parts = {"crop": [], "network": [], "graph_cut": [], "central_blobs": [], "paste": []}
    for photo, dets in zip(photos, detections):
        if not dets:
            continue
        boxes = [crop_box_from_face_box(d.face_box) for d in dets]
        ms, crops = _ms(lambda: np.stack([extract_crop(photo.image, b) for b in boxes]))
        parts["crop"].append(ms / len(boxes))
        ms, probs = _ms(segmenter.infer_crops, crops)
        parts["network"].append(ms / len(boxes))
        for crop, prob, box in zip(crops, probs, boxes):
            ms, mask = _ms(segmenter.refine, prob, crop)
            parts["graph_cut"].append(ms)
            ms, mask = _ms(central_components, mask, segmenter.options.crop_scale)
            parts["central_blobs"].append(ms)
            parts["paste"].append(_ms(paste_crop_map, mask * np.uint8(255), box, photo.image.shape, np.uint8)[0])
    return {k: float(np.median(v)) for k, v in parts.items()}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scenes", type=int, default=30)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--thorough", action="store_true", help="profile MultiFaceOptions.thorough()")
    args = ap.parse_args(argv)
    cv2.setNumThreads(1)
    photos = scenes("validation", args.scenes, args.seed)
    grays = [as_gray_uint8(p.image, "image") for p in photos]
    out = {"machine": machine(), "load_average_before": os.getloadavg(), "scenes": args.scenes, "seed": args.seed}
    options = MultiFaceOptions.thorough() if args.thorough else MultiFaceOptions()
    out["options"] = vars(options)
    with MultiFaceDetector(options) as detector, FaceSegmenter() as segmenter:
        out["equalize_ms"] = float(np.median([_ms(_equalized, g, 640)[0] for g in grays]))
        out["passes"] = profile_passes(detector, grays)
        raw = [[d for one in detector.passes() for d in detector.run_pass(g, one)] for g in grays]
        merge = [_ms(merge_detections, r, detector.options.merge_overlap) for r in raw]
        out["merge_ms"] = float(np.median([m for m, _ in merge]))
        out["candidates_before_merge"] = float(np.median([len(r) for r in raw]))
        out["faces_after_merge"] = float(np.median([len(d) for _, d in merge]))
        out["segmentation_per_face_ms"] = profile_segmentation(segmenter, photos, [d for _, d in merge])
    out["load_average_after"] = os.getloadavg()
    print(f"equalise {out['equalize_ms']:.1f} ms, merge {out['merge_ms']:.2f} ms "
          f"({out['candidates_before_merge']:.0f} boxes -> {out['faces_after_merge']:.0f}); per face: "
          + ", ".join(f"{k} {v:.2f} ms" for k, v in out["segmentation_per_face_ms"].items()))
    print(f"saved {write_json('detection_profile' + ('_thorough' if args.thorough else '') + '.json', out)}")


if __name__ == "__main__":
    main()
