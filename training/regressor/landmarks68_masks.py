"""Face-region masks for the landmarks68 images, rendered from their fitted face models.

Run after training.regressor.fit_landmarks68: .venv/bin/python -m training.regressor.landmarks68_masks
Writes build/landmarks68_masks/<image stem>.png (uint8, 255 = face, 0 = not) and a preview.
maskcap's face region here: the model's "face" (ICT's narrow face area: hairline to chin) and
"ears" regions (ears included, as in lfw_parts' skin class), the visible eyeballs, and the
mouth socket, teeth and gums (an open mouth is face); not the throat, the back of the head or hair. The mask covers what the model covers, so hair or
hands over the face in the photo are inside it: these masks are for images without occluders
or for compositing occluders on top (the ground truth is then the mask minus the occluder).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2
import numpy as np

from core.face.face_model import load_face_model
from core.io.files import write_image
from core.face.render import render_face

from evaluation.paths import BUILD_DIR, require_data

FACE_REGIONS = ("face", "ears", "eyeball", "mouth_socket", "teeth_and_gums")


def face_mask(model, identity, expression, rotation, translation, focal_px: float, size=(256, 256)) -> np.ndarray:
    """uint8 mask (255 = face region) of the posed face model, by z-buffer rendering."""
    verts = model.vertices(identity, expression)
    _, ids, regions = render_face(model, verts, rotation, translation, float(focal_px), size)
    wanted = np.isin(regions, [model.meta["regions"].index(r) for r in FACE_REGIONS])
    mask = np.zeros(ids.shape, np.uint8)
    hit = ids >= 0
    mask[hit] = wanted[ids[hit]].astype(np.uint8) * 255
    return mask


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--fits", type=Path, default=BUILD_DIR / "landmarks68_fits.npz")
    parser.add_argument("--out", type=Path, default=BUILD_DIR / "landmarks68_masks")
    args = parser.parse_args()
    if not args.fits.exists():
        sys.exit(f"{args.fits} not found: run `python -m training.regressor.fit_landmarks68` first")
    model = load_face_model()
    fits = dict(np.load(args.fits))
    root = require_data("landmarks68")
    args.out.mkdir(parents=True, exist_ok=True)
    files = fits["files"]
    preview = []
    for i, name in enumerate(files):
        mask = face_mask(model, fits["identity"][i], fits["expression"][i], fits["rotation"][i],
                         fits["translation"][i], fits["focal_px"][i])
        write_image(args.out / (Path(str(name)).stem + ".png"), mask)
        if i % max(1, len(files) // 12) == 0 and len(preview) < 12:
            img = cv2.imread(str(root / str(name)))
            tint = img.copy()
            tint[mask > 0] = (0.5 * tint[mask > 0] + [0, 110, 0]).astype(np.uint8)
            preview.append(np.hstack([img, tint]))
        if (i + 1) % 100 == 0:
            print(f"\r{i + 1}/{len(files)} masks", end="", file=sys.stderr, flush=True)
    print(file=sys.stderr)
    rows = [np.hstack(preview[k:k + 3]) for k in range(0, len(preview) - len(preview) % 3, 3)]
    write_image(BUILD_DIR / "landmarks68_masks_preview.jpg", np.vstack(rows))
    print(f"wrote {len(files)} masks to {args.out}")


if __name__ == "__main__":
    main()
