"""The One Euro filter: smooths jitter at rest, follows fast moves with little lag."""
import numpy as np
import pytest

from core.capture.filters import OneEuroFilter, OneEuroParams, filter_sequence


def test_first_sample_passes_unchanged():
    f = OneEuroFilter()
    assert np.allclose(f(np.array([0.3, 0.7]), 0.0), [0.3, 0.7])


def test_jitter_at_rest_is_reduced():
    rng = np.random.default_rng(0)
    t = np.arange(300) / 30.0
    noisy = 0.5 + 0.05 * rng.standard_normal((300, 4))
    out = filter_sequence(noisy, t, OneEuroParams(min_cutoff=1.0, beta=0.0))
    assert out[30:].std(0).max() < 0.4 * noisy[30:].std(0).min()


def test_higher_beta_lags_less_on_a_fast_step():
    t = np.arange(60) / 30.0
    step = np.where(t[:, None] >= 1.0, 1.0, 0.0)
    slow = filter_sequence(step, t, OneEuroParams(min_cutoff=0.5, beta=0.0))
    fast = filter_sequence(step, t, OneEuroParams(min_cutoff=0.5, beta=5.0))
    after = 33  # three frames after the step
    assert fast[after, 0] > slow[after, 0] + 0.2


def test_each_channel_is_filtered_independently():
    t = np.arange(20) / 30.0
    values = np.column_stack([np.zeros(20), np.ones(20)])
    out = filter_sequence(values, t)
    assert np.allclose(out[:, 0], 0) and np.allclose(out[:, 1], 1)


def test_time_going_backwards_restarts_the_filter():
    f = OneEuroFilter()
    f(np.array([0.0]), 1.0)
    assert np.allclose(f(np.array([1.0]), 0.5), [1.0])


@pytest.mark.parametrize("kwargs", [{"min_cutoff": 0}, {"d_cutoff": -1}, {"beta": -0.1}])
def test_bad_parameters_are_rejected(kwargs):
    with pytest.raises(ValueError):
        OneEuroParams(**kwargs)
