"""Every peer benchmark, then the report: one command.

Run: .venv/bin/python -m bench.run_all [--frames 150] [--images 200]
Sets up the peers' venvs when missing, then runs bench.mediapipe_ibug68, bench.peers,
bench.occlusion_peers and bench.segmentation_peers one after another (never in parallel: they
time themselves), and writes reports/benchmarks.md with bench.report. The soak
(bench.soak, 10 minutes) is its own command; the report includes its last result.
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=150, help="frames per clip for speed and occlusion")
    parser.add_argument("--images", type=int, default=200, help="lfw_parts validation images for segmentation")
    args = parser.parse_args()
    steps = [["bench.mediapipe_ibug68"], ["bench.peers", "--frames", str(args.frames)],
             ["bench.occlusion_peers", "--frames", str(args.frames)],
             ["bench.segmentation_peers", "--limit", str(args.images)], ["bench.report"]]
    for step in steps:
        print(f"== {' '.join(step)}", flush=True)
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-m", *step], cwd=REPO, check=True)
        print(f"== {step[0]} took {time.perf_counter() - t0:.0f} s", flush=True)


if __name__ == "__main__":
    main()
