"""Soak test: minutes of live capture through the full Pipeline, watching for leaks.

Run: .venv/bin/python -m bench.soak [--minutes 10] [--clip webcam_talking] [--unpaced]
A looping file source stands in for a camera: it replays the clip forever at the clip's own frame
rate (or as fast as it can with --unpaced) and the Pipeline runs live (frames it cannot keep up
with are dropped, as with a camera). Every minute it prints the frames tracked per second and
the resident memory; at the end it compares memory with the first minute's (target: under 5 %
growth), and threads and open file descriptors (/proc/self/fd) with the start. Ctrl-C ends it
early and still writes bench/results/soak.json. Not part of the test run.
"""
from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import cv2  # noqa: E402

from core.track.pipeline import Pipeline  # noqa: E402
from core.io.sources import Frame, FrameSource, VideoFileSource  # noqa: E402
from core.track.tracker import FaceTracker  # noqa: E402

from .common import machine, write_json  # noqa: E402
from .peer_worker import rss_mb  # noqa: E402

MEMORY_GROWTH_TARGET = 0.05


class LoopingFileSource(FrameSource):
    """A video file replayed endlessly, paced to its frame rate like a camera (unless paced=False)."""

    def __init__(self, path: str | Path, paced: bool = True):
        self.path, self.paced = Path(path), paced
        self._file = VideoFileSource(self.path)
        self.name, self.fps, self.size = f"looping {self.path.name}", self._file.fps, self._file.size
        self.frame_count = None
        self.loops = 0
        self._index = 0
        self._start = time.monotonic()

    def read(self) -> Frame:
        frame = self._file.read()
        if frame is None:  # end of the file: open it again (a fresh decoder, as a long session would)
            self._file.close()
            self._file = VideoFileSource(self.path)
            self.loops += 1
            frame = self._file.read()
        if self.paced:
            due = self._start + self._index / self.fps
            time.sleep(max(0.0, due - time.monotonic()))
        out = Frame(self._index, time.monotonic() - self._start, frame.image)
        self._index += 1
        return out

    def close(self) -> None:
        self._file.close()


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def soak(clip: Path, minutes: float, paced: bool = True, sample_s: float = 5.0) -> dict:
    """Run the pipeline for `minutes`; per-minute fps, memory samples, threads and descriptors."""
    threads_start, fds_start = threading.active_count(), open_fds()
    rss_start = rss_mb()
    samples: list[tuple[float, float, int]] = []  # (seconds, RSS MB, frames so far)
    per_minute: list[dict] = []
    frames = tracked = minute_frames = minute_tracked = 0
    interrupted = False
    with FaceTracker() as tracker, LoopingFileSource(clip, paced) as source:
        pipe = Pipeline(tracker, source, live=True).start()
        t0 = last_sample = minute_start = time.perf_counter()
        try:
            for _, result in pipe.results():
                frames += 1
                minute_frames += 1
                tracked += result.ok
                minute_tracked += result.ok
                now = time.perf_counter()
                if now - last_sample >= sample_s:
                    last_sample = now
                    samples.append((now - t0, rss_mb(), frames))
                if now - minute_start >= 60.0:
                    per_minute.append({"minute": len(per_minute) + 1, "fps": minute_frames / (now - minute_start),
                                       "tracked_share": minute_tracked / max(minute_frames, 1),
                                       "rss_mb": rss_mb(), "threads": threading.active_count(),
                                       "fds": open_fds()})
                    m = per_minute[-1]
                    print(f"minute {m['minute']}: {m['fps']:.1f} fps, face in {100 * m['tracked_share']:.0f} %, "
                          f"RSS {m['rss_mb']:.1f} MB, {m['threads']} threads, {m['fds']} fds", flush=True)
                    minute_start, minute_frames, minute_tracked = now, 0, 0
                if now - t0 >= 60.0 * minutes:
                    break
        except KeyboardInterrupt:
            interrupted = True
            print("interrupted: writing what was measured", flush=True)
        finally:
            pipe.stop()
        elapsed = time.perf_counter() - t0
        loops, clip_fps = source.loops, source.fps
    time.sleep(0.5)  # let ended threads leave threading.enumerate()
    threads_end, fds_end, rss_end = threading.active_count(), open_fds(), rss_mb()
    after_first = [rss for t, rss, _ in samples if t >= 60.0]
    growth = (after_first[-1] - after_first[0]) / after_first[0] if len(after_first) >= 2 else None
    fps_values = [m["fps"] for m in per_minute]
    return {
        "clip": clip.name, "minutes_requested": minutes, "seconds_run": elapsed, "interrupted": interrupted,
        "paced_to_clip_fps": paced, "clip_fps": clip_fps,
        "loops_of_the_clip": loops, "frames": frames, "tracked_share": tracked / max(frames, 1),
        "fps_overall": frames / elapsed if elapsed else 0.0, "per_minute": per_minute,
        "fps_per_minute_min": min(fps_values) if fps_values else None,
        "fps_per_minute_max": max(fps_values) if fps_values else None,
        "rss_mb": {"start": rss_start, "after_first_minute": after_first[0] if after_first else None,
                   "end_of_run": after_first[-1] if after_first else None, "after_stop": rss_end},
        "rss_growth_after_first_minute": growth, "rss_growth_target": MEMORY_GROWTH_TARGET,
        "rss_samples": [{"s": round(t, 1), "rss_mb": round(r, 2), "frames": n} for t, r, n in samples],
        "threads": {"start": threads_start, "end": threads_end}, "fds": {"start": fds_start, "end": fds_end},
        "verdict": {"memory_growth_under_target": growth is not None and growth < MEMORY_GROWTH_TARGET,
                    "no_thread_leak": threads_end <= threads_start, "no_fd_leak": fds_end <= fds_start},
    }


def main() -> None:
    from evaluation.paths import require_data

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--clip", default="webcam_talking")
    parser.add_argument("--unpaced", action="store_true", help="replay as fast as possible, not at the clip's rate")
    parser.add_argument("--out", default="soak.json", help="file name under bench/results/")
    args = parser.parse_args()
    cv2.setNumThreads(1)
    clip = require_data("videos") / f"{args.clip}.mp4"
    result = {"machine": machine(), "load_average_at_start": os.getloadavg()}
    result.update(soak(clip, args.minutes, paced=not args.unpaced))
    result["load_average_at_end"] = os.getloadavg()
    path = write_json(args.out, result)
    g = result["rss_growth_after_first_minute"]
    print(f"{result['frames']} frames in {result['seconds_run'] / 60:.1f} min ({result['loops_of_the_clip']} loops): "
          f"{result['fps_overall']:.1f} fps overall, per minute {result['fps_per_minute_min'] or 0:.1f}-"
          f"{result['fps_per_minute_max'] or 0:.1f}; RSS growth after the first minute "
          f"{'n/a' if g is None else f'{100 * g:.2f} %'} (target < {100 * MEMORY_GROWTH_TARGET:.0f} %); threads "
          f"{result['threads']['start']} -> {result['threads']['end']}, fds {result['fds']['start']} -> "
          f"{result['fds']['end']}; saved {path}")
    print("verdict:", result["verdict"])


if __name__ == "__main__":
    main()
