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
    tmp = None
    try:  # from creation on: a Ctrl-C right after mkstemp must not leave the file behind
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix="." + path.name + ".", suffix=suffix)
        os.close(fd)
        yield Path(tmp)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    finally:
        if tmp is not None and os.path.exists(tmp):
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


class AtomicVideoWriter:
    """cv2.VideoWriter into a temporary file beside `path`, renamed onto it by `close()`; `abort()`
    (or an exception in a `with` block) removes it, so `path` is only ever a whole video."""

    def __init__(self, path: str | Path, fps: float, size: tuple[int, int], fourcc: str = "mp4v"):
        import cv2

        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix="." + self.path.name + ".", suffix=self.path.suffix)
        os.close(fd)
        self._tmp = Path(tmp)
        self._writer = cv2.VideoWriter(str(self._tmp), cv2.VideoWriter_fourcc(*fourcc), float(fps), tuple(size))
        if not self._writer.isOpened():
            self.abort()
            raise OSError(f"could not open a video writer for {self.path} ({fourcc}, {size[0]}x{size[1]})")

    def write(self, frame: np.ndarray) -> None:
        self._writer.write(frame)

    def close(self) -> None:
        """Finish the video and move it into place."""
        if self._writer is not None:
            self._writer.release()
            self._writer = None
            os.chmod(self._tmp, 0o644)
            os.replace(self._tmp, self.path)

    def abort(self) -> None:
        """Drop the partial video; `path` is left as it was."""
        if self._writer is not None:
            self._writer.release()
            self._writer = None
        if self._tmp.exists():
            self._tmp.unlink()

    def __enter__(self):
        return self

    def __exit__(self, exc_type, *exc):
        if exc_type is None:
            self.close()
        else:
            self.abort()
