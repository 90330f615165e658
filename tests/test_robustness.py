"""Robustness of the whole system: bad input gives a clear error naming the problem and
leaves no damage (no thread left running, no output file), odd frames work, and faces that leave,
shrink or are covered give ok=False frames and are found again afterwards.

The media are made here with OpenCV; the face scenarios use a real face from the shared data.
"""
from __future__ import annotations

import json
import threading
import time

import cv2
import numpy as np
import pytest

from core.face.camera import focal_from_mm
from core.cli import main
from core.face.face_model import FaceModelError
from core.track.pipeline import Pipeline
from core.track.regressor import RegressorModelError
from core.segment.segmentation import SegmenterModelError
from core.io.sources import CameraSource, Frame, FrameSource, SourceError
from core.track.tracker import FaceTracker, RunningMode, TrackerOptions

from .helpers import data_or_skip

FPS = 25


# ----------------------------------------------------------------------------- helpers

@pytest.fixture()
def no_leaks():
    """Fails the test if it leaves a thread running (threads get a moment to end). Name it before
    the other fixtures, so that theirs have ended when it checks."""
    before = set(threading.enumerate())
    yield
    deadline = time.monotonic() + 5.0
    while time.monotonic() < deadline:
        left = [t for t in threading.enumerate() if t not in before and t.is_alive()]
        if not left:
            return
        time.sleep(0.05)
    pytest.fail(f"threads left running: {[t.name for t in left]}")


def write_video(path, frames=10, size=(96, 72), fourcc="mp4v"):
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), FPS, size)
    assert writer.isOpened(), f"OpenCV cannot write {path} on this machine"
    for i in range(frames):
        image = np.full((size[1], size[0], 3), 40, np.uint8)
        cv2.circle(image, (10 + 5 * i, size[1] // 2), 8, (200, 180, 160), -1)
        writer.write(image)
    writer.release()


def track_cli(source, out_dir, *extra) -> int:
    return main(["track", str(source), "--json", str(out_dir / "take.json"), "--csv", str(out_dir / "take.csv"),
                 "--preview", str(out_dir / "preview.mp4"), "--quiet", *extra])


def outputs(folder) -> list[str]:
    """Files the CLI wrote (or left half-written) in folder."""
    return sorted(p.name for p in folder.iterdir() if p.name.startswith((".take", ".preview", "take", "preview")))


@pytest.fixture()
def tracker():
    """A fresh tracker per test: its identity keyframes and focal length carry nothing over."""
    with FaceTracker() as t:
        yield t


@pytest.fixture(scope="module")
def face_image():
    """A real face (landmarks68, 256x256) that the tracker holds when it sits still in a frame."""
    root = data_or_skip("landmarks68") / "train"
    with FaceTracker() as tracker:
        for path in sorted(root.glob("*.jpg"))[:20]:
            face = cv2.imread(str(path))
            tracker.reset()
            if all(tracker.track(place(face, 112, 52)).ok for _ in range(3)):
                return face
    pytest.fail("the tracker holds none of the first 20 landmarks68 faces sitting still in a frame")


def place(face, x, y, size=(480, 360), background=90) -> np.ndarray:
    """face pasted with its top-left corner at (x, y) on a grey frame; parts outside are cut off."""
    w, h = size
    frame = np.full((h, w, 3), background, np.uint8)
    fh, fw = face.shape[:2]
    x0, y0, x1, y1 = max(x, 0), max(y, 0), min(x + fw, w), min(y + fh, h)
    if x1 > x0 and y1 > y0:
        frame[y0:y1, x0:x1] = face[y0 - y:y1 - y, x0 - x:x1 - x]
    return frame


def held(flags: str, slips: int = 1) -> bool:
    """The face is tracked in a run of frames, allowing a rare single-frame slip (the identity solve
    runs on its own thread and swaps in at a time that varies from run to run)."""
    return flags.count("0") <= slips


def oks(tracker, frames) -> str:
    """The ok flags of a run as a string of 1s and 0s (readable in an assertion message)."""
    tracker.reset()
    return "".join("1" if tracker.track(f).ok else "0" for f in frames)


# ----------------------------------------------------------------------------- files and cameras

def test_a_nonexistent_path_is_named_and_nothing_is_written(tmp_path, capsys, no_leaks):
    assert track_cli(tmp_path / "missing.mp4", tmp_path) == 2
    assert "missing.mp4" in capsys.readouterr().err
    assert outputs(tmp_path) == []


def test_a_text_file_named_mp4_is_refused_by_name_and_nothing_is_written(tmp_path, capsys, no_leaks):
    fake = tmp_path / "notes.mp4"
    fake.write_text("these are my notes, not a video\n" * 20)
    assert track_cli(fake, tmp_path) == 2
    err = capsys.readouterr().err
    assert "notes.mp4" in err and ("video" in err or "decod" in err)
    assert outputs(tmp_path) == []


@pytest.mark.parametrize("name, fourcc", [("empty.mp4", "mp4v"), ("empty.avi", "MJPG")])
def test_a_zero_frame_video_is_refused_and_nothing_is_written(tmp_path, capsys, no_leaks, name, fourcc):
    empty = tmp_path / name
    write_video(empty, frames=0, fourcc=fourcc)
    assert track_cli(empty, tmp_path) == 2
    err = capsys.readouterr().err
    assert name in err and ("no decodable frames" in err or "cannot open" in err), err
    assert outputs(tmp_path) == []


@pytest.mark.parametrize("damage", ["truncated", "corrupted"])
def test_a_damaged_video_is_refused_or_gives_a_complete_take_of_what_decodes(tmp_path, capsys, no_leaks, damage):
    clip = tmp_path / "clip.mp4"
    write_video(clip, frames=30)
    data = bytearray(clip.read_bytes())
    if damage == "truncated":
        data = data[: len(data) // 2]
    else:  # garbage over the middle third
        rng = np.random.default_rng(0)
        a, b = len(data) // 3, 2 * len(data) // 3
        data[a:b] = rng.integers(0, 256, b - a, dtype=np.uint8).tobytes()
    clip.write_bytes(bytes(data))
    code = track_cli(clip, tmp_path)
    err = capsys.readouterr().err
    if code == 2:
        assert "clip.mp4" in err and outputs(tmp_path) == []
    else:
        assert code == 0
        take = json.loads((tmp_path / "take.json").read_text())
        assert 0 < len(take["frames"]) <= 30
        assert [f["index"] for f in take["frames"]] == list(range(len(take["frames"])))
        assert outputs(tmp_path) == ["preview.mp4", "take.csv", "take.json"]  # no temporary left behind


def test_an_image_sequence_with_a_missing_frame_names_the_gap(tmp_path, capsys, no_leaks):
    folder = tmp_path / "shots"
    folder.mkdir()
    for i in (1, 2, 3, 5, 6):
        cv2.imwrite(str(folder / f"shot_{i:04d}.png"), np.full((40, 50, 3), 30 * i, np.uint8))
    assert track_cli(folder, tmp_path) == 2
    err = capsys.readouterr().err
    assert "missing frame number(s) 4" in err and "shots" in err
    assert outputs(tmp_path) == []


def test_a_camera_index_that_does_not_open_is_named(tmp_path, capsys, no_leaks):
    assert track_cli(63, tmp_path, "--frames", "5") == 2
    assert "camera 63 could not be opened" in capsys.readouterr().err
    assert outputs(tmp_path) == []


class StallingCapture:
    """Stands in for cv2.VideoCapture: a camera that delivers `frames` frames, then nothing."""

    released = 0

    def __init__(self, index, frames=12):
        self.left = frames

    def isOpened(self):
        return True

    def set(self, prop, value):
        return True

    def get(self, prop):
        return FPS if prop == cv2.CAP_PROP_FPS else 0.0

    def read(self):
        if self.left <= 0:
            return False, None
        self.left -= 1
        return True, np.full((72, 96, 3), 60, np.uint8)

    def release(self):
        StallingCapture.released += 1


def test_a_camera_that_stops_delivering_ends_the_pipeline_with_an_error_naming_it(no_leaks, monkeypatch, tracker):
    monkeypatch.setattr("core.io.sources.cv2.VideoCapture", StallingCapture)
    released = StallingCapture.released
    got = 0
    with CameraSource(0, timeout_s=0.3) as camera:
        with pytest.raises(SourceError, match="camera 0 stopped delivering frames"):
            with Pipeline(tracker, camera, live=False) as pipe:
                for _ in pipe.results():
                    got += 1
        assert not pipe.running
    assert got == 11  # the 12 frames less the one CameraSource reads to learn the size
    assert StallingCapture.released == released + 1


def test_a_camera_that_stops_mid_take_still_gives_a_complete_take_of_the_frames_before(monkeypatch, tmp_path,
                                                                                      capsys, no_leaks):
    monkeypatch.setattr("core.io.sources.cv2.VideoCapture", StallingCapture)
    # the CLI opens the camera with the default stall timeout: 0.3 s instead of 2 s keeps the test short
    monkeypatch.setattr("core.io.sources.CameraSource.__init__.__defaults__", (None, None, 0.3))
    assert track_cli(0, tmp_path, "--frames", "100") == 0
    assert "stopped delivering frames" in capsys.readouterr().err
    take = json.loads((tmp_path / "take.json").read_text())
    indices = [f["index"] for f in take["frames"]]  # live: frames the tracker cannot keep up with are dropped
    assert 0 < len(indices) <= 11 and indices == sorted(set(indices)) and indices[-1] <= 10
    assert outputs(tmp_path) == ["preview.mp4", "take.csv", "take.json"]


def test_an_unexpected_error_mid_take_is_raised_and_leaves_no_output_file(monkeypatch, tmp_path, no_leaks):
    clip = tmp_path / "clip.avi"
    write_video(clip, frames=20, fourcc="MJPG")
    regress = FaceTracker.regress
    calls = []

    def failing_regress(self, prepared, *args, **kwargs):
        calls.append(1)
        if len(calls) == 8:
            raise RuntimeError("simulated failure on frame 8")
        return regress(self, prepared, *args, **kwargs)

    monkeypatch.setattr(FaceTracker, "regress", failing_regress)
    with pytest.raises(RuntimeError, match="simulated failure on frame 8"):
        track_cli(clip, tmp_path)
    assert outputs(tmp_path) == []


class FailingSource(FrameSource):
    """A live source object that raises after a few frames, as a device unplugged mid-run."""

    name = "fake capture card"

    def __init__(self, frames=5):
        self.frames, self.index = frames, 0

    def read(self):
        if self.index >= self.frames:
            raise SourceError(f"{self.name} was unplugged")
        self.index += 1
        return Frame(self.index - 1, self.index / FPS, np.full((72, 96, 3), 50, np.uint8))


def test_a_source_object_that_fails_mid_run_stops_every_thread_and_raises_its_error(no_leaks, tracker):
    pipe = Pipeline(tracker, FailingSource(5), live=True).start()
    with pytest.raises(SourceError, match="fake capture card was unplugged"):
        list(pipe.results())
    pipe.stop()
    assert not pipe.running


class GrayFrames(FrameSource):
    """A source object whose frames are grayscale (HxW) or of the wrong type."""

    def __init__(self, image, count=3):
        self.image, self.count, self.index = image, count, 0

    def read(self):
        if self.index >= self.count:
            return None
        self.index += 1
        return Frame(self.index - 1, 0.0, self.image)


def test_a_source_object_with_gray_frames_is_tracked(no_leaks, tracker):
    with Pipeline(tracker, GrayFrames(np.full((72, 96), 80, np.uint8))) as pipe:
        results = [r for _, r in pipe.results()]
    assert len(results) == 3 and not any(r.ok for r in results)


def test_a_source_object_with_float_frames_fails_with_a_message_naming_the_frame(no_leaks, tracker):
    with Pipeline(tracker, GrayFrames(np.zeros((72, 96, 3), np.float32))) as pipe:
        with pytest.raises(ValueError, match="frame 0.*dtype float32"):
            list(pipe.results())


# ----------------------------------------------------------------------------- frames

@pytest.mark.parametrize("shape", [(1, 1, 3), (1, 1), (1, 1, 4), (2, 3, 3)])
def test_tiny_frames_give_ok_false_without_an_error(tracker, shape):
    result = tracker.track(np.zeros(shape, np.uint8))
    assert not result.ok and result.mask.shape == shape[:2]


def test_a_4k_frame_is_tracked(tracker, face_image):
    frame = cv2.resize(place(face_image, 112, 52), (3840, 2160), interpolation=cv2.INTER_LINEAR)
    flags = oks(tracker, [frame] * 3)
    assert flags == "111"
    result = tracker.track(frame)
    assert result.mask.shape == (2160, 3840) and result.mask.sum() > 0.02 * frame.shape[0] * frame.shape[1]


def test_frames_of_a_new_size_restart_the_track_with_a_focal_length_for_that_size(tracker, face_image):
    small = place(face_image, 112, 52)
    large = cv2.resize(small, (960, 720))
    tracker.reset()
    before = [tracker.track(small) for _ in range(3)][-1]
    after = [tracker.track(large) for _ in range(3)]
    assert before.ok and all(r.ok for r in after)
    assert after[-1].focal == pytest.approx(focal_from_mm(TrackerOptions().focal_mm, 960))
    io = np.linalg.norm(after[-1].landmarks[36] - after[-1].landmarks[45])
    assert np.linalg.norm(after[-1].landmarks - 2 * before.landmarks, axis=1).mean() < 0.15 * io


@pytest.mark.parametrize("convert", [cv2.COLOR_BGR2GRAY, cv2.COLOR_BGR2BGRA], ids=["gray", "bgra"])
def test_gray_and_bgra_frames_are_tracked_like_bgr(face_image, convert):
    frame = place(face_image, 112, 52)
    with FaceTracker(TrackerOptions(running_mode=RunningMode.IMAGE)) as tracker:
        reference = tracker.track(frame)
        other = tracker.track(cv2.cvtColor(frame, convert))
    assert reference.ok and other.ok
    io = np.linalg.norm(reference.landmarks[36] - reference.landmarks[45])
    assert np.linalg.norm(other.landmarks - reference.landmarks, axis=1).mean() < 0.05 * io


# ----------------------------------------------------------------------------- model files

def _damaged_copy(source, path, how):
    data = source.read_bytes()
    path.write_bytes(data[: len(data) // 2] if how == "truncated" else b"not a model " * 100)
    return path


@pytest.mark.parametrize("how", ["missing", "truncated", "garbage"])
@pytest.mark.parametrize("which", ["segmenter_path", "regressor_path", "face_model_path"])
def test_a_missing_or_corrupt_model_file_is_named_and_starts_no_thread(tmp_path, no_leaks, which, how):
    from core.face.face_model import default_face_model_path
    from core.segment.segmentation import SegmenterOptions, default_segmenter_path
    from core.track.tracker import default_regressor_path

    shipped = {"segmenter_path": default_segmenter_path(), "regressor_path": default_regressor_path(),
               "face_model_path": default_face_model_path()}[which]
    path = tmp_path / shipped.name
    if how != "missing":
        _damaged_copy(shipped, path, how)
    expected = {"segmenter_path": (SegmenterModelError, FileNotFoundError),
                "regressor_path": RegressorModelError, "face_model_path": FaceModelError}[which]
    with pytest.raises(expected) as caught:
        if which == "segmenter_path":
            FaceTracker(TrackerOptions(segmenter=SegmenterOptions(model_path=path)))
        else:
            FaceTracker(TrackerOptions(**{which: path}))
    assert str(path) in str(caught.value)
    assert ("not found" in str(caught.value)) == (how == "missing")


# ----------------------------------------------------------------------------- faces

def test_frames_without_a_face_are_lost_and_a_face_after_them_is_found(tracker, face_image):
    rng = np.random.default_rng(1)
    empty = [rng.integers(0, 256, (360, 480, 3), dtype=np.uint8) for _ in range(5)] + [place(face_image, -999, 0)] * 5
    flags = oks(tracker, empty + [place(face_image, 112, 52)] * 5)
    assert flags[:10] == "0" * 10 and held(flags[-5:]), flags


def test_a_face_that_leaves_the_frame_is_lost_and_found_again_when_it_returns(tracker, face_image):
    xs = list(range(112, 500, 24)) + [520] * 8 + list(range(520, 111, -24)) + [112] * 8
    flags = oks(tracker, [place(face_image, x, 52) for x in xs])
    leaving, gone, back = flags[:5], flags[17:25], flags[-8:]
    assert leaving == "11111" and gone == "0" * 8 and held(back), flags


def test_a_tiny_face_is_not_tracked_and_a_normal_one_after_it_is(tracker, face_image):
    tiny = cv2.resize(face_image, (16, 16), interpolation=cv2.INTER_AREA)
    flags = oks(tracker, [place(tiny, 230, 170)] * 10 + [place(face_image, 112, 52)] * 5)
    assert flags[:10] == "0" * 10 and held(flags[-5:]), flags


def _covered_by_box(tracker, frame):
    tracker.reset()
    x, y, w, h = (int(v) for v in tracker.track(frame).face_box)
    covered = frame.copy()
    covered[max(y, 0):y + h, max(x, 0):x + w] = 128
    return covered


def test_a_face_covered_by_a_box_for_a_second_is_lost_then_found_again(tracker, face_image):
    frame = place(face_image, 112, 52)
    covered = _covered_by_box(tracker, frame)
    flags = oks(tracker, [frame] * 5 + [covered] * FPS + [frame] * 10)
    assert flags[:5] == "11111", flags
    assert flags[5:5 + FPS] == "0" * FPS, flags
    assert held(flags[-5:]), flags


def _covered_by_hand(tracker, frame):
    """The largest hand of ../shared/data/hands, recoloured to the face's tone, scaled over the face box."""
    data_or_skip("hands")
    from training.segmenter.data import load_hands, recolour_hand, skin_tone_lab

    tracker.reset()
    result = tracker.track(frame)
    x, y, w, h = result.face_box
    hand = max(load_hands(), key=lambda h: int((h.rgba[:, :, 3] > 128).sum())).rgba
    bgr = recolour_hand(np.ascontiguousarray(hand[:, :, :3]), hand[:, :, 3],
                        skin_tone_lab(frame, result.mask), np.random.default_rng(0))
    scale = 1.8 * max(w, h) / min(hand.shape[:2])
    bgr = cv2.resize(bgr, None, fx=scale, fy=scale)
    alpha = cv2.resize(hand[:, :, 3], None, fx=scale, fy=scale).astype(np.float32) / 255.0
    hh, hw = alpha.shape
    top, left = int(y + h / 2 - hh / 2), int(x + w / 2 - hw / 2)
    over = np.zeros(frame.shape[:2], np.float32)
    colour = np.zeros_like(frame)
    y0, y1, x0, x1 = max(top, 0), min(top + hh, frame.shape[0]), max(left, 0), min(left + hw, frame.shape[1])
    over[y0:y1, x0:x1] = alpha[y0 - top:y1 - top, x0 - left:x1 - left]
    colour[y0:y1, x0:x1] = bgr[y0 - top:y1 - top, x0 - left:x1 - left]
    return (frame * (1 - over[:, :, None]) + colour * over[:, :, None]).astype(np.uint8)


def test_a_face_covered_by_a_hand_for_a_second_is_lost_then_found_again(tracker, face_image):
    frame = place(face_image, 112, 52)
    covered = _covered_by_hand(tracker, frame)
    flags = oks(tracker, [frame] * 5 + [covered] * FPS + [frame] * 10)
    assert flags[:5] == "11111" and held(flags[-5:]), flags
    assert flags[5 + 3:5 + FPS].count("0") >= FPS - 3 - 2, flags  # lost within 3 frames, at most 2 slips


def test_after_a_hand_the_face_is_tracked_again(tracker, face_image):
    frame = place(face_image, 112, 52)
    covered = _covered_by_hand(tracker, frame)
    flags = oks(tracker, [frame] * 5 + [covered] * FPS + [frame] * 15)
    assert held(flags[-10:]), flags


def test_a_shape_that_blew_up_is_dropped_and_the_face_found_again(tracker, face_image):
    from core.face.camera import principal_point
    from core.track.regressor import mean_face_in_box

    frame = place(face_image, 112, 52)
    tracker.reset()
    tracker.track(frame)
    center = principal_point((480, 360))
    tracker._state = mean_face_in_box(tracker._lm, (-4e7, -4e7, 8e7, 8e7), tracker._focal, center)
    first = tracker.track(frame)  # from a detection, not a crop of a 100-million-pixel square
    assert first.face_box[2] < 480 and held("".join("1" if tracker.track(frame).ok else "0" for _ in range(3)))
