"""The face segmenter's contract: frames in, full-resolution {0, 1} masks out, clear errors."""
from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from core.io.image_input import as_bgr_uint8, as_gray_uint8
from core.segment.segmentation import (FaceSegmenter, SegmenterModelError, SegmenterOptions, default_segmenter_path,
                               graph_cut_refine)
from tests.helpers import data_or_skip

FACE_BOX = (110, 60, 100, 120)


@pytest.fixture(scope="module")
def segmenter():
    with FaceSegmenter() as s:
        yield s


@pytest.fixture(scope="module")
def frame():
    """A 240x320 picture: a skin-coloured ellipse with dark eyes on a grey-blue gradient."""
    import cv2
    h, w = 240, 320
    img = np.zeros((h, w, 3), np.uint8)
    img[:] = np.linspace(60, 160, w, dtype=np.uint8)[None, :, None] * np.array([1.0, 0.8, 0.6])[None, None, :]
    cv2.ellipse(img, (160, 120), (48, 60), 0, 0, 360, (120, 150, 200), -1)
    cv2.circle(img, (142, 108), 6, (40, 40, 40), -1)
    cv2.circle(img, (178, 108), 6, (40, 40, 40), -1)
    cv2.ellipse(img, (160, 150), (16, 6), 0, 0, 360, (90, 90, 170), -1)
    return img


# ------------------------------------------------------------------ frame validation

def test_bgr_frame_passes_through_unchanged(frame):
    assert as_bgr_uint8(frame) is frame or np.array_equal(as_bgr_uint8(frame), frame)


def test_grayscale_becomes_three_equal_channels():
    gray = np.arange(12, dtype=np.uint8).reshape(3, 4)
    bgr = as_bgr_uint8(gray)
    assert bgr.shape == (3, 4, 3) and np.array_equal(bgr[:, :, 1], gray) and np.array_equal(bgr[:, :, 2], gray)


def test_bgra_loses_its_alpha(frame):
    bgra = np.dstack([frame, np.full(frame.shape[:2], 7, np.uint8)])
    assert np.array_equal(as_bgr_uint8(bgra), frame)


def test_gray_of_bgra_matches_gray_of_bgr(frame):
    bgra = np.dstack([frame, np.zeros(frame.shape[:2], np.uint8)])
    assert np.array_equal(as_gray_uint8(bgra), as_gray_uint8(frame))


@pytest.mark.parametrize("bad, words", [
    (None, "is None"),
    ([[1, 2], [3, 4]], "numpy array"),
    (np.zeros((0, 5, 3), np.uint8), "empty"),
    (np.zeros((4, 4, 3), np.float32), "float32"),
    (np.zeros((4, 4, 2), np.uint8), "2 channels"),
    (np.zeros((2, 4, 4, 3), np.uint8), "4 dimensions"),
])
def test_bad_frames_raise_a_value_error_that_says_what_is_wrong(bad, words):
    with pytest.raises(ValueError, match=words):
        as_bgr_uint8(bad, name="frame")


# ------------------------------------------------------------------ output contract

def test_segment_returns_a_full_resolution_binary_uint8_mask(segmenter, frame):
    mask = segmenter.segment(frame, FACE_BOX)
    assert mask.shape == frame.shape[:2] and mask.dtype == np.uint8
    assert set(np.unique(mask)) <= {0, 1}


def test_probability_is_a_float32_map_in_the_frame(segmenter, frame):
    prob = segmenter.probability(frame, FACE_BOX)
    assert prob.shape == frame.shape[:2] and prob.dtype == np.float32
    assert prob.min() >= 0.0 and prob.max() <= 1.0


def test_crop_probability_is_128_square_with_its_crop_box(segmenter, frame):
    prob, crop_box = segmenter.crop_probability(frame, FACE_BOX)
    assert prob.shape == (128, 128)
    x, y, side, side2 = crop_box
    assert side == side2 and side > max(FACE_BOX[2:])


def test_mask_is_empty_outside_the_crop(segmenter, frame):
    result = segmenter.run(frame, FACE_BOX)
    x, y, side, _ = result.crop_box
    outside = np.ones(frame.shape[:2], bool)
    outside[max(0, int(math.floor(y))):int(y + side) + 1, max(0, int(math.floor(x))):int(x + side) + 1] = False
    assert result.mask[outside].sum() == 0


def test_grayscale_and_bgra_frames_are_accepted(segmenter, frame):
    import cv2
    gray = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
    bgra = np.dstack([frame, np.full(frame.shape[:2], 255, np.uint8)])
    assert segmenter.segment(gray, FACE_BOX).shape == frame.shape[:2]
    assert np.array_equal(segmenter.segment(bgra, FACE_BOX), segmenter.segment(frame, FACE_BOX))


def test_a_box_partly_outside_the_frame_is_clipped(segmenter, frame):
    mask = segmenter.segment(frame, (-60, -40, 120, 140))
    assert mask.shape == frame.shape[:2] and set(np.unique(mask)) <= {0, 1}
    mask = segmenter.segment(frame, (frame.shape[1] - 50, frame.shape[0] - 50, 120, 140))
    assert mask.shape == frame.shape[:2]


def test_no_box_and_no_detected_face_gives_an_empty_mask(segmenter):
    flat = np.full((120, 160, 3), 128, np.uint8)
    assert segmenter.segment(flat).sum() == 0
    assert segmenter.run(flat).face_box is None


@pytest.mark.parametrize("box, words", [
    ((10, 10, 0, 50), "below 1 pixel"),
    ((10, 10, -20, 50), "below 1 pixel"),
    ((float("nan"), 10, 50, 50), "NaN"),
    ((1000, 10, 50, 50), "entirely outside"),
    ((-200, -200, 50, 50), "entirely outside"),
    ((1, 2, 3), r"\(x, y, w, h\)"),
])
def test_absurd_boxes_raise_a_value_error(segmenter, frame, box, words):
    with pytest.raises(ValueError, match=words):
        segmenter.segment(frame, box)


@pytest.mark.parametrize("bad", [None, np.zeros((0, 0), np.uint8), np.zeros((50, 50, 3), np.float64)])
def test_bad_frames_raise_value_error_in_segment(segmenter, bad):
    with pytest.raises(ValueError):
        segmenter.segment(bad, FACE_BOX)


@pytest.mark.parametrize("stream", ["fcn", "deconv", "fused"])
def test_each_stream_of_the_shipped_model_can_be_used(frame, stream):
    with FaceSegmenter(options=SegmenterOptions(stream=stream, graph_cut=False)) as s:
        assert s.segment(frame, FACE_BOX).shape == frame.shape[:2]


def test_an_unknown_stream_is_refused():
    with pytest.raises(ValueError, match="stream"):
        FaceSegmenter(options=SegmenterOptions(stream="crf"))


def test_the_session_runs_on_the_cpu_with_one_thread_by_default(segmenter):
    assert segmenter.provider == "CPUExecutionProvider"
    assert SegmenterOptions().intra_op_threads == 1


# ------------------------------------------------------------------ model file errors

def test_a_missing_model_file_raises_an_error_naming_it(tmp_path):
    path = tmp_path / "nowhere" / "segmenter.onnx"
    with pytest.raises(FileNotFoundError, match="nowhere"):
        FaceSegmenter(path)


def test_a_corrupt_model_file_raises_an_error_naming_it(tmp_path):
    path = tmp_path / "broken_segmenter.onnx"
    path.write_bytes(b"this is not an onnx graph" * 10)
    with pytest.raises(SegmenterModelError, match="broken_segmenter.onnx"):
        FaceSegmenter(path)


def test_the_shipped_models_are_within_their_size_budget():
    run_time, streams = default_segmenter_path(), default_segmenter_path("fcn")
    assert streams.name == "segmenter_streams.onnx" and default_segmenter_path("deconv") == streams
    assert run_time.stat().st_size + streams.stat().st_size < 10 * 1024 * 1024


def test_the_run_time_model_is_the_int8_form_of_its_streams_siblings_fused_output():
    """models/segmenter.onnx: the fused output alone, its dense convolutions in int8
    (training.segmenter.quantize), on real faces within rounding of the float network."""
    import cv2
    import onnxruntime as ort
    folder = data_or_skip("lfw_parts") / "validation"
    # op types are plain strings in the protobuf: a QDQ graph dequantises each int8 weight and activation
    assert default_segmenter_path().read_bytes().count(b"DequantizeLinear") >= 20
    sessions = [ort.InferenceSession(str(p), providers=["CPUExecutionProvider"])
                for p in (default_segmenter_path(), default_segmenter_path("fcn"))]
    assert [o.name for o in sessions[0].get_outputs()] == ["fused"]
    assert [o.name for o in sessions[1].get_outputs()] == ["fused", "fcn", "deconv"]
    names = sorted(folder.glob("*.jpg"))[:16]
    crops = np.stack([cv2.resize(cv2.imread(str(p)), (128, 128), interpolation=cv2.INTER_AREA) for p in names])
    x = np.ascontiguousarray(crops.transpose(0, 3, 1, 2), dtype=np.float32)
    int8, float_ = (s.run(["fused"], {"crop_bgr": x})[0] for s in sessions)
    assert (float_ > 0.5).mean() > 0.1  # faces are there
    assert np.abs(int8 - float_).mean() < 0.02
    assert ((int8 > 0.5) != (float_ > 0.5)).mean() < 0.02


def test_mirror_averaging_is_the_mean_of_the_map_and_the_mirrored_crops_map(frame):
    with FaceSegmenter() as one_view:
        assert not one_view.options.mirror_average  # the 5 ms budget holds one view
        crop = frame[40:168, 96:224]
        plain, mirrored = one_view.infer_crops(np.stack([crop, crop[:, ::-1]]))
    with FaceSegmenter(options=SegmenterOptions(mirror_average=True)) as two_views:
        np.testing.assert_allclose(two_views.infer_crops(crop[None])[0], 0.5 * (plain + mirrored[:, ::-1]), atol=1e-6)


# ------------------------------------------------------------------ graph cut (Eq. 1)

def test_graph_cut_removes_isolated_speckles_in_a_flat_region():
    yy, xx = np.mgrid[:128, :128]
    disc = (yy - 64) ** 2 + (xx - 64) ** 2 < 40 ** 2
    prob = np.where(disc, 0.95, 0.05).astype(np.float32)
    prob[10, 10] = prob[100, 120] = 0.7      # lone false positives
    prob[64, 64] = 0.3                      # a lone hole
    gray = np.where(disc, 180, 60).astype(np.uint8)
    assert np.array_equal(graph_cut_refine(prob, gray), disc.astype(np.uint8))


def test_graph_cut_snaps_an_uncertain_boundary_to_the_intensity_edge():
    prob = np.tile(np.linspace(0.9, 0.1, 128, dtype=np.float32), (128, 1))  # 0.5 at x = 64
    gray = np.full((128, 128), 50, np.uint8)
    gray[:, :70] = 200                                                      # edge at x = 70
    mask = graph_cut_refine(prob, gray)
    assert mask[:, :70].all() and not mask[:, 70:].any()


def eq1_energy(labels, prob, gray, lam=10.0, sigma=5.0):
    """Eq. 1 written out: unaries plus the contrast-sensitive cost of every cut 4-neighbour pair."""
    p = np.clip(prob.astype(np.float64), 1e-4, 1 - 1e-4)
    energy = np.where(labels == 1, -np.log(p), -np.log(1 - p)).sum()
    g = gray.astype(np.float64)
    for a, b, la, lb in ((g[:, 1:], g[:, :-1], labels[:, 1:], labels[:, :-1]),
                         (g[1:, :], g[:-1, :], labels[1:, :], labels[:-1, :])):
        energy += (lam * np.exp(-(a - b) ** 2 / (2 * sigma ** 2)) * (la != lb)).sum()
    return energy


def test_graph_cut_finds_the_minimum_of_eq1_on_grids_small_enough_to_search_exhaustively():
    rng = np.random.default_rng(3)
    for _ in range(5):
        prob = rng.uniform(0.02, 0.98, (3, 4)).astype(np.float32)
        gray = rng.integers(0, 256, (3, 4)).astype(np.uint8)
        gray[:, :2] = rng.integers(100, 110)  # some flat pairs, where the pairwise term is strong
        best = min(eq1_energy(np.array(bits).reshape(3, 4), prob, gray)
                   for bits in itertools.product((0, 1), repeat=12))
        assert eq1_energy(graph_cut_refine(prob, gray), prob, gray) == pytest.approx(best, rel=1e-5)


def test_graph_cut_rejects_an_intensity_image_of_another_type_or_shape():
    prob = np.full((8, 8), 0.5, np.float32)
    with pytest.raises(ValueError, match="uint8"):
        graph_cut_refine(prob, np.zeros((8, 8), np.float32))
    with pytest.raises(ValueError, match="shape"):
        graph_cut_refine(prob, np.zeros((8, 9), np.uint8))


def test_without_graph_cut_the_map_is_thresholded(frame):
    with FaceSegmenter(options=SegmenterOptions(graph_cut=False, threshold=0.5)) as s:
        prob, _ = s.crop_probability(frame, FACE_BOX)
        assert np.array_equal(s.run(frame, FACE_BOX).crop_mask, (prob >= 0.5).astype(np.uint8))


# ------------------------------------------------------------------ real data

def _face_iou(pred, gt):
    union = np.logical_or(pred, gt).sum()
    return np.logical_and(pred, gt).sum() / union if union else 1.0


def test_face_iou_on_a_slice_of_lfw_parts_validation_is_high(segmenter):
    import cv2
    folder = data_or_skip("lfw_parts") / "validation"
    names = (folder.parent / "validation.txt").read_text().split()[::25]
    ious = []
    for name in names:
        image = cv2.imread(str(folder / f"{name}.jpg"))
        face = (cv2.imread(str(folder / f"{name}.png"), cv2.IMREAD_UNCHANGED) == 1)
        ys, xs = np.nonzero(face)
        box = (xs.min(), ys.min(), xs.max() - xs.min() + 1, ys.max() - ys.min() + 1)
        ious.append(_face_iou(segmenter.segment(image, box), face))
    assert np.mean(ious) > 0.85, f"mean face IoU {np.mean(ious):.3f} on {len(ious)} validation images"


def test_a_detected_face_is_segmented_without_a_box(segmenter):
    import cv2
    folder = data_or_skip("lfw_parts") / "validation"
    name = (folder.parent / "validation.txt").read_text().split()[0]
    image = cv2.imread(str(folder / f"{name}.jpg"))
    face = cv2.imread(str(folder / f"{name}.png"), cv2.IMREAD_UNCHANGED) == 1
    assert _face_iou(segmenter.segment(image), face) > 0.7


def test_a_face_free_picture_gives_almost_no_face(segmenter):
    import cv2
    folder = data_or_skip("backgrounds")
    picture = cv2.imread(str(sorted(folder.glob("*.jpg"))[0]))
    h, w = picture.shape[:2]
    mask = segmenter.segment(picture, (w // 4, h // 4, w // 2, h // 2))
    assert mask.mean() < 0.05
