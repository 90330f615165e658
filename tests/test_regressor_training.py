"""The regressor's training faces: several sources, each with its own image size, one held-out split."""
import cv2
import numpy as np
import pytest

from training.regressor.train import FaceSource, load_sources, parse_source


def _source(tmp_path, name, size, count, validation=False):
    """count grey images of size (w, h) with fits and masks, as training.regressor.fit_landmarks68.save_targets writes."""
    w, h = size
    images, masks = tmp_path / name / "images", tmp_path / name / "masks"
    images.mkdir(parents=True)
    masks.mkdir(parents=True)
    files = [f"face_{i:03d}.png" for i in range(count)]
    for f in files:
        cv2.imwrite(str(images / f), np.full((h, w), 100, np.uint8))
        cv2.imwrite(str(masks / f), np.full((h, w), 255, np.uint8))
    rot = np.repeat(np.eye(3, dtype=np.float32)[None], count, 0)
    np.savez(tmp_path / name / "fits.npz", files=np.array(files), landmarks=np.ones((count, 68, 2), np.float32),
             rotation=rot, translation=np.tile(np.float32([0, 0, 50]), (count, 1)),
             expression=np.zeros((count, 46), np.float32), focal_px=np.full(count, 300.0, np.float32),
             image_size=np.array(size))
    return FaceSource(name, images, tmp_path / name / "fits.npz", masks, f"{name} terms", validation)


def test_faces_of_several_sources_keep_their_own_image_centre_and_only_the_first_is_held_out(tmp_path):
    first = _source(tmp_path, "a", (256, 256), 20, validation=True)
    second = _source(tmp_path, "b", (160, 120), 7)
    faces, train, val, counts = load_sources([first, second], use_masks=True)
    assert counts == {"a": {"train": 18, "held_out": 2}, "b": {"train": 7, "held_out": 0}}
    assert len(faces) == 27 and set(val) <= set(range(20)) and set(range(20, 27)) <= set(train)
    assert np.allclose(faces[0].center, [127.5, 127.5]) and np.allclose(faces[-1].center, [79.5, 59.5])


def test_an_image_whose_size_differs_from_its_fits_is_rejected(tmp_path):
    source = _source(tmp_path, "a", (160, 160), 2)
    cv2.imwrite(str(source.images / "face_001.png"), np.zeros((100, 100), np.uint8))
    with pytest.raises(ValueError, match="face_001.png is 100x100, its fits say 160x160"):
        load_sources([source], use_masks=True)


def test_a_missing_mask_names_the_file_and_the_command_that_makes_it(tmp_path):
    source = _source(tmp_path, "a", (160, 160), 2)
    (source.masks / "face_000.png").unlink()
    with pytest.raises(FileNotFoundError, match="face_000.png missing.*segment_landmarks68"):
        load_sources([source], use_masks=True)


def test_a_source_is_given_by_name_or_by_its_four_paths():
    custom = parse_source("mine:/data/img:/data/fits.npz:/data/masks")
    assert custom.name == "mine" and str(custom.fits) == "/data/fits.npz" and not custom.validation
    with pytest.raises(Exception, match="name:images:fits.npz:masks"):
        parse_source("only:two")
