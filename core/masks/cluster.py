"""The `masks` command on a Ray cluster (`--ray`): the same inputs, outputs, report and
resumability as the local run (core/masks/batch.py), with the work spread over Ray's workers.

    python -m core.cli masks photos/ clip.mp4 --out masks/ --ray local   # a private cluster on this machine
    python -m core.cli masks /data/in --out /data/masks --ray auto       # the cluster this machine is part of

Images are a Ray Data dataset of files, mapped by a fixed pool of actors that each load the
segmenter and the detector once. A video is cut into ranges of whole detection intervals
(`--detect-every`) that the same pool processes in parallel. The local run's workers also start
every interval with a fresh detection, so the cut changes no mask; each range decodes the frame
before its first and checks that it is the frame the previous range ended on (seeking in a file
with odd timestamps can land elsewhere: such a video is redone from the first range that missed,
reading the file from its start). When all ranges of a video are back, one task writes its
faces.json and its anonymised copy, in frame order. The workers read the inputs and write the
outputs themselves, atomically, so every machine must see both at the same paths (a shared file
system). A worker that dies is replaced and its task run again (up to `RETRIES` more times; a file
whose task died every time fails by name), the temporary files of a writer killed mid-write are
removed (at the start and the end of a run: run one command per output folder at a time), and a
rerun skips what is done, as locally.

Ray is optional (requirements-ray.txt, the venv .venv-ray): it is imported here only, only when
`--ray` is given; the Blender add-on does not ship this module.
"""
from __future__ import annotations

import json
import logging
import math
import os
import sys
import time
import warnings
import zlib
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable, Iterator

import numpy as np

from ..io.files import remove_temporaries
from ..io.sources import SourceError, VideoFileSource
from . import batch
from .batch import BatchOptions, BatchReport, Job, Problem

__all__ = ["ClusterOptions", "ClusterError", "run_on_cluster", "start_local_cluster", "RETRIES"]

RETRIES = 3                       # a task whose worker died runs again up to this many times
ROOT = Path(__file__).resolve().parents[2]
_RESULT_COLUMNS = ("item", "count", "faces", "error", "before", "last")
_LOST = f"lost: its worker died on each of {RETRIES + 1} tries (a crash, or out of memory, on this file?)"


class ClusterError(RuntimeError):
    """Ray is not installed, or the cluster cannot be reached or cannot run the workers."""


@dataclass
class ClusterOptions:
    """address: "local" (a private cluster on this machine, on 127.0.0.1 only, stopped at the
      end), "auto" (the running cluster this machine is part of: RAY_ADDRESS, or the one `ray
      start` made here) or a Ray address ("10.0.0.5:6379", "ray://head:10001"). When this process
      is connected to Ray already, that connection is used whatever the address.
    workers: actors (None: as many as the cluster's CPUs hold). cpus_per_worker: the CPUs each
      reserves; its detector runs that many threads. gpus_per_worker: the GPUs each reserves (with
      BatchOptions.device "auto" its segmenter runs on the one Ray gives it).
    range_frames: frames per video range, rounded up to whole detection intervals.
    images_per_task: files handed to an actor at once (more: less scheduling, more redone when
      a worker dies).
    local_cpus: the CPUs of a "local" cluster (None: this machine's)."""
    address: str = "local"
    workers: int | None = None
    cpus_per_worker: int = 1
    gpus_per_worker: float = 0.0
    range_frames: int = 60
    images_per_task: int = 1
    local_cpus: int | None = None

    def __post_init__(self):
        if self.workers is not None and self.workers < 1:
            raise ValueError(f"workers must be 1 or more, got {self.workers}")
        if self.cpus_per_worker < 1 or self.gpus_per_worker < 0:
            raise ValueError(f"cpus_per_worker must be 1 or more and gpus_per_worker 0 or more, got "
                             f"{self.cpus_per_worker} and {self.gpus_per_worker}")
        if self.range_frames < 1 or self.images_per_task < 1:
            raise ValueError(f"range_frames and images_per_task must be 1 or more, got "
                             f"{self.range_frames} and {self.images_per_task}")


# ------------------------------------------------------------------ the work, without Ray

@dataclass
class _Item:
    """One task's worth of work: an image, or frames [first, stop) of a video (stop None: to its end)."""
    kind: str
    job: Job
    first: int = 0
    stop: int | None = None
    exact: bool = False      # a video range read from the file's start rather than seeked to


def _crc(image: np.ndarray) -> int:
    return zlib.crc32(np.ascontiguousarray(image).data)


def _process_range(worker: batch._Worker, path: Path, folder: Path, first: int, stop: int | None,
                   exact: bool = False) -> tuple[int, int, int, int]:
    """Frames [first, stop) of a video (to its end when stop is None; `first` starts a detection
    interval), one interval at a time as the local run does (batch._process_frames): (frames
    done, faces, CRC of the frame before `first`, CRC of the last frame done), a CRC -1 when
    there is none. `exact`: reach `first` by decoding from the start instead of seeking."""
    every = worker.options.detect_every
    done = faces = 0
    before = last = -1
    with VideoFileSource(path) as source:
        if first > 0:
            if exact:
                for _ in range(first - 1):
                    if source.read() is None:
                        return 0, 0, -1, -1
            else:
                source.seek(first - 1)
            frame = source.read()
            if frame is None:
                return 0, 0, -1, -1
            before = _crc(frame.image)
        chunk: list[np.ndarray] = []
        while True:
            frame = None if stop is not None and first + done + len(chunk) >= stop else source.read()
            if frame is not None:
                chunk.append(frame.image)
            if chunk and (frame is None or len(chunk) == every):
                faces += sum(count for count, _ in batch._process_frames(chunk, first + done, folder, worker))
                done += len(chunk)
                last = _crc(chunk[-1])
                chunk = []
            if frame is None:
                return done, faces, before, last


def _run_item(worker: batch._Worker, range_worker: batch._Worker, row: dict) -> dict:
    """What an actor does with one item row (paths absolute); per-file errors in "error"."""
    out = {"item": int(row["item"]), "count": 0, "faces": 0, "error": "", "before": -1, "last": -1}
    path, folder = Path(row["path"]), Path(row["folder"])
    try:
        if row["kind"] == "image":
            out["faces"] = batch._process_image(path, folder, str(row["source"]), worker)
            out["count"] = 1
        else:
            stop = int(row["stop"])
            out["count"], out["faces"], out["before"], out["last"] = _process_range(
                range_worker, path, folder, int(row["first"]), None if stop < 0 else stop, bool(row["exact"]))
    except Exception as exc:
        out["error"] = batch._reason(exc)
    return out


class _MaskActor:
    """One worker of the pool: the models loaded once, then batches of item rows."""

    def __init__(self, options: BatchOptions, threads: int):
        import cv2
        cv2.setNumThreads(1)
        self.worker = batch._new_worker(options, threads)
        # ranges write masks only; a video's anonymised copy is made when it is stitched
        self.range_worker = batch._Worker(self.worker.segmenter, self.worker.detector, replace(options, anonymize=None))

    def __call__(self, rows: dict) -> dict:
        results = [_run_item(self.worker, self.range_worker, {k: v[i] for k, v in rows.items()})
                   for i in range(len(rows["item"]))]
        return {name: [r[name] for r in results] for name in _RESULT_COLUMNS}


def _split_video(count: int | None, every: int, range_frames: int, workers: int) -> list[tuple[int, int | None]]:
    """Ranges [first, stop) of whole detection intervals over a video of `count` frames, at least
    `workers` of them when it is long enough; the last one runs to the end (a file's frame count
    is an estimate)."""
    if count is None or count <= every:
        return [(0, None)]
    intervals = math.ceil(count / every)
    per_range = max(1, min(math.ceil(range_frames / every), math.ceil(intervals / workers)))
    ranges: list[tuple[int, int | None]] = [(i * every, (i + per_range) * every) for i in range(0, intervals, per_range)]
    ranges[-1] = (ranges[-1][0], None)
    return ranges


def _stitch_video(folder: Path, source: str, path: Path, fps: float, size, frames: int, options: BatchOptions) -> int:
    """A video's faces.json and, when asked, its anonymised copy made from the masks written for
    its first `frames` frames, in order (the same file the local run writes)."""
    private = options.anonymize_options()
    if private is not None:
        from ..io.files import AtomicVideoWriter
        from .anonymize import anonymize_faces
        with VideoFileSource(path) as video, AtomicVideoWriter(folder / "anonymized.mp4", fps, size) as writer:
            for index in range(frames):
                frame = video.read()
                if frame is None:
                    raise SourceError(f"{path} ended at frame {index} while writing its anonymised copy")
                record = json.loads((folder / f"frame_{index:06d}.json").read_text())
                writer.write(anonymize_faces(frame.image, batch._read_back_faces(folder, record), private))
    batch._write_video_record(folder, source, fps, size, frames)
    return frames


@dataclass
class _Video:
    job: Job
    fps: float
    size: tuple[int, int]
    ranges: list[_Item]
    rows: dict                      # first frame -> the row its range came back with
    frames_expected: int


def _check_ranges(video: _Video) -> tuple[int | None, str | None, int | None]:
    """(frames of the video, None, None) when its ranges meet; (None, why it failed, None) for a
    failed or lost range or a gap in decoding; (None, None, first) when the range from frame
    `first` did not start where the previous one ended (redo from there, reading from the start)."""
    total = 0
    previous_last = -1
    ended = False
    for item in video.ranges:
        row = video.rows.get(item.first)
        if row is None:
            return None, f"frames from {item.first}: {_LOST}", None
        if row["error"]:
            return None, f"frames from {item.first}: {row['error']}", None
        if row["count"] == 0:
            ended = True
            continue
        if ended:
            return None, (f"decoding stopped at frame {total}, but frames from {item.first} decode (a damaged "
                          f"file?); its frames are in the folder, faces.json was not written"), None
        if item.first > 0 and not item.exact and row["before"] != previous_last:
            return None, None, item.first
        total += int(row["count"])
        previous_last = int(row["last"])
        if item.stop is not None and item.first + int(row["count"]) < item.stop:
            ended = True
    return total, None, None


def _forget_frames(folder: Path, first: int) -> None:
    """Remove the outputs of frames `first` on (made from wrongly seeked frames), markers first."""
    for pattern in ("frame_*.json", "mask_*.png", "face_*.png"):
        for path in folder.glob(pattern):
            digits = path.stem.split("_")[1]
            if digits.isdigit() and int(digits) >= first:
                path.unlink(missing_ok=True)


def _plan_items(todo: list[Job], options: BatchOptions, cluster: ClusterOptions, workers: int,
                report: BatchReport) -> tuple[list[_Item], dict[str, _Video]]:
    """Video ranges first (the long tasks), then the images; videos that cannot be opened fail here."""
    ranges: list[_Item] = []
    images: list[_Item] = []
    videos: dict[str, _Video] = {}
    for job in todo:
        if job.kind == "image":
            images.append(_Item("image", job))
            continue
        try:
            with VideoFileSource(job.path) as source:
                count, fps, size = source.frame_count, source.fps, source.size
        except (SourceError, FileNotFoundError) as exc:
            report.failed.append(Problem(str(job.path), str(exc)))
            continue
        items = [_Item("range", job, a, b) for a, b in _split_video(count, options.detect_every, cluster.range_frames, workers)]
        videos[job.key] = _Video(job, fps, size, items, {}, count or 1)
        ranges += items
    return ranges + images, videos


def _rows(items: list[_Item], out: Path) -> list[dict]:
    return [{"item": i, "kind": it.kind, "path": str(it.job.path.resolve()), "source": str(it.job.path),
             "folder": str((out / it.job.key).resolve()), "first": it.first,
             "stop": -1 if it.stop is None else it.stop, "exact": it.exact} for i, it in enumerate(items)]


def _drive(todo: list[Job], options: BatchOptions, cluster: ClusterOptions, workers: int, report: BatchReport,
           run_items: Callable[[list[dict]], Iterator[dict]], stitch: Callable[[list[tuple]], Iterator[tuple]]) -> None:
    """The run, given how to process item rows (`run_items`, results in any order) and how to
    stitch videos (`stitch`, (key, frames or exception) per video): collects results into the report."""
    out = Path(options.out_dir)
    failed_before = len(report.failed)
    items, videos = _plan_items(todo, options, cluster, workers, report)
    progress = batch._Progress(sum(1 for it in items if it.kind == "image")
                               + sum(v.frames_expected for v in videos.values()), options.quiet)
    while items:
        returned = set()
        for row in run_items(_rows(items, out)):
            returned.add(int(row["item"]))
            item = items[int(row["item"])]
            if item.kind == "image":
                if row["error"]:
                    report.failed.append(Problem(str(item.job.path), row["error"]))
                else:
                    report.images_done += 1
                    report.faces += int(row["faces"])
                progress.step(item.job.path.name)
            else:   # counted as they come back, as the local run counts its frames
                videos[item.job.key].rows[item.first] = row
                report.frames_done += int(row["count"])
                report.faces += int(row["faces"])
                progress.step(f"{item.job.path.name} frames {item.first}-", int(row["count"]))
        for index, item in enumerate(items):   # ranges without a row fail in _check_ranges
            if item.kind == "image" and index not in returned:
                report.failed.append(Problem(str(item.job.path), _LOST))
        items = []
        for video in videos.values():   # videos whose cut missed a frame: again from there, read from the start
            frames, reason, redo = _check_ranges(video)
            if redo is not None:
                _forget_frames(out / video.job.key, redo)
                video.ranges = [r for r in video.ranges if r.first < redo] + [_Item("range", video.job, redo, None, True)]
                for first in [k for k in video.rows if k >= redo]:
                    report.frames_done -= int(video.rows[first]["count"])
                    report.faces -= int(video.rows.pop(first)["faces"])
                items.append(video.ranges[-1])
    to_stitch = []
    for key, video in videos.items():
        frames, reason, _ = _check_ranges(video)
        if reason is not None:
            report.failed.append(Problem(str(video.job.path), reason))
            continue
        to_stitch.append((key, out / key, str(video.job.path), video.job.path.resolve(), video.fps, video.size, frames))
    for key, result in stitch(to_stitch):
        progress.step(f"{videos[key].job.path.name} written", 0, force=True)
        if isinstance(result, Exception):
            report.failed.append(Problem(str(videos[key].job.path), f"writing its faces.json: {batch._reason(result)}"))
    order = {str(job.path): index for index, job in enumerate(todo)}   # the local run's order: the inputs'
    report.failed[failed_before:] = sorted(report.failed[failed_before:], key=lambda p: order.get(p.path, -1))


def _in_process(todo, options, cluster, report) -> None:
    """The same run in this process, one worker (what the tests of the cutting and stitching use)."""
    worker = batch._new_worker(options)
    range_worker = batch._Worker(worker.segmenter, worker.detector, replace(options, anonymize=None))
    try:
        def stitch(videos):
            for key, *args in videos:
                try:
                    yield key, _stitch_video(*args, options)
                except Exception as exc:
                    yield key, exc
        _drive(todo, options, cluster, 1, report, lambda rows: (_run_item(worker, range_worker, r) for r in rows), stitch)
    finally:
        worker.detector.close()
        worker.segmenter.close()


# ------------------------------------------------------------------ Ray

def _import_ray(local: bool):
    """ray and ray.data, or a ClusterError saying how to install them. For a local cluster Ray's
    processes are kept on 127.0.0.1 (its single-machine switch, named for Windows and macOS where
    it is the default) and its usage statistics off; both must be set before Ray is imported."""
    if local:
        os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
        os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    try:
        import ray
        import ray.data
    except ImportError as exc:
        raise ClusterError("--ray needs Ray, which maskcap does not install by default: run "
                           "`bash scripts/setup_env.sh --ray` and use .venv-ray/bin/python, or "
                           "`pip install -r requirements-ray.txt -c constraints.txt`") from exc
    return ray


def start_local_cluster(cpus: int | None = None, temp_dir: str | None = None):
    """Start a Ray cluster on this machine, on 127.0.0.1 only, for this process (tests and
    benchmarks; ray.shutdown() stops it). Its workers import this checkout of maskcap."""
    ray = _import_ray(local=True)
    os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p)
    ray.init(num_cpus=cpus or os.cpu_count(), include_dashboard=False, logging_level=logging.WARNING,
             _temp_dir=temp_dir)
    return ray


def _connect(cluster: ClusterOptions, quiet: bool):
    """(ray, whether this run connected and so disconnects, or stops the local cluster, at its end)."""
    local = cluster.address == "local"
    ray = _import_ray(local)
    if ray.is_initialized():
        return ray, False
    try:
        if local:
            start_local_cluster(cluster.local_cpus)
        else:
            ray.init(address=cluster.address, logging_level=logging.WARNING)
    except ConnectionError as exc:
        raise ClusterError(f"no Ray cluster at {cluster.address!r}: {exc} (start one with `ray start --head`, "
                           "or use --ray local for a cluster on this machine alone)") from exc
    if not quiet:
        resources = ray.cluster_resources()
        print(f"ray: {cluster.address} cluster, {len(ray.nodes())} node(s), {resources.get('CPU', 0):.0f} CPUs, "
              f"{resources.get('GPU', 0):.0f} GPUs", file=sys.stderr)
    return ray, True


def _ray_items(ray, options: BatchOptions, cluster: ClusterOptions, workers: int):
    """run_items on a Ray Data actor pool of `workers` actors."""
    from ray.data import ActorPoolStrategy, DataContext

    context = DataContext.get_current()
    context.enable_progress_bars = False         # the command draws its own
    context.max_errored_blocks = -1              # a task that died on every try: its files fail by name
    logging.getLogger("ray.data").setLevel(logging.ERROR)

    def run_items(rows: list[dict]) -> Iterator[dict]:
        dataset = ray.data.from_items(rows, override_num_blocks=max(1, math.ceil(len(rows) / cluster.images_per_task)))
        with warnings.catch_warnings():   # retries are a remote argument Ray Data 2.60 calls deprecated
            warnings.simplefilter("ignore", DeprecationWarning)
            mapped = dataset.map_batches(
                _MaskActor, fn_constructor_kwargs={"options": options, "threads": cluster.cpus_per_worker},
                batch_size=cluster.images_per_task, compute=ActorPoolStrategy(size=workers),
                num_cpus=cluster.cpus_per_worker, num_gpus=cluster.gpus_per_worker or None,
                max_restarts=-1, max_task_retries=RETRIES)
        for row in mapped.iter_rows():
            yield row

    return run_items


def _ray_stitch(ray, options: BatchOptions):
    stitch_task = ray.remote(num_cpus=1, max_retries=RETRIES)(_stitch_video)

    def stitch(videos: list[tuple]) -> Iterator[tuple]:
        refs = {stitch_task.remote(*args, options): key for key, *args in videos}
        pending = list(refs)
        while pending:
            ready, pending = ray.wait(pending, num_returns=1)
            try:
                yield refs[ready[0]], ray.get(ready[0])
            except Exception as exc:   # the task's own exception, as Ray re-raises it
                yield refs[ready[0]], getattr(exc, "cause", None) or exc

    return stitch


def _sweep(folders: list[Path], settle_s: float = 0.0, limit_s: float = 10.0) -> None:
    """Remove writers' temporary files from `folders`, again until `settle_s` passes without one."""
    t0 = quiet_since = time.monotonic()
    while True:
        if any([remove_temporaries(folder) for folder in folders]):
            quiet_since = time.monotonic()
        now = time.monotonic()
        if now - quiet_since >= settle_s or now - t0 >= limit_s:
            return
        time.sleep(0.1)


def run_on_cluster(inputs, options: BatchOptions, cluster: ClusterOptions | None = None) -> BatchReport:
    """Process every input on a Ray cluster; the same outputs, report and resumability as
    batch.run_batch (see the module docstring). Raises ClusterError when Ray is missing or the
    cluster cannot be reached; per-file errors go in the report."""
    cluster = cluster or ClusterOptions()
    t0 = time.perf_counter()
    jobs, skipped, failed = batch.plan_jobs(inputs)
    report = BatchReport(skipped=skipped, failed=failed)
    todo = batch._pending_jobs(jobs, options, report)
    if not todo:   # nothing to do: no cluster needed
        report.seconds = time.perf_counter() - t0
        return report
    folders = [Path(options.out_dir) / job.key for job in todo]
    _sweep(folders)   # what workers of an earlier run left when they were killed mid-write
    ray, owned = _connect(cluster, options.quiet)
    try:
        cpus = int(ray.cluster_resources().get("CPU", 0))
        workers = cluster.workers or max(1, cpus // cluster.cpus_per_worker)
        if workers * cluster.cpus_per_worker > cpus:
            raise ClusterError(f"{workers} worker(s) of {cluster.cpus_per_worker} CPU(s) need "
                               f"{workers * cluster.cpus_per_worker} CPUs; the cluster has {cpus}")
        _drive(todo, options, cluster, workers, report, _ray_items(ray, options, cluster, workers),
               _ray_stitch(ray, options))
    except KeyboardInterrupt:
        report.interrupted = True
    finally:
        if owned:
            ray.shutdown()
        # what workers killed mid-write left; after an interrupt the cluster ends this run's
        # workers on its own time, so sweep until a second has passed without a new one
        _sweep(folders, settle_s=1.0 if report.interrupted else 0.0)
    if not options.quiet:
        print(file=sys.stderr)
    report.seconds = time.perf_counter() - t0
    return report
