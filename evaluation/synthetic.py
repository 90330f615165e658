"""Synthetic faces: landmarks projected from random known parameters, for fitting checks."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from core.face.camera import focal_from_mm, head_rotation, principal_point, project
from core.face.face_model import FaceModel
from core.face.facs import NUM_FACS


@dataclass
class SyntheticFace:
    landmarks: np.ndarray     # (68, 2) pixels, noise added
    clean: np.ndarray         # (68, 2) pixels, no noise
    rotation: np.ndarray
    translation: np.ndarray
    expression: np.ndarray
    identity: np.ndarray
    focal_px: float
    image_size: tuple[int, int]


def random_face(model: FaceModel, rng: np.random.Generator, image_size=(640, 480), noise_px=0.5,
                max_yaw_deg=60.0, active_fraction=0.2) -> SyntheticFace:
    """A face with yaw within ±max_yaw, pitch ±20°, roll ±20°, identity within 2 sd,
    a sparse expression (each shape active with probability active_fraction, weight U(0, 1)),
    focal 35-85 mm equivalent, face about a third of the image height.

    The jaw points are taken on the silhouette, as an annotator would place them.
    """
    from core.face.fitting import _bases, _positions, _silhouette_rows  # the fitting's own contour rule

    w, h = image_size
    yaw, pitch, roll = np.radians([rng.uniform(-max_yaw_deg, max_yaw_deg), rng.uniform(-20, 20), rng.uniform(-20, 20)])
    rot = head_rotation(yaw, pitch, roll)
    identity = np.clip(rng.standard_normal(model.num_identity), -2.0, 2.0)
    expression = np.where(rng.random(NUM_FACS) < active_fraction, rng.random(NUM_FACS), 0.0)
    focal = focal_from_mm(rng.uniform(35.0, 85.0), w)
    face_px = rng.uniform(0.25, 0.4) * h
    depth = focal * 16.0 / face_px                # the face is about 16 cm tall
    center = principal_point(image_size)
    shift = rng.uniform(-0.2, 0.2, 2) * np.array([w, h])
    t = np.array([shift[0] * depth / focal, shift[1] * depth / focal, depth])
    bases = _bases(model)
    pos = _positions(bases, identity, expression)
    rows = _silhouette_rows(bases, pos, rot, t, focal, center)
    clean = project(pos[rows] @ rot.T + t, focal, center)
    noisy = clean + rng.normal(0.0, noise_px, clean.shape)
    return SyntheticFace(noisy, clean, rot, t, expression, identity, focal, image_size)
