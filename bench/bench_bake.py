"""Benchmark of the installed Blender add-on (targets: bake at least 2x real time on 30 fps
640x480 footage; the live timer's main-thread work under 2 ms per applied result).

Run: .venv/bin/python -m bench.bench_bake [--seconds 10] [--live-results 100]
Builds the linux-x64 extension zip, installs it headless into bpy 5.0.1 (isolated user folder in
build/bench_bake/), makes the demo clip (640x480, 30 fps), and in one Blender process: bakes a
1-second clip first so that the tracker's one-time compile is not counted, then times the bake of
the whole clip onto the demo head (frames per second and the ratio to the clip's 30 fps) and, as
the baselines, the engine's tracking of the same clip without keyframes, and with identity/focal
adaptation off (what the adaptation costs); then runs live capture from the same clip and times every call of the timer's body that applied a
result (median and p95). Writes bench/results/bake.json.
"""
from __future__ import annotations

import argparse
import os
import shutil
import sys
from pathlib import Path

import numpy as np

from .common import machine, summary, write_json

ROOT = Path(__file__).resolve().parents[1]
WORK = ROOT / "build" / "bench_bake"

BENCH = '''
import time
scene = bpy.context.scene
s = scene.maskcap
bpy.ops.maskcap.add_demo_head()
s.source_type = "FILE"
s.write_masks = False
s.source_path = WARMUP
bpy.ops.maskcap.bake()  # compiles the tracker's numba code once
s.source_path = CLIP
start = time.perf_counter()
bpy.ops.maskcap.bake()
RESULT["bake_seconds"] = time.perf_counter() - start
RESULT["bake_frames"] = len(pkg.bake.last_take())
start = time.perf_counter()  # the baseline: the engine alone on the same clip, no keyframes
take = importlib.import_module(pkg.__name__ + ".core.capture.take")
RESULT["track_frames"] = len(take.track_clip(CLIP))
RESULT["track_seconds"] = time.perf_counter() - start
tracker = importlib.import_module(pkg.__name__ + ".core.track.tracker")  # the floor: the same, without identity/focal adaptation
start = time.perf_counter()
RESULT["fixed_frames"] = len(take.track_clip(
    CLIP, tracker_options=tracker.TrackerOptions(adapt_identity=False, synchronous_adaptation=True)))
RESULT["fixed_seconds"] = time.perf_counter() - start

s.filter_live = True
s.source_path = LIVE_CLIP
bpy.ops.maskcap.live_start()
apply_ms, deadline = [], time.perf_counter() + 120
while len(apply_ms) < LIVE_RESULTS and pkg.live.current_session() is not None and time.perf_counter() < deadline:
    t0 = time.perf_counter()
    if pkg.live.apply_newest(scene):
        apply_ms.append((time.perf_counter() - t0) * 1000)
    else:
        time.sleep(0.002)
session = pkg.live.current_session()
RESULT["session_apply_ms"] = list(session.apply_ms) if session is not None else []
bpy.ops.maskcap.live_stop()
RESULT["apply_ms"] = apply_ms
'''


def main(argv: list[str] | None = None) -> None:
    import build_addon
    from tests import blender_run
    from examples.demo_clip import ClipOptions, write_demo_clip

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="length of the clip to bake")
    parser.add_argument("--live-results", type=int, default=100, help="live results to time")
    args = parser.parse_args(argv)

    load_at_start = list(os.getloadavg())
    shutil.rmtree(WORK, ignore_errors=True)
    WORK.mkdir(parents=True)
    zip_path = build_addon.build_platform(build_addon.PLATFORMS["linux-x64"], WORK)
    options = ClipOptions(seconds=args.seconds)
    clip = write_demo_clip(WORK / "clip.mp4", options)
    warmup = write_demo_clip(WORK / "warmup.mp4", ClipOptions(seconds=1.0))
    # the live part runs at the clip's pace: give it enough footage for the results asked for
    live_clip = write_demo_clip(WORK / "live.mp4", ClipOptions(seconds=max(args.seconds, args.live_results / 5)))
    user = blender_run.BlenderUser(root=WORK / "user", site=blender_run.blender_site(WORK / "user" / "site"))
    blender_run.install(user, zip_path)
    result = blender_run.run(user, BENCH, timeout=1800, CLIP=str(clip), WARMUP=str(warmup), LIVE_CLIP=str(live_clip),
                             LIVE_RESULTS=args.live_results)

    bake_fps = result["bake_frames"] / result["bake_seconds"]
    track_fps = result["track_frames"] / result["track_seconds"]
    fixed_fps = result["fixed_frames"] / result["fixed_seconds"]
    apply = summary(np.array(result["apply_ms"])) if result["apply_ms"] else None
    payload = {
        "machine": machine(),
        "clip": {"seconds": args.seconds, "fps": options.fps, "size": list(options.size), "source": "examples.demo_clip"},
        "bake": {"frames": result["bake_frames"], "seconds": result["bake_seconds"], "fps": bake_fps,
                 "real_time_ratio": bake_fps / options.fps, "target_ratio": 2.0},
        "track_only_baseline": {"frames": result["track_frames"], "seconds": result["track_seconds"],
                                "fps": track_fps, "bake_over_track": bake_fps / track_fps},
        "no_adaptation_baseline": {"frames": result["fixed_frames"], "seconds": result["fixed_seconds"],
                                   "fps": fixed_fps, "bake_over_no_adaptation": bake_fps / fixed_fps},
        "load_average_1_5_15": list(os.getloadavg()),
        "load_average_at_start": load_at_start,
        "live_timer_apply": apply,
        "live_timer_apply_target_ms": 2.0,
        "addon_session_apply_ms": summary(np.array(result["session_apply_ms"])) if result["session_apply_ms"] else None,
    }
    path = write_json("bake.json", payload)
    print(f"bake: {result['bake_frames']} frames in {result['bake_seconds']:.1f} s = {bake_fps:.1f} fps, "
          f"{bake_fps / options.fps:.2f}x real time at {options.fps:g} fps (target 2x); the engine alone "
          f"{track_fps:.1f} fps in the same run (bake/track {bake_fps / track_fps:.2f}); without identity/focal "
          f"adaptation {fixed_fps:.1f} fps (bake/that {bake_fps / fixed_fps:.2f})")
    if apply:
        print(f"live timer, per applied result: median {apply['median_ms']:.2f} ms, p95 {apply['p95_ms']:.2f} ms "
              f"over {apply['n']} results (target < 2 ms)")
    else:
        print("live timer: no result was applied", file=sys.stderr)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
