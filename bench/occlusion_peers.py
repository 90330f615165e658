"""The paper's Fig. 8 protocol for maskcap and MediaPipe FaceMesh: error against occluder size.

Run: .venv/bin/python -m bench.occlusion_peers [--clip webcam_talking] [--frames 150]
Each tool's own unoccluded track of the clip is its reference (as in evaluation.occlusion,
whose grey box this reuses). Then every frame gets an occluder centred on the face (with a
little seeded jitter) of 10-60 % of the face box: a grey box, or a hand from ../shared/data/hands
recoloured to the face's skin tone and scaled so that its bounding box is that share of the face
box. Both tools see exactly the same occluded frames (placed on maskcap's reference face box).
Measured per size: the mean landmark distance to the tool's reference over the 68 iBUG points
(MediaPipe's through bench.mediapipe_ibug68's map), normalised by the reference's outer-eye-
corner distance; frames lost (no face, or maskcap's ok=False) among the reference's tracked
frames; and maskcap's blendshape error (mean absolute difference of the 46 weights).
MediaPipe's blendshapes need its Tasks API and a face_landmarker .task model file, which is not
in the wheel and cannot be downloaded here, so MediaPipe has no blendshape error.
Writes bench/results/occlusion_peers.json.
"""
from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse  # noqa: E402
import tempfile  # noqa: E402
from pathlib import Path  # noqa: E402

import cv2  # noqa: E402
import numpy as np  # noqa: E402

from core.io.files import write_image  # noqa: E402
from core.track.tracker import TrackerOptions  # noqa: E402
from evaluation.occlusion import SIZES, occlude, track  # noqa: E402
from evaluation.paths import REPO_ROOT  # noqa: E402

from .common import machine, write_json  # noqa: E402
from .mediapipe_ibug68 import load_mapping  # noqa: E402
from .peers import decode, ensure_peer_envs, run_tool  # noqa: E402

BLENDSHAPE_NOTE = ("MediaPipe FaceMesh (solutions API) gives no blendshapes; its Tasks FaceLandmarker does, "
                   "but needs the face_landmarker.task model file, which is not shipped in the wheel and cannot "
                   "be downloaded on this machine (no internet)")


def hand_occluder(image: np.ndarray, face_box, fraction: float, hand_rgba: np.ndarray, tone,
                  rng: np.random.Generator) -> np.ndarray:
    """A recoloured hand whose bounding box is fraction x the face box, centred on it with jitter."""
    from training.segmenter.data import recolour_hand

    x, y, w, h = face_box
    hh, hw = hand_rgba.shape[:2]
    scale = fraction * max(w, h) / max(hh, hw)
    size = (max(1, int(round(hw * scale))), max(1, int(round(hh * scale))))
    bgr = cv2.resize(np.ascontiguousarray(hand_rgba[:, :, :3]), size)
    alpha = cv2.resize(np.ascontiguousarray(hand_rgba[:, :, 3]), size)
    if tone is not None:
        bgr = recolour_hand(bgr, alpha, tone, np.random.default_rng(0))
    cx = x + w / 2 + rng.normal(0, 0.1) * w
    cy = y + h / 2 + rng.normal(0, 0.1) * h
    left, top = int(round(cx - size[0] / 2)), int(round(cy - size[1] / 2))
    out = image.astype(np.float32)
    y0, y1 = max(top, 0), min(top + size[1], image.shape[0])
    x0, x1 = max(left, 0), min(left + size[0], image.shape[1])
    if y1 <= y0 or x1 <= x0:
        return image.copy()
    a = alpha[y0 - top:y1 - top, x0 - left:x1 - left, None].astype(np.float32) / 255.0
    out[y0:y1, x0:x1] = out[y0:y1, x0:x1] * (1 - a) + bgr[y0 - top:y1 - top, x0 - left:x1 - left] * a
    return out.astype(np.uint8)


def errors(reference: np.ndarray, points: np.ndarray, usable: np.ndarray, found: np.ndarray) -> dict:
    """Landmark error (/ reference outer-eye distance) over frames both have; frames lost of usable."""
    both = usable & found
    err = [np.linalg.norm(points[i] - reference[i], axis=1).mean() / np.linalg.norm(reference[i][36] - reference[i][45])
           for i in np.flatnonzero(both)]
    return {"landmark_error": float(np.mean(err)) if err else None, "lost_frames": int((usable & ~found).sum()),
            "reference_frames": int(usable.sum())}


def main() -> None:
    from evaluation.paths import require_data
    from training.segmenter.data import load_hands, skin_tone_lab

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clip", default="webcam_talking")
    parser.add_argument("--frames", type=int, default=150)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    ensure_peer_envs()
    require_data("hands")
    cv2.setNumThreads(1)
    frames, _ = decode(args.clip, args.frames)
    mapping = load_mapping()
    options = TrackerOptions()
    hands = load_hands()
    hand = max(hands, key=lambda h: int((h.rgba[:, :, 3] > 128).sum())).rgba  # the largest: a flat palm-like cut-out
    with tempfile.TemporaryDirectory(prefix="maskcap_occl_") as tmp:
        workdir = Path(tmp)

        def mediapipe(batch):
            points = run_tool("mediapipe", "video", np.stack(batch), workdir)[1]["points"].astype(np.float64)
            return points[:, mapping], np.isfinite(points[:, 0, 0])

        ref_mc = track(list(frames), options)
        mc_usable = np.array([r.ok for r in ref_mc])
        mc_ref_points = np.array([r.landmarks if r.landmarks is not None else np.full((68, 2), np.nan) for r in ref_mc])
        mp_ref_points, mp_usable = mediapipe(list(frames))
        tone = skin_tone_lab(frames[0], ref_mc[0].mask) if ref_mc[0].ok else None
        report = {"machine": machine(), "clip": args.clip, "frames": len(frames),
                  "reference_tracked": {"maskcap": int(mc_usable.sum()), "mediapipe": int(mp_usable.sum())},
                  "occluder_placed_on": "maskcap's reference face box (the same occluded frames for both tools)",
                  "mediapipe_blendshapes": BLENDSHAPE_NOTE, "sizes": list(SIZES), "by_kind": {}}
        print(f"references: maskcap tracked {mc_usable.sum()}/{len(frames)}, MediaPipe {mp_usable.sum()}/{len(frames)}")
        for kind in ("box", "hand"):
            rows = {}
            for size in SIZES:
                rng = np.random.default_rng(args.seed)
                occluded = []
                for i, frame in enumerate(frames):
                    if not ref_mc[i].ok:
                        occluded.append(frame)
                    elif kind == "box":
                        occluded.append(occlude(frame, ref_mc[i].face_box, size, rng))
                    else:
                        occluded.append(hand_occluder(frame, ref_mc[i].face_box, size, hand, tone, rng))
                results = track(occluded, options)
                mc_points = np.array([r.landmarks if r.ok else np.full((68, 2), np.nan) for r in results])
                mc = errors(mc_ref_points, mc_points, mc_usable, np.array([r.ok for r in results]))
                both = mc_usable & np.array([r.ok for r in results])
                mc["blendshape_error"] = float(np.mean([np.abs(results[i].blendshapes - ref_mc[i].blendshapes).mean()
                                                        for i in np.flatnonzero(both)])) if both.any() else None
                mp_points, mp_found = mediapipe(occluded)
                mp = errors(mp_ref_points, mp_points, mp_usable, mp_found)
                rows[f"{size:.1f}"] = {"maskcap": mc, "mediapipe": mp}
                if size == 0.4:  # an example frame for the report
                    write_image(REPO_ROOT / "reports" / f"occlusion_{kind}_40.png", occluded[len(occluded) // 2])
                print(f"{kind} {size:.0%}: maskcap error {mc['landmark_error']}, lost {mc['lost_frames']}, "
                      f"blendshapes {mc['blendshape_error']}; MediaPipe error {mp['landmark_error']}, "
                      f"lost {mp['lost_frames']}", flush=True)
            report["by_kind"][kind] = rows
    path = write_json("occlusion_peers.json", report)
    print(f"saved {path}")


if __name__ == "__main__":
    main()
