"""training.synthetic_glasses: glasses drawn over the eyes; frames and dark lenses are not face."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from training.segmentation_data import crop_affine, warp_crop
from training.synthetic_glasses import draw_glasses, face_axes


def _upright_face(size: int = 256):
    """A frame with an upright elliptical face of skin tone on grey, its mask and crop box."""
    image = np.full((size, size, 3), 90, np.uint8)
    face = np.zeros((size, size), np.uint8)
    cv2.ellipse(face, (128, 128), (60, 80), 0, 0, 360, 1, -1)
    image[face > 0] = (120, 150, 200)
    return image, face, (28.0, 28.0, 200.0, 200.0)


def _crop(angle: float, flipped: bool):
    image, face, box = _upright_face()
    matrix = crop_affine(box, angle)
    crop, target = warp_crop(image, face, matrix)
    if flipped:
        crop, target = crop[:, ::-1].copy(), target[:, ::-1].copy()
    return crop, target, matrix


def test_the_face_axes_are_the_crop_axes_without_rotation():
    ex, ey = face_axes(0.0, False)
    assert np.allclose(ex, [1, 0]) and np.allclose(ey, [0, 1])
    ex, ey = face_axes(30.0, True)
    assert abs(ex @ ey) < 1e-9  # still an upright frame, turned the other way


@pytest.mark.parametrize("angle,flipped", [(0.0, False), (20.0, False), (-20.0, False), (20.0, True)])
def test_the_glasses_sit_level_on_an_upright_face_whatever_the_crop_rotation(angle, flipped):
    crop, target, matrix = _crop(angle, flipped)
    _, glassed = draw_glasses(crop, target, np.random.default_rng(1), angle, flipped, p_sunglasses=1.0)
    ys, xs = np.nonzero(target & (1 - glassed))
    if flipped:
        xs = crop.shape[1] - 1 - xs
    frame = cv2.transform(np.stack([xs, ys], 1)[None].astype(np.float64), cv2.invertAffineTransform(matrix))[0]
    centre_x = 128
    left, right = frame[frame[:, 0] < centre_x - 20], frame[frame[:, 0] > centre_x + 20]
    assert len(left) > 20 and len(right) > 20
    assert abs(left[:, 1].mean() - right[:, 1].mean()) < 4  # level, in frame pixels
    assert 128 - 80 + 0.25 * 160 < frame[:, 1].mean() < 128 - 80 + 0.6 * 160  # on the eye line, not the mouth


def test_frames_and_sunglasses_leave_the_face_and_nothing_joins_it():
    crop, target, _ = _crop(0.0, False)
    for p_sun in (0.0, 1.0):
        out, glassed = draw_glasses(crop, target, np.random.default_rng(5), p_sunglasses=p_sun)
        assert out.shape == crop.shape and out.dtype == np.uint8
        assert not (glassed & (1 - target)).any()  # the face only loses pixels
        lost = (target & (1 - glassed)).sum()
        assert lost > 0 and (out != crop).any(axis=2)[target & (1 - glassed) > 0].all()
    clear = (target & (1 - draw_glasses(crop, target, np.random.default_rng(5), p_sunglasses=0.0)[1])).sum()
    dark = (target & (1 - draw_glasses(crop, target, np.random.default_rng(5), p_sunglasses=1.0)[1])).sum()
    assert dark > 2 * clear  # behind clear lenses the eyes stay face; behind dark ones they go


def test_a_crop_without_a_face_is_left_alone():
    crop = np.full((128, 128, 3), 50, np.uint8)
    target = np.zeros((128, 128), np.uint8)
    out, t = draw_glasses(crop, target, np.random.default_rng(0))
    assert out is crop and t is target
