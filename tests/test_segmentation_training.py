"""The segmenter's training helpers: skin-made hands (training.skin_hands) and starting PyTorch
from the shipped ONNX weights (training.segmentation_onnx_init, needs torch: skipped without it)."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from training.segmentation_data import Hand
from training.skin_hands import composite_skin_hand, skin_texture


def _face_crop(tone_bgr=(90, 130, 190)):
    """A 128x128 crop: grey background, an elliptic face of one skin tone with a little texture."""
    rng = np.random.default_rng(0)
    crop = np.full((128, 128, 3), 60, np.uint8)
    face = np.zeros((128, 128), np.uint8)
    cv2.ellipse(face, (64, 64), (36, 46), 0, 0, 360, 1, -1)
    skin = np.clip(np.array(tone_bgr, np.float32) + rng.normal(0, 4, (128, 128, 3)), 0, 255).astype(np.uint8)
    crop[face > 0] = skin[face > 0]
    return crop, face


def _hand():
    """An opaque 'hand': a palm and three fingers, wrist at the bottom, as load_hands gives."""
    alpha = np.zeros((60, 40), np.uint8)
    cv2.rectangle(alpha, (5, 25), (35, 59), 255, -1)
    for x in (7, 17, 27):
        cv2.rectangle(alpha, (x, 2), (x + 6, 25), 255, -1)
    bgr = np.full((60, 40, 3), (200, 210, 230), np.uint8)
    return Hand(np.dstack([bgr, alpha]))


def test_a_skin_hand_only_removes_face_from_the_target():
    crop, face = _face_crop()
    for seed in range(5):
        _, target = composite_skin_hand(crop, face, _hand(), np.random.default_rng(seed))
        assert not np.any(target > face)
        assert target.sum() < face.sum()


def test_a_skin_hand_changes_the_picture_only_where_the_target_lost_face_or_outside_the_face():
    crop, face = _face_crop()
    image, target = composite_skin_hand(crop, face, _hand(), np.random.default_rng(1))
    changed = np.abs(image.astype(int) - crop.astype(int)).sum(2) > 30
    still_face = target.astype(bool)
    # strongly changed pixels that are still face can only be the soft edge of the hand
    edge = cv2.dilate((face.astype(bool) & ~still_face).astype(np.uint8), np.ones((5, 5), np.uint8)) > 0
    assert not np.any(changed & still_face & ~edge)


@pytest.mark.parametrize("tone", [(60, 90, 140), (90, 130, 190), (150, 180, 220)])
def test_a_skin_hand_takes_the_skin_tone_of_the_face_it_covers(tone):
    crop, face = _face_crop(tone)
    hand_lab, face_lab = [], cv2.cvtColor(crop, cv2.COLOR_BGR2LAB)[face > 0].astype(float).mean(0)
    for seed in range(6):
        image, target = composite_skin_hand(crop, face, _hand(), np.random.default_rng(seed))
        covered = (face > 0) & (target == 0)
        covered = cv2.erode(covered.astype(np.uint8), np.ones((3, 3), np.uint8)) > 0
        hand_lab.append(cv2.cvtColor(image, cv2.COLOR_BGR2LAB)[covered].astype(float).mean(0))
    difference = np.abs(np.mean(hand_lab, 0) - face_lab)
    assert difference[0] < 20 and difference[1] < 6 and difference[2] < 6


def test_skin_texture_needs_enough_face_pixels():
    crop, face = _face_crop()
    assert skin_texture(crop, np.zeros_like(face), np.random.default_rng(0)) is None
    mean, texture = skin_texture(crop, face, np.random.default_rng(0))
    assert mean.shape == (3,) and texture.shape == face.shape


def test_weights_loaded_from_an_export_reproduce_its_outputs(tmp_path):
    torch = pytest.importorskip("torch", reason="training tests need PyTorch (.venv-train)")
    pytest.importorskip("onnx", reason="reading ONNX initializers needs the onnx package (.venv-train)")
    from training.segmentation_net import ExportWrapper, TwoStreamSegmenter, export_onnx
    from training.segmentation_onnx_init import load_onnx_weights, output_difference
    torch.manual_seed(0)
    net = TwoStreamSegmenter()
    with torch.no_grad():  # BatchNorm statistics that are not the identity, so folding matters
        for module in net.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.running_mean.uniform_(-0.5, 0.5)
                module.running_var.uniform_(0.5, 2.0)
                module.weight.uniform_(0.5, 1.5)
    path = tmp_path / "segmenter.onnx"
    export_onnx(ExportWrapper(net), path, ("fused", "fcn", "deconv"))
    loaded = load_onnx_weights(TwoStreamSegmenter(), path)
    crops = np.random.default_rng(0).integers(0, 256, (4, 128, 128, 3), dtype=np.uint8)
    difference = output_difference(loaded, path, crops)
    assert difference["mean"] < 1e-4 and difference["threshold_flips"] < 1e-3


def test_weights_of_another_architecture_are_refused(tmp_path):
    torch = pytest.importorskip("torch", reason="training tests need PyTorch (.venv-train)")
    pytest.importorskip("onnx", reason="reading ONNX initializers needs the onnx package (.venv-train)")
    from training.segmentation_net import ExportWrapper, TwoStreamSegmenter, export_onnx
    from training.segmentation_onnx_init import load_onnx_weights
    path = tmp_path / "wide.onnx"
    export_onnx(ExportWrapper(TwoStreamSegmenter(fc6_width=64)), path, ("fused", "fcn", "deconv"))
    with pytest.raises(ValueError):
        load_onnx_weights(TwoStreamSegmenter(), path)
