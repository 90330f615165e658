"""The real-time pipeline: capture, segmentation and regression on their own threads.

Frame k is segmented (with the face box of the newest tracked shape) while frame k-1 is being
regressed, as in the paper; identity/focal adaptation runs on the tracker's own worker. Results
arrive in order through `results()` or the newest one through `latest()`. Every thread ends on
stop(), on the end of a file source, or on an error, which `error` then holds.

    with Pipeline(FaceTracker(), open_source("clip.mp4")) as pipe:
        for frame, result in pipe.results():
            ...
"""
from __future__ import annotations

import itertools
import queue
import threading
import time
from dataclasses import dataclass

from ..io.image_input import as_bgr_uint8
from ..io.sources import Frame, FrameSource
from .tracker import FaceTracker, TrackResult

_END = object()
_STOPPED = object()  # a wait ended by stop(), not by the awaited item


@dataclass
class PipelineStats:
    frames: int = 0
    started: float = 0.0
    finished: float = 0.0

    @property
    def fps(self) -> float:
        elapsed = (self.finished or time.perf_counter()) - self.started
        return self.frames / elapsed if elapsed > 0 else 0.0


class Pipeline:
    """Runs a FaceTracker over a FrameSource on three threads.

    live=True drops frames that the tracker cannot keep up with (a camera); live=False keeps
    every frame in order (a file being baked) and is repeatable: frame k is segmented from the
    shape left by frame k-2 (while frame k-1 is regressed), never from whichever shape the
    threads' timing happens to offer. With TrackerOptions(synchronous_adaptation=True) the same
    file then gives the same take every run.
    """

    def __init__(self, tracker: FaceTracker, source: FrameSource, live: bool = False, queue_size: int = 4):
        self.tracker = tracker
        self.source = source
        self.live = live
        self._frames: queue.Queue = queue.Queue(maxsize=queue_size)
        self._prepared: queue.Queue = queue.Queue(maxsize=1)  # keeps the segmentation box fresh
        self._results: queue.Queue = queue.Queue(maxsize=0 if not live else queue_size)
        self._stop = threading.Event()
        self._latest: tuple[Frame, TrackResult] | None = None
        self._lock = threading.Lock()
        self.error: BaseException | None = None
        self.stats = PipelineStats()
        self._bases: dict = {}   # not live: the basis left by each regressed frame
        self._basis_ready = threading.Condition()
        self._threads = [threading.Thread(target=self._guard, args=(fn,), name=f"maskcap-{name}", daemon=False)
                         for name, fn in (("capture", self._capture), ("segment", self._segment),
                                          ("regress", self._regress))]

    # ------------------------------------------------------------ control

    def start(self) -> "Pipeline":
        self.stats.started = time.perf_counter()
        for t in self._threads:
            t.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        """Ask every thread to end and wait for them (a camera read may take up to its timeout)."""
        self._stop.set()
        for q in (self._frames, self._prepared, self._results):
            _drain(q)
        for t in self._threads:
            if t.is_alive() and t is not threading.current_thread():
                t.join(timeout)
        self.stats.finished = self.stats.finished or time.perf_counter()

    @property
    def running(self) -> bool:
        return any(t.is_alive() for t in self._threads)

    def results(self):
        """Yield (frame, result) in order until the source ends or the pipeline stops; an error
        on any thread is raised here."""
        while True:
            try:
                item = self._results.get(timeout=0.05)
            except queue.Empty:
                if self.running or not self._results.empty():
                    continue
                item = _END
            if item is _END:
                if self.error is not None:
                    raise self.error
                return
            yield item

    def latest(self) -> tuple[Frame, TrackResult] | None:
        """The newest (frame, result), for a UI that shows only the present."""
        with self._lock:
            return self._latest

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    # ------------------------------------------------------------ threads

    def _guard(self, fn) -> None:
        try:
            fn()
        except BaseException as exc:  # any failure ends the whole pipeline, and is reported
            if self.error is None:
                self.error = exc
            self._stop.set()
            _put(self._results, _END, self._stop, force=True)

    def _capture(self) -> None:
        while not self._stop.is_set():
            frame = self.source.read()
            if frame is None:
                break
            if self.live and self._frames.full():
                _drop_oldest(self._frames)
            if not _put(self._frames, frame, self._stop):
                return
        _put(self._frames, _END, self._stop)

    def _segment(self) -> None:
        start_basis = self.tracker.basis()
        for sequence in itertools.count():
            frame = _get(self._frames, self._stop)
            if frame is None or frame is _END:
                _put(self._prepared, _END, self._stop)
                return
            # a source object of the caller's may deliver gray, BGRA or wrong frames: say which
            image = as_bgr_uint8(frame.image, f"frame {frame.index} of {self.source.name or 'the source'}")
            basis = None
            if not self.live:
                basis = start_basis if sequence < 2 else self._wait_for_basis(sequence - 2)
                if basis is _STOPPED:
                    return
            prepared = self.tracker.prepare(image, basis=basis)
            if not _put(self._prepared, (frame, prepared), self._stop):
                return

    def _wait_for_basis(self, sequence: int):
        """The basis that regressing frame `sequence` left, or _STOPPED if the pipeline stops first."""
        with self._basis_ready:
            while sequence not in self._bases:
                if self._stop.is_set():
                    return _STOPPED
                self._basis_ready.wait(0.05)
            return self._bases.pop(sequence)

    def _publish_basis(self, sequence: int) -> None:
        with self._basis_ready:
            self._bases[sequence] = self.tracker.basis()
            self._basis_ready.notify_all()

    def _regress(self) -> None:
        for sequence in itertools.count():
            item = _get(self._prepared, self._stop)
            if item is None or item is _END:
                break
            frame, prepared = item
            result = self.tracker.regress(prepared)
            if not self.live:
                self._publish_basis(sequence)
            with self._lock:
                self._latest = (frame, result)
            self.stats.frames += 1
            if self.live and self._results.full():
                _drop_oldest(self._results)
            if not _put(self._results, (frame, result), self._stop):
                return
        self.stats.finished = time.perf_counter()
        _put(self._results, _END, self._stop, force=True)


def _get(q: queue.Queue, stop: threading.Event):
    while not stop.is_set():
        try:
            return q.get(timeout=0.05)
        except queue.Empty:
            continue
    return None


def _put(q: queue.Queue, item, stop: threading.Event, force: bool = False) -> bool:
    while force or not stop.is_set():
        try:
            q.put(item, timeout=0.05)
            return True
        except queue.Full:
            if force:
                _drop_oldest(q)
    return False


def _drop_oldest(q: queue.Queue) -> None:
    try:
        q.get_nowait()
    except queue.Empty:
        pass


def _drain(q: queue.Queue) -> None:
    while True:
        try:
            q.get_nowait()
        except queue.Empty:
            return
