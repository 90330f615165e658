"""One tool's side of the peer benchmarks, run as a subprocess in that tool's own venv.

    <venv>/bin/python bench/peer_worker.py --tool mediapipe|dlib|maskcap --task video|stills \
        --frames frames.npy --out result.npz

`frames.npy` is (N, H, W, 3) uint8 BGR, written by bench.peers. `video` runs the tool over the
frames in order as a tracker would (MediaPipe in video mode, dlib detector + predictor on every
frame, maskcap's tracker and stage by stage) and times it; `stills` runs each image on its own
(MediaPipe static mode, maskcap's segmenter). Writes the points per frame (NaN where no face) to
--out and prints one JSON line of timings and peak memory. Imports only numpy and the tool, so
that it runs in the peers' venvs, which hold neither maskcap's packages nor each other's.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np


def _status_mb(field: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024.0
    return float("nan")


def rss_mb() -> float:
    """Resident set size of this process now (VmRSS), in MB."""
    return _status_mb("VmRSS")


def peak_rss_mb() -> float:
    """Peak resident set size of this process (VmHWM), in MB. Unlike getrusage's ru_maxrss, which
    Linux carries over from the parent through fork and exec, it starts afresh in the new program."""
    return _status_mb("VmHWM")


def summary(ms) -> dict:
    ms = np.asarray(ms, np.float64)
    if ms.size == 0:
        return {"median_ms": None, "p95_ms": None, "n": 0}
    return {"median_ms": float(np.median(ms)), "p95_ms": float(np.percentile(ms, 95)), "n": int(ms.size)}


def timed(fn, *args, **kwargs):
    t0 = time.perf_counter()
    out = fn(*args, **kwargs)
    return out, (time.perf_counter() - t0) * 1000.0


# ----------------------------------------------------------------------------- MediaPipe

def mediapipe_run(frames: np.ndarray, static: bool, with_oval: bool = False, irises: bool = False):
    """irises: FaceMesh's refined model, 478 points (eyelids and lips refined, 10 iris points)."""
    import mediapipe as mp

    mesh_module = mp.solutions.face_mesh
    mesh = mesh_module.FaceMesh(static_image_mode=static, max_num_faces=1, refine_landmarks=irises,
                                min_detection_confidence=0.5, min_tracking_confidence=0.5)
    n, h, w = frames.shape[:3]
    count = 478 if irises else 468
    points = np.full((n, count, 2), np.nan, np.float32)
    ms = []
    for i in range(n):
        frame = np.ascontiguousarray(frames[i])
        t0 = time.perf_counter()
        rgb = frame[:, :, ::-1].copy()  # MediaPipe takes RGB; the conversion is part of its cost
        result = mesh.process(rgb)
        ms.append((time.perf_counter() - t0) * 1000.0)
        if result.multi_face_landmarks:
            lm = result.multi_face_landmarks[0].landmark
            # normalised coordinates are edge-based: pixel centre = u * size - 0.5
            points[i] = [(p.x * w - 0.5, p.y * h - 0.5) for p in lm[:count]]
    mesh.close()
    extra = {}
    if with_oval:
        # the face-oval polygon's vertex order: walk FACEMESH_FACE_OVAL's edges as a cycle
        edges = dict(mesh_module.FACEMESH_FACE_OVAL)
        start = min(edges)
        order, k = [start], edges[start]
        while k != start and len(order) <= len(edges):
            order.append(k)
            k = edges[k]
        extra["face_oval"] = np.array(order, np.int32)
    return points, {"total": summary(ms)}, extra


# ----------------------------------------------------------------------------- dlib

def dlib_run(frames: np.ndarray, static: bool):
    import dlib
    import face_recognition_models

    detector = dlib.get_frontal_face_detector()
    predictor = dlib.shape_predictor(face_recognition_models.pose_predictor_model_location())
    n = frames.shape[0]
    points = np.full((n, 68, 2), np.nan, np.float32)
    det_ms, pred_ms, total_ms = [], [], []
    for i in range(n):
        t0 = time.perf_counter()
        rgb = np.ascontiguousarray(frames[i][:, :, ::-1])
        boxes, det = timed(detector, rgb, 0)
        det_ms.append(det)
        if boxes:
            box = max(boxes, key=lambda b: b.area())
            shape, pred = timed(predictor, rgb, box)
            pred_ms.append(pred)
            points[i] = [(shape.part(k).x, shape.part(k).y) for k in range(68)]
        total_ms.append((time.perf_counter() - t0) * 1000.0)
    return points, {"detection": summary(det_ms), "landmarks_68": summary(pred_ms), "total": summary(total_ms)}, {}


# ----------------------------------------------------------------------------- maskcap

def maskcap_video(frames: np.ndarray):
    """The tracker sequentially (stage timings of every frame), each stage on its own, the
    identity/focal solve, and the threaded Pipeline's frame rate."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from core.track.adaptation import AdaptationOptions
    from core.face.fitting import fit_identity_focal
    from core.track.pipeline import Pipeline
    from core.segment.segmentation import extract_crop
    from core.io.sources import Frame, FrameSource
    from core.track.tracker import FaceTracker, TrackerOptions

    import cv2
    cv2.setNumThreads(1)  # as in maskcap's other benchmarks: the tracker's threads share the cores
    n, h, w = frames.shape[:3]
    images = [np.ascontiguousarray(frames[i]) for i in range(n)]
    points = np.full((n, 68, 2), np.nan, np.float32)
    stages: dict[str, list[float]] = {"detection": [], "segmentation_network": [], "graph_cut": [],
                                      "segmentation": [], "regression": [], "tracker_frame": []}
    results = []
    with FaceTracker() as tracker:
        for image in images[:10]:  # warm-up: numba compiles, ONNX Runtime allocates
            tracker.track(image)
        tracker.reset()
        for i, image in enumerate(images):
            result, ms = timed(tracker.track, image)
            stages["tracker_frame"].append(ms)
            stages["regression"].append(result.timings.get("regression_ms", np.nan))
            if "segmentation_ms" in result.timings:
                stages["segmentation"].append(result.timings["segmentation_ms"])
            if result.ok:
                points[i] = result.landmarks
            results.append(result)
        segmenter = tracker._segmenter
        for image, result in zip(images, results):
            stages["detection"].append(timed(tracker._detect, image)[1])
            if result.face_box is None:
                continue
            (prob, crop_box), net_ms = timed(segmenter.crop_probability, image, result.face_box)
            crop = extract_crop(image, crop_box)
            _, cut_ms = timed(segmenter.refine, prob, crop)
            stages["segmentation_network"].append(net_ms)
            stages["graph_cut"].append(cut_ms)
        model, focal = tracker.model, tracker._focal
    with FaceTracker(TrackerOptions(adapt_identity=False)) as tracker:  # the same without the identity thread
        for image in images[:10]:
            tracker.track(image)
        tracker.reset()
        stages["tracker_frame_no_identity_thread"] = [timed(tracker.track, image)[1] for image in images]
    confident = [i for i, r in enumerate(results) if r.ok and r.confidence >= 0.6]
    solve_ms = []
    if len(confident) >= 6:
        chosen = [confident[k] for k in np.linspace(0, len(confident) - 1, 6).astype(int)]
        keyframes = [results[i].landmarks for i in chosen]
        for _ in range(3):
            solve_ms.append(timed(fit_identity_focal, model, keyframes, (w, h), focal_px=focal,
                                  options=AdaptationOptions().fit)[1])

    class Memory(FrameSource):
        def __init__(self):
            self.i, self.size, self.frame_count = 0, (w, h), n

        def read(self):
            if self.i >= n:
                return None
            self.i += 1
            return Frame(self.i - 1, (self.i - 1) / 30.0, images[self.i - 1])

    with FaceTracker() as tracker:
        with Pipeline(tracker, Memory()) as pipe:
            t0 = time.perf_counter()
            count = sum(1 for _ in pipe.results())
            pipeline_s = time.perf_counter() - t0
    timings = {name: summary([v for v in values if np.isfinite(v)]) for name, values in stages.items()}
    timings["identity_focal_solve_6_keyframes"] = summary(solve_ms)
    timings["pipeline"] = {"fps": count / pipeline_s, "ms_per_frame": 1000.0 * pipeline_s / max(count, 1),
                           "frames": count}
    timings["total"] = timings["tracker_frame"]
    return points, timings, {"tracked": np.array([r.ok for r in results])}


def maskcap_stills(frames: np.ndarray):
    """The segmenter on each image with its own Viola-Jones box (no box given), as a user would."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from core.segment.segmentation import FaceSegmenter

    masks = np.zeros(frames.shape[:3], np.uint8)
    ms = []
    with FaceSegmenter() as segmenter:
        for i in range(frames.shape[0]):
            masks[i], t = timed(segmenter.segment, np.ascontiguousarray(frames[i]))
            ms.append(t)
    return np.zeros((frames.shape[0], 0, 2), np.float32), {"total": summary(ms)}, {"masks": masks}


# ----------------------------------------------------------------------------- main

def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tool", choices=("mediapipe", "dlib", "maskcap"), required=True)
    parser.add_argument("--task", choices=("video", "stills"), default="video")
    parser.add_argument("--frames", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--irises", action="store_true", help="MediaPipe: the refined 478-point model")
    args = parser.parse_args()
    frames = np.load(args.frames, mmap_mode="r")
    baseline = rss_mb()
    t0 = time.perf_counter()
    if args.tool == "mediapipe":
        points, timings, extra = mediapipe_run(frames, static=args.task == "stills", with_oval=True, irises=args.irises)
    elif args.tool == "dlib":
        points, timings, extra = dlib_run(frames, static=args.task == "stills")
    elif args.task == "video":
        points, timings, extra = maskcap_video(frames)
    else:
        points, timings, extra = maskcap_stills(frames)
    np.savez_compressed(args.out, points=points, **extra)
    print(json.dumps({"tool": args.tool, "task": args.task, "frames": int(frames.shape[0]),
                      "size": [int(frames.shape[2]), int(frames.shape[1])], "timings": timings,
                      "faces_found": int(np.isfinite(points[:, 0, 0]).sum()) if points.shape[1] else None,
                      "seconds": time.perf_counter() - t0, "rss_before_tool_mb": baseline,
                      # the frames are memory-mapped and every tool reads all of them: part of the peak
                      "frames_mb": frames.nbytes / 2 ** 20,
                      "peak_rss_mb": peak_rss_mb()}))


if __name__ == "__main__":
    main()
