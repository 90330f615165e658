"""The sequential tracker: its contract on frames the tests make, and real faces when the data is there."""
import cv2
import numpy as np
import pytest

from core.track.tracker import (CNN_DETECTION_TO_LANDMARKS, DETECTION_TO_LANDMARKS, FaceTracker, RunningMode,
                                StillPhotoOptions, TrackerOptions, face_box_from_landmarks,
                                landmark_box_from_detection)

from .helpers import data_or_skip


@pytest.fixture(scope="module")
def tracker():
    with FaceTracker(TrackerOptions(segmenter=None)) as t:
        yield t


def test_a_frame_without_a_face_gives_ok_false_and_an_empty_mask(tracker):
    frame = np.full((240, 320, 3), 127, np.uint8)
    result = tracker.track(frame)
    assert not result.ok
    assert result.mask.shape == (240, 320) and result.mask.sum() == 0
    assert result.blendshapes.shape == (46,)


@pytest.mark.parametrize("frame, message", [
    (None, "None"),
    (np.zeros((0, 0, 3), np.uint8), "empty"),
    (np.zeros((10, 10, 3), np.float32), "dtype"),
    ("frame.png", "numpy array"),
])
def test_bad_frames_raise_a_clear_value_error(tracker, frame, message):
    with pytest.raises(ValueError, match=message):
        tracker.track(frame)


def test_a_mask_of_the_wrong_size_is_rejected(tracker):
    with pytest.raises(ValueError, match="mask"):
        tracker.track(np.zeros((50, 60, 3), np.uint8), mask=np.ones((10, 10), np.uint8))


@pytest.mark.parametrize("mapping", [*CNN_DETECTION_TO_LANDMARKS.values(), DETECTION_TO_LANDMARKS])
def test_boxes_map_detection_to_landmarks_to_face_region(mapping):
    x, y, w, h = landmark_box_from_detection((100, 50, 200, 200), mapping)
    assert w == h == pytest.approx(mapping["size"] * 200) and y > 50   # the landmarks sit low in a detector's box
    points = np.array([[0.0, 0.0], [100.0, 0.0], [0.0, 100.0], [100.0, 100.0]])
    fx, fy, fw, fh = face_box_from_landmarks(points)
    assert fx < 0 and fy < -10 and fw > 100 and fh > 100  # the face region reaches up to the hairline


def test_still_photos_with_face_masks_land_near_the_annotated_landmarks():
    root = data_or_skip("landmarks68")
    from core import fit_landmarks, load_face_model
    from evaluation.tracker_stills import held_out_samples
    from training.regressor.fit_landmarks68 import load_samples, point_error
    from training.regressor.landmarks68_masks import face_mask

    model = load_face_model()
    errors = []
    tracker = FaceTracker(TrackerOptions(running_mode=RunningMode.IMAGE))
    for s in held_out_samples(load_samples())[:20]:
        image = cv2.imread(str(root / s.file))
        fit = fit_landmarks(model, s.landmarks, (256, 256), focal_px=s.focal_prior_px)
        mask = face_mask(model, fit.identity, fit.expression, fit.rotation, fit.translation, fit.focal_px)
        result = tracker.track(image, mask=mask)
        if result.landmarks is not None:
            errors.append(point_error(result.landmarks, s.landmarks))
    assert len(errors) >= 15
    assert np.median(errors) < 0.08


def test_closing_the_tracker_ends_its_identity_thread():
    import threading

    from core.track.regressor import ShapeState

    with FaceTracker(TrackerOptions(segmenter=None)) as t:
        points = np.random.default_rng(0).random((68, 2)) * 100 + 50
        t._focal = 300.0
        t._adapt(points, ShapeState.from_pose(np.eye(3), [0, 0, 50.0], np.zeros(46)), 1.0, (256, 256))
        assert t._adapter is not None
    assert t._adapter is None
    assert not any(th.name.startswith("maskcap-identity") for th in threading.enumerate())


def test_a_frame_starts_from_half_of_the_previous_displacements():
    from core.track.regressor import ShapeState, landmarks
    from core.track.tracker import PreparedFrame

    with FaceTracker(TrackerOptions(segmenter=None, adapt_identity=False)) as t:
        t.cascade.run = lambda gray, mask, state, *args: state      # a regression that changes nothing
        t.cascade.run_many = lambda gray, mask, states, *args: states
        t._focal = 300.0
        previous = ShapeState.from_pose(np.diag([1.0, -1.0, -1.0]), [0, 0, 60.0], np.zeros(46))
        previous.displacements = np.full((68, 2), 4.0)
        t._state = previous
        image = np.zeros((200, 200, 3), np.uint8)
        result = t.regress(PreparedFrame(image, np.ones((200, 200), np.uint8), None, None, {}))
        without_d = previous.copy()
        without_d.displacements[:] = 0.0
        expected = landmarks(without_d, t._lm, 300.0, np.array([99.5, 99.5])) + 2.0
        assert np.allclose(result.landmarks, expected)


def _track_clip(frames, options):
    with FaceTracker(options) as tracker:
        results = [tracker.track(f) for f in frames]
        return results, tracker._adaptation_version


def test_synchronous_adaptation_gives_the_same_take_twice_on_a_clip():
    """An offline bake (sequential tracking, Eq. 3 solved inline) is repeatable to the bit,
    including the frames after a new identity and focal length were swapped in, twice (the
    second solve continues from the first)."""
    from core.io.sources import open_source

    clip = data_or_skip("videos") / "webcam_talking.mp4"
    with open_source(clip) as source:
        frames = [f.image for _, f in zip(range(90), source)]
    options = TrackerOptions(synchronous_adaptation=True)
    (first, solves), (second, _) = _track_clip(frames, options), _track_clip(frames, options)
    assert solves >= 2, "the clip should give enough keyframes for a cold and a warm identity/focal solve"
    assert [r.ok for r in first] == [r.ok for r in second] and sum(r.ok for r in first) > 70
    for a, b in zip(first, second):
        if a.ok:
            assert np.array_equal(a.landmarks, b.landmarks)
            assert np.array_equal(a.blendshapes, b.blendshapes)
            assert a.focal == b.focal and np.array_equal(a.identity, b.identity)


def test_still_photo_start_boxes_share_the_detections_centre_and_scale_its_size():
    from core.track.tracker import _start_boxes

    boxes = _start_boxes((100.0, 50.0, 80.0, 80.0), 5)
    assert boxes[0] == (100.0, 50.0, 80.0, 80.0)
    assert sorted(round(w) for _, _, w, _ in boxes) == [64, 72, 80, 88, 96]
    assert all(np.isclose(x + w / 2, 140.0) and np.isclose(y + h / 2, 90.0) for x, y, w, h in boxes)
    with pytest.raises(ValueError, match="still.starts"):
        _start_boxes((0, 0, 10, 10), 9)


def test_a_face_box_maps_back_to_the_landmark_box_it_came_from():
    from core.track.tracker import landmark_box_from_face_box

    points = np.array([[40.0, 60.0], [140.0, 60.0], [40.0, 160.0], [140.0, 160.0]])
    assert np.allclose(landmark_box_from_face_box(face_box_from_landmarks(points)), (40.0, 60.0, 100.0, 100.0))


class _FakeSegmenter:
    """Sees one face, a disk, wherever it is asked to look, but only inside its crop."""

    def __init__(self, shape, centre, radius):
        from core.segment.segmentation import SegmenterOptions

        self.options = SegmenterOptions()
        yy, xx = np.mgrid[:shape[0], :shape[1]]
        self.face = (((xx - centre[0]) ** 2 + (yy - centre[1]) ** 2) <= radius ** 2).astype(np.uint8)

    def segment(self, image, box):
        from core.detect.detection import crop_box_from_face_box

        x, y, side, _ = (int(round(v)) for v in crop_box_from_face_box(box, self.options.crop_scale))
        out = np.zeros_like(self.face)
        out[max(y, 0):max(y + side, 0), max(x, 0):max(x + side, 0)] = 1
        return out & self.face

    def close(self):
        pass


def test_a_detection_whose_mask_is_empty_moves_to_the_face_the_segmenter_finds():
    """The cascade fired on something that is not a face (its crop's mask is empty): the start
    moves to the face the segmenter finds in the whole photo."""
    from core.track.tracker import PreparedFrame

    with FaceTracker(TrackerOptions(segmenter=None)) as t:
        t._segmenter = _FakeSegmenter((300, 400), (280, 160), 50)
        image = np.zeros((300, 400, 3), np.uint8)
        wrong = PreparedFrame(image, t._segment(image, (30, 30, 40, 40)), (30, 30, 40, 40), (35, 40, 30, 30), {})
        moved = t._check_detection(wrong)
        x, y, w, h = moved.start_box
        assert abs(x + w / 2 - 280) < 10 and 60 < w < 100        # the landmarks' box inside the disk
        assert moved.mask.sum() == t._segmenter.face.sum()       # the whole face segmented
        assert "detection_check_ms" in moved.timings


def test_a_detection_on_skin_that_every_crop_cuts_moves_to_the_face_in_the_whole_photo():
    """The cascade fired on a long stripe of skin (an arm): its mask is cut by the crop, and so is
    the mask of the search around it. Rather than start on the stripe, the whole photo is searched."""
    from core.track.tracker import PreparedFrame

    with FaceTracker(TrackerOptions(segmenter=None)) as t:
        t._segmenter = _FakeSegmenter((300, 400), (280, 160), 50)
        t._segmenter.face[45:60, :150] = 1
        image = np.zeros((300, 400, 3), np.uint8)
        wrong = PreparedFrame(image, t._segment(image, (30, 30, 40, 40)), (30, 30, 40, 40), (35, 40, 30, 30), {})
        moved = t._check_detection(wrong)
        x, y, w, h = moved.start_box
        assert abs(x + w / 2 - 280) < 10 and abs(y + h / 2 - 160) < 25 and 60 < w < 100


class _ContextSegmenter(_FakeSegmenter):
    """Also sees a square of 'face' at (60-100, 100-140), but only in crops of 80 px or more: a
    texture that looks like skin in a wide view and like nothing close up."""

    def segment(self, image, box):
        from core.detect.detection import crop_box_from_face_box

        out = super().segment(image, box)
        if crop_box_from_face_box(box, self.options.crop_scale)[2] < 80:
            out[100:140, 60:100] = 0
        return out


def test_a_detection_whose_cut_mask_leads_to_nothing_moves_to_the_face_in_the_whole_photo():
    from core.track.tracker import PreparedFrame

    with FaceTracker(TrackerOptions(segmenter=None)) as t:
        t._segmenter = _ContextSegmenter((300, 400), (280, 160), 50)
        t._segmenter.face[100:140, 60:100] = 1
        image = np.zeros((300, 400, 3), np.uint8)
        box = (20.0, 90.0, 60.0, 60.0)
        wrong = PreparedFrame(image, t._segment(image, box), box, (25, 100, 50, 50), {})
        assert wrong.mask.sum() > 0                              # part of the square, cut by the crop
        x, y, w, h = t._check_detection(wrong).start_box
        assert abs(x + w / 2 - 280) < 10 and abs(y + h / 2 - 160) < 25 and 60 < w < 100


def test_a_detection_whose_mask_holds_the_face_stays():
    from core.track.tracker import PreparedFrame

    with FaceTracker(TrackerOptions(segmenter=None)) as t:
        t._segmenter = _FakeSegmenter((300, 400), (280, 160), 50)
        image = np.zeros((300, 400, 3), np.uint8)
        box = (225.0, 95.0, 110.0, 110.0)
        frame = PreparedFrame(image, t._segment(image, box), box, (240, 120, 80, 80), {})
        assert t._check_detection(frame) is frame


class _NearsightedSegmenter(_FakeSegmenter):
    """Sees the disk only in the middle 60 % of its crop, as the network misses a face that its
    crop cuts: an off-centre box gives part of the face, well inside the crop."""

    def segment(self, image, box):
        from core.detect.detection import crop_box_from_face_box

        x, y, side, _ = crop_box_from_face_box(box, self.options.crop_scale)
        inset = 0.2 * side
        x0, y0, x1, y1 = (int(round(v)) for v in (x + inset, y + inset, x + side - inset, y + side - inset))
        out = np.zeros_like(self.face)
        out[max(y0, 0):max(y1, 0), max(x0, 0):max(x1, 0)] = 1
        return out & self.face


def test_a_detection_holding_part_of_the_face_moves_when_segmenting_around_it_finds_more():
    """The box's mask is neither empty nor cut by the crop, yet segmented again in its own box
    it grows by more than half: the box held part of the face, and the start moves onto it."""
    from core.track.still import largest_component_box
    from core.track.tracker import PreparedFrame

    with FaceTracker(TrackerOptions(segmenter=None)) as t:
        t._segmenter = _NearsightedSegmenter((300, 400), (280, 160), 50)
        image = np.zeros((300, 400, 3), np.uint8)
        box, start = (190.0, 120.0, 60.0, 60.0), (195.0, 130.0, 50.0, 50.0)
        frame = PreparedFrame(image, t._segment(image, box), box, start, {})
        moved = t._check_detection(frame)
        assert moved is not frame
        assert moved.mask.sum() > 1.5 * frame.mask.sum()
        assert largest_component_box(moved.mask)[0][0] >= 230           # the blob it started from, grown
        x, _, w, _ = moved.start_box
        assert abs(x + w / 2 - 280) < abs(start[0] + start[2] / 2 - 280)  # nearer the face's middle


def _start_with_detections(monkeypatch, detections, segmenter: bool):
    """The start box prepare() picks from these detector boxes, with the one-disk fake segmenter."""
    monkeypatch.setattr(FaceTracker, "_detect", lambda self, image: list(detections))
    with FaceTracker(TrackerOptions(segmenter=None, adapt_identity=False)) as t:
        if segmenter:
            t._segmenter = _FakeSegmenter((300, 400), (280, 160), 50)
        frame = t.prepare(np.zeros((300, 400, 3), np.uint8))
    x, y, w, h = frame.start_box
    return x + w / 2, y + h / 2, frame


FACE_DETECTION, DECOY_DETECTION = (237, 117, 86, 86), (10, 10, 100, 100)  # the disk; a larger non-face


def test_when_the_largest_detection_is_not_a_face_the_track_starts_from_the_one_that_is(monkeypatch):
    cx, cy, frame = _start_with_detections(monkeypatch, [DECOY_DETECTION, FACE_DETECTION], segmenter=True)
    assert abs(cx - 280) < 15 and abs(cy - 160) < 25
    assert frame.mask.sum() == frame.mask[110:211, 230:331].sum() > 0   # the face's mask, kept


def test_the_largest_detection_is_the_start_when_it_is_a_face_or_nothing_can_tell(monkeypatch):
    cx, _, _ = _start_with_detections(monkeypatch, [FACE_DETECTION, DECOY_DETECTION], segmenter=True)
    assert abs(cx - 280) < 15
    cx, _, _ = _start_with_detections(monkeypatch, [DECOY_DETECTION, FACE_DETECTION], segmenter=False)
    assert abs(cx - 60) < 15


def test_still_photo_landmarks_found_on_the_mirrored_photo_map_back_onto_the_photo():
    """A cascade that finds the same face T wherever it starts (T mirrored on the mirrored photo):
    IMAGE mode's median of the photo's and the mirror's results is T itself."""
    from core.track.regressor import landmarks
    from core.track.still import mirror_landmarks
    from core.track.tracker import PreparedFrame

    image = np.zeros((200, 240, 3), np.uint8)
    image[:, 120:] = 255   # a photo that tells its mirror image apart
    target = np.random.default_rng(1).uniform(60, 140, (68, 2))

    class FindsTarget:
        def run(self, gray, mask, state, lm, focal, center):
            found = target if gray[0, 0] == 0 else mirror_landmarks(target, gray.shape[1])
            state = state.copy()
            state.displacements = found - landmarks(state.copy(), lm, focal, center) + state.displacements
            return state

    with FaceTracker(TrackerOptions(segmenter=None, running_mode=RunningMode.IMAGE)) as t:
        t.cascade = FindsTarget()

        def prepare(img, mask=None):   # a detection at a fixed box; prepare also sets the focal length
            t._focal = 300.0
            return PreparedFrame(img, np.ones((200, 240), np.uint8), None, (70.0, 60.0, 90.0, 90.0), {})

        t.prepare = prepare
        result = t.track(image)
    assert np.allclose(result.landmarks, target)


@pytest.mark.parametrize("look", [True, False])
def test_an_undetected_face_is_looked_for_with_the_segmenter_only_when_asked(look):
    from core.track.tracker import TrackResult

    with FaceTracker(TrackerOptions(segmenter=None, running_mode=RunningMode.IMAGE,
                                    still=StillPhotoOptions(segment_undetected=look))) as t:
        t._segmenter = _FakeSegmenter((300, 400), (280, 160), 50)
        starts = []
        t._regress_still = lambda frame: starts.append(frame.start_box) or TrackResult(ok=False)
        t.track(np.zeros((300, 400, 3), np.uint8))   # nothing for the cascade to find
    if look:
        x, y, w, h = starts[0]
        assert abs(x + w / 2 - 280) < 10 and abs(y + h / 2 - 160) < 25
    else:
        assert starts == [None]
