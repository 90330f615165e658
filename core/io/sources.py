"""Frame sources: a camera, a video file, or an image sequence, with clear errors.

    with open_source("clip.mp4") as source:
        for frame in source:
            ...  # frame.image (BGR uint8), frame.index, frame.time_s

Every failure is a SourceError (or FileNotFoundError for a missing path) whose message names the
source and says what went wrong; nothing here writes anything.
"""
from __future__ import annotations

import re
import time
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from .closing import Closing

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".exr"}


class SourceError(RuntimeError):
    """A source that cannot be opened or read."""


@dataclass
class Frame:
    index: int          # 0-based position in the source
    time_s: float       # seconds from the start (frame index / fps for files)
    image: np.ndarray   # HxWx3 uint8 BGR


class FrameSource(Closing):
    """Common behaviour: iteration, context manager, properties fps, size, frame_count."""

    name: str = ""
    fps: float = 30.0
    size: tuple[int, int] = (0, 0)        # (width, height)
    frame_count: int | None = None         # None for live sources

    def read(self) -> Frame | None:        # None at the end of a file source
        raise NotImplementedError

    def close(self) -> None:
        pass

    def __iter__(self):
        while True:
            frame = self.read()
            if frame is None:
                return
            yield frame


def _as_bgr(image: np.ndarray) -> np.ndarray:
    if image.ndim == 2:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    if image.shape[2] == 4:
        return cv2.cvtColor(image, cv2.COLOR_BGRA2BGR)
    return image


class VideoFileSource(FrameSource):
    """Any file OpenCV's FFmpeg backend decodes."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.name = str(self.path)
        if not self.path.is_file():
            raise FileNotFoundError(f"video file not found: {self.path}")
        self._cap = cv2.VideoCapture(str(self.path))
        if not self._cap.isOpened():
            raise SourceError(f"cannot open {self.path} as a video: not a format OpenCV can decode, or corrupt")
        ok, first = self._cap.read()
        if not ok or first is None:
            self._cap.release()
            raise SourceError(f"{self.path} has no decodable frames (empty, truncated or not a video)")
        self._pending: np.ndarray | None = first
        fps = self._cap.get(cv2.CAP_PROP_FPS)
        self.fps = float(fps) if fps and np.isfinite(fps) and fps > 0 else 30.0
        self.size = (first.shape[1], first.shape[0])
        count = int(self._cap.get(cv2.CAP_PROP_FRAME_COUNT))
        self.frame_count = count if count > 0 else None
        self._index = 0

    def read(self) -> Frame | None:
        if self._cap is None:
            raise SourceError(f"{self.name} is closed")
        if self._pending is not None:
            image, self._pending = self._pending, None
        else:
            ok, image = self._cap.read()
            if not ok or image is None:
                return None
        frame = Frame(self._index, self._index / self.fps, _as_bgr(image))
        self._index += 1
        return frame

    def seek(self, index: int) -> None:
        """Read on from frame `index` (0-based). OpenCV's FFmpeg backend seeks to the key frame
        before it and decodes forward; whether that lands on exactly this frame depends on the
        file's timestamps, so a caller that needs the exact frame compares a decoded frame with
        one it knows (core/masks/cluster.py does at every split of a video)."""
        if self._cap is None:
            raise SourceError(f"{self.name} is closed")
        if index < 0:
            raise ValueError(f"frame index must be 0 or more, got {index}")
        self._pending = None
        self._cap.set(cv2.CAP_PROP_POS_FRAMES, int(index))
        self._index = int(index)

    def close(self) -> None:
        if getattr(self, "_cap", None) is not None:
            self._cap.release()
            self._cap = None


def _natural_key(path: Path):
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", path.name)]


class ImageSequenceSource(FrameSource):
    """The images of a folder in natural order (frame_2 before frame_10), at a given fps.

    A gap in the frame numbers raises a SourceError naming the missing numbers, unless
    allow_gaps; an unreadable image raises one naming the file when it is reached.
    """

    def __init__(self, folder: str | Path, fps: float = 30.0, allow_gaps: bool = False):
        self.folder = Path(folder)
        self.name = str(self.folder)
        if not self.folder.is_dir():
            raise FileNotFoundError(f"image sequence folder not found: {self.folder}")
        self.files = sorted((p for p in self.folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES), key=_natural_key)
        if not self.files:
            raise SourceError(f"{self.folder} holds no images ({', '.join(sorted(IMAGE_SUFFIXES))})")
        if not allow_gaps:
            missing = _missing_numbers(self.files)
            if missing:
                shown = ", ".join(str(n) for n in missing[:10]) + (" ..." if len(missing) > 10 else "")
                raise SourceError(f"{self.folder}: the image sequence is missing frame number(s) {shown}")
        first = self._load(self.files[0])
        self.size = (first.shape[1], first.shape[0])
        self.fps = float(fps)
        self.frame_count = len(self.files)
        self._index = 0

    @staticmethod
    def _load(path: Path) -> np.ndarray:
        image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
        if image is None or image.size == 0:
            raise SourceError(f"cannot read image {path} (corrupt or not an image)")
        if image.dtype != np.uint8:
            image = cv2.convertScaleAbs(image, alpha=255.0 / max(float(image.max()), 1.0))
        return _as_bgr(image)

    def read(self) -> Frame | None:
        if self._index >= len(self.files):
            return None
        frame = Frame(self._index, self._index / self.fps, self._load(self.files[self._index]))
        self._index += 1
        return frame


def _missing_numbers(files: list[Path]) -> list[int]:
    """Frame numbers absent between the first and last, judged by each name's last number."""
    numbers = []
    for f in files:
        digits = re.findall(r"\d+", f.stem)
        if not digits:
            return []
        numbers.append(int(digits[-1]))
    present = set(numbers)
    return [n for n in range(min(numbers), max(numbers) + 1) if n not in present]


class CameraSource(FrameSource):
    """A live camera by index. A camera that stops delivering raises a SourceError after
    `timeout_s` without a frame, instead of hanging or returning stale frames."""

    def __init__(self, index: int, width: int | None = None, height: int | None = None, timeout_s: float = 2.0):
        self.index = int(index)
        self.name = f"camera {self.index}"
        if self.index < 0:
            raise SourceError(f"camera index must be 0 or more, got {index}")
        self._cap = cv2.VideoCapture(self.index)
        if not self._cap.isOpened():
            self._cap.release()
            raise SourceError(f"camera {self.index} could not be opened (not connected, in use, or no permission)")
        if width:
            self._cap.set(cv2.CAP_PROP_FRAME_WIDTH, width)
        if height:
            self._cap.set(cv2.CAP_PROP_FRAME_HEIGHT, height)
        fps = self._cap.get(cv2.CAP_PROP_FPS)
        self.fps = float(fps) if fps and np.isfinite(fps) and fps > 0 else 30.0
        self.timeout_s = timeout_s
        self._start = time.monotonic()
        self._index = 0
        first = self.read()
        self.size = (first.image.shape[1], first.image.shape[0])
        self._index = 0
        self._start = time.monotonic()

    def read(self) -> Frame:
        if self._cap is None:
            raise SourceError(f"{self.name} is closed")
        deadline = time.monotonic() + self.timeout_s
        while True:
            ok, image = self._cap.read()
            if ok and image is not None and image.size:
                frame = Frame(self._index, time.monotonic() - self._start, _as_bgr(image))
                self._index += 1
                return frame
            if time.monotonic() > deadline:
                raise SourceError(f"{self.name} stopped delivering frames (nothing for {self.timeout_s:.1f} s)")
            time.sleep(0.01)

    def close(self) -> None:
        if getattr(self, "_cap", None) is not None:
            self._cap.release()
            self._cap = None


def open_source(spec, fps: float = 30.0) -> FrameSource:
    """A camera for an int (or a string of digits), an image sequence for a folder, else a video file."""
    if isinstance(spec, bool) or spec is None:
        raise SourceError(f"a source is a camera index, a video file or an image folder, got {spec!r}")
    if isinstance(spec, int) or (isinstance(spec, str) and spec.strip().isdigit()):
        return CameraSource(int(spec))
    path = Path(spec)
    if path.is_dir():
        return ImageSequenceSource(path, fps=fps)
    return VideoFileSource(path)
