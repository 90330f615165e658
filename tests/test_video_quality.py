"""Measures of tracking quality on video (evaluation.video_quality), on series the tests make."""
import numpy as np

from evaluation import video_quality as vq


def _mesh(frames: int, shift=(0.0, 0.0)) -> np.ndarray:
    base = np.random.default_rng(0).uniform(100, 300, (478, 2))
    base[33], base[263] = (150.0, 180.0), (250.0, 180.0)
    return np.stack([base + np.array(shift) * k for k in range(frames)])


def test_a_rigidly_moving_still_face_is_static_and_moving_and_a_still_one_only_static():
    moving = vq.static_expression_frames(vq.expression_geometry(_mesh(40, (2.0, 0.0))))
    still = vq.static_expression_frames(vq.expression_geometry(_mesh(40)))
    assert moving[0].all() and moving[1].all()
    assert still[0].all() and not still[1].any()


def test_an_opening_mouth_is_not_static():
    mesh = _mesh(40)
    mesh[:, 14, 1] += np.linspace(0, 30, 40)  # the lower inner lip drops by 0.3 eye distances
    static, _ = vq.static_expression_frames(vq.expression_geometry(mesh))
    assert not static.any()


def test_jitter_is_zero_for_smooth_motion_and_grows_with_noise():
    t = np.arange(50)[:, None, None]
    smooth = np.zeros((50, 68, 2)) + t * [1.0, 0.5]
    noisy = smooth + np.random.default_rng(1).normal(0, 1.0, smooth.shape)
    eye = np.full(50, 100.0)
    frames = np.ones(50, bool)
    assert vq.jitter(smooth, eye, frames) < 1e-12
    assert 0.015 < vq.jitter(noisy, eye, frames) < 0.04  # |second difference| of unit noise ~ 2.2 px / 100


def test_blink_scores_count_closed_and_open_frames():
    openness = np.full(100, 0.3)
    openness[40:46] = 0.05
    blink = np.where(openness < 0.1, 0.8, 0.1)
    blink[44] = 0.2  # one closed frame missed
    s = vq.blink_scores(blink, openness, np.ones(100, bool))
    assert s["closed_frames"] == 6 and s["open_frames"] == 94
    assert abs(s["recall"] - 5 / 6) < 1e-9 and s["false_rate"] == 0.0


def test_lag_is_found_to_a_fraction_of_a_frame():
    t = np.arange(300)
    reference = np.stack([np.sin(t / 7.0), np.cos(t / 11.0)], 1) * 20
    late = np.roll(reference, 2, axis=0)
    lag = vq.lag_frames(late[5:], reference[5:], np.ones(295, bool))
    assert abs(lag - 2.0) < 0.2


def test_antagonist_frames_counts_frames_with_both_over_the_level():
    b = np.zeros((10, 46))
    b[:3, 24] = b[:3, 25] = 0.5
    b[3:5, 24] = 0.9
    assert vq.antagonist_frames(b, [(24, 25)], np.ones(10, bool)).tolist() == [3]
