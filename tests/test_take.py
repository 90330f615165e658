"""Takes: a clip tracked into arrays, with progress, cancelling and a mask sequence."""
import threading

import cv2
import numpy as np
import pytest

from core.face.camera import FRONTAL
from core.face.facs import NUM_FACS
from core.io.sources import Frame, FrameSource, SourceError
from core.capture.take import MASK_PATTERN, TakeBuilder, open_file_source, track_clip
from core.track.tracker import PreparedFrame, TrackResult
from tests.helpers import data_or_skip


class ListSource(FrameSource):
    def __init__(self, count, size=(32, 24)):
        self.count, self.index, self.size, self.fps, self.frame_count = count, 0, size, 25.0, count
        self.name = "list"

    def read(self):
        if self.index >= self.count:
            return None
        w, h = self.size
        frame = Frame(self.index, self.index / self.fps, np.full((h, w, 3), self.index, np.uint8))
        self.index += 1
        return frame


class FaceEveryOtherFrame:
    """A stand-in tracker: frame k has JawOpen = k / 100; odd frames are lost."""

    def basis(self):
        return None

    def prepare(self, image, basis=None):
        return PreparedFrame(image, np.ones(image.shape[:2], np.uint8), None, None, {})

    def regress(self, prepared):
        k = int(prepared.image[0, 0, 0])
        if k % 2:
            return TrackResult(ok=False, mask=prepared.mask)
        shapes = np.zeros(NUM_FACS)
        shapes[19] = k / 100
        return TrackResult(ok=True, landmarks=np.zeros((68, 2)), blendshapes=shapes, rotation=FRONTAL.copy(),
                           translation=np.array([0, 0, 60.0 + k]), focal=500.0 + k, mask=prepared.mask,
                           identity=np.full(3, float(k)),
                           confidence=1.0)

    def close(self):
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def test_every_frame_becomes_a_row_in_order_with_lost_frames_marked():
    take = track_clip(ListSource(10), tracker=FaceEveryOtherFrame())
    assert len(take) == 10 and list(take.frame_index) == list(range(10))
    assert list(take.ok) == [k % 2 == 0 for k in range(10)]
    assert take.blendshapes[4, 19] == pytest.approx(0.04)
    assert np.all(take.blendshapes[1] == 0)
    assert take.fps == 25.0 and take.size == (32, 24)


def test_the_reference_is_the_median_tracked_position_and_the_focal_the_last():
    take = track_clip(ListSource(6), tracker=FaceEveryOtherFrame())
    assert np.allclose(take.reference_translation_cm(), [0, 0, 62])
    assert take.solved_focal_px() == pytest.approx(504.0)
    assert np.allclose(take.identity, 4.0)


def test_progress_is_reported_for_every_frame():
    seen = []
    track_clip(ListSource(5), tracker=FaceEveryOtherFrame(), on_progress=lambda done, total: seen.append((done, total)))
    assert seen == [(k, 5) for k in range(1, 6)]


def test_cancelling_returns_the_frames_done_and_says_so():
    cancel = threading.Event()

    def progress(done, total):
        if done == 3:
            cancel.set()

    take = track_clip(ListSource(50), tracker=FaceEveryOtherFrame(), on_progress=progress, cancel=cancel)
    assert take.cancelled and len(take) == 3


def test_masks_are_written_one_png_per_frame_numbered_from_one(tmp_path):
    track_clip(ListSource(4), tracker=FaceEveryOtherFrame(), mask_dir=tmp_path / "masks")
    files = sorted(p.name for p in (tmp_path / "masks").iterdir())
    assert files == [MASK_PATTERN.format(k) for k in range(1, 5)]
    mask = cv2.imread(str(tmp_path / "masks" / files[0]), cv2.IMREAD_UNCHANGED)
    assert mask.shape == (24, 32) and set(np.unique(mask)) == {255}


def test_an_empty_builder_gives_an_empty_take():
    take = TakeBuilder(30, (640, 480)).take()
    assert len(take) == 0 and take.blendshapes.shape == (0, NUM_FACS) and take.tracked == 0


@pytest.mark.parametrize("spec, message", [("", "no footage"), ("0", "camera index")])
def test_a_bake_needs_a_file_source(spec, message):
    with pytest.raises(SourceError, match=message):
        open_file_source(spec)


def test_a_missing_file_is_named():
    with pytest.raises(FileNotFoundError, match="nowhere.mp4"):
        open_file_source("/nowhere.mp4")


def test_a_real_clip_gives_weights_in_range_that_move():
    clip = data_or_skip("videos") / "webcam_talking.mp4"
    take = track_clip(clip, max_frames=30)
    assert len(take) == 30 and take.tracked >= 25
    good = take.blendshapes[take.ok]
    assert good.min() >= 0.0 and good.max() <= 1.0
    assert good.std(0).max() > 0.01


def test_a_clip_bakes_to_the_same_take_twice():
    """Offline bakes are repeatable: the pipeline segments from a fixed frame's shape and the
    identity/focal solves are swapped in at fixed frames (track_clip's default options); 90
    frames take in a cold solve and a warm-started one."""
    clip = data_or_skip("videos") / "webcam_talking.mp4"
    first, second = track_clip(clip, max_frames=90), track_clip(clip, max_frames=90)
    assert first.tracked > 80 and np.array_equal(first.ok, second.ok)
    assert len(np.unique(first.focal_px[first.ok])) >= 3  # the prior, then two solves
    assert np.array_equal(first.landmarks, second.landmarks)
    assert np.array_equal(first.blendshapes, second.blendshapes)
    assert np.array_equal(first.focal_px, second.focal_px)
