"""Which of MediaPipe FaceMesh's 468 points stands for each of the 68 iBUG points.

Run: .venv/bin/python -m bench.mediapipe_ibug68
Built by nearest neighbour on faces where both are known: MediaPipe (static mode) runs on the
landmarks68 photos, and each iBUG point gets the mesh point with the smallest mean distance to the
human annotation (in units of the outer-eye-corner distance) over 9 in 10 of the photos; the
10th (every 10th name, the project's held-out split) measures the mapped points' error. The
jaw points 0-16 are silhouette points that slide over the face as it turns, so no fixed mesh
point matches them exactly; they carry the largest error. Writes
bench/results/mediapipe_to_ibug68.json, which bench.occlusion_peers reads.
"""
from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse  # noqa: E402
import json  # noqa: E402
import tempfile  # noqa: E402
from pathlib import Path  # noqa: E402

import cv2  # noqa: E402
import numpy as np  # noqa: E402

from .common import RESULTS_DIR, write_json  # noqa: E402
from .peers import ensure_peer_envs, run_tool  # noqa: E402

MAPPING_FILE = "mediapipe_to_ibug68.json"


def interocular(points68: np.ndarray) -> float:
    return float(np.linalg.norm(points68[36] - points68[45]))


def build_mapping(mesh: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """(68,) mesh indices minimising the mean normalised distance over the faces (N, 468, 2) / (N, 68, 2)."""
    scale = np.array([interocular(t) for t in truth])[:, None]
    mapping = np.zeros(truth.shape[1], np.int64)
    for j in range(truth.shape[1]):
        d = np.linalg.norm(mesh - truth[:, j:j + 1, :], axis=2) / scale  # (N, 468)
        mapping[j] = int(np.argmin(d.mean(0)))
    return mapping


def nme(points68: np.ndarray, truth: np.ndarray, subset=slice(None)) -> np.ndarray:
    """Per face: mean distance over the points in subset / the truth's outer-eye-corner distance."""
    return np.array([np.linalg.norm(p[subset] - t[subset], axis=1).mean() / interocular(t)
                     for p, t in zip(points68, truth)])


def load_mapping() -> np.ndarray:
    path = RESULTS_DIR / MAPPING_FILE
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing: make it with `python -m bench.mediapipe_ibug68`")
    return np.array(json.loads(path.read_text())["mesh_index_of_ibug68"], np.int64)


def main() -> None:
    from evaluation.paths import require_data

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--limit", type=int, default=600, help="photos used (every other of the sorted names)")
    args = parser.parse_args()
    ensure_peer_envs()
    root = require_data("landmarks68")
    meta = sorted((im for im in json.loads((root / "landmarks.json").read_text())["images"] if im["split"] == "train"),
                  key=lambda im: Path(im["file"]).name)
    held_out = {Path(im["file"]).name for im in meta[::10]}
    chosen = [im for k, im in enumerate(meta) if k % 2 == 0 or Path(im["file"]).name in held_out][:args.limit]
    images = np.stack([cv2.imread(str(root / im["file"])) for im in chosen])
    truth = np.array([im["points"] for im in chosen], np.float64)
    with tempfile.TemporaryDirectory(prefix="maskcap_mp68_") as tmp:
        report, arrays = run_tool("mediapipe", "stills", images, Path(tmp))
    mesh = arrays["points"].astype(np.float64)
    found = np.isfinite(mesh[:, 0, 0])
    is_held = np.array([Path(im["file"]).name in held_out for im in chosen])
    fit_set, test_set = found & ~is_held, found & is_held
    mapping = build_mapping(mesh[fit_set], truth[fit_set])
    errors = nme(mesh[test_set][:, mapping], truth[test_set])
    inner = nme(mesh[test_set][:, mapping], truth[test_set], slice(17, 68))
    result = {
        "mesh_index_of_ibug68": mapping.tolist(),
        "method": "nearest neighbour: per iBUG point, the FaceMesh point with the least mean distance "
                  "(/ outer-eye-corner distance) to the human landmarks68 annotation",
        "photos_used_to_build": int(fit_set.sum()), "photos_held_out": int(test_set.sum()),
        "mediapipe_found_face_share": float(found.mean()),
        "held_out_nme_mean": float(errors.mean()), "held_out_nme_median": float(np.median(errors)),
        "held_out_nme_inner_51_mean": float(inner.mean()),
        "note": "landmarks68 is 300-W (AFW, HELEN); the jaw points are silhouette points, which a fixed mesh "
                "point only approximates",
    }
    path = write_json(MAPPING_FILE, result)
    print(f"MediaPipe found a face in {100 * found.mean():.0f} % of {len(found)} photos; mapped 68 points on "
          f"{test_set.sum()} held-out photos: NME {100 * errors.mean():.2f} % (median {100 * np.median(errors):.2f} %, "
          f"inner 51 points {100 * inner.mean():.2f} %); saved {path}")


if __name__ == "__main__":
    main()
