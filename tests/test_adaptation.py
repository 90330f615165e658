"""Identity and focal adaptation (Eq. 3) on keyframes, in the background."""
import threading
import time

import numpy as np
import pytest

from core import load_face_model
from core.track.adaptation import AdaptationOptions, IdentityAdapter
from core.face.camera import head_rotation, principal_point, project
from core.face.facs import FACS_NAMES
from core.face.fitting import FitOptions


@pytest.fixture(scope="module")
def model():
    return load_face_model()


def _frames(model, identity, focal, poses):
    """Landmarks of one person seen by one camera, jaw points on the silhouette as annotated."""
    from core.face.fitting import _bases, _positions, _silhouette_rows

    center = principal_point((640, 480))
    bases = _bases(model)
    u = np.zeros(model.num_identity) if identity is None else identity
    out = []
    for yaw, expr in poses:
        x = np.zeros(46)
        if expr:
            x[FACS_NAMES.index(expr)] = 0.8
        rot, t = head_rotation(np.radians(yaw), 0.0, 0.0), np.array([0.0, 0.0, 55.0])
        pos = _positions(bases, u, x)
        rows = _silhouette_rows(bases, pos, rot, t, focal, center)
        out.append((project(pos[rows] @ rot.T + t, focal, center), rot, x))
    return out


def test_novel_frames_become_keyframes_and_repeats_do_not(model):
    with IdentityAdapter(model, (640, 480), 800.0, AdaptationOptions(min_keyframes=100)) as adapter:
        frames = _frames(model, None, 800.0, [(0, None), (0, None), (15, None), (0, "JawOpen"), (1, None)])
        kept = [adapter.offer(*f) for f in frames]
    assert kept == [True, False, True, True, False]


def test_the_solve_runs_on_its_own_thread_and_recovers_focal_and_identity(model):
    rng = np.random.default_rng(2)
    identity = np.clip(rng.normal(0, 1, model.num_identity), -2, 2)
    true_focal = 1100.0
    poses = [(-30, None), (0, "JawOpen"), (25, "MouthSmile_L"), (-10, "BrowsU_C"), (40, None), (10, "LipsPucker")]
    threads_seen = []
    clean = AdaptationOptions(min_keyframes=6, solve_every=10, fit=FitOptions(alternations=3))  # exact landmarks
    with IdentityAdapter(model, (640, 480), 800.0, clean) as adapter:
        original = adapter._solve

        def spy(frames, start):
            threads_seen.append(threading.current_thread().name)
            return original(frames, start)

        adapter._solve = spy
        for f in _frames(model, identity, true_focal, poses):
            adapter.offer(*f)
        result = adapter.wait(timeout=60)
    assert threads_seen and threads_seen[0].startswith("maskcap-identity")
    assert result.keyframes == 6 and result.version == 1
    assert abs(result.focal_px / true_focal - 1) < 0.15
    assert np.linalg.norm(result.identity - identity) < np.linalg.norm(identity)


def test_close_ends_the_worker_and_later_offers_are_ignored(model):
    adapter = IdentityAdapter(model, (640, 480), 800.0)
    adapter.close()
    assert not any(t.name.startswith("maskcap-identity") for t in threading.enumerate())
    frame = _frames(model, None, 800.0, [(0, None)])[0]
    assert adapter.offer(*frame) is False


def test_a_synchronous_adapter_solves_inline_at_the_keyframe_that_makes_a_solve_due(model):
    rng = np.random.default_rng(3)
    identity = np.clip(rng.normal(0, 1, model.num_identity), -2, 2)
    poses = [(-30, None), (0, "JawOpen"), (25, "MouthSmile_L")]
    frames = _frames(model, identity, 1000.0, poses)
    options = AdaptationOptions(min_keyframes=3, swap_after=0, fit=FitOptions(alternations=2))
    with IdentityAdapter(model, (640, 480), 800.0, options, synchronous=True) as adapter:
        for f in frames[:2]:
            adapter.offer(*f)
        assert adapter.latest() is None
        adapter.offer(*frames[2])
        result = adapter.latest()  # no wait: the solve ran inside offer()
        assert not any(t.name.startswith("maskcap-identity") for t in threading.enumerate())
    assert result is not None and result.keyframes == 3 and result.version == 1



def test_solves_after_the_first_wait_for_the_spacing_in_offered_frames(model):
    frames = _frames(model, None, 900.0, [(yaw, None) for yaw in (-30, -15, 0, 15, 30, 45)])
    options = AdaptationOptions(min_keyframes=3, solve_every=1, solve_spacing=3, swap_after=0,
                                fit=FitOptions(alternations=1))
    versions = []
    with IdentityAdapter(model, (640, 480), 800.0, options, synchronous=True) as adapter:
        for f in frames:
            assert adapter.offer(*f)
            latest = adapter.latest()
            versions.append(latest.version if latest else None)
    assert versions == [None, None, 1, 1, 1, 2]


def test_solving_stops_once_two_successive_solves_agree(model, monkeypatch):
    import core.track.adaptation as adaptation

    answers = iter([(np.full(model.num_identity, 0.5), 900.0), (np.full(model.num_identity, 0.52), 903.0)])
    monkeypatch.setattr(adaptation, "fit_identity_focal", lambda *a, **k: (*next(answers), []))
    frames = _frames(model, None, 900.0, [(yaw, None) for yaw in (-30, -15, 0, 15, 30, 45)])
    options = AdaptationOptions(min_keyframes=3, solve_every=1, solve_spacing=1, swap_after=0)
    with IdentityAdapter(model, (640, 480), 800.0, options, synchronous=True) as adapter:
        kept = [adapter.offer(*f) for f in frames]
        assert adapter.converged and adapter.latest().version == 2
    assert kept == [True, True, True, True, False, False]


def test_solves_that_disagree_keep_the_adapter_solving(model, monkeypatch):
    import core.track.adaptation as adaptation

    answers = iter([(np.full(model.num_identity, 0.5), 900.0), (np.full(model.num_identity, 0.9), 900.0),
                    (np.full(model.num_identity, 0.2), 900.0)])
    monkeypatch.setattr(adaptation, "fit_identity_focal", lambda *a, **k: (*next(answers), []))
    frames = _frames(model, None, 900.0, [(yaw, None) for yaw in (-30, -15, 0, 15, 30)])
    options = AdaptationOptions(min_keyframes=3, solve_every=1, solve_spacing=1, swap_after=0)
    with IdentityAdapter(model, (640, 480), 800.0, options, synchronous=True) as adapter:
        assert all(adapter.offer(*f) for f in frames)
        assert not adapter.converged and adapter.latest().version == 3


def test_a_repeatable_adapter_solves_on_the_worker_and_swaps_in_after_a_fixed_count_of_offers(model, monkeypatch):
    import core.track.adaptation as adaptation

    threads = []

    def slow_fit(*a, **k):
        threads.append(threading.current_thread().name)
        time.sleep(0.2)  # still running when the tracker goes on offering frames
        return np.full(model.num_identity, 0.5), 900.0, []

    monkeypatch.setattr(adaptation, "fit_identity_focal", slow_fit)
    frames = _frames(model, None, 900.0, [(yaw, None) for yaw in (-30, -15, 0, 15, 30, 45)])
    options = AdaptationOptions(min_keyframes=3, solve_every=1, swap_after=2)
    versions = []
    with IdentityAdapter(model, (640, 480), 800.0, options, synchronous=True) as adapter:
        for f in frames:
            adapter.offer(*f)
            latest = adapter.latest()
            versions.append(latest.version if latest else None)
    assert threads and threads[0].startswith("maskcap-identity")
    assert versions[:5] == [None, None, None, None, 1]  # started at the 3rd offer, in at the 5th



def _record_starts(monkeypatch) -> list:
    """The warm start passed to each Eq. 3 solve."""
    import core.track.adaptation as adaptation

    starts = []
    real_fit = adaptation.fit_identity_focal

    def spy(*a, **k):
        starts.append(k.get("start"))
        return real_fit(*a, **k)

    monkeypatch.setattr(adaptation, "fit_identity_focal", spy)
    return starts


def _offer_five_views(model, **option_changes) -> None:
    frames = _frames(model, None, 900.0, [(yaw, None) for yaw in (-30, -15, 0, 15, 30)])
    options = AdaptationOptions(min_keyframes=3, solve_every=2, solve_spacing=1, swap_after=0,
                                fit=FitOptions(alternations=2), **option_changes)
    with IdentityAdapter(model, (640, 480), 800.0, options, synchronous=True) as adapter:
        for f in frames:
            adapter.offer(*f)
        assert adapter.latest().version == 2  # solved at the 3rd and the 5th keyframe


def test_later_solves_continue_from_the_previous_solve_and_its_keyframe_fits(model, monkeypatch):
    starts = _record_starts(monkeypatch)
    _offer_five_views(model)
    assert starts[0] is None
    warm = starts[1]
    assert warm is not None and len(warm.fits) == 5
    assert all(fit is not None for fit in warm.fits[:3]) and warm.fits[3:] == [None, None]


def test_warm_start_can_be_turned_off(model, monkeypatch):
    starts = _record_starts(monkeypatch)
    _offer_five_views(model, warm_start=False)
    assert starts == [None, None]
