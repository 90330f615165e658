"""Which cascade passes of `MultiFaceDetector` pay for their time: each pass alone, then every
combination of them, on the group photos (recall before the score filter, false faces, time).

    .venv/bin/python -m training.detector_passes            # 150 scenes, about 10 minutes on one core

Each pass (upright frontal; frontal on the frame rolled by -20 and +20 degrees; profile and
mirrored profile) runs once per photo at every frame width and scale factor in GRID; a combination's
detections are the union of its passes' merged as `detect` merges them, and its time is the sum of
its passes' times (each pass resizes and equalises the frame itself, which `detect` does once per
width: a ms or two more per pass).
Writes reports/group_photos_passes.json: every combination and the ones no faster combination beats
on recall (the frontier).
"""
from __future__ import annotations

import argparse
import itertools
import json
import time
from pathlib import Path

import cv2
import numpy as np

from core.detection import DetectorPass, MultiFaceDetector, MultiFaceOptions, merge_detections
from core.files import write_text
from core.image_input import as_gray_uint8
from training.evaluate_group_photos import counted, match, scenes

REPO = Path(__file__).resolve().parents[1]
ROLLED_DEG = (-20.0, 20.0)
GRID = ((640, 1.1), (640, 1.2), (400, 1.1), (400, 1.2), (320, 1.1), (320, 1.2))   # (frame width, scale factor)
HEIGHT_BINS = ((0, 32), (32, 48), (48, 1000))


def pass_group(kind: str, width: int, scale_factor: float) -> tuple[DetectorPass, ...]:
    """The passes switched together: rolled passes both ways, profile passes both ways."""
    if kind == "frontal":
        return (DetectorPass("frontal", width, 0.0, scale_factor),)
    if kind == "rolled":
        return tuple(DetectorPass("frontal_rolled", width, a, scale_factor) for a in ROLLED_DEG)
    return (DetectorPass("profile", width, 0.0, scale_factor), DetectorPass("profile_mirrored", width, 0.0, scale_factor))


def run_passes(photos, detector: MultiFaceDetector, passes) -> dict:
    """pass -> (detections per photo, seconds per photo)."""
    grays = [as_gray_uint8(p.image, "image") for p in photos]
    out = {}
    for one in passes:
        found, seconds = [], []
        for gray in grays:
            t0 = time.perf_counter()
            found.append(detector.run_pass(gray, one))
            seconds.append(time.perf_counter() - t0)
        out[one] = (found, seconds)
        print(f"{one}: {1000 * np.median(seconds):.0f} ms", flush=True)
    return out


def score(photos, results: dict, passes, merge_overlap: float) -> dict:
    """Recall (all faces, by height, rolled faces), false faces per photo and median time of a combination."""
    rows, false_faces = [], 0
    for i, photo in enumerate(photos):
        found = merge_detections([d for one in passes for d in results[one][0][i]], merge_overlap)
        matched = match([d.face_box for d in found], photo)
        false_faces += len(found) - len(matched)
        rows += [(gi in matched, f.height_px, abs(f.angle_deg) >= 10) for gi, f in enumerate(photo.faces) if counted(f)]
    hit = np.array([r[0] for r in rows])
    height = np.array([r[1] for r in rows])
    rolled = np.array([r[2] for r in rows])
    ms = 1000 * np.sum([results[one][1] for one in passes], axis=0)
    return {"recall": float(hit.mean()),
            **{f"recall_{lo}_{hi}px": float(hit[(height >= lo) & (height < hi)].mean()) for lo, hi in HEIGHT_BINS},
            "recall_rolled": float(hit[rolled].mean()),
            "false_faces_per_photo": false_faces / len(photos), "detection_ms_median": float(np.median(ms))}


def combinations():
    """(name, passes): upright frontal at full width, rolled and profile passes each off or at any GRID setting."""
    optional = [None, *GRID]
    for frontal_sf in (1.1, 1.2):
        for rolled, profile in itertools.product(optional, optional):
            passes = pass_group("frontal", 640, frontal_sf)
            name = f"frontal 640@{frontal_sf}"
            if rolled:
                passes += pass_group("rolled", *rolled)
                name += f", rolled {rolled[0]}@{rolled[1]}"
            if profile:
                passes += pass_group("profile", *profile)
                name += f", profile {profile[0]}@{profile[1]}"
            yield name, passes


def frontier(rows: list[dict]) -> list[dict]:
    """The combinations that no quicker one matches on recall."""
    best, out = -1.0, []
    for row in sorted(rows, key=lambda r: r["detection_ms_median"]):
        if row["recall"] > best:
            best = row["recall"]
            out.append(row)
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scenes", type=int, default=150)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--json", type=Path, default=REPO / "reports" / "group_photos_passes.json")
    args = ap.parse_args(argv)
    cv2.setNumThreads(1)   # one thread, as in a batch worker
    photos = scenes("validation", args.scenes, args.seed)
    every = {p for kind in ("frontal", "rolled", "profile") for w, sf in GRID for p in pass_group(kind, w, sf)
             if kind != "frontal" or w == 640}
    with MultiFaceDetector(MultiFaceOptions.thorough()) as detector:   # 3 neighbours, as when the README's table was made
        results = run_passes(photos, detector, sorted(every, key=lambda p: (p.kind, -p.max_width_px, p.scale_factor, p.angle_deg)))
        rows = [{"passes": name, **score(photos, results, passes, detector.options.merge_overlap)}
                for name, passes in combinations()]
    best = frontier(rows)
    for row in best:
        print(json.dumps(row))
    out = {"scenes": args.scenes, "seed": args.seed, "frontier": best, "all": rows}
    write_text(args.json, json.dumps(out, indent=2))
    print(f"saved {args.json}")


if __name__ == "__main__":
    main()
