"""The masks command on a Ray cluster (core/masks/cluster.py): the local run's outputs, fault
tolerance, resumability, and an engine and add-on that stay free of Ray.

The tests marked `ray` need Ray (.venv-ray: `bash scripts/setup_env.sh --ray`; bash scripts/test.sh
runs them there) and start their own cluster on 127.0.0.1, stopped at the end of the module; in
.venv they skip. The others run anywhere.
"""
from __future__ import annotations

import importlib.util
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import pytest

from core.cli import main as cli_main
from core.masks import cluster
from core.masks.batch import BatchOptions, plan_jobs, run_batch
from core.masks.cluster import ClusterOptions, run_on_cluster
from tests.helpers import lfw_group_frame

ROOT = Path(__file__).resolve().parents[1]
HAVE_RAY = importlib.util.find_spec("ray") is not None
_skip_without_ray = pytest.mark.skipif(not HAVE_RAY, reason="needs Ray: bash scripts/test.sh runs these in .venv-ray "
                                      "(bash scripts/setup_env.sh --ray)")


def on_ray(test):
    """A test on the module's Ray cluster: marked `ray`, skipped without Ray."""
    return pytest.mark.ray(_skip_without_ray(pytest.mark.usefixtures("ray_cluster")(test)))


def textured(h=120, w=160, seed=0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return cv2.resize(rng.integers(0, 256, size=(h // 8, w // 8, 3), dtype=np.uint8), (w, h))


def write_video(path: Path, frames: list[np.ndarray], fps: float = 10.0) -> Path:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (frames[0].shape[1], frames[0].shape[0]))
    for frame in frames:
        writer.write(frame)
    writer.release()
    return path


def moving_faces_video(path: Path, frames: int = 12) -> Path:
    """Two lfw_parts faces, one sliding right (320x240; needs the shared data)."""
    return write_video(path, [cv2.resize(lfw_group_frame(((40 + 8 * t, 115, 250), (340, 115, 250))), (320, 240))
                              for t in range(frames)])


def outputs(folder: Path) -> dict:
    """Every output file's bytes by relative path (the run's summary file aside)."""
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file() and p.name != "last_run.json"}


def assert_same_outputs(local: Path, other: Path) -> None:
    a, b = outputs(local), outputs(other)
    assert sorted(a) == sorted(b)
    assert [name for name in a if a[name] != b[name]] == []


# ------------------------------------------------------------------ without Ray

def test_the_engine_and_the_command_import_without_ray():
    code = ("import sys, core.cli, core.masks.batch, core.masks.cluster; "
            "sys.exit(1 if any(m == 'ray' or m.startswith('ray.') for m in sys.modules) else 0)")
    assert subprocess.run([sys.executable, "-c", code], cwd=ROOT).returncode == 0


def test_the_addon_ships_neither_ray_nor_the_cluster_code():
    import build_addon
    names = [name for _, name in build_addon.addon_files()]
    assert "core/masks/batch.py" in names and "core/masks/cluster.py" not in names
    assert not any(name.startswith("ray") for name in build_addon.runtime_pins())


@pytest.mark.skipif(HAVE_RAY, reason="checks the message given where Ray is not installed")
def test_without_ray_the_command_says_how_to_install_it(tmp_path, capsys):
    cv2.imwrite(str(tmp_path / "a.png"), textured())
    assert cli_main(["masks", str(tmp_path / "a.png"), "--out", str(tmp_path / "out"), "--ray", "local"]) == 2
    assert "requirements-ray.txt" in capsys.readouterr().err


def test_a_video_is_cut_into_whole_detection_intervals_the_last_open_ended():
    ranges = cluster._split_video(100, 3, 20, 2)
    assert all(first % 3 == 0 for first, _ in ranges) and ranges[0][0] == 0 and ranges[-1][1] is None
    assert all(stop == following for (_, stop), (following, _) in zip(ranges, ranges[1:]))
    assert all((stop - first) == 21 for first, stop in ranges[:-1])       # 20 rounded up to 7 intervals
    assert len(cluster._split_video(12, 3, 60, 2)) == 2                     # at least one range per worker
    assert cluster._split_video(None, 1, 60, 4) == [(0, None)]            # frame count unknown


@pytest.fixture(scope="module")
def face_clip(tmp_path_factory) -> Path:
    return moving_faces_video(tmp_path_factory.mktemp("clip") / "clip.mp4")


@pytest.fixture(scope="module")
def local_clip_outputs(face_clip, tmp_path_factory) -> Path:
    """The local command's outputs for the clip: detection every 3rd frame, blurred copy."""
    out = tmp_path_factory.mktemp("local")
    report = run_batch([face_clip], BatchOptions(out, anonymize="blur", workers=1, detect_every=3, quiet=True))
    assert report.exit_code == 0 and report.frames_done == 12 and report.faces >= 20
    return out


def run_cut_in_process(inputs, options: BatchOptions, range_frames: int):
    """The cluster's cutting, checking and stitching, with its items run in this process."""
    jobs, skipped, failed = plan_jobs(inputs)
    report = cluster.BatchReport(skipped=skipped, failed=failed)
    cluster._in_process(jobs, options, ClusterOptions(range_frames=range_frames), report)
    return report


def test_cut_ranges_stitched_together_give_the_local_runs_files(face_clip, local_clip_outputs, tmp_path):
    report = run_cut_in_process([face_clip], BatchOptions(tmp_path, anonymize="blur", detect_every=3, quiet=True), 3)
    assert report.exit_code == 0 and report.frames_done == 12
    assert_same_outputs(local_clip_outputs, tmp_path)   # JSON, mask PNGs and the blurred video, byte for byte


def test_a_seek_that_lands_one_frame_late_is_caught_and_redone_from_the_start(face_clip, local_clip_outputs,
                                                                           tmp_path, monkeypatch):
    from core.io.sources import VideoFileSource
    seek = VideoFileSource.seek
    monkeypatch.setattr(VideoFileSource, "seek", lambda self, index: seek(self, index + 1))
    report = run_cut_in_process([face_clip], BatchOptions(tmp_path, anonymize="blur", detect_every=3, quiet=True), 3)
    assert report.exit_code == 0 and report.frames_done == 12
    assert_same_outputs(local_clip_outputs, tmp_path)


# ------------------------------------------------------------------ on a Ray cluster of the tests' own

@pytest.fixture(scope="module")
def ray_cluster():
    """A 2-CPU Ray cluster on 127.0.0.1 for this module (its files in a short temporary folder:
    Ray's sockets live there), stopped and removed at the end."""
    if not HAVE_RAY:
        pytest.skip("needs Ray")
    temp = tempfile.mkdtemp(prefix="mcray", dir="/tmp")
    ray = cluster.start_local_cluster(cpus=2, temp_dir=temp)
    node = ray.nodes()[0]
    assert node["NodeManagerAddress"] == "127.0.0.1"
    yield ray
    ray.shutdown()
    shutil.rmtree(temp, ignore_errors=True)


def mask_actors() -> list[int]:
    """Process ids of this test process's Ray Data actors (named ray::MapWorker(...) by Ray)."""
    me, found = os.getpid(), []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            command = Path(f"/proc/{entry}/cmdline").read_bytes().decode(errors="replace")
        except OSError:
            continue
        if command.startswith("ray::MapWorker") and "_MaskActor" in command:
            pid = parent = int(entry)
            while parent > 1:
                try:
                    parent = int(Path(f"/proc/{parent}/stat").read_text().rsplit(")", 1)[1].split()[1])
                except OSError:
                    break
                if parent == me:
                    found.append(pid)
                    break
    return found


@on_ray
def test_a_video_split_across_workers_gives_the_local_runs_json_and_masks(face_clip, local_clip_outputs, tmp_path):
    options = BatchOptions(tmp_path, anonymize="blur", detect_every=3, quiet=True)
    report = run_on_cluster([face_clip], options, ClusterOptions(address="local", workers=2, range_frames=3))
    assert report.exit_code == 0 and report.frames_done == 12
    assert_same_outputs(local_clip_outputs, tmp_path)


@on_ray
def test_a_corrupt_file_is_named_and_the_others_finish(tmp_path, capsys):
    folder = tmp_path / "photos"
    folder.mkdir()
    for i in range(3):
        cv2.imwrite(str(folder / f"good{i}.png"), textured(seed=i))
    (folder / "broken.jpg").write_bytes(b"this is not a jpeg")
    (folder / "empty.png").write_bytes(b"")
    (folder / "notes.txt").write_text("hello")
    write_video(tmp_path / "clip.mp4", [textured(seed=i) for i in range(6)])
    (tmp_path / "bad.mp4").write_bytes(b"not a video")
    out = tmp_path / "out"
    status = cli_main(["masks", str(folder), str(tmp_path / "clip.mp4"), str(tmp_path / "bad.mp4"), "--out", str(out),
                       "--ray", "local", "--quiet"])
    err = capsys.readouterr().err
    assert status == 1
    assert "FAILED 3" in err and "broken.jpg" in err and "empty.png" in err and "bad.mp4" in err
    assert "skipped 1" in err and "notes.txt" in err
    assert all((out / "photos" / f"good{i}" / "faces.json").exists() for i in range(3))
    assert (out / "clip" / "faces.json").exists()
    local = tmp_path / "local"
    inputs = [folder, tmp_path / "clip.mp4", tmp_path / "bad.mp4"]
    local_report = run_batch(inputs, BatchOptions(local, workers=1, quiet=True))
    assert json.loads((out / "last_run.json").read_text())["failed"] == [vars(p) for p in local_report.failed]
    assert_same_outputs(local, out)


@on_ray
def test_a_worker_killed_mid_run_loses_no_file_and_the_run_completes(face_clip, tmp_path):
    folder = tmp_path / "photos"
    folder.mkdir()
    for i in range(8):
        cv2.imwrite(str(folder / f"group{i}.png"), cv2.resize(lfw_group_frame(((40 + 20 * i, 115, 250),)), (320, 240)))
    out = tmp_path / "out"
    killed = []

    def kill_a_busy_worker():
        deadline = time.monotonic() + 300
        while len(list(out.rglob("faces.json"))) + len(list(out.rglob("frame_*.json"))) < 2:
            if time.monotonic() > deadline:
                return
            time.sleep(0.02)
        actors = mask_actors()
        if not actors:
            return
        os.kill(actors[0], signal.SIGKILL)
        killed.append(actors[0])
        while time.monotonic() < deadline:   # Ray starts another in its place
            replacements = set(mask_actors()) - set(actors)
            if replacements:
                killed.append(replacements.pop())
                return
            time.sleep(0.05)

    killer = threading.Thread(target=kill_a_busy_worker)
    killer.start()
    options = BatchOptions(out, anonymize="blur", detect_every=3, quiet=True)
    report = run_on_cluster([folder, face_clip], options, ClusterOptions(address="local", workers=2, range_frames=3))
    killer.join()
    assert len(killed) == 2, f"killed and replaced: {killed}"
    assert report.exit_code == 0 and report.failed == []
    assert report.images_done == 8 and report.frames_done == 12
    local = tmp_path / "local"
    run_batch([folder, face_clip], replace(options, out_dir=local, workers=1))
    assert_same_outputs(local, out)                  # nothing lost, nothing half-written, no temporary left


class _DiesOnPoison(cluster._MaskActor):
    """An actor whose process dies whenever it is given a file named poison.png."""

    def __call__(self, rows):
        if any(str(path).endswith("poison.png") for path in rows["path"]):
            os._exit(1)
        return super().__call__(rows)


@on_ray
def test_a_file_whose_worker_dies_on_every_try_fails_by_name_and_the_others_finish(tmp_path, monkeypatch):
    for name in ("a.png", "poison.png", "b.png"):
        cv2.imwrite(str(tmp_path / name), textured())
    monkeypatch.setattr(cluster, "_MaskActor", _DiesOnPoison)
    report = run_on_cluster([tmp_path], BatchOptions(tmp_path / "out", quiet=True), ClusterOptions(workers=2))
    assert report.images_done == 2 and report.exit_code == 1
    assert [(Path(p.path).name, p.reason.split(":")[0]) for p in report.failed] == [("poison.png", "lost")]
    assert (tmp_path / "out" / tmp_path.name / "a" / "faces.json").exists()


@on_ray
def test_an_interrupted_cluster_run_resumes_where_it_stopped(ray_cluster, tmp_path):
    video = write_video(tmp_path / "clip.mp4", [textured(seed=i % 10) for i in range(80)])
    out = tmp_path / "out"
    address = ray_cluster.get_runtime_context().gcs_address
    command = [sys.executable, "-m", "core.cli", "masks", str(video), "--out", str(out), "--anonymize", "blur",
               "--ray", address, "--range-frames", "20", "--quiet"]
    process = subprocess.Popen(command, cwd=ROOT, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 180
    while len(list((out / "clip").glob("frame_*.json"))) < 3 and time.monotonic() < deadline:
        time.sleep(0.05)
    process.send_signal(signal.SIGINT)
    err = process.communicate(timeout=120)[1]
    assert process.returncode == 130, err
    assert "interrupted" in err
    assert not [p for p in out.rglob(".*")]                       # no temporary file left
    assert not (out / "clip" / "faces.json").exists() and not (out / "clip" / "anonymized.mp4").exists()
    done_before = len(list((out / "clip").glob("frame_*.json")))
    assert 3 <= done_before < 80
    kept = {p.name: p.stat().st_mtime_ns for p in (out / "clip").glob("mask_*.png")}
    rerun = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr
    assert all((out / "clip" / name).stat().st_mtime_ns == stamp for name, stamp in kept.items())
    local = tmp_path / "local"
    run_batch([video], BatchOptions(local, anonymize="blur", workers=1, quiet=True))
    assert_same_outputs(local, out)
