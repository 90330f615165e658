"""Following faces between detections in a video (core/masks/follow.py)."""
from __future__ import annotations

import numpy as np
import pytest

from core.masks.follow import FaceFollower, FollowOptions, box_from_mask
from tests.helpers import lfw_group_frame


def test_a_box_from_a_mask_is_a_square_about_its_bounding_box_halfway_to_its_size():
    mask = np.zeros((100, 100), np.uint8)
    mask[20:40, 30:70] = 1                       # 40 wide, 20 tall, centre (50, 30)
    x, y, w, h = box_from_mask(mask, previous_side=60.0)
    assert w == h == pytest.approx(50.0)
    assert (x + w / 2, y + h / 2) == pytest.approx((50.0, 30.0))


def test_an_empty_mask_gives_no_box():
    assert box_from_mask(np.zeros((10, 10), np.uint8), 5.0) is None


def test_detect_every_must_be_at_least_one():
    with pytest.raises(ValueError, match="detect_every"):
        FollowOptions(detect_every=0)


@pytest.fixture(scope="module")
def follower_parts():
    from core.detect.cnn import CnnDetectorOptions, CnnFaceDetector
    from core.segment.segmentation import FaceSegmenter
    with FaceSegmenter() as segmenter, CnnFaceDetector(CnnDetectorOptions.fast()) as detector:
        yield segmenter, detector


def moving_face(steps: int, dx: int = 8):
    """Frames with one face 200 px wide moving right by dx a frame, and the face's centre x."""
    return [(lfw_group_frame(((100 + dx * t, 115, 200),)), 200 + dx * t) for t in range(steps)]


def test_a_followed_face_stays_found_across_frames_with_one_detection(follower_parts):
    follower = FaceFollower(*follower_parts, FollowOptions(detect_every=10))
    for frame, centre_x in moving_face(6):
        faces = follower.step(frame)
        assert len(faces) == 1
        x, y, w, h = faces[0].box
        assert abs(x + w / 2 - centre_x) < 20          # the box moved with the face
        assert faces[0].mask.shape == frame.shape[:2]
    assert follower.detections == 1


def test_a_face_that_vanishes_is_dropped_and_the_frame_detected_again(follower_parts):
    follower = FaceFollower(*follower_parts, FollowOptions(detect_every=10))
    for frame, _ in moving_face(2):
        assert len(follower.step(frame)) == 1
    empty = np.full((480, 640, 3), 100, np.uint8)
    assert follower.step(empty) == []
    assert follower.last_detected and follower.detections == 2
    assert follower.step(empty) == [] and follower.detections == 2   # nothing to follow: wait for the next detection


def test_detecting_every_frame_follows_nothing(follower_parts):
    follower = FaceFollower(*follower_parts, FollowOptions(detect_every=1))
    for frame, _ in moving_face(3):
        follower.step(frame)
        assert follower.last_detected
    assert follower.detections == 3


class _DetectsOnce:
    """A detector that finds the faces on its first call only (cascades missing a face later)."""

    def __init__(self, detector):
        self.detector, self.calls = detector, 0

    def detect(self, image):
        self.calls += 1
        return self.detector.detect(image) if self.calls == 1 else []


def test_a_face_the_detector_misses_at_a_later_detection_is_kept_by_its_followed_box(follower_parts):
    segmenter, detector = follower_parts
    once = _DetectsOnce(detector)
    follower = FaceFollower(segmenter, once, FollowOptions(detect_every=2))
    counts = [len(follower.step(frame)) for frame, _ in moving_face(4)]
    assert once.calls == 2 and counts == [1, 1, 1, 1]


def test_detecting_every_frame_keeps_only_what_the_detector_finds(follower_parts):
    segmenter, detector = follower_parts
    follower = FaceFollower(segmenter, _DetectsOnce(detector), FollowOptions(detect_every=1))
    assert [len(follower.step(frame)) for frame, _ in moving_face(2)] == [1, 0]
