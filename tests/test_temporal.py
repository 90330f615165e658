"""Temporal coherence of video tracks: averaged starts, the landmark smoother, the expression fit."""
import numpy as np
import pytest

from core.face.facs import ANTAGONIST_PAIRS, FACS_NAMES, GAZE_CHANNELS
from core.face.face_model import load_face_model
from core.track.regressor import LandmarkModel, ShapeState, landmarks
from core.track.temporal import (ExpressionFitter, LandmarkSmoother, SteadyOptions, mean_state, shifted_starts)


def _face_points(rng=None, noise=0.0):
    """68 points with outer eye corners 60 px apart (36 at x=100, 45 at x=160)."""
    base = np.random.default_rng(0).uniform(90, 170, (68, 2))
    base[36], base[45] = (100.0, 120.0), (160.0, 120.0)
    return base if rng is None else base + rng.normal(0, noise, base.shape)


def test_the_smoother_removes_most_of_the_noise_of_a_still_face():
    rng = np.random.default_rng(1)
    smoother = LandmarkSmoother()
    raw = np.stack([_face_points(rng, 1.0) for _ in range(200)])
    out = np.stack([smoother(p) for p in raw])
    second = lambda p: np.abs(np.diff(p[20:], 2, axis=0)).mean()  # noqa: E731
    assert second(out) < 0.3 * second(raw)


def test_the_smoother_follows_a_steady_motion_without_lag():
    smoother = LandmarkSmoother()
    rng = np.random.default_rng(2)
    truth = [_face_points() + [1.5 * k, 0.0] for k in range(120)]   # 1.5 px a frame, to the right
    out = np.stack([smoother(p + rng.normal(0, 0.5, p.shape)) for p in truth])
    lag = (np.stack(truth)[60:, :, 0] - out[60:, :, 0]).mean()
    assert abs(lag) < 0.3  # pixels: a fifth of a frame's motion


def test_the_smoother_jumps_with_a_point_that_moves_far_beyond_the_noise():
    smoother = LandmarkSmoother()
    still = _face_points()
    for _ in range(30):
        smoother(still)
    moved = still + [30.0, 0.0]   # half the eye distance in one frame
    assert np.abs(smoother(moved) - moved).max() < 0.5


def test_shifted_starts_are_centred_on_the_state_and_average_back_to_it():
    model = load_face_model()
    lm = LandmarkModel.from_face_model(model)
    state = ShapeState.from_pose(np.diag([1.0, -1.0, -1.0]), [1.0, 2.0, 60.0], np.zeros(46))
    starts = shifted_starts(state, 5, 3.0, 500.0)
    centre = np.array([160.0, 120.0])
    moves = [landmarks(s, lm, 500.0, centre).mean(0) - landmarks(state, lm, 500.0, centre).mean(0) for s in starts]
    assert np.allclose(moves[0], 0.0)
    sizes = sorted(np.abs(np.concatenate(moves[1:])))  # each start moves in x or in y only, all as far
    assert np.allclose(sizes[:4], 0.0, atol=1e-6) and np.allclose(sizes[4:], sizes[4])
    assert 2.5 < sizes[4] < 4.0  # about 3 px: exactly at the head's origin, more for points nearer the camera
    back = mean_state(starts)
    assert np.allclose(back.abc, state.abc) and np.allclose(back.rotation, state.rotation)


def test_steady_options_reject_impossible_settings():
    with pytest.raises(ValueError, match="starts"):
        SteadyOptions(starts=0)
    with pytest.raises(ValueError, match="alpha"):
        SteadyOptions(alpha=0.0)


def test_the_expression_fitter_keeps_gaze_at_zero_and_antagonists_apart():
    from core.face.camera import head_rotation, principal_point, project
    model = load_face_model()
    fitter = ExpressionFitter(model, SteadyOptions(learn_neutral=False))
    rng = np.random.default_rng(4)
    sub = model.subset(model.landmark_vertex_ids)
    rot, t = head_rotation(0.1, 0.0, 0.0), np.array([0.0, 0.0, 60.0])
    for _ in range(5):
        x = np.zeros(46)
        x[[FACS_NAMES.index("MouthLeft"), FACS_NAMES.index("MouthRight")]] = rng.uniform(0.2, 0.8, 2)
        x[FACS_NAMES.index("EyeDown_L")] = 0.8
        pts = project(sub.positions(np.zeros(model.num_identity), x) @ rot.T + t, 800.0, principal_point((640, 480)))
        _, _, weights = fitter(pts, (640, 480), rot, t, x, np.zeros(model.num_identity), 800.0)
        assert np.all(weights[list(GAZE_CHANNELS)] == 0.0)
        for a, b in ANTAGONIST_PAIRS:
            assert min(weights[a], weights[b]) == 0.0
