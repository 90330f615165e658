"""training.diagnose_glasses: which of the two labelled conventions for glasses the segmenter follows."""
from __future__ import annotations

import math

import numpy as np

from tests.helpers import data_or_skip
from training.diagnose_glasses import dark_lenses, glasses_crops, share_called_face


def test_the_share_called_face_counts_only_the_region():
    region = np.zeros((2, 8, 8), bool)
    region[:, 2:4, 2:6] = True  # 8 pixels per crop
    pred = np.zeros_like(region)
    pred[0, 2:4, 2:6] = True  # all of the first crop's region
    pred[1, 0:2, :] = True  # the second crop's prediction misses its region
    assert share_called_face(pred, region) == 0.5
    assert math.isnan(share_called_face(pred, np.zeros_like(region)))


def test_the_glasses_crops_keep_glasses_apart_from_the_face():
    data_or_skip("celebamask_mini")
    crops, face, glasses = glasses_crops()
    assert crops.shape[1:] == (128, 128, 3) and crops.dtype == np.uint8
    assert len(crops) == len(face) == len(glasses) >= 10
    assert glasses.sum((1, 2)).min() > 0  # every crop has glasses in it
    assert (face & glasses).sum() == 0  # mapped as CelebAMask labels them: glasses are not face


def test_dark_lenses_are_told_from_clear_ones_by_their_grey_against_the_face():
    crops = np.full((2, 16, 16, 3), 180, np.uint8)  # skin-bright faces
    face = np.zeros((2, 16, 16), bool)
    face[:, :, :8] = True
    glasses = ~face
    crops[0, :, 8:] = 40  # dark lenses
    crops[1, :, 8:] = 150  # eyes seen through clear lenses
    assert dark_lenses(crops, face, glasses).tolist() == [True, False]
