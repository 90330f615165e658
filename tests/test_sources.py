"""Frame sources: what opens, what fails, and that every failure names the source."""
import cv2
import numpy as np
import pytest

from core.io.sources import CameraSource, ImageSequenceSource, SourceError, VideoFileSource, open_source


def _write_video(path, frames=5, size=(64, 48)):
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 25.0, size)
    for i in range(frames):
        writer.write(np.full((size[1], size[0], 3), 20 * i, np.uint8))
    writer.release()


def test_a_video_file_yields_every_frame_in_order_with_times(tmp_path):
    path = tmp_path / "clip.avi"
    _write_video(path, frames=5)
    with open_source(path) as source:
        assert source.size == (64, 48) and source.fps == pytest.approx(25.0)
        frames = list(source)
    assert [f.index for f in frames] == [0, 1, 2, 3, 4]
    assert frames[2].time_s == pytest.approx(2 / 25.0)
    assert frames[0].image.shape == (48, 64, 3) and frames[0].image.dtype == np.uint8


def test_seeking_an_mp4_lands_on_the_frame_a_sequential_read_gives(tmp_path):
    path = tmp_path / "clip.mp4"
    rng = np.random.default_rng(0)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 10.0, (64, 48))
    for _ in range(30):
        writer.write(cv2.resize(rng.integers(0, 256, (6, 8, 3), dtype=np.uint8), (64, 48)))
    writer.release()
    with VideoFileSource(path) as source:
        frames = [f.image for f in source]
    with VideoFileSource(path) as source:
        for index in (17, 3, 29):
            source.seek(index)
            frame = source.read()
            assert frame.index == index and np.array_equal(frame.image, frames[index])


def test_a_missing_video_names_the_path(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.mp4"):
        open_source(tmp_path / "nope.mp4")


def test_a_text_file_named_mp4_is_refused(tmp_path):
    fake = tmp_path / "notes.mp4"
    fake.write_text("this is not a video")
    with pytest.raises(SourceError, match="notes.mp4"):
        VideoFileSource(fake)


def test_a_truncated_video_is_refused_or_ends_early_without_crashing(tmp_path):
    path = tmp_path / "cut.avi"
    _write_video(path, frames=10)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 3])
    try:
        with VideoFileSource(path) as source:
            frames = list(source)
        assert len(frames) < 10
    except SourceError as exc:
        assert "cut.avi" in str(exc)


def test_an_image_sequence_plays_in_natural_order(tmp_path):
    for i in (1, 2, 10):
        cv2.imwrite(str(tmp_path / f"frame_{i}.png"), np.full((8, 8), i, np.uint8))
    with pytest.raises(SourceError, match="missing frame number"):
        ImageSequenceSource(tmp_path)
    source = ImageSequenceSource(tmp_path, allow_gaps=True, fps=24)
    values = [int(f.image[0, 0, 0]) for f in source]
    assert values == [1, 2, 10]


def test_a_missing_frame_is_named(tmp_path):
    for i in (0, 1, 3):
        cv2.imwrite(str(tmp_path / f"shot.{i:04d}.png"), np.zeros((8, 8, 3), np.uint8))
    with pytest.raises(SourceError, match=r"missing frame number\(s\) 2"):
        open_source(tmp_path)


def test_an_unreadable_image_in_a_sequence_is_named_when_reached(tmp_path):
    cv2.imwrite(str(tmp_path / "f0.png"), np.zeros((8, 8, 3), np.uint8))
    (tmp_path / "f1.png").write_bytes(b"garbage")
    source = ImageSequenceSource(tmp_path)
    assert source.read().index == 0
    with pytest.raises(SourceError, match="f1.png"):
        source.read()


def test_a_camera_that_does_not_exist_gives_a_clear_error():
    with pytest.raises(SourceError, match="camera 97"):
        CameraSource(97)
    with pytest.raises(SourceError, match="camera index"):
        CameraSource(-1)


def test_nonsense_specs_are_refused():
    with pytest.raises(SourceError):
        open_source(None)


def test_a_video_with_no_frames_is_refused(tmp_path):
    path = tmp_path / "empty.avi"
    _write_video(path, frames=0)
    if not path.exists():
        path.write_bytes(b"")
    with pytest.raises(SourceError, match="empty.avi"):
        VideoFileSource(path)
