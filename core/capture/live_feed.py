"""Live capture for a host application: the pipeline's results filtered, mapped and kept newest.

A consumer thread ("maskcap-consumer") reads every result of the pipeline in order, applies the
One Euro filter and the channel mapping, keeps the newest sample for the host's UI timer, and
also keeps every sample while recording or calibrating the neutral face. The host never waits:
`newest()` only takes a lock. File sources are paced to their frame rate so that they play
like a camera.
"""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass

import numpy as np

from .filters import OneEuroFilter, OneEuroParams
from ..track.pipeline import Pipeline
from .retarget import ChannelMap
from ..io.sources import Frame, FrameSource
from ..track.tracker import FaceTracker


@dataclass
class LiveSample:
    """One tracked frame, ready to apply. values: mapped (and filtered) rig values in FACS order."""

    seq: int
    time_s: float
    ok: bool
    raw: np.ndarray                  # (46,) tracker weights
    values: np.ndarray               # (46,) after neutral, gain, offset, clamp and filtering
    rotation: np.ndarray | None      # (3, 3) camera from head
    translation_cm: np.ndarray | None
    focal_px: float
    size: tuple[int, int]
    preview: np.ndarray | None = None  # small RGBA float32 picture, bottom row first


class PacedSource(FrameSource):
    """A file source delivered no faster than its frame rate, like a camera."""

    def __init__(self, source: FrameSource):
        self.inner = source
        self.name, self.fps, self.size, self.frame_count = source.name, source.fps, source.size, None
        self._start: float | None = None

    def read(self) -> Frame | None:
        frame = self.inner.read()
        if frame is None:
            return None
        now = time.perf_counter()
        if self._start is None:
            self._start = now - frame.time_s
        delay = self._start + frame.time_s - now
        if delay > 0:
            time.sleep(delay)
        return frame

    def close(self) -> None:
        self.inner.close()


class LiveFeed:
    """Runs a pipeline and a consumer thread; see the module docstring."""

    def __init__(self, tracker: FaceTracker, source: FrameSource, channel_map: ChannelMap | None = None,
                 filter_params: OneEuroParams | None = None, preview_interval_s: float = 0.2,
                 preview_width: int = 320):
        self.tracker, self.source = tracker, source
        self.pipeline = Pipeline(tracker, source, live=True)
        self._map = channel_map or ChannelMap()
        self._filter = OneEuroFilter(filter_params) if filter_params is not None else None
        self.preview_interval_s = preview_interval_s
        self.preview_width = preview_width
        self.preview_enabled = False
        self._lock = threading.Lock()
        self._newest: LiveSample | None = None
        self._recording: list[LiveSample] | None = None
        self._calibration: list[np.ndarray] | None = None
        self._calibration_end = 0.0
        self._neutral: np.ndarray | None = None
        self._rest_positions: list[np.ndarray] = []
        self.rest_translation_cm: np.ndarray | None = None   # median head position while calibrating
        self._seq = 0
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._consume, name="maskcap-consumer", daemon=False)

    # ------------------------------------------------------------ control (any thread)

    def start(self) -> "LiveFeed":
        self.pipeline.start()
        self._thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        """End the pipeline's threads and the consumer, then release the tracker and source."""
        self.pipeline.stop(timeout)
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout)
        self.tracker.close()
        self.source.close()

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    def newest(self) -> LiveSample | None:
        with self._lock:
            return self._newest

    def set_channel_map(self, channel_map: ChannelMap) -> None:
        with self._lock:
            self._map = channel_map

    def start_recording(self) -> None:
        with self._lock:
            self._recording = []

    def stop_recording(self) -> list[LiveSample]:
        with self._lock:
            samples, self._recording = self._recording or [], None
        return samples

    @property
    def recording(self) -> bool:
        return self._recording is not None

    def begin_calibration(self, seconds: float) -> None:
        """Collect the raw weights of the next `seconds` of tracked frames (the rest face)."""
        with self._lock:
            self._calibration, self._neutral, self._rest_positions = [], None, []
            self._calibration_end = time.perf_counter() + float(seconds)

    def calibration_result(self) -> np.ndarray | None:
        """The median raw weights once a calibration has finished (None before, or if no frame
        was tracked: then `calibration_failed` is True)."""
        with self._lock:
            return None if self._neutral is None else self._neutral.copy()

    @property
    def calibrating(self) -> bool:
        return self._calibration is not None

    calibration_failed = False

    # ------------------------------------------------------------ consumer thread

    def _consume(self) -> None:
        last_preview = -1e9
        try:
            for frame, result in self.pipeline.results():
                ok = bool(result.ok and result.rotation is not None)
                raw = np.asarray(result.blendshapes, np.float64)
                with self._lock:
                    channel_map = self._map
                values = channel_map.apply(raw)
                if self._filter is not None and ok:
                    values = self._filter(values, frame.time_s)
                preview = None
                now = time.perf_counter()
                if self.preview_enabled and now - last_preview >= self.preview_interval_s:
                    from .preview import mask_preview_rgba
                    preview, last_preview = mask_preview_rgba(frame.image, result, self.preview_width), now
                self._seq += 1
                sample = LiveSample(self._seq, frame.time_s, ok, raw, values,
                                    result.rotation.copy() if ok else None,
                                    np.asarray(result.translation, np.float64) if ok else None,
                                    float(result.focal), (frame.image.shape[1], frame.image.shape[0]), preview)
                with self._lock:
                    self._newest = sample
                    if self._recording is not None and ok:
                        self._recording.append(sample)
                    if self._calibration is not None:
                        if ok:
                            self._calibration.append(raw)
                            self._rest_positions.append(sample.translation_cm)
                        if now >= self._calibration_end:
                            self._finish_calibration()
        except BaseException as exc:  # a source or tracker failure ends the feed; the host reports it
            self.error = exc

    def _finish_calibration(self) -> None:
        samples, self._calibration = self._calibration, None
        self.calibration_failed = not samples
        if samples:
            self._neutral = np.median(np.stack(samples), axis=0)
            self.rest_translation_cm = np.median(np.stack(self._rest_positions), axis=0)
