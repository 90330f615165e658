"""The CNN face detector (core.detect.cnn): what it finds, where its boxes are, and what it refuses."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from core.detect.cnn import (FACE_BOX_FROM_DETECTION, Box, CnnDetectorOptions, CnnFaceDetector, DetectedFace,
                             DetectorModelError, non_maximum_suppression)


@pytest.fixture(scope="module")
def detector():
    with CnnFaceDetector() as d:
        yield d


@pytest.fixture(scope="module")
def astronaut():
    """scikit-image's astronaut photo (NASA, public domain), BGR 512x512, and her face's centre."""
    data = pytest.importorskip("skimage.data")
    return cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR), (225.0, 114.0)


def pasted(photo, side: int, at=(0, 0), size=(640, 480), grey_level=110):
    """A flat frame with the photo scaled to side x side pasted at `at`; the scale."""
    frame = np.full((size[1], size[0], 3), grey_level, np.uint8)
    x, y = at
    frame[y:y + side, x:x + side] = cv2.resize(photo, (side, side), interpolation=cv2.INTER_AREA)
    return frame, side / photo.shape[0]


def near(face: DetectedFace, centre, tolerance: float) -> bool:
    cx, cy = face.box.centre
    return abs(cx - centre[0]) < tolerance and abs(cy - centre[1]) < tolerance


def test_a_flat_frame_and_noise_have_no_faces(detector):
    assert detector.detect(np.full((480, 640, 3), 90, np.uint8)) == []
    noise = np.random.default_rng(0).integers(0, 256, (480, 640, 3), dtype=np.uint8)
    assert detector.detect(noise) == []


def test_a_face_is_found_once_with_typed_boxes_landmarks_and_a_square_face_box(detector, astronaut):
    photo, centre = astronaut
    faces = detector.detect(photo)
    assert len(faces) == 1
    face = faces[0]
    assert isinstance(face.box, Box) and isinstance(face.face_box, Box)
    assert near(face, centre, 20) and 0.5 < face.score <= 1.0
    assert face.face_box.w == face.face_box.h == pytest.approx(FACE_BOX_FROM_DETECTION["size"] * face.box.h)
    assert face.landmarks.shape == (5, 2)
    x, y, w, h = face.box
    inside = (face.landmarks[:, 0] > x) & (face.landmarks[:, 0] < x + w) & (face.landmarks[:, 1] > y) & (face.landmarks[:, 1] < y + h)
    assert inside.all()
    assert face.landmarks[0, 0] < face.landmarks[1, 0]          # the eye on the image's left comes first
    assert face.landmarks[2, 1] < face.landmarks[3, 1]          # the nose above the mouth


def test_boxes_are_in_the_frames_pixels_whatever_its_size_and_padding(astronaut):
    photo, _ = astronaut
    odd = cv2.resize(photo, (457, 301))                      # padded to 480x320 inside the detector
    with CnnFaceDetector(CnnDetectorOptions(input_side_px=640, max_upscale=1.0, mirror=False)) as same_scale:
        alone = same_scale.detect(odd)
        canvas = np.full((480, 640, 3), 110, np.uint8)
        canvas[30:331, 40:497] = odd
        placed = same_scale.detect(canvas)
    assert len(alone) == len(placed) == 1
    assert np.allclose(np.array(placed[0].box) - (40, 30, 0, 0), alone[0].box, atol=3)


def test_the_mirrored_pass_puts_its_boxes_and_landmarks_back_on_the_frame(astronaut):
    photo, _ = astronaut
    with CnnFaceDetector(CnnDetectorOptions(mirror=False)) as once:
        direct = once.detect(photo)[0]
        seen_mirrored = once.detect(np.ascontiguousarray(photo[:, ::-1]))[0]
    assert abs((512 - seen_mirrored.box.centre[0]) - direct.box.centre[0]) < 6
    with CnnFaceDetector(CnnDetectorOptions(mirror=True)) as both:
        faces = both.detect(photo)
    assert len(faces) == 1 and abs(faces[0].box.centre[0] - direct.box.centre[0]) < 6
    eyes, mouth = faces[0].landmarks[:2], faces[0].landmarks[3:]
    assert eyes[0, 0] < eyes[1, 0] and mouth[0, 0] < mouth[1, 0]   # the image's left first, either pass
    assert np.allclose(faces[0].landmarks[:, 0], direct.landmarks[:, 0], atol=8)


def test_a_small_rolled_greyscale_and_mirrored_face_is_found(detector, astronaut):
    photo, (fx, fy) = astronaut
    frame, scale = pasted(photo, 200, at=(300, 150))         # her face about 45 px tall
    centre = (300 + fx * scale, 150 + fy * scale)
    assert any(near(f, centre, 10) for f in detector.detect(frame))
    grey = cv2.cvtColor(cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY), cv2.COLOR_GRAY2BGR)
    assert any(near(f, centre, 10) for f in detector.detect(grey))
    mirrored = np.ascontiguousarray(frame[:, ::-1])
    assert any(near(f, (640 - centre[0], centre[1]), 10) for f in detector.detect(mirrored))
    turn = cv2.getRotationMatrix2D(centre, 45, 1.0)          # rolled 45 degrees about her face
    rolled = cv2.warpAffine(frame, turn, (640, 480), borderValue=(110, 110, 110))
    assert any(near(f, centre, 12) for f in detector.detect(rolled))


def test_a_face_with_its_lower_half_covered_is_found(detector, astronaut):
    photo, centre = astronaut
    covered = photo.copy()
    cv2.rectangle(covered, (175, 110), (280, 175), (60, 140, 200), thickness=-1)   # nose tip to chin
    assert any(near(f, centre, 25) for f in detector.detect(covered))


def test_faces_come_largest_first(detector, astronaut):
    photo, _ = astronaut
    frame, _ = pasted(photo, 220, at=(20, 100))
    frame[60:60 + 400, 240:240 + 400] = cv2.resize(photo, (400, 400))
    faces = detector.detect(frame)
    assert len(faces) == 2
    assert faces[0].box.area > faces[1].box.area and faces[0].box.x > faces[1].box.x


def test_grey_and_bgra_frames_are_accepted_and_a_wrong_dtype_is_not(detector, astronaut):
    photo, centre = astronaut
    assert near(detector.detect(cv2.cvtColor(photo, cv2.COLOR_BGR2GRAY))[0], centre, 20)
    assert near(detector.detect(cv2.cvtColor(photo, cv2.COLOR_BGR2BGRA))[0], centre, 20)
    with pytest.raises(ValueError, match="float32"):
        detector.detect(photo.astype(np.float32))


def test_two_threads_find_what_one_thread_finds(astronaut):
    photo, _ = astronaut
    with CnnFaceDetector(CnnDetectorOptions(threads=2)) as two, CnnFaceDetector() as one:
        assert np.allclose([f.box for f in two.detect(photo)], [f.box for f in one.detect(photo)], atol=0.01)


def test_the_score_threshold_and_smallest_face_filter_faces(astronaut):
    photo, _ = astronaut
    with CnnFaceDetector(CnnDetectorOptions(score_threshold=0.99)) as strict:
        assert strict.detect(photo) == []
    with CnnFaceDetector(CnnDetectorOptions(min_face_px=200)) as large_only:
        assert large_only.detect(photo) == []


def test_the_frame_is_scaled_to_the_input_side_but_never_enlarged_past_the_limit():
    with CnnFaceDetector(CnnDetectorOptions(input_side_px=960, max_upscale=2.0)) as d:
        assert d.input_scale((480, 640)) == pytest.approx(1.5)
        assert d.input_scale((1080, 1920)) == pytest.approx(0.5)
        assert d.input_scale((100, 120)) == pytest.approx(2.0)
        x, scale = d.network_input(np.zeros((481, 641, 3), np.uint8))
        assert x.shape[2] % 32 == 0 and x.shape[3] % 32 == 0 and x.shape[3] >= 641 * scale


def test_non_maximum_suppression_keeps_the_strongest_of_overlapping_boxes():
    boxes = np.array([[0, 0, 10, 10], [1, 1, 11, 11], [50, 50, 60, 60]], np.float32)
    scores = np.array([0.6, 0.9, 0.3], np.float32)
    assert non_maximum_suppression(boxes, scores, 0.3).tolist() == [1, 2]
    assert non_maximum_suppression(np.zeros((0, 4)), np.zeros(0), 0.3).tolist() == []


@pytest.mark.parametrize("options, message", [
    (dict(threads=0), "threads"), (dict(input_side_px=16), "input_side_px"), (dict(max_upscale=0.5), "max_upscale"),
    (dict(score_threshold=1.0), "score_threshold"), (dict(nms_iou=0.0), "nms_iou")])
def test_bad_options_are_refused_with_their_name(options, message):
    with pytest.raises(ValueError, match=message):
        CnnDetectorOptions(**options)


def test_an_unknown_device_is_refused():
    with pytest.raises(ValueError, match="device"):
        CnnFaceDetector(CnnDetectorOptions(device="tpu"))


def test_a_missing_model_says_how_to_rebuild_it(tmp_path):
    with pytest.raises(FileNotFoundError, match="training.detector.build"):
        CnnFaceDetector(CnnDetectorOptions(model_path=tmp_path / "none.onnx"))


def test_a_file_that_is_not_the_detector_is_refused(tmp_path):
    from core.io.files import shipped_model_path
    with pytest.raises(DetectorModelError, match="not maskcap's face detector"):
        CnnFaceDetector(CnnDetectorOptions(model_path=shipped_model_path("segmenter.onnx")))
    broken = tmp_path / "broken.onnx"
    broken.write_bytes(b"not a network")
    with pytest.raises(DetectorModelError, match="could not load"):
        CnnFaceDetector(CnnDetectorOptions(model_path=broken))


def test_a_closed_detector_says_so():
    detector = CnnFaceDetector()
    detector.close()
    with pytest.raises(RuntimeError, match="closed"):
        detector.detect(np.zeros((32, 32, 3), np.uint8))


def test_the_addon_zip_carries_the_detector_and_its_licence_notice():
    import build_addon
    inside = {name for _, name in build_addon.addon_files()}
    assert {"models/face_detector.onnx", "models/CenterFace-LICENSE.txt", "core/detect/cnn.py"} <= inside
