"""Atomic file writes: a reader never sees a half-written file, an interrupted run leaves none."""
from __future__ import annotations

import os
import re
import secrets
from contextlib import contextmanager
from pathlib import Path

import numpy as np


def shipped_model_path(name: str) -> Path:
    """A file in models/, beside core/ in the repository and inside the installed add-on alike."""
    return Path(__file__).resolve().parents[2] / "models" / name


def _temporary_name(path: Path, suffix: str) -> Path:
    """A fresh hidden name beside `path` (no file yet), ending in `suffix`."""
    return path.parent / f".{path.name}.{secrets.token_hex(4)}{suffix}"


# what _temporary_name makes: "." + the file's name + "." + 8 hex digits + a suffix
_TEMPORARY = re.compile(r"^\..+\.[0-9a-f]{8}\.[^.]+$")


def remove_temporaries(folder: str | Path) -> list[Path]:
    """Remove the temporary files that writers killed mid-write (SIGKILL, a lost machine) left
    in `folder`; the files they were writing were never touched. Only for a folder no writer is
    using now. Returns what was removed."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    removed = [p for p in folder.iterdir() if _TEMPORARY.match(p.name) and p.is_file()]
    for tmp in removed:
        _remove_quietly(tmp)
    return removed


def _create_new(tmp: Path) -> None:
    """Create `tmp` empty; FileExistsError if it exists."""
    os.close(os.open(tmp, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))


def _reserve_temporary(path: Path, suffix: str, owner: list) -> None:
    """Create a fresh temporary file beside `path` and append its name to `owner` first, so that
    an interrupt (Ctrl-C) at any point after its creation leaves a name for the cleanup to remove
    (tempfile.mkstemp returns the name only after creating the file, a window the tests hit)."""
    for _ in range(100):
        owner.append(_temporary_name(path, suffix))
        try:
            _create_new(owner[-1])
            return
        except FileExistsError:
            owner.pop()
    raise FileExistsError(f"no free temporary name beside {path}")


def _remove_quietly(tmp: Path) -> None:
    try:
        os.unlink(tmp)
    except FileNotFoundError:
        pass


@contextmanager
def temporary_beside(path: Path, suffix: str):
    """A temporary file in path's folder, renamed onto path only if the block succeeds (for
    writers that want a file name, such as exporters; an exception leaves `path` as it was)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    names: list[Path] = []
    try:  # from creation on: a Ctrl-C right after the file appears must not leave it behind
        _reserve_temporary(path, suffix, names)
        yield names[-1]
        os.chmod(names[-1], 0o644)
        os.replace(names[-1], path)
    finally:
        for tmp in names:
            _remove_quietly(tmp)


def write_npz(path: str | Path, **arrays: np.ndarray) -> None:
    """np.savez_compressed, atomically."""
    with temporary_beside(Path(path), ".tmp") as tmp, open(tmp, "wb") as f:
        np.savez_compressed(f, **arrays)


def write_text(path: str | Path, text: str) -> None:
    with temporary_beside(Path(path), ".tmp") as tmp:
        tmp.write_text(text)


def write_image(path: str | Path, image: np.ndarray) -> None:
    """cv2.imwrite, atomically; the temporary file keeps the extension that picks the format."""
    import cv2

    path = Path(path)
    with temporary_beside(path, path.suffix) as tmp:
        if not cv2.imwrite(str(tmp), image):
            raise OSError(f"could not write image {path}")


class AtomicVideoWriter:
    """cv2.VideoWriter into a temporary file beside `path`, renamed onto it by `close()`; `abort()`
    (or an exception in a `with` block) removes it, so `path` is only ever a whole video."""

    def __init__(self, path: str | Path, fps: float, size: tuple[int, int], fourcc: str = "mp4v"):
        import cv2

        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._writer = None
        names: list[Path] = []
        try:
            _reserve_temporary(self.path, self.path.suffix, names)
            self._tmp = names[-1]
            self._writer = cv2.VideoWriter(str(self._tmp), cv2.VideoWriter_fourcc(*fourcc), float(fps), tuple(size))
        except BaseException:  # an interrupt before the caller holds the writer: nothing to abort with
            for tmp in names:
                _remove_quietly(tmp)
            raise
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
        _remove_quietly(self._tmp)

    def __enter__(self):
        return self

    def __exit__(self, exc_type, *exc):
        if exc_type is None:
            self.close()
        else:
            self.abort()
