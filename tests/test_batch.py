"""Every face of a frame (segment_all) and the batch masks command: outputs, bad files, resume."""
from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from core.masks.batch import DEFAULT_MIN_SCORE, BatchOptions, anonymize_clip, plan_jobs, run_batch
from core.cli import main as cli_main
from core.segment.segmentation import FaceMask, FaceSegmenter, merge_face_masks
from tests.helpers import lfw_group_frame


@pytest.fixture(scope="module")
def segmenter():
    with FaceSegmenter() as s:
        yield s


def textured(h=240, w=320, seed=0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, size=(h // 8, w // 8, 3), dtype=np.uint8)
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)


def face_scene(count: int = 2) -> np.ndarray:
    """A 640x480 frame with `count` lfw_parts validation faces side by side (needs the data)."""
    return lfw_group_frame(tuple((40 + i * 300, 115, 250) for i in range(count)))


# face_scene(2)'s faces: its two photos' people and, in the second photo, a man's half face at its edge
FACES_IN_TWO_PHOTO_SCENE = 3


# ------------------------------------------------------------------ segment_all

def test_segment_all_gives_one_face_per_box_with_a_frame_size_binary_mask(segmenter):
    frame = textured()
    faces = segmenter.segment_all(frame, [(40, 40, 80, 100), (200, 60, 60, 60)])
    assert len(faces) == 2
    for face, box in zip(faces, [(40, 40, 80, 100), (200, 60, 60, 60)]):
        assert isinstance(face, FaceMask)
        assert face.box == pytest.approx(box)
        assert face.mask.shape == frame.shape[:2] and face.mask.dtype == np.uint8
        assert set(np.unique(face.mask)) <= {0, 1}
        assert 0.0 <= face.score <= 1.0


def test_segment_all_without_boxes_or_faces_is_empty(segmenter):
    assert segmenter.segment_all(textured(), []) == []
    assert segmenter.segment_all(np.full((240, 320, 3), 90, np.uint8)) == []


def test_segment_all_rejects_a_box_outside_the_frame(segmenter):
    with pytest.raises(ValueError, match="outside"):
        segmenter.segment_all(textured(), [(1000, 1000, 50, 50)])


def test_a_face_mask_stays_near_its_own_box(segmenter):
    frame = face_scene(2)
    faces = segmenter.segment_all(frame, [(80, 160, 170, 170), (380, 160, 170, 170)])
    for face in faces:
        x, y, w, h = face.box
        ys, xs = np.nonzero(face.mask)
        assert len(xs) > 0.3 * w * h
        assert x - 0.4 * w <= xs.min() and xs.max() <= x + 1.4 * w


def test_segment_all_finds_every_face_of_a_group(segmenter):
    frame = face_scene(2)
    faces = segmenter.segment_all(frame, min_score=DEFAULT_MIN_SCORE)
    centres = sorted(f.box[0] + f.box[2] / 2 for f in faces)
    assert len(faces) == FACES_IN_TWO_PHOTO_SCENE    # the half face's centre lies at x 340-440
    assert abs(centres[0] - 165) < 40 and 340 < centres[1] < 440 and abs(centres[2] - 465) < 40
    merged = merge_face_masks(faces, frame.shape)
    assert merged.sum() == sum(int(f.mask.sum()) for f in faces)   # apart, so no overlap


def test_the_merged_mask_is_the_union_of_the_faces():
    a = np.zeros((10, 10), np.uint8)
    b = np.zeros((10, 10), np.uint8)
    a[2:5, 2:5] = 1
    b[4:8, 4:8] = 1
    merged = merge_face_masks([FaceMask((0, 0, 1, 1), a, 1.0), FaceMask((0, 0, 1, 1), b, 1.0)], (10, 10, 3))
    assert np.array_equal(merged, a | b)


# ------------------------------------------------------------------ the batch command

def bad_folder(tmp_path: Path) -> Path:
    """Two good images, an unreadable image, an empty image, a non-image file and a subfolder."""
    folder = tmp_path / "photos"
    (folder / "sub").mkdir(parents=True)
    cv2.imwrite(str(folder / "good1.png"), textured(seed=1))
    cv2.imwrite(str(folder / "good2.jpg"), textured(seed=2))
    (folder / "broken.jpg").write_bytes(b"this is not a jpeg")
    (folder / "empty.png").write_bytes(b"")
    (folder / "notes.txt").write_text("hello")
    cv2.imwrite(str(folder / "sub" / "inner.png"), textured(seed=3))
    return folder


def test_good_files_are_processed_and_bad_ones_reported_by_name(tmp_path):
    folder = bad_folder(tmp_path)
    report = run_batch([folder], BatchOptions(tmp_path / "out", workers=1, quiet=True))
    assert report.images_done == 2
    for name in ("good1", "good2"):
        record = json.loads((tmp_path / "out" / "photos" / name / "faces.json").read_text())
        assert record["faces"] == [] and (tmp_path / "out" / "photos" / name / "mask.png").exists()
    assert sorted(Path(p.path).name for p in report.failed) == ["broken.jpg", "empty.png"]
    assert "0 bytes" in next(p.reason for p in report.failed if p.path.endswith("empty.png"))
    assert sorted(Path(p.path).name for p in report.skipped) == ["notes.txt", "sub"]
    assert not (tmp_path / "out" / "photos" / "inner").exists()
    assert report.exit_code == 1


def test_the_command_prints_a_summary_and_fails_only_when_a_file_failed(tmp_path, capsys):
    folder = bad_folder(tmp_path)
    assert cli_main(["masks", str(folder), "--out", str(tmp_path / "out"), "--workers", "1", "--quiet"]) == 1
    err = capsys.readouterr().err
    assert "broken.jpg" in err and "empty.png" in err and "notes.txt" in err and "FAILED 2" in err
    (folder / "broken.jpg").unlink()
    (folder / "empty.png").unlink()
    assert cli_main(["masks", str(folder), "--out", str(tmp_path / "out"), "--workers", "1", "--quiet"]) == 0
    assert "skipped 2" in capsys.readouterr().err


def test_a_missing_input_or_a_named_non_image_fails(tmp_path):
    (tmp_path / "a.txt").write_text("x")
    jobs, skipped, failed = plan_jobs([tmp_path / "nope.jpg", tmp_path / "a.txt"])
    assert jobs == [] and skipped == []
    assert [Path(p.path).name for p in failed] == ["nope.jpg", "a.txt"]


def test_a_rerun_skips_finished_outputs_and_redoes_the_rest(tmp_path):
    folder = bad_folder(tmp_path)
    out = tmp_path / "out"
    run_batch([folder], BatchOptions(out, workers=1, quiet=True))
    done = out / "photos" / "good1" / "faces.json"
    stamp = done.stat().st_mtime_ns
    (out / "photos" / "good2" / "faces.json").unlink()          # as if interrupted before its end
    report = run_batch([folder], BatchOptions(out, workers=1, quiet=True))
    assert report.already_done == 1 and report.images_done == 1
    assert done.stat().st_mtime_ns == stamp
    assert (out / "photos" / "good2" / "faces.json").exists()


def test_no_temporary_files_are_left_behind(tmp_path):
    folder = bad_folder(tmp_path)
    run_batch([folder], BatchOptions(tmp_path / "out", anonymize="pixelate", workers=1, quiet=True))
    assert not [p for p in (tmp_path / "out").rglob(".*")]


def test_two_worker_processes_give_the_same_outputs(tmp_path):
    folder = tmp_path / "photos"
    folder.mkdir()
    frame = face_scene(2)
    for i in range(3):
        cv2.imwrite(str(folder / f"group{i}.png"), frame)
    report = run_batch([folder], BatchOptions(tmp_path / "out", anonymize="blur", workers=2, quiet=True))
    assert report.exit_code == 0 and report.images_done == 3 and report.faces == 3 * FACES_IN_TWO_PHOTO_SCENE
    masks = [cv2.imread(str(tmp_path / "out" / "photos" / f"group{i}" / "mask.png"), 0) for i in range(3)]
    assert masks[0].any() and all(np.array_equal(masks[0], m) for m in masks[1:])
    private = cv2.imread(str(tmp_path / "out" / "photos" / "group0" / "anonymized.png"))
    outside = masks[0] == 0
    assert np.abs(private.astype(int) - frame.astype(int))[masks[0] > 0].mean() > 5
    assert np.array_equal(private[outside & (cv2.dilate(masks[0], np.ones((31, 31), np.uint8)) == 0)],
                          frame[outside & (cv2.dilate(masks[0], np.ones((31, 31), np.uint8)) == 0)])


def write_video(path: Path, frames: list[np.ndarray], fps: float = 10.0) -> None:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (frames[0].shape[1], frames[0].shape[0]))
    for f in frames:
        writer.write(f)
    writer.release()


def count_frames(path: Path) -> int:
    cap = cv2.VideoCapture(str(path))
    n = 0
    while cap.read()[0]:
        n += 1
    cap.release()
    return n


def test_a_video_gets_masks_per_frame_a_json_and_an_anonymised_copy(tmp_path):
    frame = cv2.resize(face_scene(2), (320, 240))
    video = tmp_path / "clip.mp4"
    write_video(video, [frame] * 6)
    out = tmp_path / "out"
    report = run_batch([video], BatchOptions(out, anonymize="fill", workers=1, quiet=True))
    assert report.exit_code == 0 and report.frames_done == 6
    record = json.loads((out / "clip" / "faces.json").read_text())
    assert [f["frame"] for f in record["frames"]] == list(range(6))
    assert all(len(f["faces"]) == FACES_IN_TWO_PHOTO_SCENE for f in record["frames"])
    assert (out / "clip" / "mask_000005.png").exists() and (out / "clip" / "face_000005_01.png").exists()
    assert count_frames(out / "clip" / "anonymized.mp4") == 6


def test_an_interrupted_video_resumes_from_its_finished_frames(tmp_path):
    frame = cv2.resize(face_scene(2), (320, 240))
    video = tmp_path / "clip.mp4"
    write_video(video, [frame] * 5)
    out = tmp_path / "out"
    run_batch([video], BatchOptions(out, anonymize="blur", workers=1, quiet=True))
    kept = (out / "clip" / "mask_000001.png").stat().st_mtime_ns
    for name in ("faces.json", "anonymized.mp4", "frame_000003.json", "frame_000004.json"):
        (out / "clip" / name).unlink()
    report = run_batch([video], BatchOptions(out, anonymize="blur", workers=1, quiet=True))
    assert report.exit_code == 0
    assert (out / "clip" / "mask_000001.png").stat().st_mtime_ns == kept
    assert len(json.loads((out / "clip" / "faces.json").read_text())["frames"]) == 5
    assert count_frames(out / "clip" / "anonymized.mp4") == 5


def test_a_video_detected_every_third_frame_keeps_its_faces_in_every_frame(tmp_path):
    frames = [cv2.resize(lfw_group_frame(((40 + 6 * t, 115, 250), (340, 115, 250))), (320, 240)) for t in range(7)]
    video = tmp_path / "clip.mp4"
    write_video(video, frames)
    out = tmp_path / "out"
    report = run_batch([video], BatchOptions(out, workers=1, detect_every=3, quiet=True))
    assert report.exit_code == 0 and report.frames_done == 7
    record = json.loads((out / "clip" / "faces.json").read_text())
    assert [len(f["faces"]) for f in record["frames"]] == [FACES_IN_TWO_PHOTO_SCENE] * 7


def test_a_video_resumed_inside_a_detection_interval_gives_the_uninterrupted_runs_files(tmp_path):
    frames = [cv2.resize(lfw_group_frame(((40 + 6 * t, 115, 250), (340, 115, 250))), (320, 240)) for t in range(7)]
    video = tmp_path / "clip.mp4"
    write_video(video, frames)
    options = BatchOptions(tmp_path / "out", anonymize="blur", workers=1, detect_every=3, quiet=True)
    run_batch([video], options)
    folder = tmp_path / "out" / "clip"
    whole = {p.name: p.read_bytes() for p in folder.iterdir()}
    for name in ("faces.json", "anonymized.mp4", "frame_000005.json", "frame_000006.json"):
        (folder / name).unlink()    # stopped after frame 4, inside the interval of frames 3-5
    assert run_batch([video], options).exit_code == 0
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == whole


def test_a_one_worker_run_ends_its_detector_threads(tmp_path):
    import threading
    folder = tmp_path / "in"
    folder.mkdir()
    cv2.imwrite(str(folder / "a.png"), textured())
    run_batch([folder], BatchOptions(tmp_path / "out", workers=1, quiet=True))
    assert not any(t.name.startswith("maskcap-") for t in threading.enumerate())


def test_the_device_option_reaches_each_workers_segmenter(tmp_path):
    from core.masks.batch import _new_worker
    worker = _new_worker(BatchOptions(tmp_path, device="auto"))
    try:
        assert worker.segmenter.options.device == "auto"
        assert worker.segmenter.provider in ("CUDAExecutionProvider", "CPUExecutionProvider")
    finally:
        worker.detector.close()
        worker.segmenter.close()
    with pytest.raises(ValueError, match="device"):
        BatchOptions(tmp_path, device="gpu")


def test_detect_every_below_one_is_refused(tmp_path):
    with pytest.raises(ValueError, match="detect_every"):
        BatchOptions(tmp_path, detect_every=0)


def test_anonymize_clip_writes_a_whole_video_or_nothing(tmp_path, segmenter):
    video = tmp_path / "clip.mp4"
    write_video(video, [textured(seed=i) for i in range(8)])
    seen = []
    summary = anonymize_clip(video, tmp_path / "private.mp4", progress=lambda d, t: seen.append((d, t)),
                             segmenter=segmenter)
    assert not summary.cancelled and summary.frames == 8 and seen[-1] == (8, 8)
    assert count_frames(tmp_path / "private.mp4") == 8
    stopped = anonymize_clip(video, tmp_path / "stopped.mp4", should_stop=lambda: len(seen) >= 11,
                             progress=lambda d, t: seen.append((d, t)), segmenter=segmenter)
    assert stopped.cancelled and stopped.frames == 3
    assert not (tmp_path / "stopped.mp4").exists() and not list(tmp_path.glob(".stopped*"))


def test_anonymize_clip_names_a_missing_source(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.mp4"):
        anonymize_clip(tmp_path / "nope.mp4", tmp_path / "out.mp4")


def test_ctrl_c_leaves_no_partial_file_and_the_rerun_finishes(tmp_path):
    import os
    import signal
    import subprocess
    import sys
    import time
    video = tmp_path / "clip.mp4"
    write_video(video, [textured(120, 160, seed=i % 10) for i in range(100)])
    out = tmp_path / "out"
    command = [sys.executable, "-m", "core.cli", "masks", str(video), "--out", str(out), "--anonymize", "blur",
               "--workers", "1", "--quiet"]
    root = Path(__file__).resolve().parents[1]
    process = subprocess.Popen(command, cwd=root, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while len(list((out / "clip").glob("frame_*.json"))) < 3 and time.monotonic() < deadline:
        time.sleep(0.05)
    process.send_signal(signal.SIGINT)
    err = process.communicate(timeout=60)[1]
    assert process.returncode == 130, err
    assert "interrupted" in err
    assert not [p for p in out.rglob(".*")]                      # no temporary file left
    assert not (out / "clip" / "anonymized.mp4").exists() and not (out / "clip" / "faces.json").exists()
    done_before = len(list((out / "clip").glob("frame_*.json")))
    assert 3 <= done_before < 100
    rerun = subprocess.run(command, cwd=root, capture_output=True, text=True, timeout=300, env=os.environ)
    assert rerun.returncode == 0, rerun.stderr
    assert len(json.loads((out / "clip" / "faces.json").read_text())["frames"]) == 100
    assert count_frames(out / "clip" / "anonymized.mp4") == 100
