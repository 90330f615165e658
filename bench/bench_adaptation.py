"""Benchmark of identity/focal adaptation (paper Eq. 3) in a bake: what the solves cost, how many
run before two agree, and how much the way they are solved moves the take.

Run: .venv/bin/python -m bench.bench_adaptation [--frames 300]
Bakes the 10 s 640x480 demo clip (examples.demo_clip) and, when the shared data is there,
webcam_talking with core.capture.take.track_clip four ways: adaptation off (the floor); "before", cold
solves on the dense active-set solver that the block arrow solver replaced (the algorithm before
this benchmark was written); cold solves on the arrow solver; warm solves, each continuing from the
previous one (the default). For each it records every solve (keyframes, thread CPU seconds, cold or
warm), the solve after which adaptation converged, the bake's frames per second, and how far the
take's landmarks lie from the "before" take (mean over the 68 points and the frames, in % of the
inter-ocular distance). Then it solves the "before" bake's keyframe sets again with both solvers,
timing each, and compares identity, focal length and landmark residual. Writes
bench/results/adaptation.json.
"""
from __future__ import annotations

import argparse
import os
import time
from contextlib import contextmanager
from functools import partial
from pathlib import Path

import numpy as np

from core.track import adaptation

from core.face import fitting
from core.face.box_qp import dense_box_step
from core.capture.take import track_clip
from core.track.tracker import TrackerOptions

from .common import machine, write_json

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "videos"
VARIANTS = ("no_adaptation", "before", "cold", "warm")


@contextmanager
def dense_joint_solver():
    """Eq. 3's joint steps on the dense active-set solver (L-BFGS-B when it cycles) it had before."""
    original = fitting.arrow_box_step
    fitting.arrow_box_step = lambda h, g, lo, hi: dense_box_step(h.dense(), g, lo, hi)
    try:
        yield
    finally:
        fitting.arrow_box_step = original


@contextmanager
def adaptation_defaults(**changes):
    """The tracker's adapter made with these AdaptationOptions changes."""
    original = adaptation.AdaptationOptions
    adaptation.AdaptationOptions = partial(original, **changes)
    try:
        yield
    finally:
        adaptation.AdaptationOptions = original


@contextmanager
def recorded_solves(log: list):
    """Append each solve (keyframes, result, thread CPU time, warm or cold, converged after it) to log."""
    solve, publish = adaptation.IdentityAdapter._solve, adaptation.IdentityAdapter._publish

    def timed_solve(self, frames, start):
        t0 = time.thread_time()
        out = solve(self, frames, start)
        log.append({"keyframes": [k.landmarks.copy() for k in frames], "warm": start is not None,
                    "cpu_s": time.thread_time() - t0, "identity": out[0], "focal_px": out[1],
                    "size": self.image_size, "focal_prior_px": self.focal_prior_px})
        return out

    def noted_publish(self, solved):
        publish(self, solved)
        for entry in reversed(log):
            if entry["identity"] is solved[0]:
                entry["converged"] = self.converged

    adaptation.IdentityAdapter._solve, adaptation.IdentityAdapter._publish = timed_solve, noted_publish
    try:
        yield
    finally:
        adaptation.IdentityAdapter._solve, adaptation.IdentityAdapter._publish = solve, publish


def bake(clip: Path, frames: int, variant: str) -> dict:
    log: list = []
    options = TrackerOptions(synchronous_adaptation=True, adapt_identity=variant != "no_adaptation")
    solver = dense_joint_solver() if variant == "before" else _nothing()
    with solver, adaptation_defaults(warm_start=variant == "warm"), recorded_solves(log):
        start = time.perf_counter()
        take = track_clip(clip, tracker_options=options, max_frames=frames)
        seconds = time.perf_counter() - start
    converged_at = next((i + 1 for i, s in enumerate(log) if s.get("converged")), None)
    return {"take": take, "solves": log, "fps": len(take) / seconds, "seconds": seconds,
            "converged_after_solves": converged_at}


@contextmanager
def _nothing():
    yield


def landmark_difference_iod_percent(take, reference) -> dict:
    """Mean distance of the 68 landmarks from the reference take's, per frame, in % of its IOD."""
    both = take.ok & reference.ok
    ref = reference.landmarks[both]
    iod = np.linalg.norm(ref[:, 36] - ref[:, 45], axis=1)
    per_frame = np.linalg.norm(take.landmarks[both] - ref, axis=2).mean(axis=1) / iod * 100.0
    return {"frames": int(both.sum()), "mean": float(per_frame.mean()), "median": float(np.median(per_frame)),
            "p95": float(np.percentile(per_frame, 95)), "max": float(per_frame.max())}


def resolve(solves: list, dense: bool) -> list[dict]:
    """fit_identity_focal again on each recorded keyframe set (cold), with either solver."""
    options = adaptation.AdaptationOptions().fit
    model = fitting_model()
    out = []
    for s in solves:
        with dense_joint_solver() if dense else _nothing():
            t0 = time.thread_time()
            u, f, fits = fitting.fit_identity_focal(model, s["keyframes"], s["size"], focal_px=s["focal_prior_px"],
                                                    options=options)
            cpu = time.thread_time() - t0
        iod = [np.linalg.norm(k[36] - k[45]) for k in s["keyframes"]]
        residual = float(np.mean([np.linalg.norm(fit.displacements, axis=1).mean() / d * 100 for fit, d in zip(fits, iod)]))
        out.append({"cpu_s": cpu, "identity": u, "focal_px": f, "residual_iod_percent": residual})
    return out


def fitting_model():
    from core.face.face_model import load_face_model
    return load_face_model()


def clip_report(name: str, clip: Path, frames: int) -> dict:
    bakes = {v: bake(clip, frames, v) for v in VARIANTS}
    before = bakes["before"]["take"]
    report = {"clip": name, "frames": frames}
    for v, b in bakes.items():
        report[v] = {"fps": b["fps"], "seconds": b["seconds"],
                     "solves": [{"keyframes": len(s["keyframes"]), "cpu_s": s["cpu_s"], "warm": s["warm"],
                                 "focal_px": s["focal_px"]} for s in b["solves"]],
                     "solve_cpu_s_total": float(sum(s["cpu_s"] for s in b["solves"])),
                     "converged_after_solves": b["converged_after_solves"],
                     "final_focal_px": b["take"].solved_focal_px(),
                     "landmarks_vs_before_iod_percent": landmark_difference_iod_percent(b["take"], before)}
    keyframe_sets = bakes["before"]["solves"]
    dense, arrow = resolve(keyframe_sets, dense=True), resolve(keyframe_sets, dense=False)
    report["same_keyframes"] = {
        "solves": len(keyframe_sets),
        "keyframes": [len(s["keyframes"]) for s in keyframe_sets],
        "dense_cpu_s": summary_s([d["cpu_s"] for d in dense]),
        "arrow_cpu_s": summary_s([a["cpu_s"] for a in arrow]),
        "speedup_total": sum(d["cpu_s"] for d in dense) / max(sum(a["cpu_s"] for a in arrow), 1e-9),
        "identity_rms_difference_sd": [float(np.sqrt(np.mean((a["identity"] - d["identity"]) ** 2)))
                                       for a, d in zip(arrow, dense)],
        "focal_relative_difference": [a["focal_px"] / d["focal_px"] - 1.0 for a, d in zip(arrow, dense)],
        "residual_iod_percent_dense": [d["residual_iod_percent"] for d in dense],
        "residual_iod_percent_arrow": [a["residual_iod_percent"] for a in arrow],
    }
    return report


def summary_s(values: list[float]) -> dict:
    v = np.array(values)
    return {"n": len(v), "median": float(np.median(v)), "max": float(v.max()), "total": float(v.sum())}


def main(argv: list[str] | None = None) -> None:
    from examples.demo_clip import ClipOptions, write_demo_clip

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--frames", type=int, default=300, help="frames of each clip to bake")
    args = parser.parse_args(argv)
    load_at_start = list(os.getloadavg())
    work = ROOT / "build" / "bench_adaptation"
    work.mkdir(parents=True, exist_ok=True)
    clips = [("demo_clip_640x480", write_demo_clip(work / "clip.mp4", ClipOptions(seconds=args.frames / 30.0)))]
    if (DATA / "webcam_talking.mp4").exists():
        clips.append(("webcam_talking", DATA / "webcam_talking.mp4"))
    track_clip(clips[0][1], max_frames=10)  # the tracker's one-time numba compile, not counted
    reports = [clip_report(name, path, args.frames) for name, path in clips]
    payload = {"machine": machine(), "load_average_at_start": load_at_start,
               "load_average_1_5_15": list(os.getloadavg()), "clips": reports}
    path = write_json("adaptation.json", payload)
    for r in reports:
        print(f"{r['clip']} ({r['frames']} frames):")
        for v in VARIANTS:
            x = r[v]
            diff = x["landmarks_vs_before_iod_percent"]
            solves = " ".join(f"{s['cpu_s']:.2f}" + ("w" if s["warm"] else "") for s in x["solves"])
            print(f"  {v:14s} {x['fps']:6.1f} fps; {len(x['solves'])} solves, {x['solve_cpu_s_total']:.2f} s CPU "
                  f"[{solves}], converged after "
                  f"{x['converged_after_solves']}; final focal {x['final_focal_px']:.1f} px; landmarks vs before: mean "
                  f"{diff['mean']:.2f} % IOD, p95 {diff['p95']:.2f}")
        s = r["same_keyframes"]
        print(f"  same {s['solves']} keyframe sets solved cold: dense {s['dense_cpu_s']['total']:.2f} s, arrow "
              f"{s['arrow_cpu_s']['total']:.2f} s CPU (x{s['speedup_total']:.2f}); identity RMS difference max "
              f"{max(s['identity_rms_difference_sd']):.4f} sd, focal max {max(map(abs, s['focal_relative_difference'])) * 100:.2f} %, "
              f"residual {np.mean(s['residual_iod_percent_dense']):.3f} -> {np.mean(s['residual_iod_percent_arrow']):.3f} % IOD")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
