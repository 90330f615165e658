"""The group photos the detector is measured on: skin-tone angles, and what the hard scenes hold."""
from __future__ import annotations

import math

import cv2
import numpy as np
import pytest

from evaluation.group_photos import ITA_GROUPS, ita_deg, ita_group
from tests.helpers import data_or_skip


def patch_of_lab(L: float, b: float) -> np.ndarray:
    """A 20x20 BGR patch whose CIELAB colour is (L, 0, b) (OpenCV's float Lab), rounded to 8 bits."""
    lab = np.zeros((20, 20, 3), np.float32)
    lab[..., 0], lab[..., 2] = L, b
    return np.clip(cv2.cvtColor(lab, cv2.COLOR_LAB2BGR) * 255.0 + 0.5, 0, 255).astype(np.uint8)


@pytest.mark.parametrize("L, b", [(70.0, 15.0), (50.0, 20.0), (35.0, 18.0)])
def test_the_ita_angle_is_atan_of_lightness_over_yellowness(L, b):
    angle = ita_deg(patch_of_lab(L, b), np.ones((20, 20), np.uint8))
    assert angle == pytest.approx(math.degrees(math.atan2(L - 50.0, b)), abs=1.5)


def test_skin_tone_groups_follow_the_ita_bounds_and_a_tiny_face_has_none():
    assert [ita_group(a) for a in (60, 45, 30, 20, 0, -40)] == [name for name, _, _ in ITA_GROUPS]
    assert ita_deg(patch_of_lab(60, 15), np.zeros((20, 20), np.uint8)) is None
    assert ita_group(None) == "unknown"


def test_hard_scenes_hold_faces_rolled_past_25_degrees_covered_faces_and_profiles():
    data_or_skip("landmarks68")
    from evaluation.detector_recall import hard_scenes
    photos = hard_scenes("validation", 12, 3)
    faces = [f for p in photos for f in p.faces]
    assert all(p.image.shape == (480, 640, 3) for p in photos)
    assert any(abs(f.angle_deg) > 25 for f in faces) and max(abs(f.angle_deg) for f in faces) <= 45
    assert any(f.covered for f in faces) and any(f.source.startswith("landmarks68/") for f in faces)
    assert all(f.height_px >= 40 and f.ita_deg is not None for f in faces)
