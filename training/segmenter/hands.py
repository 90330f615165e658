"""Hand cut-outs as occluders: the cut-out with a forearm and where it lands on a face crop."""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np


@dataclass
class Hand:
    rgba: np.ndarray    # cut edge at the bottom


def hand_with_forearm(hand: Hand, rng: np.random.Generator) -> np.ndarray:
    """The cut-out, flipped half of the time, with a forearm: its wrist row stretched 1.5 hand
    heights downwards. Returns the RGBA array; the hand itself is its top third."""
    rgba = hand.rgba
    if rng.random() < 0.5:
        rgba = rgba[:, ::-1]
    h = rgba.shape[0]
    return cv2.copyMakeBorder(np.ascontiguousarray(rgba), 0, int(1.5 * h), 0, 0, cv2.BORDER_REPLICATE)


def hand_placement(hand_h: int, hand_w: int, target: np.ndarray, size: int, rng: np.random.Generator) -> np.ndarray:
    """2x3 matrix putting a hand of hand_h x hand_w (without its forearm) into a size x size crop:
    35-80% of the crop tall, mostly upright, a point of its fingers/palm on a random face pixel."""
    scale = rng.uniform(0.35, 0.8) * size / hand_h
    angle = rng.uniform(-60, 60) if rng.random() < 0.8 else rng.uniform(-180, 180)
    ys, xs = np.nonzero(target)
    if len(xs):
        k = rng.integers(len(xs))
        px, py = float(xs[k]), float(ys[k])
    else:
        px, py = rng.uniform(0.2, 0.8, size=2) * size
    ax, ay = hand_w / 2.0, hand_h * rng.uniform(0.2, 0.6)
    m = cv2.getRotationMatrix2D((ax, ay), angle, scale)
    m[0, 2] += px - ax
    m[1, 2] += py - ay
    return m
