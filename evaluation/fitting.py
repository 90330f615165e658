"""Synthetic recovery check of the landmark fitting: known parameters in, errors out.

Run: .venv/bin/python -m evaluation.fitting [--faces 200] [--noise 0.5]
Faces: yaw within ±60°, pitch and roll within ±20°, identity within 2 sd, sparse expressions
in [0, 1], focal 35-85 mm equivalent, 640x480 images, Gaussian landmark noise. Prints and writes
reports/fitting_synthetic.json (rotation error, reprojection RMSE, focal ratio, per-shape
expression error).
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from core.face.camera import head_angles, rotation_angle_deg
from core.face.face_model import load_face_model
from core.face.facs import FACS_NAMES
from core.io.files import write_text
from core.face.fitting import fit_landmarks

from evaluation.paths import REPO_ROOT
from evaluation.synthetic import random_face


def evaluate(faces: int, noise_px: float, seed: int = 0) -> dict:
    model = load_face_model()
    rng = np.random.default_rng(seed)
    rows = []
    for _ in range(faces):
        face = random_face(model, rng, noise_px=noise_px)
        fit = fit_landmarks(model, face.landmarks, face.image_size)
        err = face.landmarks - fit.projected
        rows.append({
            "yaw_deg": float(np.degrees(head_angles(face.rotation)[0])),
            "rotation_error_deg": rotation_angle_deg(fit.rotation, face.rotation),
            "rmse_all_px": float(np.sqrt((err ** 2).sum(1).mean())),
            "rmse_inner_px": float(np.sqrt((err[17:] ** 2).sum(1).mean())),
            "error_to_clean_px": float(np.sqrt(((face.clean - fit.projected)[17:] ** 2).sum(1).mean())),
            "focal_ratio": fit.focal_px / face.focal_px,
            "expression_abs_error": np.abs(fit.expression - face.expression),
            "expression_true": face.expression,
        })
    rot = np.array([r["rotation_error_deg"] for r in rows])
    yaw = np.abs([r["yaw_deg"] for r in rows])
    ex_err = np.stack([r["expression_abs_error"] for r in rows])
    ex_true = np.stack([r["expression_true"] for r in rows])

    def stats(key):
        v = np.array([r[key] for r in rows])
        return {"median": float(np.median(v)), "p90": float(np.percentile(v, 90)), "max": float(v.max())}

    return {
        "faces": faces,
        "noise_px": noise_px,
        "rotation_error_deg": stats("rotation_error_deg"),
        "rotation_error_deg_by_abs_yaw": {
            f"{lo}-{lo + 20}": float(np.median(rot[(yaw >= lo) & (yaw < lo + 20)])) for lo in (0, 20, 40)},
        "reprojection_rmse_px_all68": stats("rmse_all_px"),
        "reprojection_rmse_px_inner51": stats("rmse_inner_px"),
        "inner51_error_to_noise_free_px": stats("error_to_clean_px"),
        "focal_ratio_fit_over_true": stats("focal_ratio"),
        "expression_mae": float(ex_err.mean()),
        "expression_mae_if_all_zero": float(ex_true.mean()),
        "expression_mae_per_shape": {n: float(e) for n, e in zip(FACS_NAMES, ex_err.mean(0))},
        "expression_mae_per_shape_if_all_zero": {n: float(e) for n, e in zip(FACS_NAMES, ex_true.mean(0))},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--faces", type=int, default=200)
    parser.add_argument("--noise", type=float, default=0.5, help="landmark noise sd in pixels")
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "reports" / "fitting_synthetic.json")
    args = parser.parse_args()
    report = evaluate(args.faces, args.noise)
    text = json.dumps(report, indent=2)
    write_text(args.out, text)
    print(text)


if __name__ == "__main__":
    main()
