"""maskcap's face mask against the one a user would otherwise make: MediaPipe's face oval, filled.

Run: .venv/bin/python -m bench.segmentation_peers [--limit 200]
On lfw_parts validation (face = label 1), clean and under the synthetic occlusions of
evaluation.segmentation (a recoloured hand, a rectangle; same seeds), IoU against the
label of: MediaPipe FaceMesh (static mode) with its FACEMESH_FACE_OVAL polygon filled (the
usual quick face matte), maskcap's segment() with its own Viola-Jones box (what a user gets
without a box), and maskcap's segment() given the label's box (the README's figure). A tool that
finds no face gives an empty mask, which counts (IoU 0). Note that the oval leaves out the ears,
which lfw_parts counts as face. Writes bench/results/segmentation_peers.json.
"""
from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse  # noqa: E402
import tempfile  # noqa: E402
from pathlib import Path  # noqa: E402

import cv2  # noqa: E402
import numpy as np  # noqa: E402

from core.segment.segmentation import FaceSegmenter  # noqa: E402

from .common import machine, write_json  # noqa: E402
from .peers import ensure_peer_envs, run_tool  # noqa: E402

OCCLUSIONS = ("none", "hand", "rectangle")


def oval_mask(points468: np.ndarray, oval: np.ndarray, shape) -> np.ndarray:
    """The face-oval polygon of a mesh filled as a {0, 1} mask (empty when there is no face)."""
    mask = np.zeros(shape[:2], np.uint8)
    if np.isfinite(points468[0, 0]):
        cv2.fillPoly(mask, [np.round(points468[oval]).astype(np.int32)], 1)
    return mask


def iou(pred: np.ndarray, truth: np.ndarray) -> float:
    p, t = pred.astype(bool), truth.astype(bool)
    union = (p | t).sum()
    return float((p & t).sum() / union) if union else 1.0


def main() -> None:
    from evaluation.segmentation import label_box
    from evaluation.paths import REPO_ROOT, require_data
    from training.segmenter.data import label_folder_source, load_hands, occlude_for_evaluation

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--limit", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    ensure_peer_envs()
    source = label_folder_source(require_data("lfw_parts") / "validation")
    hands = load_hands()
    samples = [source.load(i) for i in range(min(args.limit, len(source)))]
    report = {"machine": machine(), "images": len(samples), "data": "lfw_parts validation, face = label 1",
              "by_occlusion": {}}
    example_rows = []
    with FaceSegmenter() as segmenter, tempfile.TemporaryDirectory(prefix="maskcap_segpeers_") as tmp:
        for occlusion in OCCLUSIONS:
            cases = []
            for k, (image, face) in enumerate(samples):
                if occlusion != "none":  # the seeds of evaluation.segmentation
                    image, face = occlude_for_evaluation(image, face, args.seed * 100003 + k, hands, occlusion)
                cases.append((image, face))
            images = np.stack([c[0] for c in cases])
            _, arrays = run_tool("mediapipe", "stills", images, Path(tmp))
            oval = arrays["face_oval"]
            scores = {"mediapipe_face_oval": [], "maskcap_own_box": [], "maskcap_label_box": []}
            found = {"mediapipe_face_oval": 0, "maskcap_own_box": 0}
            for k, (image, face) in enumerate(cases):
                mp_mask = oval_mask(arrays["points"][k], oval, image.shape)
                own = segmenter.segment(image)
                box = label_box(face)
                labelled = segmenter.segment(image, box) if box is not None else np.zeros_like(face)
                found["mediapipe_face_oval"] += bool(np.isfinite(arrays["points"][k][0, 0]))
                found["maskcap_own_box"] += bool(own.any())
                scores["mediapipe_face_oval"].append(iou(mp_mask, face))
                scores["maskcap_own_box"].append(iou(own, face))
                scores["maskcap_label_box"].append(iou(labelled, face))
                if k == 3:
                    example_rows.append(side_by_side(image, face, mp_mask, own))
            report["by_occlusion"][occlusion] = {
                name: {"mean_iou": float(np.mean(v)), "median_iou": float(np.median(v)),
                       "face_found_share": found[name] / len(cases) if name in found else None}
                for name, v in scores.items()}
            r = report["by_occlusion"][occlusion]
            print(f"{occlusion:9s}: IoU MediaPipe oval {r['mediapipe_face_oval']['mean_iou']:.3f} "
                  f"(face in {100 * r['mediapipe_face_oval']['face_found_share']:.0f} %), maskcap own box "
                  f"{r['maskcap_own_box']['mean_iou']:.3f} "
                  f"(face in {100 * r['maskcap_own_box']['face_found_share']:.0f} %), "
                  f"maskcap label box {r['maskcap_label_box']['mean_iou']:.3f}", flush=True)
    from core.io.files import write_image
    write_image(REPO_ROOT / "reports" / "segmentation_peers_example.jpg", np.vstack(example_rows))
    report["example"] = "reports/segmentation_peers_example.jpg (rows: clean, hand, rectangle; columns: image, "
    report["example"] += "label, MediaPipe oval, maskcap)"
    path = write_json("segmentation_peers.json", report)
    print(f"saved {path}")


def side_by_side(image, face, mp_mask, maskcap_mask) -> np.ndarray:
    """image | label | MediaPipe oval | maskcap, masks tinted green over the image."""
    def tint(mask):
        out = image.copy()
        m = mask.astype(bool)
        out[m] = (0.5 * out[m] + np.array([0, 120, 0])).astype(np.uint8)
        return out
    return np.hstack([image, tint(face), tint(mp_mask), tint(maskcap_mask)])


if __name__ == "__main__":
    main()
