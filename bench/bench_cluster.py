"""The masks command on a Ray cluster against the local command, on this machine.

    .venv-ray/bin/python -m bench.bench_cluster --images 100     # 2 rounds
    .venv-ray/bin/python -m bench.bench_cluster --images 12 --rounds 1 --clip-frames 12

Over the same 640x480 three-face group photos (evaluation.group_photos, fixed seeds) it times
the whole `masks` run, reading, PNG and JSON writing and the workers' start (model loading)
included: locally with 1 process (its detector's passes on two threads) and 2 processes; and on a
local Ray cluster of this machine's 2 CPUs (127.0.0.1 only) with 1 actor holding 1 CPU, 1 actor
holding both (two detector threads, as the local single process), and 2 actors of 1 CPU (a file
a task, and 4 files a task). The
settings take turns within each round, so a busy machine slows them alike; medians over the
rounds, and each cluster setting's ratio to the local run with the same CPUs. The CPU seconds
per image of the whole process tree (driver, workers and Ray's own processes; for the local runs
less what the idle cluster beside them uses) show the cluster's cost where other jobs share the
machine and throughput cannot. Start-up is timed apart: the cluster's own start (`--ray local`
pays it on every run, a standing cluster does not), and a one-image run on it (Ray Data's
set-up, one actor's start with its model loading, one image), whose CPU seconds per actor are
taken off to give each cluster setting's CPU per image once started (what a long run tends to).
Then a clip (evaluation.group_photos.camera_clip) cut into ranges over 2 actors, detecting every
frame and every 5th: its files are compared with the local run's byte for byte (JSON, mask PNGs
and the anonymised video). Saves bench/results/cluster.json.
"""
from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

from bench.common import machine, write_json
from core.masks.batch import BatchOptions, run_batch
from core.masks.cluster import ClusterOptions, run_on_cluster, start_local_cluster
from evaluation.group_photos import GroupPhotoMaker, camera_clip

# name -> (local workers, or None for the cluster; actors; CPUs per actor; images per task)
SETTINGS = {
    "local, 1 process (2 detector threads)": (1, None, None, None),
    "local, 2 processes": (2, None, None, None),
    "ray, 1 actor of 1 CPU": (None, 1, 1, 1),
    "ray, 1 actor of 2 CPUs (2 detector threads)": (None, 1, 2, 1),
    "ray, 2 actors of 1 CPU": (None, 2, 1, 1),
    "ray, 2 actors of 1 CPU, 4 images a task": (None, 2, 1, 4),
}
PEER = {"ray, 1 actor of 2 CPUs (2 detector threads)": "local, 1 process (2 detector threads)",
        "ray, 2 actors of 1 CPU": "local, 2 processes",
        "ray, 2 actors of 1 CPU, 4 images a task": "local, 2 processes"}


class TreeCpu:
    """CPU seconds used by this process and every process under it during a `with` block: the
    tree is sampled every 0.2 s, so a process that ends (a finished worker) keeps what it used up
    to its last sample (a Ray worker is reaped by nothing in this tree that would count it)."""

    def __init__(self, every_s: float = 0.2):
        self.every_s, self.seconds = every_s, 0.0

    @staticmethod
    def sample() -> dict[int, float]:
        ticks = os.sysconf("SC_CLK_TCK")
        parents, times = {}, {}
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                try:
                    fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
                except OSError:
                    continue
                parents[int(entry)] = int(fields[1])
                times[int(entry)] = (int(fields[11]) + int(fields[12])) / ticks   # utime + stime
        me, tree = os.getpid(), {}
        for pid, seconds in times.items():
            ancestor = pid
            while ancestor > 1 and ancestor != me:
                ancestor = parents.get(ancestor, 0)
            if ancestor == me:
                tree[pid] = seconds
        return tree

    def _watch(self):
        while not self._stop.wait(self.every_s):
            self.last.update(self.sample())

    def __enter__(self):
        import threading
        self.start = self.sample()
        self.last = dict(self.start)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.last.update(self.sample())
        self.seconds = sum(v - self.start.get(pid, 0.0) for pid, v in self.last.items())


def run_setting(name: str, inputs, out: Path, options: BatchOptions):
    """(report, wall seconds, CPU seconds of this process tree) of one whole run."""
    with TreeCpu() as cpu:
        report, seconds = _run(*SETTINGS[name], inputs, out, options)
    return report, seconds, cpu.seconds


def _run(local_workers, actors, cpus, per_task, inputs, out: Path, options: BatchOptions):
    t0 = time.perf_counter()
    if local_workers:
        report = run_batch(inputs, BatchOptions(out, workers=local_workers, quiet=True, anonymize=options.anonymize,
                                                detect_every=options.detect_every))
    else:
        report = run_on_cluster(inputs, BatchOptions(out, quiet=True, anonymize=options.anonymize,
                                                     detect_every=options.detect_every),
                                ClusterOptions(workers=actors, cpus_per_worker=cpus, images_per_task=per_task))
    return report, time.perf_counter() - t0


def files(folder: Path) -> dict:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=40)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--clip-frames", type=int, default=40)
    args = ap.parse_args(argv)
    maker = GroupPhotoMaker("validation")
    out = {"machine": machine(), "images": args.images, "faces_per_image": 3, "frame": [640, 480],
           "load_average_before": os.getloadavg(), "runs": {name: [] for name in SETTINGS}}
    tmp = Path(tempfile.mkdtemp(prefix="bench_cluster_"))
    ray_temp = tempfile.mkdtemp(prefix="mcray", dir="/tmp")
    try:
        photos = tmp / "photos"
        photos.mkdir()
        for i in range(args.images):
            cv2.imwrite(str(photos / f"{i:03d}.jpg"), maker.make(3, 5000 + i).image)
        t0 = time.perf_counter()
        ray = start_local_cluster(cpus=2, temp_dir=ray_temp)
        out["cluster_start_s"] = time.perf_counter() - t0
        time.sleep(2.0)
        with TreeCpu() as idle:   # what the standing cluster costs doing nothing
            time.sleep(5.0)
        idle_rate = out["idle_cluster_cpu_seconds_per_second"] = idle.seconds / 5.0
        # a first tiny run: Ray Data's set-up and the actor's first start, timed apart
        t0 = time.perf_counter()
        with TreeCpu() as one:
            run_on_cluster([photos / "000.jpg"], BatchOptions(tmp / "warm", quiet=True), ClusterOptions(workers=1))
        out["first_single_image_run_s"] = time.perf_counter() - t0
        out["first_single_image_run_cpu_s"] = one.seconds
        for round_ in range(args.rounds):
            for name in SETTINGS:
                target = tmp / f"out_{round_}_{len(out['runs'][name])}_{abs(hash(name))}"
                report, seconds, cpu = run_setting(name, [photos], target, BatchOptions(target))
                if SETTINGS[name][0]:   # a local run does not need the cluster standing beside it
                    cpu -= idle_rate * seconds
                assert report.images_done == args.images and not report.failed, (name, report)
                out["runs"][name].append({"seconds": seconds, "images_per_second": args.images / seconds,
                                          "cpu_seconds_per_image": cpu / args.images, "faces": report.faces,
                                          "load_average_1min": os.getloadavg()[0]})
                print(f"round {round_ + 1}, {name:45s}: {args.images / seconds:.2f} images/s "
                      f"({seconds:.1f} s; {cpu / args.images:.2f} CPU s an image; load {os.getloadavg()[0]:.1f})",
                      flush=True)
                shutil.rmtree(target, ignore_errors=True)
        summary = {}
        for name, runs in out["runs"].items():
            summary[name] = {"images_per_second_median": float(np.median([r["images_per_second"] for r in runs])),
                             "seconds_median": float(np.median([r["seconds"] for r in runs])),
                             "cpu_seconds_per_image_median": float(np.median([r["cpu_seconds_per_image"] for r in runs]))}
        start_cpu = out["first_single_image_run_cpu_s"]   # a run's set-up, one actor's start and one image
        for name, (local_workers, actors, _, _) in SETTINGS.items():
            if not local_workers:   # per image once the set-up and the actors' start are paid
                total = summary[name]["cpu_seconds_per_image_median"] * args.images
                summary[name]["cpu_seconds_per_image_after_start"] = (total - actors * start_cpu) / (args.images - actors)
        for name, peer in PEER.items():
            ratios = [a["images_per_second"] / b["images_per_second"] for a, b in zip(out["runs"][name], out["runs"][peer])]
            summary[name]["ratio_to_local_same_cpus_median"] = float(np.median(ratios))
            cpu_ratios = [a["cpu_seconds_per_image"] / b["cpu_seconds_per_image"]
                          for a, b in zip(out["runs"][name], out["runs"][peer])]
            summary[name]["cpu_per_image_ratio_to_local_median"] = float(np.median(cpu_ratios))
        one, two = summary["ray, 1 actor of 1 CPU"], summary["ray, 2 actors of 1 CPU"]
        summary["ray_scaling_2_actors_over_1"] = two["images_per_second_median"] / one["images_per_second_median"]
        out["summary"] = summary
        for name, row in summary.items():
            if isinstance(row, dict):
                ratio = row.get("ratio_to_local_same_cpus_median")
                print(f"{name:45s}: {row['images_per_second_median']:.2f} images/s, "
                      f"{row['cpu_seconds_per_image_median']:.2f} CPU s an image"
                      + (f" ({row['cpu_seconds_per_image_after_start']:.2f} once started)"
                         if "cpu_seconds_per_image_after_start" in row else "")
                      + (f"; x{ratio:.2f} the images/s and x{row['cpu_per_image_ratio_to_local_median']:.2f} the CPU "
                         f"of the local run with the same CPUs" if ratio else ""))
        print(f"cluster start {out['cluster_start_s']:.1f} s (idle, it uses {idle_rate:.3f} CPU s a second); "
              f"a one-image run on it {out['first_single_image_run_s']:.1f} s, {start_cpu:.1f} CPU s; "
              f"2 actors / 1 actor: x{summary['ray_scaling_2_actors_over_1']:.2f}")

        # a video cut into ranges over two actors against the local run
        clip = camera_clip(maker.make(4, 777), args.clip_frames, 777)
        video = tmp / "clip.mp4"
        writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"mp4v"), 10.0, (640, 480))
        for frame in clip:
            writer.write(frame.image)
        writer.release()
        out["video"] = []
        for every in (1, 5):
            options = BatchOptions(tmp / "unused", anonymize="blur", detect_every=every)
            local_out, ray_out = tmp / f"video_local_{every}", tmp / f"video_ray_{every}"
            local, local_s, _ = run_setting("local, 2 processes", [video], local_out, options)
            t0 = time.perf_counter()
            cut = run_on_cluster([video], BatchOptions(ray_out, quiet=True, anonymize="blur", detect_every=every),
                                 ClusterOptions(workers=2, range_frames=10))
            ray_s = time.perf_counter() - t0
            a, b = files(local_out / "clip"), files(ray_out / "clip")
            differing = sorted(name for name in set(a) | set(b) if a.get(name) != b.get(name))
            row = {"detect_every": every, "frames": cut.frames_done, "faces": cut.faces, "files": len(a),
                   "differing_files": differing, "local_seconds": local_s, "ray_seconds": ray_s,
                   "local_faces": local.faces}
            out["video"].append(row)
            print(f"clip of {cut.frames_done} frames, detection every {every}: {len(a)} files (JSON, mask PNGs, "
                  f"blurred video), {len(differing)} differ from the local run; {cut.faces} faces; "
                  f"local {args.clip_frames / local_s:.2f} frames/s, ray {args.clip_frames / ray_s:.2f} frames/s", flush=True)
        ray.shutdown()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.rmtree(ray_temp, ignore_errors=True)
    out["load_average_after"] = os.getloadavg()
    print(f"saved {write_json('cluster.json', out)}")


if __name__ == "__main__":
    main()
