"""training.diagnose_hands: the ceilings that say what part of the hand problem costs what."""
from __future__ import annotations

import cv2
import numpy as np

from training.diagnose_hands import ceilings, through_grid


def _faces():
    """Two 128x128 faces (ellipses) and the same with a bar of 'hand' across the lower half."""
    face = np.zeros((2, 128, 128), np.uint8)
    for k, (w, h) in enumerate(((36, 46), (40, 44))):
        cv2.ellipse(face[k], (64, 64), (w, h), 0, 0, 360, 1, -1)
    visible = face.copy()
    visible[:, 70:90, 20:110] = 0
    return face.astype(bool), visible.astype(bool)


def test_a_perfect_prediction_reaches_every_ceiling_but_the_resolution_ones():
    face, visible = _faces()
    out = ceilings(face, visible, face, visible)
    assert out["hand known, clean prediction"] == 1.0 and out["hand known, this prediction"] == 1.0
    assert out["true mask drawn at 16 px"] < out["true mask drawn at 32 px"] < out["true mask drawn at 64 px"] < 1.0


def test_a_prediction_blind_to_the_hand_scores_one_once_the_hand_is_known():
    face, visible = _faces()
    out = ceilings(face, face, face, visible)  # predicts the whole face, hand or not
    assert out["hand known, this prediction"] == 1.0
    missed = visible.copy()
    missed[:, :, :64] = False  # a prediction that misses the visible left half stays wrong
    assert ceilings(face, missed, face, visible)["hand known, this prediction"] < 0.7


def test_drawing_through_a_grid_keeps_large_shapes_and_loses_thin_ones():
    square = np.zeros((1, 128, 128), bool)
    square[0, 32:96, 32:96] = True
    line = np.zeros((1, 128, 128), bool)
    line[0, 10:120, 60:62] = True
    assert (through_grid(square, 16) == square).mean() > 0.99
    assert not through_grid(line, 16).any()
    assert through_grid(line, 64).sum() > 0.5 * line.sum()
