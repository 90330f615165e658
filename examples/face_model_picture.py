"""Write a picture of the face model: neutral and a few FACS shapes, with its 68 landmarks.

Run: .venv/bin/python -m examples.face_model_picture [--out out/face_model.png]
"""
from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np

from core.face.camera import focal_from_mm, head_rotation, principal_point, project
from core.face.face_model import load_face_model
from core.face.facs import FACS_NAMES
from core.io.files import write_image
from core.face.render import render_face

from evaluation.paths import REPO_ROOT

TILES = (
    ("neutral", {}, 0.0),
    ("neutral, turned", {}, 35.0),
    ("JawOpen", {"JawOpen": 1.0}, 0.0),
    ("MouthSmile_L+R", {"MouthSmile_L": 1.0, "MouthSmile_R": 1.0}, 0.0),
    ("EyeBlink_L", {"EyeBlink_L": 1.0}, 0.0),
    ("BrowsU_C", {"BrowsU_C": 1.0}, 0.0),
    ("LipsPucker", {"LipsPucker": 1.0}, 0.0),
    ("JawLeft + MouthLeft", {"JawLeft": 1.0, "MouthLeft": 1.0}, -25.0),
)


def tile(model, weights: dict[str, float], yaw_deg: float, size: int = 320) -> np.ndarray:
    x = np.zeros(len(FACS_NAMES))
    for name, value in weights.items():
        x[FACS_NAMES.index(name)] = value
    verts = model.vertices(expression=x)
    focal = focal_from_mm(50.0, size)
    rot = head_rotation(np.radians(yaw_deg), 0.0, 0.0)
    t = np.array([0.0, 1.5, focal * 30.0 / size])  # the head (30 cm) fills the tile
    img, _, _ = render_face(model, verts, rot, t, focal, (size, size),
                            background=np.full((size, size, 3), 40, np.uint8))
    lm = project(verts[model.landmark_vertex_ids] @ rot.T + t, focal, principal_point((size, size)))
    for i, (u, v) in enumerate(lm):
        cv2.circle(img, (int(round(u)), int(round(v))), 2, (0, 0, 255) if i < 17 else (0, 220, 0), -1, cv2.LINE_AA)
    return img


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", type=Path, default=None)
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "out" / "face_model.png")
    args = parser.parse_args()
    model = load_face_model(args.model)
    tiles = []
    for label, weights, yaw in TILES:
        img = tile(model, weights, yaw)
        cv2.putText(img, label, (8, 22), cv2.FONT_HERSHEY_SIMPLEX, 0.55, (255, 255, 255), 1, cv2.LINE_AA)
        tiles.append(img)
    grid = np.vstack([np.hstack(tiles[:4]), np.hstack(tiles[4:])])
    write_image(args.out, grid)
    print(f"wrote {args.out} ({grid.shape[1]}x{grid.shape[0]}): neutral and FACS shapes, "
          "landmarks in green, jaw (silhouette) points in red")


if __name__ == "__main__":
    main()
