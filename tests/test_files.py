"""Atomic writes: the target appears whole or not at all, and no temporary file is left."""
import numpy as np
import pytest

from core.files import write_image, write_npz, write_text


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
