"""Synthetic eyeglasses and sunglasses drawn over a face crop (an occlusion augmentation).

maskcap's face region leaves out glasses frames and sunglasses, but `lfw_parts` labels glasses as
skin and the network learnt to call them face (training.diagnose_glasses: 79 % of CelebAMask's
glasses pixels). Here frames (rims, bridge, temples) and dark lenses are drawn where a face's
eyes are likely to be, and the target loses them; clear lenses leave the eyes visible, so the
face behind them stays face, as the face region defines it.
"""
from __future__ import annotations

import math

import cv2
import numpy as np

EYE_LINE = 0.42        # eye line, as a share of the face mask's height from its top (hairline)
LENS_OFFSET = 0.22     # lens centre from the face's centre line, share of the face's width
LENS_WIDTH = 0.31      # share of the face's width


def face_axes(angle_deg: float, flipped: bool) -> tuple[np.ndarray, np.ndarray]:
    """Unit vectors of the face's right and down in a crop made by training.segmentation_data's
    crop_affine(angle_deg), mirrored or not: the face's upright frame inside the crop."""
    a = math.radians(-angle_deg if flipped else angle_deg)
    return np.array([math.cos(a), -math.sin(a)]), np.array([math.sin(a), math.cos(a)])


def lens_outline(width: float, height: float, squareness: float, points: int = 48) -> np.ndarray:
    """(points, 2) outline of a lens centred at 0: a superellipse from oval (2) to boxy (5)."""
    t = np.linspace(0.0, 2.0 * math.pi, points, endpoint=False)
    c, s = np.cos(t), np.sin(t)
    x = np.sign(c) * np.abs(c) ** (2.0 / squareness) * width / 2.0
    y = np.sign(s) * np.abs(s) ** (2.0 / squareness) * height / 2.0
    return np.stack([x, y], 1)


def draw_glasses(crop: np.ndarray, target: np.ndarray, rng: np.random.Generator,
                 angle_deg: float = 0.0, flipped: bool = False, p_sunglasses: float = 0.4):
    """(crop, target) with a pair of glasses over the face's eyes; target loses the frames and
    dark lenses. A crop without face pixels comes back unchanged."""
    ex, ey = face_axes(angle_deg, flipped)
    ys, xs = np.nonzero(target)
    if len(xs) < 50:
        return crop, target
    pts = np.stack([xs, ys], 1).astype(np.float64)
    u, v = pts @ ex, pts @ ey
    width, height = u.max() - u.min(), v.max() - v.min()
    centre_u = 0.5 * (u.min() + u.max()) + rng.normal(0, 0.03) * width
    eye_v = v.min() + (EYE_LINE + rng.normal(0, 0.03)) * height
    lens_w = LENS_WIDTH * width * rng.uniform(0.85, 1.2)
    lens_h = lens_w * rng.uniform(0.55, 0.9)
    offset = LENS_OFFSET * width * rng.uniform(0.92, 1.08)
    outline = lens_outline(lens_w, lens_h, rng.uniform(2.0, 5.0))

    def to_crop(uv: np.ndarray) -> np.ndarray:
        return uv[:, :1] * ex + uv[:, 1:] * ey

    lenses = [to_crop(outline + [centre_u + side * offset, eye_v]) for side in (-1, 1)]
    scale = 4  # drawn at 4x and averaged down: anti-aliased edges, sub-pixel thin rims
    big = (crop.shape[0] * scale, crop.shape[1] * scale)
    frame = np.zeros(big, np.uint8)
    lens_fill = np.zeros(big, np.uint8)
    thick = max(1, int(round(rng.uniform(0.6, 3.0) * scale)))
    for lens in lenses:
        poly = np.round(lens * scale).astype(np.int32)
        cv2.fillPoly(lens_fill, [poly], 255)
        cv2.polylines(frame, [poly], True, 255, thick)
    inner = [centre_u - offset + lens_w / 2, centre_u + offset - lens_w / 2]
    bridge_v = eye_v - lens_h * rng.uniform(0.0, 0.3)
    bridge = to_crop(np.array([[inner[0], bridge_v], [inner[1], bridge_v]])) * scale
    cv2.line(frame, tuple(np.round(bridge[0]).astype(int)), tuple(np.round(bridge[1]).astype(int)), 255, thick)
    for side, edge in ((-1, u.min()), (1, u.max())):  # temples run from the lens to the face's side
        start_u = centre_u + side * (offset + lens_w / 2)
        temple = to_crop(np.array([[start_u, eye_v - lens_h * 0.3], [edge + side * 0.05 * width, eye_v - lens_h * 0.2]]))
        temple = np.round(temple * scale).astype(int)
        cv2.line(frame, tuple(temple[0]), tuple(temple[1]), 255, thick)
    size = (crop.shape[1], crop.shape[0])
    frame_a = cv2.resize(frame, size, interpolation=cv2.INTER_AREA).astype(np.float32) / 255.0
    lens_a = cv2.resize(lens_fill, size, interpolation=cv2.INTER_AREA).astype(np.float32) / 255.0

    sunglasses = rng.random() < p_sunglasses
    if rng.random() < 0.7:  # dark plastic or metal
        frame_colour = rng.uniform(5, 70, 3)
    else:  # gold, silver, bright plastic
        frame_colour = rng.uniform(90, 230, 3)
    out = crop.astype(np.float32)
    if sunglasses:
        tint = rng.uniform(5, 60) + rng.uniform(-15, 15, 3)
        ramp = np.clip((np.arange(crop.shape[0])[:, None] - eye_v) / max(lens_h, 1.0), -1, 1)  # lighter below
        lens_colour = np.clip(tint[None, None] + 20.0 * ramp[..., None] * rng.uniform(0, 1), 0, 255)
        opacity = rng.uniform(0.8, 1.0)
        la = (lens_a * opacity)[..., None]
        out = out * (1 - la) + lens_colour * la
    else:  # clear lenses: a faint tint and glare
        la = (lens_a * rng.uniform(0.0, 0.15))[..., None]
        out = out * (1 - la) + rng.uniform(150, 255) * la
    fa = frame_a[..., None]
    out = out * (1 - fa) + frame_colour[None, None] * fa
    covered = frame_a > 0.5
    if sunglasses:
        covered |= lens_a > 0.5
    target = target.copy()
    target[covered] = 0
    return np.clip(out, 0, 255).astype(np.uint8), target
