"""The live feed: newest sample for the UI, recording, neutral calibration, clean stops, errors."""
import threading
import time

import pytest

from core.capture.filters import OneEuroParams
from core.capture.live_feed import LiveFeed, PacedSource
from core.capture.retarget import ChannelMap
from tests.test_take import FaceEveryOtherFrame, ListSource


def _wait(predicate, timeout=5.0):
    deadline = time.monotonic() + timeout
    while not predicate() and time.monotonic() < deadline:
        time.sleep(0.005)
    return predicate()


def _no_maskcap_threads():
    return not any(t.name.startswith("maskcap-") for t in threading.enumerate())


def test_the_newest_sample_arrives_and_the_threads_end_at_the_end_of_a_file():
    feed = LiveFeed(FaceEveryOtherFrame(), ListSource(20)).start()
    assert _wait(lambda: not feed.running)
    feed.stop()
    assert feed.newest() is not None and feed.newest().seq >= 1
    assert feed.error is None and _no_maskcap_threads()


def test_stop_ends_every_thread_while_frames_still_come():
    feed = LiveFeed(FaceEveryOtherFrame(), PacedSource(ListSource(10_000))).start()
    assert _wait(lambda: feed.newest() is not None)
    feed.stop()
    assert _no_maskcap_threads()


def test_values_are_mapped_with_the_channel_map():
    cmap = ChannelMap()
    cmap.gain[19] = 2.0
    feed = LiveFeed(FaceEveryOtherFrame(), ListSource(11), channel_map=cmap).start()
    _wait(lambda: not feed.running)
    feed.stop()
    s = feed.newest()
    assert s.ok and s.values[19] == pytest.approx(2 * s.raw[19])


def test_recording_keeps_every_tracked_sample_in_order():
    feed = LiveFeed(FaceEveryOtherFrame(), PacedSource(ListSource(12))).start()
    feed.start_recording()
    _wait(lambda: not feed.running)
    samples = feed.stop_recording()
    feed.stop()
    times = [s.time_s for s in samples]
    assert samples and all(s.ok for s in samples) and times == sorted(times)


def test_calibration_gives_the_median_rest_weights():
    feed = LiveFeed(FaceEveryOtherFrame(), PacedSource(ListSource(30))).start()
    feed.begin_calibration(0.3)
    assert _wait(lambda: feed.calibration_result() is not None)
    feed.stop()
    neutral = feed.calibration_result()
    assert neutral.shape == (46,) and 0 < neutral[19] < 0.3 and not feed.calibration_failed
    assert 60 < feed.rest_translation_cm[2] < 90


def test_filtering_smooths_the_values():
    feed = LiveFeed(FaceEveryOtherFrame(), ListSource(21), filter_params=OneEuroParams(min_cutoff=0.1, beta=0.0)).start()
    _wait(lambda: not feed.running)
    feed.stop()
    s = feed.newest()
    assert s.values[19] < s.raw[19]


def test_a_failing_source_is_held_as_the_error_and_the_threads_end():
    class Broken(ListSource):
        def read(self):
            raise OSError("camera unplugged")

    feed = LiveFeed(FaceEveryOtherFrame(), Broken(5)).start()
    assert _wait(lambda: not feed.running)
    feed.stop()
    assert "unplugged" in str(feed.error) and _no_maskcap_threads()
