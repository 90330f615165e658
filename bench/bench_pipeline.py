"""Benchmark of the whole tracking pipeline (target: at least 60 frames per second).

Run: .venv/bin/python -m bench.bench_pipeline [--clip webcam_talking] [--frames 300]
Decodes the frames first (decoding is excluded), then tracks them three times in the same run: with
the threaded Pipeline (segmentation of frame k beside regression of frame k-1), with the sequential
tracker as the baseline, and with the Pipeline on raw regressions (`TrackerOptions(steady=None)`:
one regression a frame, no smoothing or expression fit), what the temporal coherence of
core.track.temporal costs. Prints frames per second, per-stage medians and the ratios, and writes
bench/results/pipeline.json.
"""
from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import cv2  # noqa: E402
import numpy as np  # noqa: E402

from core.track.pipeline import Pipeline  # noqa: E402
from core.io.sources import Frame, FrameSource, open_source  # noqa: E402
from core.track.tracker import FaceTracker, TrackerOptions  # noqa: E402

from .common import machine, write_json  # noqa: E402


class MemorySource(FrameSource):
    """Frames decoded beforehand, so that the benchmark measures tracking, not decoding."""

    def __init__(self, frames: list[Frame], fps: float):
        self.frames, self.fps, self._i = frames, fps, 0
        self.size = (frames[0].image.shape[1], frames[0].image.shape[0])
        self.frame_count = len(frames)

    def read(self):
        if self._i >= len(self.frames):
            return None
        self._i += 1
        return self.frames[self._i - 1]


def stage_medians(results) -> dict:
    keys = sorted({k for r in results for k in r.timings})
    return {k: float(np.median([r.timings[k] for r in results if k in r.timings])) for k in keys}


def main() -> None:
    from evaluation.paths import require_data

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--clip", default="webcam_talking",
                        help="a clip of ../shared/data/videos, or a video file (e.g. examples.demo_clip's 640x480 clip)")
    parser.add_argument("--frames", type=int, default=300)
    args = parser.parse_args()
    cv2.setNumThreads(1)
    path = Path(args.clip) if Path(args.clip).suffix else require_data("videos") / f"{args.clip}.mp4"
    with open_source(path) as source:
        frames = [f for _, f in zip(range(args.frames), source)]
        fps_clip = source.fps

    with FaceTracker() as tracker:  # the baseline: one thread does everything
        t0 = time.perf_counter()
        sequential = [tracker.track(f.image) for f in frames]
        seq_fps = len(frames) / (time.perf_counter() - t0)
    with FaceTracker() as tracker, Pipeline(tracker, MemorySource(frames, fps_clip)) as pipe:
        t0 = time.perf_counter()
        threaded = [r for _, r in pipe.results()]
        pipe_fps = len(threaded) / (time.perf_counter() - t0)
    with FaceTracker(TrackerOptions(steady=None)) as tracker, Pipeline(tracker, MemorySource(frames, fps_clip)) as pipe:
        t0 = time.perf_counter()
        raw = [r for _, r in pipe.results()]
        raw_fps = len(raw) / (time.perf_counter() - t0)
    result = {
        "machine": machine(), "clip": args.clip, "frames": len(frames), "size": list(frames[0].image.shape[1::-1]),
        "pipeline_fps": pipe_fps, "sequential_fps": seq_fps, "ratio_pipeline_over_sequential": pipe_fps / seq_fps,
        "pipeline_raw_regressions_fps": raw_fps, "ratio_pipeline_over_raw": pipe_fps / raw_fps,
        "tracked_share": float(np.mean([r.ok for r in threaded])),
        "stage_medians_ms_pipeline_raw": stage_medians(raw),
        "stage_medians_ms_pipeline": stage_medians(threaded), "stage_medians_ms_sequential": stage_medians(sequential),
    }
    path = write_json("pipeline.json", result)
    print(f"{args.clip} ({result['size'][0]}x{result['size'][1]}, {len(frames)} frames): pipeline {pipe_fps:.1f} fps, "
          f"sequential {seq_fps:.1f} fps (x{result['ratio_pipeline_over_sequential']:.2f}), pipeline on raw "
          f"regressions {raw_fps:.1f} fps (x{result['ratio_pipeline_over_raw']:.2f}); face tracked in "
          f"{100 * result['tracked_share']:.0f} % of frames; stages (ms): {result['stage_medians_ms_pipeline']}; "
          f"saved {path}")


if __name__ == "__main__":
    main()
