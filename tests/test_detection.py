"""Viola-Jones face boxes and the segmenter's crop geometry; how the data sets map to the face region."""
from __future__ import annotations

import numpy as np
import pytest

from core.detect.detection import (CROP_SCALE_FROM_FACE, DETECTION_TO_FACE, FaceDetector, crop_box_from_detection,
                            crop_box_from_face_box, detect_faces, face_box_from_detection)
from tests.helpers import data_or_skip, lfw_group_frame


def test_a_flat_frame_has_no_faces():
    assert detect_faces(np.full((120, 160, 3), 90, np.uint8)) == []


def test_detection_accepts_grayscale_and_bgra():
    gray = np.full((100, 100), 90, np.uint8)
    assert detect_faces(gray) == []
    assert detect_faces(np.dstack([gray, gray, gray, gray])) == []


def test_detection_rejects_a_wrong_dtype():
    with pytest.raises(ValueError, match="float32"):
        detect_faces(np.zeros((50, 50, 3), np.float32))


def test_the_crop_is_a_square_centred_on_the_face_box():
    x, y, side, side2 = crop_box_from_face_box((10, 20, 100, 120))
    assert side == side2 == pytest.approx(CROP_SCALE_FROM_FACE * 120)
    assert (x + side / 2, y + side / 2) == pytest.approx((60, 80))


def test_a_detection_maps_to_a_face_box_of_the_calibrated_size():
    x, y, w, h = face_box_from_detection((100, 100, 80, 80))
    assert w == h == pytest.approx(DETECTION_TO_FACE["size"] * 80)
    assert crop_box_from_detection((100, 100, 80, 80))[2] == pytest.approx(CROP_SCALE_FROM_FACE * w)


@pytest.mark.parametrize("box", [(0, 0, 0, 10), (0, 0, float("nan"), 10), (0, 0, -5, 5)])
def test_an_invalid_detection_box_raises(box):
    with pytest.raises(ValueError):
        face_box_from_detection(box)


def test_boxes_are_sorted_largest_first_on_a_real_face():
    import cv2
    folder = data_or_skip("lfw_parts") / "validation"
    names = (folder.parent / "validation.txt").read_text().split()[:5]
    with FaceDetector() as detector:
        found = 0
        for name in names:
            boxes = detector.detect(cv2.imread(str(folder / f"{name}.jpg")))
            areas = [w * h for _, _, w, h in boxes]
            assert areas == sorted(areas, reverse=True)
            found += any(abs(x + w / 2 - 125) < 30 and abs(y + h / 2 - 125) < 40 for x, y, w, h in boxes)
    assert found >= 4


# ------------------------------------------------------------------ label mapping (training data)

def test_lfw_face_is_label_one_only():
    from training.segmenter.data import lfw_face
    label = np.array([[0, 1, 2, 3]], np.uint8)
    assert lfw_face(label).tolist() == [[0, 1, 0, 0]]


def test_celebamask_face_keeps_ears_drops_glasses_hair_and_neck():
    from training.segmenter.data import celebamask_face
    label = np.arange(19, dtype=np.uint8)[None, :]
    face = celebamask_face(label)[0]
    assert face[[1, 2, 4, 5, 6, 7, 8, 9, 10, 11, 12]].all()
    assert not face[[0, 3, 13, 14, 15, 16, 17, 18]].any()
    assert not celebamask_face(label, ears=False)[0][[8, 9]].any()


# ------------------------------------------------------------------ every face with the cascades (the benchmarks' baseline)

def detection(box, kind="frontal", neighbors=5):
    from core.detect.detection import FaceDetection
    return FaceDetection(box, tuple(float(v) for v in box), kind, neighbors)


def test_a_flat_frame_has_no_faces_at_all():
    from core.detect.detection import MultiFaceDetector
    with MultiFaceDetector() as detector:
        assert detector.detect(np.full((480, 640, 3), 90, np.uint8)) == []


def test_overlapping_detections_merge_into_the_frontal_one():
    from core.detect.detection import merge_detections
    kept = merge_detections([detection((100, 100, 50, 50), "profile", 20), detection((105, 102, 50, 50), "frontal", 3)], 0.45)
    assert [d.kind for d in kept] == ["frontal"]


def test_a_box_inside_another_merges_and_distant_boxes_stay_apart():
    from core.detect.detection import merge_detections
    nested = merge_detections([detection((100, 100, 100, 100)), detection((130, 130, 30, 30))], 0.45)
    assert len(nested) == 1
    apart = merge_detections([detection((0, 0, 40, 40)), detection((200, 0, 80, 80))], 0.45)
    assert [d.box for d in apart] == [(200, 0, 80, 80), (0, 0, 40, 40)]   # largest first


def test_box_iou_of_equal_disjoint_and_half_overlapping_boxes():
    from core.detect.detection import box_iou
    assert box_iou((0, 0, 10, 10), (0, 0, 10, 10)) == pytest.approx(1.0)
    assert box_iou((0, 0, 10, 10), (20, 20, 10, 10)) == 0.0
    assert box_iou((0, 0, 10, 10), (5, 0, 10, 10)) == pytest.approx(1 / 3)


def test_a_profile_detection_maps_through_its_own_calibration():
    from core.detect.detection import PROFILE_TO_FACE, _face_box_for
    x, y, w, h = _face_box_for((100, 100, 80, 80), "profile")
    assert w == h == pytest.approx(PROFILE_TO_FACE["size"] * 80)
    mirrored = _face_box_for((100, 100, 80, 80), "profile_mirrored")
    assert (x + w / 2 - 140) == pytest.approx(-(mirrored[0] + mirrored[2] / 2 - 140))


def two_face_frame():
    return lfw_group_frame(((40, 115, 250), (450, 40, 125)))


def test_every_face_is_found_at_two_scales_each_with_a_square_face_box():
    from core.detect.detection import MultiFaceDetector, MultiFaceOptions
    with MultiFaceDetector(MultiFaceOptions.thorough()) as detector:   # 3 neighbours: no false boxes here
        found = detector.detect(two_face_frame())
    assert len(found) == 2
    big, small = found
    assert abs(big.face_box[0] + big.face_box[2] / 2 - 165) < 25
    assert abs(small.face_box[0] + small.face_box[2] / 2 - 512) < 15
    assert all(d.face_box[2] == d.face_box[3] for d in found)


def test_the_default_finds_every_face_among_its_looser_candidates():
    from core.detect.detection import MultiFaceDetector
    with MultiFaceDetector() as detector:
        centres = [d.face_box[0] + d.face_box[2] / 2 for d in detector.detect(two_face_frame())]
    assert any(abs(c - 165) < 25 for c in centres) and any(abs(c - 512) < 15 for c in centres)


def test_the_cnn_finds_both_faces_where_the_cascades_put_them_and_the_half_face_beside_one():
    from core.detect.cnn import detect_all_faces
    centres = sorted(d.face_box.centre[0] for d in detect_all_faces(two_face_frame()))
    # the third: a second person's half face at the left edge of the small photo (x 450-490)
    assert len(centres) == 3 and abs(centres[0] - 165) < 15 and 450 < centres[1] < 490 and abs(centres[2] - 512) < 10


def test_mirroring_the_frame_mirrors_the_boxes():
    from core.detect.detection import MultiFaceDetector, MultiFaceOptions
    frame = two_face_frame()
    with MultiFaceDetector(MultiFaceOptions.thorough()) as detector:
        boxes = sorted(d.face_box[0] + d.face_box[2] / 2 for d in detector.detect(frame))
        mirrored = sorted(640 - (d.face_box[0] + d.face_box[2] / 2) for d in detector.detect(frame[:, ::-1].copy()))
    assert np.allclose(boxes, mirrored, atol=8)


def test_a_rolled_pass_finds_a_turned_face_where_it_is():
    import cv2
    from core.detect.detection import MultiFaceDetector, MultiFaceOptions
    frame = lfw_group_frame(((60, 115, 250),))
    turn = cv2.getRotationMatrix2D((320, 240), -25, 1.0)       # the face rolled 25 degrees
    rolled = cv2.warpAffine(frame, turn, (640, 480), borderValue=(100, 100, 100))
    cx, cy = turn @ np.array([185.0, 240.0, 1.0])
    with MultiFaceDetector(MultiFaceOptions(rolled_deg=(25.0,), profile_cascade=None)) as detector:
        found = [d for d in detector.detect(rolled) if d.kind == "frontal_rolled"]
    assert found, "the rolled pass found nothing"
    x, y, w, h = found[0].face_box
    assert abs(x + w / 2 - cx) < 20 and abs(y + h / 2 - cy) < 20


def test_the_passes_follow_the_options():
    from core.detect.detection import DetectorPass, MultiFaceDetector, MultiFaceOptions
    options = MultiFaceOptions(rolled_deg=(15.0,), profile_cascade=None, max_width_px=500, scale_factor=1.2,
                               extra_scale_factor=None, extra_min_neighbors=None)
    with MultiFaceDetector(options) as detector:
        assert detector.passes() == [DetectorPass("frontal", 500, 0.0, 1.2), DetectorPass("frontal_rolled", 500, 15.0, 1.2)]


def test_detect_merges_what_the_passes_find_one_by_one():
    from core.detect.detection import MultiFaceDetector, merge_detections
    frame = two_face_frame()
    with MultiFaceDetector() as detector:
        gray = frame.mean(axis=2).round().astype(np.uint8)
        alone = merge_detections([d for one in detector.passes() for d in detector.run_pass(gray, one)],
                                 detector.options.merge_overlap)
        assert [d.box for d in detector.detect(gray)] == [d.box for d in alone]
        assert len(alone) == 2


def test_a_profile_pass_needs_a_profile_cascade():
    from core.detect.detection import DetectorPass, MultiFaceDetector, MultiFaceOptions
    with MultiFaceDetector(MultiFaceOptions(profile_cascade=None)) as detector:
        with pytest.raises(ValueError, match="profile cascade"):
            detector.run_pass(np.zeros((48, 64), np.uint8), DetectorPass("profile", 640, 0.0, 1.1))


def test_passes_on_two_threads_find_what_one_thread_finds():
    from core.detect.detection import MultiFaceDetector, MultiFaceOptions
    frame = two_face_frame()
    with MultiFaceDetector() as one, MultiFaceDetector(MultiFaceOptions(threads=2)) as two:
        assert [d.box for d in two.detect(frame)] == [d.box for d in one.detect(frame)]
        assert [d.box for d in two.detect(frame)] == [d.box for d in one.detect(frame)]   # the pool again


def test_the_extra_passes_take_their_own_scale_factor_and_neighbours():
    from core.detect.detection import DetectorPass, MultiFaceDetector, MultiFaceOptions
    options = MultiFaceOptions(rolled_deg=(15.0,), mirrored_profile=False, scale_factor=1.1,
                               extra_scale_factor=1.3, extra_min_neighbors=1)
    with MultiFaceDetector(options) as detector:
        assert detector.passes() == [DetectorPass("frontal", 640, 0.0, 1.1),
                                     DetectorPass("frontal_rolled", 640, 15.0, 1.3, 1),
                                     DetectorPass("profile", 640, 0.0, 1.3, 1)]


def test_threads_below_one_are_refused():
    from core.detect.detection import MultiFaceDetector, MultiFaceOptions
    with pytest.raises(ValueError, match="threads"):
        MultiFaceDetector(MultiFaceOptions(threads=0))
