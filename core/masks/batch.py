"""Masks of every face over folders of images and videos, in batch, resumable, on worker processes.

    python -m core.cli masks photos/ clip.mp4 --out masks/ --anonymize blur --workers 2

For an image `photos/a.jpg` it writes into `masks/photos/a/`: `mask.png` (the frame's faces, 0/255),
`face_00.png`, `face_01.png`, ... (one per face, largest first), `anonymized.jpg` when asked, and
last `faces.json` (boxes and scores), whose presence marks the image done. For a video `clip.mp4`,
into `masks/clip/`: `mask_000000.png`, `face_000000_00.png`, ... and `frame_000000.json` per frame,
then `faces.json` for all frames and `anonymized.mp4` when asked. Every file is written
atomically, so an interrupted run leaves no half-written file, and a rerun skips what is done
(for a video, the frames already done; its anonymised copy is made again from their masks).

The add-on's entry point is `anonymize_clip` (one clip, in-process, with progress and cancel).
"""
from __future__ import annotations

import json
import os
import signal
import sys
import time
from collections import deque
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from .anonymize import AnonymizeOptions, anonymize_faces
from ..detect.cnn import CnnDetectorOptions, CnnFaceDetector
from .follow import FaceFollower, FollowOptions
from ..io.files import AtomicVideoWriter, write_image, write_text
from ..segment.segmentation import (DEFAULT_MIN_SCORE, DEVICES, FaceMask, FaceSegmenter, SegmenterOptions,
                                    merge_face_masks)
from ..io.sources import IMAGE_SUFFIXES, SourceError, VideoFileSource, open_source

__all__ = ["BatchOptions", "BatchReport", "Job", "Problem", "ClipSummary", "VIDEO_SUFFIXES", "plan_jobs",
           "run_batch", "anonymize_clip", "anonymize_frame"]

VIDEO_SUFFIXES = {".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv"}


@dataclass
class BatchOptions:
    """out_dir: where the masks go. anonymize: None, "blur", "pixelate" or "fill". workers:
    processes (each with one OpenCV thread); 1 runs in this process. device: the segmenter's,
    "cpu", "auto" (CUDA where an ONNX Runtime session comes up on it) or "cuda" (an error when it
    cannot); segmenter_threads: its ONNX Runtime threads in each worker."""
    out_dir: Path
    anonymize: str | None = None
    workers: int = 2
    min_score: float = DEFAULT_MIN_SCORE
    feather_px: float = 6.0
    fast_detection: bool = False      # CnnDetectorOptions.fast(): about 2x quicker, finds fewer small and grey faces
    detect_every: int = 1             # videos: detect every this many frames, follow faces between (core/masks/follow.py)
    quiet: bool = False
    device: str = "cpu"
    segmenter_threads: int = 1

    def __post_init__(self):
        if int(self.detect_every) < 1:
            raise ValueError(f"detect_every must be at least 1, got {self.detect_every}")
        if self.device not in DEVICES:
            raise ValueError(f"device must be one of {DEVICES}, got {self.device!r}")
        if int(self.segmenter_threads) < 1:
            raise ValueError(f"segmenter_threads must be at least 1, got {self.segmenter_threads}")

    def anonymize_options(self) -> AnonymizeOptions | None:
        return AnonymizeOptions(method=self.anonymize, feather_px=self.feather_px) if self.anonymize else None


@dataclass
class Job:
    """One input file: kind "image" or "video", and its output folder relative to out_dir."""
    kind: str
    path: Path
    key: str


@dataclass
class Problem:
    path: str
    reason: str


@dataclass
class BatchReport:
    images_done: int = 0
    frames_done: int = 0
    faces: int = 0
    already_done: int = 0
    skipped: list[Problem] = field(default_factory=list)
    failed: list[Problem] = field(default_factory=list)
    interrupted: bool = False
    seconds: float = 0.0

    @property
    def exit_code(self) -> int:
        return 130 if self.interrupted else (1 if self.failed else 0)


# ------------------------------------------------------------------ what to do

def _kind(path: Path) -> str | None:
    suffix = path.suffix.lower()
    return "image" if suffix in IMAGE_SUFFIXES else "video" if suffix in VIDEO_SUFFIXES else None


def plan_jobs(inputs) -> tuple[list[Job], list[Problem], list[Problem]]:
    """Jobs for files and folders (a folder's images and videos, not its subfolders), with what
    was skipped (non-image files and subfolders inside a folder) and what failed at once (a
    missing path, or a file given by name that is neither an image nor a video)."""
    jobs: list[Job] = []
    skipped: list[Problem] = []
    failed: list[Problem] = []
    keys: set[str] = set()

    def add(path: Path, prefix: str):
        key = prefix + path.stem
        if key in keys:   # a.jpg and a.png side by side
            key = prefix + path.name.replace(".", "_")
        keys.add(key)
        jobs.append(Job(_kind(path), path, key))

    for spec in inputs:
        path = Path(spec)
        if path.is_dir():
            for entry in sorted(path.iterdir()):
                if entry.name.startswith("."):
                    continue
                if entry.is_dir():
                    skipped.append(Problem(str(entry), "a subfolder (not searched; pass it to include it)"))
                elif _kind(entry) is None:
                    skipped.append(Problem(str(entry), "not an image or video file (by its extension)"))
                else:
                    add(entry, path.resolve().name + "/")
        elif path.is_file():
            if _kind(path) is None:
                failed.append(Problem(str(path), "not an image or video file (by its extension)"))
            else:
                add(path, "")
        else:
            failed.append(Problem(str(path), "not found"))
    return jobs, skipped, failed


def _image_done(folder: Path, options: BatchOptions, suffix: str) -> bool:
    if not (folder / "faces.json").exists():
        return False
    return not options.anonymize or (folder / f"anonymized{suffix}").exists()


def _video_done(folder: Path, options: BatchOptions) -> bool:
    return (folder / "faces.json").exists() and (not options.anonymize or (folder / "anonymized.mp4").exists())


def _pending_jobs(jobs: list[Job], options: BatchOptions, report: BatchReport) -> list[Job]:
    """The jobs whose outputs are not all there yet; the others count in report.already_done."""
    out = Path(options.out_dir)
    todo = []
    for job in jobs:
        done = (_image_done(out / job.key, options, job.path.suffix.lower()) if job.kind == "image"
                else _video_done(out / job.key, options))
        if done:
            report.already_done += 1
        else:
            todo.append(job)
    return todo


# ------------------------------------------------------------------ per image / frame (in a worker)

@dataclass
class _Worker:
    segmenter: FaceSegmenter
    detector: CnnFaceDetector
    options: BatchOptions


_worker: _Worker | None = None


def _new_worker(options: BatchOptions, detection_threads: int = 1) -> _Worker:
    """One worker's models: a segmenter on options.device with options.segmenter_threads, and the detector
    on `detection_threads` threads, both on the options' device."""
    detection = CnnDetectorOptions.fast() if options.fast_detection else CnnDetectorOptions()
    detection.threads = detection_threads
    detection.device = options.device
    segmenter = FaceSegmenter(options=SegmenterOptions(device=options.device,
                                                       intra_op_threads=options.segmenter_threads))
    return _Worker(segmenter, CnnFaceDetector(detection), options)


def _init_worker(options: BatchOptions, in_subprocess: bool = True) -> None:
    """One segmenter per process, single-threaded; Ctrl-C is the main process's to handle."""
    global _worker
    import cv2
    if in_subprocess:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        cv2.setNumThreads(1)
    # one process alone: the detector's network threads share both cores
    _worker = _new_worker(options, 2 if not in_subprocess and options.workers == 1 else 1)


def _close_worker() -> None:
    global _worker
    if _worker is not None:
        _worker.detector.close()
        _worker.segmenter.close()
        _worker = None


def _read_image(path: Path) -> np.ndarray:
    import cv2
    size = path.stat().st_size
    if size == 0:
        raise ValueError("empty file (0 bytes)")
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise ValueError(f"cannot be decoded as an image ({size} bytes; corrupt or not a {path.suffix} image)")
    return image


def anonymize_frame(segmenter: FaceSegmenter, frame: np.ndarray, options: AnonymizeOptions | None,
                    min_score: float = DEFAULT_MIN_SCORE, detector: CnnFaceDetector | None = None
                    ) -> tuple[list[FaceMask], np.ndarray | None]:
    """Every face of the frame (segment_all; boxes from `detector`, or the default one) and, with
    options, its anonymised copy."""
    boxes = [d.face_box for d in detector.detect(frame)] if detector is not None else None
    faces = segmenter.segment_all(frame, boxes, min_score=min_score)
    return faces, (anonymize_faces(frame, faces, options) if options else None)


def _face_records(faces: list[FaceMask], names: list[str]) -> list[dict]:
    return [{"box": [round(float(v), 1) for v in f.box], "score": round(f.score, 4), "mask": name}
            for f, name in zip(faces, names)]


def _as_recorded(faces: list[FaceMask]) -> list[FaceMask]:
    """The faces as frame_NNNNNN.json and the mask files give them back (boxes to 0.1 px, scores
    to 4 decimals). A video's frames are followed on from these and anonymised with them, so that
    its files are the same whether a frame was made in this run, read back in a resumed one, or
    made on another machine (the next box and the blur's strength follow the box)."""
    return [FaceMask(tuple(round(float(v), 1) for v in f.box), f.mask, round(f.score, 4)) for f in faces]


def _read_back_faces(folder: Path, record: dict) -> list[FaceMask]:
    """A frame's faces from its frame_NNNNNN.json record and mask files."""
    import cv2
    return [FaceMask(tuple(r["box"]), (cv2.imread(str(folder / r["mask"]), cv2.IMREAD_GRAYSCALE) > 127)
                     .astype(np.uint8), r["score"]) for r in record["faces"]]


def _write_masks(folder: Path, faces: list[FaceMask], shape, frame_tag: str) -> tuple[str, list[str]]:
    names = [f"face_{frame_tag}{i:02d}.png" for i in range(len(faces))]
    for face, name in zip(faces, names):
        write_image(folder / name, face.mask * np.uint8(255))
    mask_name = f"mask{'_' + frame_tag[:-1] if frame_tag else ''}.png"
    write_image(folder / mask_name, merge_face_masks(faces, shape) * np.uint8(255))
    return mask_name, names


def _process_image(path: Path, folder: Path, source: str | None = None, worker: _Worker | None = None) -> int:
    """Masks, anonymised copy and faces.json (last) of one image; the number of faces. `source`:
    the path as faces.json names it (default `path`); `worker`: default this process's."""
    w = worker or _worker
    image = _read_image(path)
    faces, private = anonymize_frame(w.segmenter, image, w.options.anonymize_options(), w.options.min_score, w.detector)
    mask_name, names = _write_masks(folder, faces, image.shape, "")
    record = {"source": source or str(path), "size": [image.shape[1], image.shape[0]], "mask": mask_name,
              "faces": _face_records(faces, names), "anonymized": None}
    if private is not None:
        record["anonymized"] = f"anonymized{path.suffix.lower()}"
        write_image(folder / record["anonymized"], private)
    write_text(folder / "faces.json", json.dumps(record, indent=1))
    return len(faces)


def _process_frames(frames: list[np.ndarray], first: int, folder: Path,
                    worker: _Worker | None = None) -> list[tuple[int, np.ndarray | None]]:
    """Consecutive video frames from index `first` (a detection, then the faces followed: one
    detection interval): per frame its masks and frame_NNNNNN.json (last), or, when that exists
    from an earlier run, its masks read back; returns per frame the face count and the anonymised
    frame. `worker`: default this process's."""
    w = worker or _worker
    options = w.options.anonymize_options()
    follower = FaceFollower(w.segmenter, w.detector, FollowOptions(w.options.detect_every, w.options.min_score))
    out = []
    for index, frame in enumerate(frames, start=first):
        marker = folder / f"frame_{index:06d}.json"
        if marker.exists():
            record = json.loads(marker.read_text())
            if options is None and w.options.detect_every == 1:
                out.append((len(record["faces"]), None))
                continue
            faces = _read_back_faces(folder, record)
            follower.resume(faces)
            out.append((len(faces), anonymize_faces(frame, faces, options) if options else None))
            continue
        faces = _as_recorded(follower.step(frame))
        # on from the faces as written, as a resumed run reads them back (one interval has no
        # detection due after its first frame, so this leaves the detection schedule as it was)
        follower.resume(faces)
        mask_name, names = _write_masks(folder, faces, frame.shape, f"{index:06d}_")
        write_text(marker, json.dumps({"frame": index, "mask": mask_name, "faces": _face_records(faces, names)}))
        out.append((len(faces), anonymize_faces(frame, faces, options) if options else None))
    return out


# ------------------------------------------------------------------ the run

class _Progress:
    """A one-line progress bar on stderr, redrawn at most twice a second."""

    def __init__(self, total: int, quiet: bool):
        self.total, self.quiet, self.done = max(total, 1), quiet, 0
        self.t0 = self.shown = time.perf_counter()

    def step(self, label: str, count: int = 1, force: bool = False) -> None:
        self.done += count
        now = time.perf_counter()
        if self.quiet or not (force or now - self.shown > 0.5):
            return
        self.shown = now
        share = min(self.done / self.total, 1.0)
        rate = self.done / max(now - self.t0, 1e-6)
        eta = (self.total - self.done) / rate if rate > 0 else 0
        bar = "#" * int(30 * share) + "." * (30 - int(30 * share))
        print(f"\r[{bar}] {self.done}/{self.total} {rate:.1f}/s eta {eta:.0f}s {label[-40:]:40s}",
              end="", file=sys.stderr, flush=True)


class _InProcess:
    """The executor's interface, run in this process (workers=1, or inside Blender)."""

    def submit(self, fn, *args) -> Future:
        future: Future = Future()
        try:
            future.set_result(fn(*args))
        except Exception as exc:
            future.set_exception(exc)
        return future

    def shutdown(self, wait=True, cancel_futures=False):
        pass


def _frame_total(job: Job) -> int:
    try:
        with VideoFileSource(job.path) as source:
            return source.frame_count or 1
    except (SourceError, FileNotFoundError):
        return 1


def run_batch(inputs, options: BatchOptions) -> BatchReport:
    """Process every input (see the module docstring); per-file errors go in the report."""
    t0 = time.perf_counter()
    jobs, skipped, failed = plan_jobs(inputs)
    report = BatchReport(skipped=skipped, failed=failed)
    out = Path(options.out_dir)
    todo = _pending_jobs(jobs, options, report)
    progress = _Progress(sum(1 if j.kind == "image" else _frame_total(j) for j in todo), options.quiet)
    if options.workers > 1 and todo:
        import multiprocessing
        executor = ProcessPoolExecutor(options.workers, mp_context=multiprocessing.get_context("spawn"),
                                       initializer=_init_worker, initargs=(options,))
    else:
        if todo:
            _init_worker(options, in_subprocess=False)
        executor = _InProcess()
    pending: deque = deque()
    window = 2 * max(options.workers, 1)
    videos: dict[str, dict] = {}
    try:
        for job in todo:
            for entry in _submissions(job, out, executor, report, videos, options.detect_every):
                pending.append(entry)
                while len(pending) > window:
                    _collect(pending.popleft(), out, options, report, progress, videos)
        while pending:
            _collect(pending.popleft(), out, options, report, progress, videos)
    except KeyboardInterrupt:
        report.interrupted = True
        executor.shutdown(wait=False, cancel_futures=True)
        for state in videos.values():
            if state.get("writer") is not None:
                state["writer"].abort()
    else:
        executor.shutdown(wait=True)
    finally:
        if isinstance(executor, _InProcess):
            _close_worker()   # this process's detector threads end with the run
    if not options.quiet and todo:
        print(file=sys.stderr)
    report.seconds = time.perf_counter() - t0
    return report


def _submissions(job: Job, out: Path, executor, report: BatchReport, videos: dict, options_detect_every: int = 1):
    """(kind, job, index, future) entries for an image, or for a video's runs of frames (one
    detection interval each) and its end."""
    folder = out / job.key
    if job.kind == "image":
        yield ("image", job, 0, executor.submit(_process_image, job.path, folder))
        return
    try:
        source = VideoFileSource(job.path)
    except (SourceError, FileNotFoundError) as exc:
        report.failed.append(Problem(str(job.path), str(exc)))
        return
    videos[job.key] = {"fps": source.fps, "size": source.size, "frames": 0, "failed": False, "writer": None}
    every = max(int(options_detect_every), 1)
    chunk: list[np.ndarray] = []
    first = 0
    with source:
        while True:
            try:
                frame = source.read()
            except SourceError as exc:
                videos[job.key]["failed"] = True
                report.failed.append(Problem(str(job.path), f"decoding stopped: {exc}"))
                frame = None
            if frame is not None:
                if not chunk:
                    first = frame.index
                chunk.append(frame.image)
            if chunk and (frame is None or len(chunk) == every):   # one detection interval per task
                yield ("frames", job, first, executor.submit(_process_frames, chunk, first, folder))
                chunk = []
            if frame is None:
                break
    yield ("video_end", job, 0, None)


def _collect(entry, out: Path, options: BatchOptions, report: BatchReport, progress: _Progress, videos: dict):
    kind, job, index, future = entry
    if kind == "image":
        try:
            report.faces += future.result()
            report.images_done += 1
        except Exception as exc:
            report.failed.append(Problem(str(job.path), _reason(exc)))
        progress.step(job.path.name)
        return
    state = videos[job.key]
    if kind == "frames":
        if state["failed"]:
            return
        try:
            results = future.result()
        except Exception as exc:
            state["failed"] = True
            report.failed.append(Problem(str(job.path), f"frames from {index}: {_reason(exc)}"))
            return
        for offset, (count, private) in enumerate(results):
            progress.step(f"{job.path.name} frame {index + offset}")
            report.faces += count
            report.frames_done += 1
            state["frames"] = index + offset + 1
            if private is not None:
                if state["writer"] is None:
                    size = (private.shape[1], private.shape[0])
                    state["writer"] = AtomicVideoWriter(out / job.key / "anonymized.mp4", state["fps"], size)
                state["writer"].write(private)
        return
    # the video's end: all frames were collected in order
    writer = state["writer"]
    if state["failed"]:
        if writer is not None:
            writer.abort()
        return
    _write_video_record(out / job.key, str(job.path), state["fps"], state["size"], state["frames"])
    if writer is not None:
        writer.close()
    state["writer"] = None


def _write_video_record(folder: Path, source: str, fps: float, size, frames: int) -> None:
    """A video's faces.json: its first `frames` frame_NNNNNN.json records, in order."""
    records = [json.loads((folder / f"frame_{i:06d}.json").read_text()) for i in range(frames)]
    write_text(folder / "faces.json", json.dumps({"source": source, "fps": fps, "size": list(size), "frames": records}))


def _reason(exc: Exception) -> str:
    return str(exc) or type(exc).__name__


def print_summary(report: BatchReport, out_dir: Path, file=None) -> None:
    """What was done, what was skipped and what failed, each by name (to stderr by default)."""
    file = file or sys.stderr
    print(f"done in {report.seconds:.1f} s: {report.images_done} image(s) and {report.frames_done} video "
          f"frame(s), {report.faces} face(s); {report.already_done} file(s) already done; masks in {out_dir}",
          file=file)
    for title, problems in (("skipped", report.skipped), ("FAILED", report.failed)):
        if problems:
            print(f"{title} {len(problems)}:", file=file)
            for p in problems:
                print(f"  {p.path}: {p.reason}", file=file)
    if report.interrupted:
        print("interrupted: run the same command again to continue where it stopped", file=file)


def report_json(report: BatchReport) -> str:
    payload = asdict(report)
    payload["exit_code"] = report.exit_code
    return json.dumps(payload, indent=1)


# ------------------------------------------------------------------ one clip, for the add-on

@dataclass
class ClipSummary:
    frames: int
    faces: int
    cancelled: bool
    output: Path | None


def anonymize_clip(source_path, output_path, options: AnonymizeOptions | None = None,
                   progress: Callable[[int, int | None], None] | None = None,
                   should_stop: Callable[[], bool] | None = None, min_score: float = DEFAULT_MIN_SCORE,
                   segmenter: FaceSegmenter | None = None, detector: CnnFaceDetector | None = None,
                   detect_every: int = 1, segmenter_options: SegmenterOptions | None = None) -> ClipSummary:
    """Write the anonymised copy of a video file (or image-sequence folder) to output_path (.mp4),
    in this process. progress(frames_done, frame_count or None) is called after every frame;
    when should_stop() turns true the run stops and output_path is left untouched (the partial
    video is removed). `detector` defaults to CnnFaceDetector(); pass
    CnnFaceDetector(CnnDetectorOptions.fast()) for speed, or detect_every > 1 to detect every so
    many frames and follow the faces between (core/masks/follow.py). Without `segmenter`, one is made
    with `segmenter_options` (device, threads). Raises SourceError / FileNotFoundError for a source
    that cannot be read."""
    options = options or AnonymizeOptions()
    own = segmenter is None
    segmenter = segmenter or FaceSegmenter(options=segmenter_options)
    own_detector = detector is None
    detector = detector or CnnFaceDetector()
    follower = FaceFollower(segmenter, detector, FollowOptions(detect_every, min_score))
    frames = faces_total = 0
    try:
        with open_source(str(source_path)) as source:
            if source.frame_count is None:
                raise SourceError(f"{source_path} is a live source; anonymize_clip needs a file or a folder")
            with AtomicVideoWriter(output_path, source.fps, source.size) as writer:
                for frame in source:
                    if should_stop is not None and should_stop():
                        writer.abort()
                        return ClipSummary(frames, faces_total, True, None)
                    faces = follower.step(frame.image)
                    writer.write(anonymize_faces(frame.image, faces, options))
                    frames += 1
                    faces_total += len(faces)
                    if progress is not None:
                        progress(frames, source.frame_count)
    finally:
        if own:
            segmenter.close()
        if own_detector:
            detector.close()
    return ClipSummary(frames, faces_total, False, Path(output_path))
