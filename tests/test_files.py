"""Atomic writes: the target appears whole or not at all, and no temporary file is left."""
import numpy as np
import pytest

from core.io.files import remove_temporaries, write_image, write_npz, write_text


def test_npz_and_text_are_written_whole(tmp_path):
    write_npz(tmp_path / "a.npz", x=np.arange(5))
    write_text(tmp_path / "b.json", "{}")
    assert np.array_equal(np.load(tmp_path / "a.npz")["x"], np.arange(5))
    assert (tmp_path / "b.json").read_text() == "{}"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.npz", "b.json"]


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path):
    target = tmp_path / "picture.png"
    write_image(target, np.zeros((4, 4), np.uint8))
    before = target.read_bytes()
    with pytest.raises(Exception):
        write_image(target, np.zeros((0, 0), np.uint8))  # OpenCV refuses an empty image
    assert target.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["picture.png"]


def test_an_interrupt_just_after_the_temporary_file_appears_leaves_nothing(tmp_path, monkeypatch):
    import core.io.files as files
    create = files._create_new

    def create_then_interrupt(tmp):
        create(tmp)
        raise KeyboardInterrupt  # Ctrl-C lands between the file's creation and anything else

    monkeypatch.setattr(files, "_create_new", create_then_interrupt)
    with pytest.raises(KeyboardInterrupt):
        write_image(tmp_path / "mask.png", np.zeros((4, 4), np.uint8))
    with pytest.raises(KeyboardInterrupt):
        files.AtomicVideoWriter(tmp_path / "clip.mp4", 25.0, (16, 16))
    assert list(tmp_path.iterdir()) == []


def test_an_interrupt_while_the_video_writer_opens_leaves_nothing(tmp_path, monkeypatch):
    import cv2

    import core.io.files as files

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(cv2, "VideoWriter", interrupted)
    with pytest.raises(KeyboardInterrupt):
        files.AtomicVideoWriter(tmp_path / "clip.mp4", 25.0, (16, 16))
    assert list(tmp_path.iterdir()) == []


def test_remove_temporaries_takes_what_a_killed_writer_left_and_nothing_else(tmp_path):
    import core.io.files as files
    left = [files._temporary_name(tmp_path / "mask_000001.png", ".png"),
            files._temporary_name(tmp_path / "faces.json", ".tmp")]
    for path in left:
        path.write_bytes(b"half")
    kept = [tmp_path / "mask_000001.png", tmp_path / ".hidden", tmp_path / ".faces.json.notes.txt"]
    for path in kept:
        path.write_bytes(b"x")
    assert sorted(remove_temporaries(tmp_path)) == sorted(left)
    assert sorted(tmp_path.iterdir()) == sorted(kept)
    assert remove_temporaries(tmp_path / "missing") == []
