"""Landmark fitting (paper Eqs. 3 and 4): recovery of known faces, occlusion weights, bad input."""
import cv2
import numpy as np
import pytest

from core import FACS_NAMES, fit_identity_focal, fit_landmarks, load_face_model
from core.face.camera import head_rotation, principal_point, project, rotation_angle_deg
from core.face.fitting import FitOptions, _bases, _FrameState, _frame_linearisation, _frame_residuals, _make_problem
from evaluation.synthetic import random_face

from .helpers import data_or_skip


@pytest.fixture(scope="module")
def model():
    return load_face_model()


@pytest.fixture(scope="module")
def synthetic_fits(model):
    rng = np.random.default_rng(7)
    faces = [random_face(model, rng, noise_px=0.5) for _ in range(16)]
    return faces, [fit_landmarks(model, f.landmarks, f.image_size) for f in faces]


def test_recovers_head_rotation_of_random_faces_within_two_degrees(synthetic_fits):
    faces, fits = synthetic_fits
    errors = [rotation_angle_deg(f.rotation, s.rotation) for s, f in zip(faces, fits)]
    assert np.median(errors) < 2.0
    assert max(errors) < 8.0


def test_reprojects_the_inner_landmarks_within_one_pixel(synthetic_fits):
    faces, fits = synthetic_fits
    for s, f in zip(faces, fits):
        rmse_inner = np.sqrt(((s.landmarks - f.projected)[17:] ** 2).sum(1).mean())
        assert rmse_inner < 1.0
    assert np.median([f.rmse_px for f in fits]) < 1.0


def test_displacements_are_landmarks_minus_projection(synthetic_fits):
    faces, fits = synthetic_fits
    s, f = faces[0], fits[0]
    assert np.allclose(f.displacements, s.landmarks - f.projected)
    assert f.expression.shape == (46,) and f.expression.min() >= 0 and f.expression.max() <= 1


def _posed_landmarks(model, expression=None, identity=None, yaw=0.0, focal=800.0, size=(640, 480)):
    verts = model.vertices(identity, expression)
    rot = head_rotation(np.radians(yaw), 0.0, 0.0)
    t = np.array([0.0, 0.0, 60.0])
    return project(verts[model.landmark_vertex_ids] @ rot.T + t, focal, principal_point(size)), rot


def test_recovers_a_strong_single_expression(model):
    x = np.zeros(46)
    x[FACS_NAMES.index("JawOpen")] = 0.8
    x[FACS_NAMES.index("MouthSmile_L")] = 0.6
    pts, _ = _posed_landmarks(model, x)
    fit = fit_landmarks(model, pts, (640, 480), focal_px=800.0, options=FitOptions(silhouette_jaw=False))
    assert abs(fit.expression[FACS_NAMES.index("JawOpen")] - 0.8) < 0.15
    assert fit.expression[FACS_NAMES.index("MouthSmile_L")] > 0.3
    assert fit.expression[FACS_NAMES.index("MouthSmile_R")] < fit.expression[FACS_NAMES.index("MouthSmile_L")]


def test_zero_weights_ignore_occluded_points(model):
    pts, rot = _posed_landmarks(model, yaw=20.0)
    corrupted = pts.copy()
    corrupted[48:68] += 40.0  # a hand over the mouth drags these points away
    weights = np.ones(68)
    weights[48:68] = 0.0
    opts = FitOptions(silhouette_jaw=False)
    with_weights = fit_landmarks(model, corrupted, (640, 480), weights=weights, focal_px=800.0, options=opts)
    without = fit_landmarks(model, corrupted, (640, 480), focal_px=800.0, options=opts)
    assert rotation_angle_deg(with_weights.rotation, rot) < 2.0
    assert rotation_angle_deg(with_weights.rotation, rot) < rotation_angle_deg(without.rotation, rot)


def test_a_known_identity_and_fixed_focal_are_kept(model):
    u = np.linspace(-1, 1, model.num_identity)
    pts, _ = _posed_landmarks(model, identity=u)
    fit = fit_landmarks(model, pts, (640, 480), identity=u, focal_px=800.0, fix_focal=True,
                        options=FitOptions(silhouette_jaw=False))
    assert np.array_equal(fit.identity, u)
    assert fit.focal_px == pytest.approx(800.0)
    assert fit.rmse_px < 1.0


def test_keyframes_of_one_person_pin_down_focal_and_identity_better_than_single_frames(model):
    rng = np.random.default_rng(3)
    person = random_face(model, rng)
    center = principal_point((640, 480))
    frames = []
    for _ in range(6):
        pose = random_face(model, rng)
        verts = model.vertices(person.identity, pose.expression)[model.landmark_vertex_ids]
        pts = project(verts @ pose.rotation.T + pose.translation, person.focal_px, center)
        frames.append(pts + rng.normal(0, 0.5, pts.shape))
    opts = FitOptions(silhouette_jaw=False)
    singles = [fit_landmarks(model, p, (640, 480), options=opts) for p in frames]
    u, f, fits = fit_identity_focal(model, frames, (640, 480), options=opts)
    single_focal_error = np.median([abs(s.focal_px / person.focal_px - 1) for s in singles])
    assert abs(f / person.focal_px - 1) < single_focal_error
    assert abs(f / person.focal_px - 1) < 0.15
    single_id_error = np.mean([np.linalg.norm(s.identity - person.identity) for s in singles])
    assert np.linalg.norm(u - person.identity) < single_id_error
    assert len(fits) == 6 and all(np.array_equal(ft.identity, u) for ft in fits)


def _keyframes_of_one_person(model, count, seed, noise_px=1.0):
    rng = np.random.default_rng(seed)
    person = random_face(model, rng)
    center = principal_point((640, 480))
    frames = []
    for _ in range(count):
        pose = random_face(model, rng, max_yaw_deg=35.0)
        verts = model.vertices(person.identity, pose.expression)[model.landmark_vertex_ids]
        pts = project(verts @ pose.rotation.T + pose.translation, person.focal_px, center)
        frames.append(pts + rng.normal(0, noise_px, pts.shape))
    return person, frames


def test_the_structured_joint_solver_gives_the_dense_solvers_result(model, monkeypatch):
    """The block arrow solver of Eq. 3's steps replaced a dense active-set solve (with L-BFGS-B
    when that cycled); on 12 keyframes both end at the same identity, focal length and fit."""
    from core.face import fitting
    from core.track.adaptation import AdaptationOptions
    from core.face.box_qp import dense_box_step

    _, frames = _keyframes_of_one_person(model, 12, seed=11)
    options = AdaptationOptions().fit
    u, f, fits = fit_identity_focal(model, frames, (640, 480), options=options)
    monkeypatch.setattr(fitting, "arrow_box_step", lambda h, g, lo, hi: dense_box_step(h.dense(), g, lo, hi))
    u_dense, f_dense, fits_dense = fit_identity_focal(model, frames, (640, 480), options=options)
    assert np.sqrt(np.mean((u - u_dense) ** 2)) < 0.01          # standard deviations
    assert abs(f / f_dense - 1.0) < 0.002
    assert abs(np.mean([x.rmse_px for x in fits]) - np.mean([x.rmse_px for x in fits_dense])) < 0.01


def test_a_warm_start_from_a_previous_solve_is_as_accurate_as_a_cold_solve(model):
    """Adaptation adds keyframes between solves; continuing from the last solve (its identity,
    focal and the fits of the frames it had) recovers the person as well as starting cold, and
    its identity agrees with the cold solve's by the adapter's own convergence test."""
    from core.track.adaptation import AdaptationOptions
    from core.face.fitting import WarmStart

    person, frames = _keyframes_of_one_person(model, 12, seed=5)
    adapter_options = AdaptationOptions()
    options = adapter_options.fit
    u0, f0, fits0 = fit_identity_focal(model, frames[:10], (640, 480), options=options)
    u_cold, f_cold, fits_cold = fit_identity_focal(model, frames, (640, 480), options=options)
    start = WarmStart(u0, f0, fits0 + [None, None])
    u_warm, f_warm, fits = fit_identity_focal(model, frames, (640, 480), options=options, start=start)
    rms = lambda v: float(np.sqrt(np.mean(v ** 2)))  # noqa: E731
    assert rms(u_warm - u_cold) < adapter_options.converged_identity_change
    assert rms(u_warm - person.identity) < rms(u_cold - person.identity) + 0.02
    assert abs(np.log(f_warm / person.focal_px)) < abs(np.log(f_cold / person.focal_px)) + 0.02
    assert np.median([fit.rmse_px for fit in fits]) < 1.1 * np.median([fit.rmse_px for fit in fits_cold])


def test_a_warm_start_needs_one_entry_per_keyframe(model):
    from core.face.fitting import WarmStart

    _, frames = _keyframes_of_one_person(model, 3, seed=6)
    with pytest.raises(ValueError, match="3 keyframes"):
        fit_identity_focal(model, frames, (640, 480), start=WarmStart(np.zeros(model.num_identity), 800.0, [None]))


def test_analytic_jacobian_matches_finite_differences(model):
    bases = _bases(model)
    rng = np.random.default_rng(1)
    face = random_face(model, rng)
    prob = _make_problem(face.landmarks, face.image_size, None)
    u, x = rng.normal(size=model.num_identity) * 0.5, rng.random(46) * 0.3
    state = _FrameState.from_pose(face.rotation, face.translation * 1.02, x, np.arange(68))
    log_f = np.log(face.focal_px)
    _, jf, ju, jl = _frame_linearisation(bases, prob, state, u, log_f, True)
    jac = np.concatenate([jf, ju, jl[:, None]], axis=1)

    def residuals(d):
        rw, _ = cv2.Rodrigues(d[:3])
        moved = _FrameState(rw @ state.rotation, state.abc + d[3:6], state.expression + d[6:52], state.rows)
        return _frame_residuals(bases, prob, moved, u + d[52:52 + len(u)], log_f + d[-1])

    eps = 1e-6
    numeric = np.stack([(residuals(np.eye(jac.shape[1])[i] * eps) - residuals(-np.eye(jac.shape[1])[i] * eps)) / (2 * eps)
                        for i in range(jac.shape[1])], axis=1)
    inner = slice(2 * 17, None)  # jaw residuals are measured in a pose-dependent frame, held fixed per step
    assert np.allclose(numeric[inner], jac[inner], atol=1e-5 * np.abs(jac).max())


@pytest.mark.parametrize(
    "landmarks, size, message",
    [
        (None, (640, 480), "None"),
        (np.zeros((5, 2)), (640, 480), r"shape \(68, 2\)"),
        (np.zeros((68, 3)), (640, 480), r"shape \(68, 2\)"),
        (np.full((68, 2), np.nan), (640, 480), "NaN"),
        (np.full((68, 2), 100.0), (640, 480), "all points are equal"),
        (np.array([["a", "b"]] * 68), (640, 480), "numeric"),
        (np.random.default_rng(0).random((68, 2)) * 100, (0, 480), "positive"),
        (np.random.default_rng(0).random((68, 2)) * 100, (640, -1), "positive"),
        (np.random.default_rng(0).random((68, 2)) * 100, "big", "width, height"),
    ],
)
def test_bad_input_raises_a_value_error_that_says_what_is_wrong(model, landmarks, size, message):
    with pytest.raises(ValueError, match=message):
        fit_landmarks(model, landmarks, size)


def test_bad_weights_and_focal_are_rejected(model):
    pts, _ = _posed_landmarks(model)
    with pytest.raises(ValueError, match="weights"):
        fit_landmarks(model, pts, (640, 480), weights=np.ones(10))
    with pytest.raises(ValueError, match="at least 6"):
        fit_landmarks(model, pts, (640, 480), weights=np.zeros(68))
    with pytest.raises(ValueError, match="focal_px"):
        fit_landmarks(model, pts, (640, 480), focal_px=-5.0)
    with pytest.raises(ValueError, match="keyframe"):
        fit_identity_focal(model, [], (640, 480))


def test_real_faces_fit_within_a_few_percent_of_the_inter_ocular_distance(model):
    data_or_skip("landmarks68")
    from training.regressor.fit_landmarks68 import load_samples, normalised_error

    samples = load_samples()[::60]  # 21 faces spread over AFW and HELEN
    errors = [normalised_error(fit_landmarks(model, s.landmarks, (256, 256), focal_px=s.focal_prior_px), s.landmarks)
              for s in samples]
    assert np.mean(errors) < 0.035


def test_exclusive_pairs_leave_at_most_one_antagonist_active(model):
    from core.face.facs import ANTAGONIST_PAIRS
    rng = np.random.default_rng(3)
    for _ in range(4):
        face = random_face(model, rng, noise_px=1.0)
        fit = fit_landmarks(model, face.landmarks, face.image_size,
                            options=FitOptions(exclusive_pairs=ANTAGONIST_PAIRS))
        for a, b in ANTAGONIST_PAIRS:
            assert min(fit.expression[a], fit.expression[b]) == 0.0, (FACS_NAMES[a], FACS_NAMES[b])


def test_fixed_channels_stay_at_zero_and_the_rest_still_fits(model):
    from core.face.facs import GAZE_CHANNELS
    x = np.zeros(46)
    x[FACS_NAMES.index("JawOpen")] = 0.7
    pts, _ = _posed_landmarks(model, x)
    fit = fit_landmarks(model, pts, (640, 480), focal_px=800.0,
                        options=FitOptions(silhouette_jaw=False, fixed_zero=GAZE_CHANNELS))
    assert np.all(fit.expression[list(GAZE_CHANNELS)] == 0.0)
    assert abs(fit.expression[FACS_NAMES.index("JawOpen")] - 0.7) < 0.1


def test_fit_frame_recovers_an_expression_from_a_nearby_start(model):
    from core.face.fitting import fit_frame
    x = np.zeros(46)
    x[FACS_NAMES.index("EyeBlink_L")] = 0.9
    x[FACS_NAMES.index("MouthSmile_R")] = 0.6
    pts, rot = _posed_landmarks(model, x, yaw=10.0)
    start_rot = head_rotation(np.radians(12.0), 0.02, 0.0)
    fit = fit_frame(model, pts, (640, 480), start_rot, [0.3, 0.0, 61.0], np.zeros(46), np.zeros(model.num_identity),
                    800.0, options=FitOptions(silhouette_jaw=False, max_iterations=5))
    assert fit.expression[FACS_NAMES.index("EyeBlink_L")] > 0.7
    assert fit.expression[FACS_NAMES.index("MouthSmile_R")] > 0.4
    assert rotation_angle_deg(fit.rotation, rot) < 1.0


def test_fit_frame_anchor_pulls_the_weights_towards_it(model):
    from core.face.fitting import fit_frame
    x = np.zeros(46)
    x[FACS_NAMES.index("JawOpen")] = 0.6
    pts, rot = _posed_landmarks(model, x)
    anchor = np.zeros(46)
    args = (model, pts, (640, 480), rot, [0.0, 0.0, 60.0], x, np.zeros(model.num_identity), 800.0)
    free = fit_frame(*args, options=FitOptions(silhouette_jaw=False, max_iterations=5))
    held = fit_frame(*args, anchor=anchor, options=FitOptions(silhouette_jaw=False, max_iterations=5, anchor_weight=1.0))
    jaw = FACS_NAMES.index("JawOpen")
    assert held.expression[jaw] < free.expression[jaw] - 0.1


def test_an_active_channel_crosses_over_to_its_antagonist_within_a_few_steps(model):
    """From wide eyes (EyeOpen) to a blink in one step: the pair acts as one signed weight."""
    from core.face.facs import ANTAGONIST_PAIRS
    from core.face.fitting import fit_frame
    x = np.zeros(46)
    x[FACS_NAMES.index("EyeBlink_L")] = 0.9
    pts, rot = _posed_landmarks(model, x)
    start = np.zeros(46)
    start[FACS_NAMES.index("EyeOpen_L")] = 0.6
    fit = fit_frame(model, pts, (640, 480), rot, [0.0, 0.0, 60.0], start, np.zeros(model.num_identity), 800.0,
                    options=FitOptions(silhouette_jaw=False, max_iterations=1, exclusive_pairs=ANTAGONIST_PAIRS))
    assert fit.expression[FACS_NAMES.index("EyeOpen_L")] == 0.0
    assert fit.expression[FACS_NAMES.index("EyeBlink_L")] > 0.6
