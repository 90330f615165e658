"""Where the segmenter runs: the device and thread count asked for reach the ONNX Runtime session
from every entry point (FaceSegmenter, FaceTracker, the batch workers, anonymize_clip, the command
line); without CUDA, "auto" runs on the CPU and says why, and "cuda" is an error naming the cause.

This machine's ONNX Runtime is the CPU build; a build that lists CUDA where CUDA cannot start
(onnxruntime-gpu without the CUDA libraries) is stood in for by listing the provider.
"""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from core.segment import segmentation
from core.segment.segmentation import FaceSegmenter, SegmenterDeviceError, SegmenterOptions


def _session_providers(segmenter: FaceSegmenter) -> list[str]:
    return segmenter._session.get_providers()


@pytest.fixture
def cuda_listed_but_missing(monkeypatch):
    """onnxruntime-gpu on a machine without CUDA: CUDA is listed, a session on it falls back."""
    import onnxruntime as ort

    if "CUDAExecutionProvider" in ort.get_available_providers():
        pytest.skip("this ONNX Runtime has a real CUDA provider")
    listed = ["CUDAExecutionProvider", *ort.get_available_providers()]
    monkeypatch.setattr(ort, "get_available_providers", lambda: listed)


def test_cpu_runs_on_the_cpu_provider_with_the_threads_asked_for():
    with FaceSegmenter(options=SegmenterOptions(device="cpu", intra_op_threads=2)) as segmenter:
        assert _session_providers(segmenter) == ["CPUExecutionProvider"]
        assert segmenter.provider == "CPUExecutionProvider" and segmenter.intra_op_threads == 2
        assert segmenter.device_note == "" and segmenter.describe() == "CPUExecutionProvider, 2 threads"


def test_auto_without_a_cuda_build_runs_on_the_cpu_and_says_so():
    import onnxruntime as ort

    if "CUDAExecutionProvider" in ort.get_available_providers():
        pytest.skip("this ONNX Runtime has a CUDA provider")
    with FaceSegmenter(options=SegmenterOptions(device="auto")) as segmenter:
        assert _session_providers(segmenter) == ["CPUExecutionProvider"]
        assert "CUDA is not used" in segmenter.device_note and "CPU build" in segmenter.device_note
        assert segmenter.describe().startswith("CPUExecutionProvider, 1 thread; CUDA is not used")


def test_cuda_without_a_cuda_build_is_an_error_naming_the_cause():
    import onnxruntime as ort

    if "CUDAExecutionProvider" in ort.get_available_providers():
        pytest.skip("this ONNX Runtime has a CUDA provider")
    with pytest.raises(SegmenterDeviceError, match="CPU build"):
        FaceSegmenter(options=SegmenterOptions(device="cuda"))


def test_auto_asks_onnx_runtime_for_cuda_when_listed_and_falls_back_when_it_does_not_start(
        cuda_listed_but_missing, monkeypatch):
    import onnxruntime as ort

    asked = []
    real_session = ort.InferenceSession

    def session(path, options=None, providers=None, **kwargs):
        asked.append(list(providers))
        return real_session(path, options, providers=providers, **kwargs)

    monkeypatch.setattr(ort, "InferenceSession", session)
    with FaceSegmenter(options=SegmenterOptions(device="auto", intra_op_threads=2)) as segmenter:
        assert asked[0] == ["CUDAExecutionProvider", "CPUExecutionProvider"]
        assert asked[-1] == ["CPUExecutionProvider"] and _session_providers(segmenter) == ["CPUExecutionProvider"]
        assert "did not start" in segmenter.device_note and segmenter.intra_op_threads == 2


def test_cuda_listed_but_not_starting_is_an_error_naming_what_it_needs(cuda_listed_but_missing):
    with pytest.raises(SegmenterDeviceError, match="CUDA 12 and cuDNN 9"):
        FaceSegmenter(options=SegmenterOptions(device="cuda"))


def test_an_unknown_device_is_an_error_listing_the_choices():
    with pytest.raises(ValueError, match="'cpu', 'auto', 'cuda'"):
        FaceSegmenter(options=SegmenterOptions(device="gpu"))


def test_the_trackers_segmenter_options_reach_its_session():
    from core.track.tracker import FaceTracker, TrackerOptions

    tracker = FaceTracker(TrackerOptions(segmenter=SegmenterOptions(device="auto", intra_op_threads=2)))
    try:
        assert tracker._segmenter.options.device == "auto"
        assert _session_providers(tracker._segmenter)[-1] == "CPUExecutionProvider"
        assert tracker._segmenter.intra_op_threads == 2
    finally:
        tracker.close()


def test_the_batch_options_device_and_threads_reach_each_workers_session(tmp_path):
    from core.masks import batch

    options = batch.BatchOptions(out_dir=tmp_path, workers=1, device="auto", segmenter_threads=2)
    batch._init_worker(options, in_subprocess=False)
    try:
        assert batch._worker.segmenter.options.device == "auto"
        assert batch._worker.segmenter.intra_op_threads == 2
    finally:
        batch._close_worker()


def test_anonymize_clip_opens_its_segmenter_with_the_options_given(tmp_path, cuda_listed_but_missing):
    from core.masks.batch import anonymize_clip

    clip = tmp_path / "clip.avi"
    writer = cv2.VideoWriter(str(clip), cv2.VideoWriter_fourcc(*"MJPG"), 25.0, (64, 48))
    for _ in range(3):
        writer.write(np.zeros((48, 64, 3), np.uint8))
    writer.release()
    with pytest.raises(SegmenterDeviceError):
        anonymize_clip(clip, tmp_path / "out.mp4", segmenter_options=SegmenterOptions(device="cuda"))
    assert not (tmp_path / "out.mp4").exists()
    summary = anonymize_clip(clip, tmp_path / "out.mp4", segmenter_options=SegmenterOptions(device="auto"))
    assert summary.frames == 3 and (tmp_path / "out.mp4").exists()


def test_the_command_line_refuses_cuda_it_cannot_start_before_any_work(tmp_path, capsys, cuda_listed_but_missing):
    from core.cli import main

    (tmp_path / "in").mkdir()
    assert main(["masks", str(tmp_path / "in"), "--out", str(tmp_path / "out"), "--device", "cuda"]) == 2
    assert "CUDA 12 and cuDNN 9" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_the_batch_options_refuse_an_unknown_device_and_no_threads(tmp_path):
    from core.masks.batch import BatchOptions

    with pytest.raises(ValueError, match="'cpu', 'auto', 'cuda'"):
        BatchOptions(tmp_path, device="gpu")
    with pytest.raises(ValueError, match="segmenter_threads"):
        BatchOptions(tmp_path, segmenter_threads=0)


def test_segmenter_options_default_to_the_cpu_with_one_thread():
    options = SegmenterOptions()
    assert options.device == "cpu" and options.intra_op_threads == 1
    assert segmentation.DEVICES == ("cpu", "auto", "cuda")


def test_the_face_detector_chooses_its_device_as_the_segmenter_does():
    """One device logic (core.io.onnx_runtime) for both networks: auto falls back and says why."""
    import onnxruntime as ort

    from core.detect.cnn import CnnDetectorOptions, CnnFaceDetector
    from core.io.onnx_runtime import DeviceError

    if "CUDAExecutionProvider" in ort.get_available_providers():
        pytest.skip("this ONNX Runtime has a CUDA provider")
    with CnnFaceDetector(CnnDetectorOptions(device="auto")) as detector:
        assert detector.provider == "CPUExecutionProvider" and "CPU build" in detector.device_note
    with pytest.raises(DeviceError, match="CPU build"):
        CnnFaceDetector(CnnDetectorOptions(device="cuda"))
