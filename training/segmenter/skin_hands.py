"""Hands made of the face's own skin: silhouettes filled with texture and shading sampled from
the face they cover, so that the segmenter must separate skin from skin (paper §4).

Why (diagnosis of the shipped model on lfw_parts validation crops, build/diag_* pictures): the
recoloured cut-outs of `training.segmenter.data.composite_hand` keep the hand's own texture, which is
a cleaner, paler, more uniform skin than the face's (paper photographed under one light), and
their bilinear warp of colour against a black border gives every finger a dark outline. A
network can learn "smooth skin with a dark rim = hand" instead of "skin in the shape of a hand".
Here the hand's colour and fine texture are those of the face's skin, only the silhouette and a
curved-surface shading (darker towards the silhouette, a random light direction, the hand's own
low-frequency shading) say it is a hand; the edge is premultiplied, so there is no fringe.

The ground truth is the face minus the hand (alpha > 0.5), as for the other occluders.
"""
from __future__ import annotations

import cv2
import numpy as np

from training.segmenter.hands import Hand, hand_placement, hand_with_forearm


def skin_texture(crop: np.ndarray, face: np.ndarray, rng: np.random.Generator):
    """(Lab mean of the face's skin, fine-texture image in L at crop size) or None.

    Skin = face pixels within the 15th..90th percentile of lightness (drops eyes, brows,
    nostrils and highlights). The texture is the face's high-pass lightness, clipped, then
    shifted by a random offset so that the hand does not carry the face's features in place."""
    if face is None or face.sum() < 200:
        return None
    lab = cv2.cvtColor(crop, cv2.COLOR_BGR2LAB).astype(np.float32)
    inside = face.astype(bool)
    light = lab[:, :, 0][inside]
    lo, hi = np.percentile(light, [15, 90])
    skin = inside & (lab[:, :, 0] >= lo) & (lab[:, :, 0] <= hi)
    if skin.sum() < 100:
        return None
    mean = lab[skin].mean(0)
    high = lab[:, :, 0] - cv2.GaussianBlur(lab[:, :, 0], (0, 0), 2.0)
    high = np.where(skin, np.clip(high, -8.0, 8.0), 0.0).astype(np.float32)
    # fill the non-skin part by copying skin texture from shifted copies of itself
    texture, have = high.copy(), skin.copy()
    for _ in range(6):
        dy, dx = rng.integers(-40, 41, size=2)
        shifted, shifted_have = np.roll(high, (dy, dx), (0, 1)), np.roll(skin, (dy, dx), (0, 1))
        take = ~have & shifted_have
        texture[take] = shifted[take]
        have |= take
    return mean, np.roll(texture, tuple(rng.integers(0, crop.shape[0], size=2)), (0, 1))


def shading(alpha: np.ndarray, own_light: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Multiplicative shading in L of a hand silhouette: darker towards its outline (a curved
    surface seen edge-on), a linear light gradient in a random direction, and the cut-out's
    own low-frequency shading (the folds between fingers)."""
    size = alpha.shape[0]
    inside = (alpha > 127).astype(np.uint8)
    depth = cv2.distanceTransform(inside, cv2.DIST_L2, 3)
    rim = 1.0 - rng.uniform(0.1, 0.3) * np.exp(-depth / rng.uniform(1.5, 4.0))
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size - 0.5
    angle = rng.uniform(0, 2 * np.pi)
    light = 1.0 + rng.uniform(0.0, 0.35) * (np.cos(angle) * xx + np.sin(angle) * yy)
    own = own_light / max(float(own_light[inside > 0].mean()), 1.0) if inside.any() else np.ones_like(rim)
    own = 1.0 + rng.uniform(0.3, 1.0) * (np.clip(own, 0.6, 1.4) - 1.0)
    return (rim * light * own).astype(np.float32)


def place_hand(hand: Hand, target: np.ndarray, size: int, rng: np.random.Generator):
    """(alpha, hand lightness) of a hand with its forearm warped into the crop, the fingers or
    palm over a random face pixel, the forearm leaving through the wrist side."""
    h, w = hand.rgba.shape[:2]
    rgba = hand_with_forearm(hand, rng)
    alpha = rgba[:, :, 3]
    lightness = cv2.cvtColor(np.ascontiguousarray(rgba[:, :, :3]), cv2.COLOR_BGR2LAB)[:, :, 0]
    m = hand_placement(h, w, target, size, rng)
    a = cv2.warpAffine(alpha, m, (size, size), flags=cv2.INTER_LINEAR, borderValue=0)
    # lightness warped premultiplied by alpha, then divided: no dark fringe at the outline
    la = cv2.warpAffine(lightness.astype(np.float32) * (alpha / 255.0), m, (size, size), flags=cv2.INTER_LINEAR)
    light = la / np.maximum(a.astype(np.float32) / 255.0, 1e-3)
    return a, light


def composite_skin_hand(crop: np.ndarray, target: np.ndarray, hand: Hand, rng: np.random.Generator):
    """`crop` with a hand of the face's own skin over it; returns (image, target minus the
    hand). With too few face pixels (negatives) the skin tone is a random plausible one."""
    size = crop.shape[0]
    sampled = skin_texture(crop, target, rng)
    if sampled is None:
        mean = np.array([rng.uniform(60, 210), rng.uniform(135, 160), rng.uniform(135, 165)], np.float32)
        texture = np.zeros((size, size), np.float32)
    else:
        mean, texture = sampled
    a, own_light = place_hand(hand, target, size, rng)
    if a.max() < 128:
        return crop, target
    mean = mean + rng.normal(0, [8.0, 2.0, 2.0])  # a hand is rarely exactly the face's tone
    lab = np.empty((size, size, 3), np.float32)
    lab[:, :, 0] = mean[0] * shading(a, own_light, rng) + texture * rng.uniform(0.6, 1.3)
    lab[:, :, 1], lab[:, :, 2] = mean[1], mean[2]
    hand_bgr = cv2.cvtColor(np.clip(lab, 0, 255).astype(np.uint8), cv2.COLOR_LAB2BGR).astype(np.float32)
    if rng.random() < 0.3:
        k = int(rng.choice([3, 5]))
        hand_bgr = cv2.GaussianBlur(hand_bgr, (k, k), 0)
        a = cv2.GaussianBlur(a, (k, k), 0)
    af = (a.astype(np.float32) / 255.0)[:, :, None]
    image = (crop.astype(np.float32) * (1 - af) + hand_bgr * af).astype(np.uint8)
    target = target.copy()
    target[a > 127] = 0
    return image, target
