"""The threaded pipeline: order, overlap of segmentation and regression, errors, clean stops."""
import threading
import time

import numpy as np
import pytest

from core.track.pipeline import Pipeline
from core.io.sources import Frame, FrameSource
from core.track.tracker import PreparedFrame, TrackResult


class CountingSource(FrameSource):
    def __init__(self, count=None):
        self.count, self.index = count, 0

    def read(self):
        if self.count is not None and self.index >= self.count:
            return None
        frame = Frame(self.index, self.index / 30.0, np.full((8, 8, 3), self.index % 256, np.uint8))
        self.index += 1
        return frame


class FakeTracker:
    """Stands in for FaceTracker: prepare and regress record when they run."""

    def __init__(self, fail_at=None, overlap_probe=False):
        self.fail_at = fail_at
        self.prepare_started = {}
        self.overlaps = 0
        self.overlap_probe = overlap_probe
        self.regressed = 0
        self.bases = {}

    def basis(self):
        return self.regressed  # how many frames had been regressed when the snapshot was taken

    def prepare(self, image, basis=None):
        k = int(image[0, 0, 0])
        self.bases[k] = basis
        self.prepare_started[k] = threading.Event()
        self.prepare_started[k].set()
        return PreparedFrame(image, np.ones(image.shape[:2], np.uint8), None, None, {"k": k})

    def regress(self, prepared):
        k = prepared.timings["k"]
        if self.fail_at == k:
            raise RuntimeError(f"regression failed on frame {k}")
        if self.overlap_probe:
            # while frame k is regressed, frame k + 1 is already being segmented
            deadline = time.monotonic() + 1.0
            while k + 1 not in self.prepare_started and time.monotonic() < deadline:
                time.sleep(0.001)
            self.overlaps += k + 1 in self.prepare_started
        self.regressed += 1
        return TrackResult(ok=True, confidence=float(k))


def _no_pipeline_threads():
    return not any(t.name.startswith("maskcap-") for t in threading.enumerate())


def test_a_file_source_gives_every_frame_in_order_and_the_threads_end():
    with Pipeline(FakeTracker(), CountingSource(25)) as pipe:
        got = [(f.index, r.confidence) for f, r in pipe.results()]
    assert got == [(k, float(k)) for k in range(25)]
    assert pipe.stats.frames == 25
    assert _no_pipeline_threads()


def test_segmentation_of_the_next_frame_overlaps_regression_of_this_one():
    tracker = FakeTracker(overlap_probe=True)
    with Pipeline(tracker, CountingSource(10)) as pipe:
        list(pipe.results())
    assert tracker.overlaps == 9  # every frame but the last had its successor in segmentation


def test_an_error_on_a_worker_stops_everything_and_is_raised_to_the_reader():
    with Pipeline(FakeTracker(fail_at=3), CountingSource(50)) as pipe:
        with pytest.raises(RuntimeError, match="frame 3"):
            list(pipe.results())
    assert _no_pipeline_threads()


def test_stop_ends_a_live_source_that_never_ends():
    pipe = Pipeline(FakeTracker(), CountingSource(None), live=True).start()
    deadline = time.monotonic() + 5
    while pipe.latest() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    assert pipe.latest() is not None
    pipe.stop()
    assert not pipe.running and _no_pipeline_threads()


def test_a_file_is_segmented_from_the_shape_two_frames_back_whatever_the_timing():
    tracker = FakeTracker(overlap_probe=True)
    with Pipeline(tracker, CountingSource(20)) as pipe:
        list(pipe.results())
    assert tracker.bases[0] == 0 and tracker.bases[1] == 0
    assert all(tracker.bases[k] == k - 1 for k in range(2, 20))  # frames 0..k-2 regressed, not k-1


def test_a_live_source_is_segmented_from_the_latest_shape():
    tracker = FakeTracker()
    with Pipeline(tracker, CountingSource(10), live=True) as pipe:
        list(pipe.results())
    assert set(tracker.bases.values()) == {None}
