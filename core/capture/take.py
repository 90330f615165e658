"""A take: a clip tracked frame by frame into arrays, with progress, cancelling and masks.

This is the bpy-free half of the add-on's bake. `track_clip` runs the threaded pipeline over
every frame of a file source (in order, none dropped) and returns a `Take`; the add-on turns
it into keyframes. Masks can be written as a PNG sequence (0 background, 255 face) for
compositing.

    take = track_clip("clip.mp4", on_progress=lambda done, total: ..., cancel=event)
"""
from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from ..face.facs import NUM_FACS
from ..io.files import write_image
from ..track.pipeline import Pipeline
from ..io.sources import Frame, FrameSource, SourceError, open_source
from ..track.tracker import FaceTracker, TrackerOptions, TrackResult

MASK_PATTERN = "mask_{:06d}.png"   # 1-based like Blender's frame numbers


@dataclass
class Take:
    """Per-frame arrays of a tracked clip; rows of lost frames (ok False) hold zeros."""

    fps: float
    size: tuple[int, int]                       # (width, height) of the footage
    source: str = ""
    frame_index: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    time_s: np.ndarray = field(default_factory=lambda: np.zeros(0))
    ok: np.ndarray = field(default_factory=lambda: np.zeros(0, bool))
    confidence: np.ndarray = field(default_factory=lambda: np.zeros(0))
    blendshapes: np.ndarray = field(default_factory=lambda: np.zeros((0, NUM_FACS)))
    rotation: np.ndarray = field(default_factory=lambda: np.zeros((0, 3, 3)))
    translation_cm: np.ndarray = field(default_factory=lambda: np.zeros((0, 3)))
    focal_px: np.ndarray = field(default_factory=lambda: np.zeros(0))
    landmarks: np.ndarray = field(default_factory=lambda: np.zeros((0, 68, 2)))
    identity: np.ndarray | None = None          # the performer's face-model identity at the end of the take
    expected_frames: int | None = None          # the source's frame count, when it knows
    cancelled: bool = False
    mask_dir: str | None = None

    def __len__(self) -> int:
        return len(self.frame_index)

    @property
    def tracked(self) -> int:
        return int(self.ok.sum())

    def reference_translation_cm(self) -> np.ndarray:
        """The head's median position over the tracked frames (the rest pose for relative motion;
        steadier than the first frame, whose depth moves when the focal length is solved)."""
        good = self.ok.astype(bool)
        return np.median(self.translation_cm[good], axis=0) if good.any() else np.zeros(3)

    def solved_focal_px(self) -> float:
        """The focal length at the end of the take (after identity/focal adaptation)."""
        good = np.flatnonzero(self.ok)
        return float(self.focal_px[good[-1]]) if len(good) else 0.0


class TakeBuilder:
    """Collects (frame, result) pairs into growing lists; `take()` stacks them."""

    def __init__(self, fps: float, size: tuple[int, int], source: str = "", expected: int | None = None):
        self._meta = dict(fps=float(fps), size=(int(size[0]), int(size[1])), source=source, expected_frames=expected)
        self._rows: list[tuple] = []
        self._identity: np.ndarray | None = None

    def add(self, index: int, time_s: float, result: TrackResult) -> None:
        have = result.landmarks is not None and result.rotation is not None
        if have and result.ok and result.identity is not None:
            self._identity = np.asarray(result.identity, np.float64).copy()
        self._rows.append((
            index, time_s, bool(result.ok and have), float(result.confidence),
            np.asarray(result.blendshapes, np.float64) if have else np.zeros(NUM_FACS),
            result.rotation if have else np.eye(3), result.translation if have else np.zeros(3),
            float(result.focal), result.landmarks if have else np.zeros((68, 2)),
        ))

    def __len__(self) -> int:
        return len(self._rows)

    def take(self, cancelled: bool = False, mask_dir: str | None = None) -> Take:
        cols = list(zip(*self._rows)) if self._rows else [[]] * 9
        stack = lambda i, shape, dtype=np.float64: (np.array(cols[i], dtype) if self._rows  # noqa: E731
                                                    else np.zeros(shape, dtype))
        return Take(**self._meta, frame_index=stack(0, 0, np.int64), time_s=stack(1, 0), ok=stack(2, 0, bool),
                    confidence=stack(3, 0), blendshapes=stack(4, (0, NUM_FACS)), rotation=stack(5, (0, 3, 3)),
                    translation_cm=stack(6, (0, 3)), focal_px=stack(7, 0), landmarks=stack(8, (0, 68, 2)),
                    identity=self._identity, cancelled=cancelled, mask_dir=mask_dir)


def write_mask(folder: str | Path, index: int, mask: np.ndarray | None, size: tuple[int, int]) -> None:
    """Frame `index` (0-based) as folder/mask_{index+1:06d}.png: 255 face, 0 elsewhere, the outline
    anti-aliased over about two pixels (the compositor's mix factor: no jagged edge)."""
    from ..segment.segmentation import alpha_from_mask
    w, h = size
    image = np.zeros((h, w), np.uint8) if mask is None else alpha_from_mask(mask)
    write_image(Path(folder) / MASK_PATTERN.format(index + 1), image)


def open_file_source(spec: str | Path, fps: float = 30.0) -> FrameSource:
    """A video file or image folder (never a camera: a bake needs an end)."""
    text = str(spec).strip()
    if not text:
        raise SourceError("no footage chosen: set a video file or an image folder")
    if text.isdigit():
        raise SourceError(f"{text!r} is a camera index; a bake needs a video file or an image folder")
    return open_source(text, fps=fps)


def track_clip(spec: str | Path | FrameSource, *, tracker_options: TrackerOptions | None = None,
               tracker: FaceTracker | None = None,
               on_progress: Callable[[int, int | None], None] | None = None,
               cancel: threading.Event | None = None, mask_dir: str | Path | None = None,
               max_frames: int | None = None,
               on_frame: Callable[[Frame, TrackResult], None] | None = None) -> Take:
    """Track every frame of a file source into a Take. Cancelling (cancel.set()) returns the
    frames done so far with take.cancelled True. Source errors raise SourceError /
    FileNotFoundError before any frame is tracked, or end the take where decoding failed.
    A given `tracker` is used (and closed); otherwise one is made from tracker_options (default:
    identity and focal solved inline, so the same clip always gives the same take). `on_frame`
    sees every frame with its result, in order (the command line's previews)."""
    source = spec if isinstance(spec, FrameSource) else open_file_source(spec)
    with source:
        builder = TakeBuilder(source.fps, source.size, source.name, source.frame_count)
        if mask_dir is not None:
            Path(mask_dir).mkdir(parents=True, exist_ok=True)
        cancelled = False
        # a bake must give the same take every run: identity and focal are solved inline
        tracker = tracker or FaceTracker(tracker_options or TrackerOptions(synchronous_adaptation=True))
        with tracker, Pipeline(tracker, source, live=False) as pipe:
            for frame, result in pipe.results():
                builder.add(frame.index, frame.time_s, result)
                if on_frame is not None:
                    on_frame(frame, result)
                if mask_dir is not None:
                    write_mask(mask_dir, frame.index, result.mask, source.size)
                if on_progress is not None:
                    on_progress(len(builder), source.frame_count)
                if (cancel is not None and cancel.is_set()) or (max_frames and len(builder) >= max_frames):
                    cancelled = cancel is not None and cancel.is_set()
                    break
        return builder.take(cancelled=cancelled, mask_dir=None if mask_dir is None else str(mask_dir))
