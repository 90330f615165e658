"""Anonymisation changes the masked pixels fully, the feather band partly, and nothing else."""
from __future__ import annotations

import numpy as np
import pytest

from core.masks.anonymize import METHODS, AnonymizeOptions, anonymize, anonymize_faces, feather_alpha
from core.segment.segmentation import FaceMask


def textured_frame(h: int = 120, w: int = 160) -> np.ndarray:
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, size=(h, w, 3), dtype=np.uint8)


def disc_mask(h: int = 120, w: int = 160, centre=(80, 60), radius: int = 25) -> np.ndarray:
    yy, xx = np.mgrid[:h, :w]
    return ((xx - centre[0]) ** 2 + (yy - centre[1]) ** 2 <= radius ** 2).astype(np.uint8)


def distance_to_mask(mask: np.ndarray) -> np.ndarray:
    ys, xs = np.nonzero(mask)
    yy, xx = np.mgrid[:mask.shape[0], :mask.shape[1]]
    return np.sqrt(np.min((yy[..., None] - ys) ** 2 + (xx[..., None] - xs) ** 2, axis=2))


@pytest.mark.parametrize("method", METHODS)
def test_nothing_beyond_the_feather_changes(method):
    frame, mask = textured_frame(), disc_mask()
    out = anonymize(frame, mask, AnonymizeOptions(method=method, feather_px=5))
    far = distance_to_mask(mask) > 5.5
    assert np.array_equal(out[far], frame[far])


@pytest.mark.parametrize("method", METHODS)
def test_masked_pixels_change(method):
    frame, mask = textured_frame(), disc_mask()
    out = anonymize(frame, mask, AnonymizeOptions(method=method, feather_px=5))
    changed = np.any(out != frame, axis=2)
    assert changed[mask > 0].mean() > 0.97


def test_fill_covers_the_mask_with_the_colour():
    frame, mask = textured_frame(), disc_mask()
    out = anonymize(frame, mask, AnonymizeOptions(method="fill", fill_bgr=(1, 2, 3), feather_px=4))
    assert (out[mask > 0] == (1, 2, 3)).all()


def test_the_feather_blends_partly_just_outside_the_mask():
    frame, mask = textured_frame(), disc_mask()
    out = anonymize(frame, mask, AnonymizeOptions(method="fill", fill_bgr=(0, 0, 0), feather_px=8))
    d = distance_to_mask(mask)
    band = (d > 2) & (d < 6)
    darker = out[band].astype(int).sum(1) < frame[band].astype(int).sum(1)
    assert darker.mean() > 0.9 and (out[band] > 0).any()


def test_without_a_feather_only_the_mask_changes():
    frame, mask = textured_frame(), disc_mask()
    out = anonymize(frame, mask, AnonymizeOptions(method="pixelate", feather_px=0))
    assert np.array_equal(out[mask == 0], frame[mask == 0])


def test_feather_alpha_is_one_on_the_mask_and_falls_to_zero():
    alpha = feather_alpha(disc_mask(), 6)
    d = distance_to_mask(disc_mask())
    assert (alpha[disc_mask() > 0] == 1).all()
    assert (alpha[d > 6.5] == 0).all()
    assert 0 < alpha[(d > 2) & (d < 4)].min() < 1


def test_blur_removes_detail_inside_the_mask():
    frame, mask = textured_frame(), disc_mask()
    out = anonymize(frame, mask, AnonymizeOptions(method="blur"))
    inner = disc_mask(radius=15) > 0
    assert out[inner].astype(float).std() < 0.3 * frame[inner].astype(float).std()


def test_each_face_is_anonymised_and_the_input_is_untouched():
    frame = textured_frame()
    original = frame.copy()
    faces = [FaceMask((55, 35, 50, 50), disc_mask(), 0.9),
             FaceMask((5, 5, 20, 20), disc_mask(centre=(15, 15), radius=8), 0.8)]
    out = anonymize_faces(frame, faces, AnonymizeOptions(method="fill", fill_bgr=(9, 9, 9)))
    assert np.array_equal(frame, original)
    assert (out[disc_mask() > 0] == 9).all() and (out[disc_mask(centre=(15, 15), radius=8) > 0] == 9).all()


def test_an_empty_mask_changes_nothing():
    frame = textured_frame()
    assert np.array_equal(anonymize(frame, np.zeros(frame.shape[:2], np.uint8)), frame)


def test_bad_arguments_raise_clear_errors():
    with pytest.raises(ValueError, match="method"):
        AnonymizeOptions(method="smudge")
    with pytest.raises(ValueError, match="mask must be"):
        anonymize(textured_frame(), np.zeros((10, 10), np.uint8))
