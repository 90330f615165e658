"""maskcap's face detection and masks against deface 1.5.0 (CenterFace, ellipse masks), in the same run.

    .venv/bin/python -m bench.detector_peers [--scenes 150] [--seed 7] [--clip-frames 150]

deface runs in its own venv, .venv-deface (made here with `pip install deface==1.5.0` when missing;
the run stops with a message saying so when that cannot be done), as its command line would run it:
its CenterFace class at its default threshold 0.2 on the frame's own size, its default backend
(OpenCV's DNN module when `onnx` is not installed, as after `pip install deface`). It is a
comparison only, never a run-time dependency of maskcap.

1. Group photos (evaluation.detector_recall's hard scenes: faces 40-220 px, 40 % rolled 10-45
   degrees, a third under a hand or a rectangle, 15 % profiles; and greyscale copies): faces found
   (recall per group and skin tone), false faces per photo, images per second of detection.
2. Footage (../shared/data/videos, --clip-frames frames of each clip): on the clips with one
   person, the frames where each tool finds the face and the extra boxes per frame (false faces);
   on the stage clip, faces per frame and how often the tools agree; frames per second.
3. Masks on lfw_parts validation (500 photos, 250x250; and the same photos with a recoloured hand
   over the face, training.segmenter.data.occlude_for_evaluation): IoU per face with the face label
   (maskcap's face region minus the hand) of maskcap's mask (segment_all on the CNN's boxes) and
   of deface's ellipse (its box grown by its default mask scale 1.3, the inscribed ellipse), the
   face nearest the photo's centre; a face a tool misses scores 0.
Writes bench/results/detector_peers.json.
"""
from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse  # noqa: E402
import json  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import cv2  # noqa: E402
import numpy as np  # noqa: E402

from bench.common import machine, write_json  # noqa: E402
from core.detect.cnn import CnnFaceDetector  # noqa: E402
from core.segment.segmentation import FaceSegmenter  # noqa: E402
from evaluation.detector_recall import face_rows, greyscale, hard_scenes, summarise  # noqa: E402
from evaluation.paths import REPO_ROOT, require_data  # noqa: E402

VENV = REPO_ROOT / ".venv-deface"
WORKER = REPO_ROOT / "bench" / "deface_worker.py"
DEFACE = "deface==1.5.0"
DEFACE_MASK_SCALE = 1.3     # deface's --mask-scale default
SINGLE_PERSON_CLIPS = ("webcam_hand_occlusion", "webcam_talking", "fgnet_talking_face")
STAGE_CLIP = "multi_person_stage"


def ensure_deface_venv() -> Path:
    """.venv-deface's python, made with deface 1.5.0 when missing; SystemExit with a message if that fails."""
    python = VENV / "bin" / "python"
    if python.exists():
        return python
    print(f"setting up {VENV} ({DEFACE}) for the comparison ...", file=sys.stderr, flush=True)
    try:
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
        subprocess.run([str(VENV / "bin" / "pip"), "install", "-q", DEFACE], check=True)
    except (OSError, subprocess.CalledProcessError) as exc:
        raise SystemExit(f"skipped: could not set up deface's venv {VENV} ({exc}); "
                         f"make it by hand with `python3.11 -m venv {VENV} && {VENV}/bin/pip install {DEFACE}`")
    return python


def run_deface(python: Path, frames: np.ndarray, workdir: Path) -> dict:
    path = workdir / "frames.npy"
    np.save(path, np.ascontiguousarray(frames))
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1")
    done = subprocess.run([str(python), str(WORKER), "--frames", str(path)], capture_output=True, text=True, env=env)
    if done.returncode != 0:
        raise RuntimeError(f"deface failed with exit status {done.returncode}:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def run_maskcap(detector: CnnFaceDetector, frames) -> dict:
    boxes, face_boxes, ms = [], [], []
    for frame in frames:
        t0 = time.perf_counter()
        found = detector.detect(frame)
        ms.append((time.perf_counter() - t0) * 1000.0)
        boxes.append([list(f.box) for f in found])
        face_boxes.append([f.face_box for f in found])
    return {"boxes": boxes, "face_boxes": face_boxes, "ms": ms}


def speed(ms) -> dict:
    return {"ms_median": round(float(np.median(ms)), 1), "images_per_second": round(1000.0 / float(np.median(ms)), 2)}


def square(box):
    """deface's box as a box the group-photo matching compares with a face region's longer side."""
    x, y, w, h = box
    side = max(w, h)
    return (x + w / 2 - side / 2, y + h / 2 - side / 2, side, side)


def group_photos(python: Path, detector: CnnFaceDetector, scenes: int, seed: int, workdir: Path) -> dict:
    photos = hard_scenes("validation", scenes, seed)
    out = {}
    for grey in (False, True):
        frames = np.stack([greyscale(p.image) if grey else p.image for p in photos])
        suffix = ", greyscale" if grey else ""
        ours = run_maskcap(detector, frames)
        theirs = run_deface(python, frames, workdir)
        for tool, boxes, ms in (("maskcap", ours["face_boxes"], ours["ms"]),
                                ("deface", [[square(b) for b in bs] for bs in theirs["boxes"]], theirs["ms"])):
            rows, false = [], 0
            for photo, found in zip(photos, boxes):
                r, f = face_rows(photo, found)
                rows += r
                false += f
            out[tool + suffix] = {**summarise(rows, false, len(photos)), **speed(ms)}
            if tool == "deface":
                out[tool + suffix]["backend"] = theirs["backend"]
    return out


def iou_boxes(a, b) -> float:
    w = min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0])
    h = min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1])
    inter = max(w, 0) * max(h, 0)
    return inter / (a[2] * a[3] + b[2] * b[3] - inter) if inter > 0 else 0.0


def footage(python: Path, detector: CnnFaceDetector, count: int, workdir: Path) -> dict:
    from bench.peers import decode
    out = {}
    for clip in (*SINGLE_PERSON_CLIPS, STAGE_CLIP):
        frames, _ = decode(clip, count)
        ours, theirs = run_maskcap(detector, frames), run_deface(python, frames, workdir)
        row = {"frames": len(frames), "size": [int(frames.shape[2]), int(frames.shape[1])],
               "maskcap": speed(ours["ms"]), "deface": speed(theirs["ms"])}
        for tool, boxes in (("maskcap", ours["boxes"]), ("deface", theirs["boxes"])):
            counts = np.array([len(b) for b in boxes])
            if clip in SINGLE_PERSON_CLIPS:
                row[tool].update({"frames_with_the_face": round(float((counts >= 1).mean()), 4),
                                  "extra_boxes_per_frame": round(float(np.maximum(counts - 1, 0).mean()), 4)})
            else:
                row[tool]["faces_per_frame"] = round(float(counts.mean()), 3)
        if clip == STAGE_CLIP:   # agreement, face by face: boxes overlapping by IoU > 0.3
            both = only_ours = only_theirs = 0
            for a, b in zip(ours["boxes"], theirs["boxes"]):
                shared = sum(any(iou_boxes(x, y) > 0.3 for y in b) for x in a)
                both += shared
                only_ours += len(a) - shared
                only_theirs += max(len(b) - shared, 0)
            row["faces_found_by_both"], row["only_maskcap"], row["only_deface"] = both, only_ours, only_theirs
        out[clip] = row
        print(f"footage {clip}: {json.dumps(row)}", flush=True)
    return out


def ellipse_mask(box, shape) -> np.ndarray:
    """deface's mask of a box: grown by its mask scale on every side, the inscribed ellipse."""
    x, y, w, h = box
    s = DEFACE_MASK_SCALE - 1.0
    x0, y0, x1, y1 = np.round([x - w * s, y - h * s, x + w + w * s, y + h + h * s]).astype(int)
    mask = np.zeros(shape[:2], np.uint8)
    cv2.ellipse(mask, (((x0 + x1) / 2.0, (y0 + y1) / 2.0), (float(x1 - x0), float(y1 - y0)), 0.0), 1, -1)
    return mask


def centre_face(boxes, centre):
    """Index of the box whose centre is nearest the photo's centre and inside a third of it, or None."""
    best, best_d = None, 1e9
    for i, (x, y, w, h) in enumerate(boxes):
        d = np.hypot(x + w / 2 - centre[0], y + h / 2 - centre[1])
        if d < best_d and d < centre[0] / 1.5:
            best, best_d = i, d
    return best


def mask_iou(python: Path, detector: CnnFaceDetector, segmenter: FaceSegmenter, workdir: Path) -> dict:
    from training.segmenter.data import load_hands, lfw_parts_source, occlude_for_evaluation
    source = lfw_parts_source("validation")
    hands = load_hands()
    out = {}
    for kind in ("clean", "hand"):
        images, truths = [], []
        for i in range(len(source)):
            image, face = source.load(i)
            if kind == "hand":
                image, face = occlude_for_evaluation(image, face, 1000 + i, hands, "hand")
            images.append(image)
            truths.append(face > 0)
        theirs = run_deface(python, np.stack(images), workdir)
        scores = {"maskcap": [], "deface": []}
        beyond = {"maskcap": [], "deface": []}    # share of the mask off the face (hair, hands, background)
        missed = {"maskcap": [], "deface": []}    # share of the face outside the mask (e.g. the forehead)
        for image, truth, their_boxes in zip(images, truths, theirs["boxes"]):
            centre = (image.shape[1] / 2, image.shape[0] / 2)
            faces = segmenter.segment_all(image, [f.face_box for f in detector.detect(image)])
            k = centre_face([f.box for f in faces], centre)
            ours = faces[k].mask > 0 if k is not None else np.zeros_like(truth)
            k = centre_face(their_boxes, centre)
            ellipse = ellipse_mask(their_boxes[k], image.shape) > 0 if k is not None else np.zeros_like(truth)
            for tool, mask in (("maskcap", ours), ("deface", ellipse)):
                union = np.count_nonzero(mask | truth)
                scores[tool].append(np.count_nonzero(mask & truth) / union if union else 1.0)
                if mask.any():
                    beyond[tool].append(np.count_nonzero(mask & ~truth) / np.count_nonzero(mask))
                if truth.any():
                    missed[tool].append(np.count_nonzero(truth & ~mask) / np.count_nonzero(truth))
        out[kind] = {}
        for tool, v in scores.items():
            out[kind][tool] = {"photos": len(v), "mean_iou": round(float(np.mean(v)), 4),
                               "median_iou": round(float(np.median(v)), 4),
                               "mask_share_off_the_face": round(float(np.mean(beyond[tool])), 4),
                               "face_share_outside_the_mask": round(float(np.mean(missed[tool])), 4)}
        print(f"lfw_parts validation masks ({kind}): {json.dumps(out[kind])}", flush=True)
    return out


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scenes", type=int, default=150)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--clip-frames", type=int, default=150)
    ap.add_argument("--skip", nargs="*", default=[], choices=("photos", "footage", "masks"))
    args = ap.parse_args(argv)
    require_data("lfw_parts")
    python = ensure_deface_venv()
    cv2.setNumThreads(1)
    out = {"machine": machine(), "deface": DEFACE, "deface_threshold": 0.2, "load_average_before": os.getloadavg()}
    with tempfile.TemporaryDirectory() as tmp, CnnFaceDetector() as detector, FaceSegmenter() as segmenter:
        workdir = Path(tmp)
        if "photos" not in args.skip:
            out["group_photos"] = group_photos(python, detector, args.scenes, args.seed, workdir)
            out["group_photos_scenes"] = {"scenes": args.scenes, "seed": args.seed}
            for tool, row in out["group_photos"].items():
                print(f"group photos, {tool}: recall {row['all']['recall']} of {row['all']['faces']}, false faces "
                      f"{row['false_faces_per_photo']}/photo, {row['images_per_second']} images/s; "
                      + ", ".join(f"{k} {v['recall']}" for k, v in row.items() if isinstance(v, dict) and "recall" in v)
                      + "; skin " + ", ".join(f"{k} {v['recall']} ({v['faces']})" for k, v in row["skin_tone_ita"].items()),
                      flush=True)
        if "footage" not in args.skip:
            out["footage"] = footage(python, detector, args.clip_frames, workdir)
        if "masks" not in args.skip:
            out["lfw_parts_masks"] = mask_iou(python, detector, segmenter, workdir)
    out["load_average_after"] = os.getloadavg()
    print(f"saved {write_json('detector_peers.json', out)}")


if __name__ == "__main__":
    main()
