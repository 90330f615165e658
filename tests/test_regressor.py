"""The fern cascade: it learns a known mapping, and its feature points follow the face."""
import numpy as np
import pytest

from core.track.regressor import FernCascade, RegressorModelError, apply_ferns, make_layout
from training.regressor.ferns import train_ferns


def test_ferns_learn_a_known_mapping_from_feature_differences():
    rng = np.random.default_rng(0)
    values = rng.normal(size=(4000, 40)).astype(np.float32)
    # the target depends on two feature differences; the other 36 features are noise
    target = np.stack([np.tanh(values[:, 3] - values[:, 7]), 0.5 * np.sign(values[:, 12] - values[:, 20])], axis=1)
    pairs, thresholds, outputs, prediction = train_ferns(values, target, count=60, depth=3, rng=rng, beta=10.0)
    before = np.mean(target ** 2)
    after = np.mean((target - prediction) ** 2)
    assert after < 0.25 * before
    used = set(pairs[:, :, :].ravel().tolist())
    assert {3, 7, 12, 20} <= used
    # the run-time kernel reproduces the training prediction for a sample
    assert np.allclose(apply_ferns(values[5], pairs, thresholds, outputs), prediction[5], atol=1e-4)
    # and generalises to samples it never saw
    fresh = rng.normal(size=(500, 40)).astype(np.float32)
    fresh_target = np.stack([np.tanh(fresh[:, 3] - fresh[:, 7]), 0.5 * np.sign(fresh[:, 12] - fresh[:, 20])], axis=1)
    fresh_pred = np.stack([apply_ferns(v, pairs, thresholds, outputs) for v in fresh])
    assert np.mean((fresh_target - fresh_pred) ** 2) < 0.35 * np.mean(fresh_target ** 2)


def test_feature_points_follow_an_affine_change_of_the_landmarks():
    rng = np.random.default_rng(1)
    shape = rng.random((68, 2))
    from scipy.spatial import Delaunay

    layout = make_layout(shape, Delaunay(shape).simplices, 400, rng)
    affine = np.array([[1.3, 0.4], [-0.2, 0.9]])
    offset = np.array([40.0, -12.0])
    moved = layout.points(shape @ affine.T + offset)
    assert np.allclose(moved, layout.points(shape) @ affine.T + offset)


def test_a_missing_or_corrupt_regressor_file_raises_an_error_naming_it(tmp_path):
    with pytest.raises(RegressorModelError, match="absent.npz"):
        FernCascade.load(tmp_path / "absent.npz")
    bad = tmp_path / "broken.npz"
    bad.write_bytes(b"not a zip")
    with pytest.raises(RegressorModelError, match="broken.npz"):
        FernCascade.load(bad)


def test_running_several_starts_at_once_gives_what_running_each_gives():
    from core.face.camera import head_rotation
    from core.face.face_model import load_face_model
    import cv2

    from core.track.regressor import FernCascade, LandmarkModel, ShapeState
    from core.track.tracker import default_regressor_path
    from core.track.temporal import shifted_starts

    cascade = FernCascade.load(default_regressor_path())
    lm = LandmarkModel.from_face_model(load_face_model())
    rng = np.random.default_rng(5)
    gray = (rng.random((240, 320)) * 255).astype(np.uint8)
    gray = cv2.GaussianBlur(gray, (0, 0), 3.0)
    mask = np.ones_like(gray)
    expression = np.zeros(46)
    expression[[0, 19, 26]] = 0.3, 0.5, 0.2
    state = ShapeState.from_pose(head_rotation(0.1, -0.05, 0.02), [0.5, -1.0, 70.0], expression)
    starts = shifted_starts(state, 5, 3.0, 400.0)
    centre = np.array([159.5, 119.5])
    each = [cascade.run(gray, mask, s, lm, 400.0, centre) for s in starts]
    together = cascade.run_many(gray, mask, starts, lm, 400.0, centre)
    for a, b in zip(each, together):
        assert np.allclose(a.rotation, b.rotation, atol=1e-9) and np.allclose(a.abc, b.abc, atol=1e-9)
        assert np.allclose(a.expression, b.expression, atol=1e-9)
        assert np.allclose(a.displacements, b.displacements, atol=1e-6)
