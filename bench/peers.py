"""Speed against the tools users pick instead: MediaPipe FaceMesh (CPU) and dlib's 68 points.

Run: .venv/bin/python -m bench.peers [--frames 150] [--clips webcam_talking expressions_glasses]
The same decoded frames of each clip, at its own size and scaled to 1280x720 (aspect kept,
letterboxed), go to every tool
through a temporary .npy; each tool runs in its own venv as a subprocess (bench/peer_worker.py)
and reports JSON: per-stage milliseconds per frame (median, 95th percentile), frames per second
and peak memory. Ratios are against maskcap's tracker in the same run. Every tool runs --repeats
times, interleaved with the others, and keeps its fastest run, so that a burst of load from other
jobs on a shared machine does not land on one tool only. Writes
bench/results/peers.json. The peers' venvs (.venv-mediapipe, .venv-dlib) are made by
training/teachers/setup_envs.sh when missing; they are never run-time dependencies.
"""
from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse  # noqa: E402
import json  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
from pathlib import Path  # noqa: E402

import cv2  # noqa: E402
import numpy as np  # noqa: E402

from core.io.sources import open_source  # noqa: E402

from .common import machine, write_json  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
WORKER = REPO / "bench" / "peer_worker.py"
VENVS = {"maskcap": REPO / ".venv", "mediapipe": REPO / ".venv-mediapipe", "dlib": REPO / ".venv-dlib"}
PEER_VERSIONS = {"mediapipe": "mediapipe==0.10.21 (FaceMesh, CPU, 468 points, video mode)",
                 "dlib": "dlib-bin==20.0.1.post1, HOG detector + 68-point predictor of face_recognition_models==0.3.0"}
HD = (1280, 720)


def ensure_peer_envs() -> None:
    """Make .venv-mediapipe and .venv-dlib with the teachers' pinned requirements if missing."""
    if all((VENVS[t] / "bin" / "python").exists() for t in ("mediapipe", "dlib")):
        return
    print("setting up the peers' venvs (training/teachers/setup_envs.sh) ...", file=sys.stderr, flush=True)
    subprocess.run(["bash", str(REPO / "training" / "teachers" / "setup_envs.sh")], check=True)


def run_tool(tool: str, task: str, frames: np.ndarray, workdir: Path, *options: str) -> tuple[dict, dict]:
    """Run one tool over frames (N, H, W, 3 BGR) in its venv; (its JSON report, its arrays).
    options: more arguments of bench/peer_worker.py (e.g. --irises)."""
    frames_path, out_path = workdir / "frames.npy", workdir / f"{tool}_{task}.npz"
    np.save(frames_path, np.ascontiguousarray(frames))
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1", NUMBA_NUM_THREADS="1", PYTHONPATH=str(REPO))
    cmd = [str(VENVS[tool] / "bin" / "python"), str(WORKER), "--tool", tool, "--task", task,
           "--frames", str(frames_path), "--out", str(out_path), *options]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, cwd=REPO)
    if done.returncode != 0:
        raise RuntimeError(f"{tool} ({task}) failed with exit status {done.returncode}:\n{done.stderr[-3000:]}")
    report = json.loads(done.stdout.strip().splitlines()[-1])
    with np.load(out_path) as z:
        arrays = {k: z[k] for k in z.files}
    return report, arrays


def decode(clip: str, count: int) -> tuple[np.ndarray, float]:
    from evaluation.paths import require_data

    with open_source(require_data("videos") / f"{clip}.mp4") as source:
        frames = [f.image for _, f in zip(range(count), source)]
        return np.stack(frames), source.fps


def scaled(frames: np.ndarray, size) -> np.ndarray:
    """Frames scaled to fit size with their aspect ratio kept, centred on black (letterboxed):
    stretching a 4:3 clip to 16:9 would distort the faces."""
    w, h = size
    fh, fw = frames.shape[1:3]
    s = min(w / fw, h / fh)
    nw, nh = int(round(fw * s)), int(round(fh * s))
    x0, y0 = (w - nw) // 2, (h - nh) // 2
    out = np.zeros((len(frames), h, w, 3), np.uint8)
    for k, f in enumerate(frames):
        out[k, y0:y0 + nh, x0:x0 + nw] = cv2.resize(f, (nw, nh), interpolation=cv2.INTER_LINEAR)
    return out


def ratios(reports: dict) -> dict:
    """Each peer's median ms per frame and peak memory over maskcap's tracker's, in the same run."""
    base = reports["maskcap"]
    base_ms = base["timings"]["tracker_frame"]["median_ms"]
    out = {}
    for tool in ("mediapipe", "dlib"):
        t = reports[tool]
        out[tool] = {"ms_per_frame_over_maskcap_tracker": t["timings"]["total"]["median_ms"] / base_ms,
                     "ms_per_frame_over_maskcap_pipeline": t["timings"]["total"]["median_ms"]
                     / base["timings"]["pipeline"]["ms_per_frame"],
                     "peak_rss_without_frames_over_maskcap": (t["peak_rss_mb"] - t["frames_mb"])
                     / (base["peak_rss_mb"] - base["frames_mb"])}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=150)
    parser.add_argument("--clips", nargs="+", default=["webcam_talking", "expressions_glasses"])
    parser.add_argument("--repeats", type=int, default=2,
                        help="runs of every tool, interleaved; the one with the lowest median counts (a shared "
                             "machine's load comes and goes)")
    args = parser.parse_args()
    ensure_peer_envs()
    runs = []
    with tempfile.TemporaryDirectory(prefix="maskcap_peers_") as tmp:
        for clip in args.clips:
            native, fps = decode(clip, args.frames)
            for label, frames in (("native", native), ("1280x720", scaled(native, HD))):
                reports = {}
                for repeat in range(args.repeats):  # interleaved; each tool keeps its least disturbed run
                    for tool in ("maskcap", "mediapipe", "dlib"):
                        r, _ = run_tool(tool, "video", frames, Path(tmp))
                        r["repeat"] = repeat
                        if tool not in reports or (r["timings"]["total"]["median_ms"]
                                                   < reports[tool]["timings"]["total"]["median_ms"]):
                            reports[tool] = r
                for tool in ("maskcap", "mediapipe", "dlib"):
                    r = reports[tool]
                    print(f"{clip} {label} ({r['size'][0]}x{r['size'][1]}, {r['frames']} frames) {tool}: "
                          f"{r['timings']['total']['median_ms']:.1f} ms/frame median "
                          f"(p95 {r['timings']['total']['p95_ms']:.1f}), face in {r['faces_found']}, "
                          f"peak RSS {r['peak_rss_mb']:.0f} MB", flush=True)
                runs.append({"clip": clip, "scale": label, "size": reports["maskcap"]["size"],
                             "frames": len(frames), "clip_fps": fps, "tools": reports, "ratios": ratios(reports)})
                m = reports["maskcap"]["timings"]["pipeline"]
                print(f"  maskcap pipeline {m['fps']:.1f} fps; ratios {json.dumps(runs[-1]['ratios'])}", flush=True)
    result = {"machine": machine(), "load_average_at_end": os.getloadavg(), "peers": PEER_VERSIONS,
              "frames_per_clip": args.frames, "repeats": args.repeats, "runs": runs}
    path = write_json("peers.json", result)
    print(f"saved {path}")


if __name__ == "__main__":
    main()
