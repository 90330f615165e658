"""Still-photo helpers: mirrored landmarks, the eye line's tilt, and the face mask judging a box."""
import numpy as np
import pytest

from core.face.camera import head_rotation, principal_point
from core.face.face_model import load_face_model
from core.track.regressor import LandmarkModel, landmarks, mean_face_in_box
from core.track.still import (MASK_GROWTH, MIRRORED_LANDMARKS, eye_line_roll, mask_grew, mask_misses_face, mirror_box,
                        mirror_landmarks)


@pytest.fixture(scope="module")
def lm():
    return LandmarkModel.from_face_model(load_face_model())


def _face(lm, box=(100.0, 80.0, 120.0, 120.0), roll=0.0, size=(320, 280)):
    center = principal_point(size)
    state = mean_face_in_box(lm, box, 500.0, center, head_rotation(0.0, 0.0, roll))
    return landmarks(state, lm, 500.0, center)


def test_mirroring_the_landmark_order_twice_gives_it_back():
    assert sorted(MIRRORED_LANDMARKS) == list(range(68))
    assert np.array_equal(MIRRORED_LANDMARKS[MIRRORED_LANDMARKS], np.arange(68))
    assert MIRRORED_LANDMARKS[36] == 45 and MIRRORED_LANDMARKS[48] == 54 and MIRRORED_LANDMARKS[30] == 30


def test_the_mean_face_is_its_own_mirror_image(lm):
    """A frontal mean face centred in the photo, mirrored (points and order), lands on itself:
    the permutation pairs each point with its counterpart across the face."""
    points = _face(lm, box=(100.0, 80.0, 120.0, 120.0), size=(320, 280))
    assert np.abs(mirror_landmarks(points, 320) - points).max() < 1.5


def test_a_box_mirrored_keeps_its_size_and_row():
    assert mirror_box((10, 20, 30, 40), 100) == (60.0, 20.0, 30.0, 40.0)


@pytest.mark.parametrize("degrees", [-25.0, 0.0, 12.0])
def test_the_eye_line_reads_back_the_roll_of_a_tilted_face(lm, degrees):
    points = _face(lm, roll=np.radians(degrees))
    assert eye_line_roll(points) == pytest.approx(np.radians(degrees), abs=np.radians(1.0))


def test_the_tilted_mean_face_still_fills_its_box(lm):
    points = _face(lm, box=(100.0, 80.0, 120.0, 120.0), roll=np.radians(20.0))
    lo, hi = points.min(0), points.max(0)
    assert (hi - lo).max() == pytest.approx(120.0, rel=0.02)
    assert np.allclose((lo + hi) / 2, [160.0, 140.0], atol=1.0)


def _disk(shape, centre, radius):
    yy, xx = np.mgrid[:shape[0], :shape[1]]
    return (((xx - centre[0]) ** 2 + (yy - centre[1]) ** 2) <= radius ** 2).astype(np.uint8)


def test_a_face_inside_the_crop_passes():
    assert not mask_misses_face(_disk((300, 400), (200, 150), 40), (100, 50, 200, 200))


def test_an_empty_crop_means_the_box_missed_the_face():
    assert mask_misses_face(np.zeros((300, 400), np.uint8), (100, 50, 200, 200))
    assert mask_misses_face(_disk((300, 400), (200, 150), 3), (100, 50, 200, 200))  # a speck is no face


def test_a_face_cut_by_the_crops_edge_means_the_box_holds_part_of_it():
    mask = _disk((300, 400), (290, 150), 60)
    mask[:, 300:] = 0   # the segmenter sees nothing outside its crop
    assert mask_misses_face(mask, (100, 50, 200, 200))


def test_a_face_cut_by_the_photos_own_edge_passes():
    mask = _disk((300, 400), (380, 150), 50)
    assert not mask_misses_face(mask, (250, 50, 200, 200))


def test_a_face_that_grows_when_segmented_around_itself_was_held_only_in_part():
    assert mask_grew(1000, int(1000 * MASK_GROWTH) + 1)
    assert not mask_grew(1000, 1160)      # a whole face: about the same blob again
    assert not mask_grew(1000, 800)
    assert mask_grew(0, 10)               # nothing before, something after
