"""Atomic file writes: a reader never sees a half-written file, an interrupted run leaves none."""
from __future__ import annotations

import os
import tempfile
from contextlib import contextmanager
from pathlib import Path

import numpy as np


@contextmanager
def _temporary_beside(path: Path, suffix: str):
    """A temporary file in path's folder, renamed onto path only if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix="." + path.name + ".", suffix=suffix)
    os.close(fd)
    try:
        yield Path(tmp)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def write_npz(path: str | Path, **arrays: np.ndarray) -> None:
    """np.savez_compressed, atomically."""
    with _temporary_beside(Path(path), ".tmp") as tmp, open(tmp, "wb") as f:
        np.savez_compressed(f, **arrays)


def write_text(path: str | Path, text: str) -> None:
    with _temporary_beside(Path(path), ".tmp") as tmp:
        tmp.write_text(text)


def write_image(path: str | Path, image: np.ndarray) -> None:
    """cv2.imwrite, atomically; the temporary file keeps the extension that picks the format."""
    import cv2

    path = Path(path)
    with _temporary_beside(path, path.suffix) as tmp:
        if not cv2.imwrite(str(tmp), image):
            raise OSError(f"could not write image {path}")
