"""Shared test fixtures' building blocks: where the shared data is, and skipping without it."""
from __future__ import annotations

import pytest

from evaluation.paths import shared_data_dir


def data_or_skip(subfolder: str):
    """The path of a shared data set, or skip the test saying what is missing."""
    path = shared_data_dir() / subfolder
    if not path.exists():
        pytest.skip(f"needs ../shared/data/{subfolder} (not found at {path}); set MASKCAP_DATA to run")
    return path


def lfw_group_frame(placements=((40, 115, 250), (340, 115, 250)), size=(640, 480)):
    """A grey frame with lfw_parts validation photos pasted at (x, y, side) each (every 7th name);
    skips without the data."""
    import cv2
    import numpy as np
    folder = data_or_skip("lfw_parts") / "validation"
    names = (folder.parent / "validation.txt").read_text().split()
    frame = np.full((size[1], size[0], 3), 100, np.uint8)
    for i, (x, y, side) in enumerate(placements):
        photo = cv2.resize(cv2.imread(str(folder / f"{names[i * 7]}.jpg")), (side, side))
        frame[y:y + side, x:x + side] = photo
    return frame
