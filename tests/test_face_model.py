"""The shipped face model: contents, conventions, budget, and clear errors for bad files."""
import json

import numpy as np
import pytest

from core import FACS_NAMES, FaceModelError, default_face_model_path, load_face_model

from .helpers import data_or_skip


@pytest.fixture(scope="module")
def model():
    return load_face_model()


def test_model_file_fits_its_12_mb_budget_and_carries_the_ict_notice():
    path = default_face_model_path()
    assert path.stat().st_size < 12 * 1024 * 1024
    notice = (path.parent / "ICT-FaceKit-LICENSE.txt").read_text()
    assert "MIT License" in notice and "USC Institute for Creative Technologies" in notice


def test_metadata_states_units_axes_and_licence(model):
    assert model.meta["units"] == "centimetre"
    assert "+X = subject's left" in model.meta["axes"]
    assert "Permission is hereby granted" in model.meta["license"]


def test_expressions_are_the_46_facs_shapes_then_the_arkit_extras(model):
    names = model.expression_names
    assert names[:46] == FACS_NAMES
    assert names[46:] == ("CheekPuff", "CheekSquint_L", "CheekSquint_R", "NoseSneer_L", "NoseSneer_R")
    assert model.expression_deltas.shape == (51, len(model.neutral), 3)


def test_identity_pca_has_at_least_50_components_ordered_by_deviation(model):
    assert model.num_identity >= 50
    sd = model.identity_sd_cm
    assert np.all(np.diff(sd) <= 0) and sd[-1] > 0
    # basis vectors are scaled to one standard deviation
    norms = np.linalg.norm(model.identity_basis.reshape(model.num_identity, -1), axis=1)
    assert np.allclose(norms, sd, rtol=1e-2)


@pytest.mark.parametrize("name", ["EyeBlink_L", "MouthSmile_L", "BrowsU_L", "EyeSquint_L"])
def test_left_shapes_move_the_subjects_left_side_which_is_plus_x(model, name):
    delta = np.linalg.norm(model.expression_deltas[FACS_NAMES.index(name)], axis=1)
    right = np.linalg.norm(model.expression_deltas[FACS_NAMES.index(name[:-1] + "R")], axis=1)
    x = model.neutral[:, 0]
    assert (x * delta).sum() / delta.sum() > 1.0
    assert (x * right).sum() / right.sum() < -1.0


def test_brows_up_centre_is_both_inner_brow_raises(model):
    delta = model.expression_deltas[FACS_NAMES.index("BrowsU_C")]
    moved = np.linalg.norm(delta, axis=1) > 0.05
    assert moved.any()
    assert (model.neutral[moved, 0] > 0).any() and (model.neutral[moved, 0] < 0).any()


def test_landmarks_and_jaw_candidates_are_vertices_of_the_face(model):
    assert model.landmark_vertex_ids.shape == (68,)
    cand = model.contour_candidate_ids
    assert cand.shape[0] == 17
    for j in range(17):
        assert model.landmark_vertex_ids[j] in cand[j]
    assert cand.max() < len(model.neutral)
    # point 0 is on the subject's right (x < 0), as in iBUG
    assert model.neutral[model.landmark_vertex_ids[0], 0] < 0 < model.neutral[model.landmark_vertex_ids[16], 0]


def test_topology_is_a_closed_set_of_faces_over_the_vertices(model):
    assert model.quads.min() >= 0 and model.quads.max() < len(model.neutral)
    assert set(np.unique(model.quad_region)) <= set(range(len(model.meta["regions"])))
    assert len(model.region_quads("face")) > 5000


def test_vertices_add_identity_and_expression_linearly(model):
    x = np.zeros(46)
    x[FACS_NAMES.index("JawOpen")] = 1.0
    u = np.zeros(model.num_identity)
    u[0] = 1.0
    v = model.vertices(u, x)
    expected = model.neutral + model.identity_basis[0] + model.expression_deltas[FACS_NAMES.index("JawOpen")]
    assert np.allclose(v, expected, atol=1e-4)
    chin = model.landmark_vertex_ids[8]
    assert model.vertices(expression=x)[chin, 1] < model.neutral[chin, 1] - 1.0  # the jaw drops


def test_a_missing_model_file_raises_an_error_naming_it(tmp_path):
    missing = tmp_path / "nope.npz"
    with pytest.raises(FaceModelError, match="nope.npz"):
        load_face_model(missing)


def test_a_corrupt_model_file_raises_an_error_naming_it(tmp_path):
    bad = tmp_path / "corrupt.npz"
    bad.write_bytes(b"PK\x03\x04 this is not a zip archive")
    with pytest.raises(FaceModelError, match="corrupt.npz"):
        load_face_model(bad)


def test_an_npz_without_the_model_arrays_is_rejected_by_name(tmp_path):
    other = tmp_path / "other.npz"
    np.savez(other, something=np.zeros(3))
    with pytest.raises(FaceModelError, match="other.npz.*missing"):
        load_face_model(other)


def test_the_build_command_reproduces_the_shipped_model(tmp_path):
    data_or_skip("ict_facekit")
    from training.face_model.build import build

    out = tmp_path / "face_model.npz"
    build(50, out)
    rebuilt, shipped = load_face_model(out), load_face_model()
    assert np.array_equal(rebuilt.neutral, shipped.neutral)
    assert np.array_equal(rebuilt.quads, shipped.quads)
    assert np.allclose(rebuilt.identity_basis, shipped.identity_basis, atol=2e-3)
    assert np.allclose(rebuilt.expression_deltas, shipped.expression_deltas, atol=1e-3)
    assert json.loads(json.dumps(rebuilt.meta["expression_names"])) == list(shipped.expression_names)


def test_the_face_region_holds_the_landmarks_but_not_the_throat_or_the_ears(model):
    from core.face.camera import head_rotation, principal_point, project
    from core.face.render import render_face

    face_vertices = np.unique(model.region_quads("face"))
    assert np.isin(model.landmark_vertex_ids[17:], face_vertices).all()  # brows, eyes, nose, mouth
    size, focal = (200, 200), 400.0
    rot, t = head_rotation(0.0, 0.0, 0.0), np.array([0.0, 0.0, 60.0])
    _, ids, regions = render_face(model, model.neutral, rot, t, focal, size)
    face_id = model.meta["regions"].index("face")

    def region_at(point_model):
        u, v = np.round(project(point_model @ rot.T + t, focal, principal_point(size))).astype(int)
        return regions[ids[v, u]] if ids[v, u] >= 0 else -1

    chin = model.neutral[model.landmark_vertex_ids[8]]
    assert region_at(chin + [0.0, 0.5, 0.0]) == face_id
    assert region_at(chin + [0.0, -3.0, -3.0]) != face_id                 # the throat, below the chin
    ears = np.unique(model.region_quads("ears"))
    assert np.abs(model.neutral[ears, 0]).min() > 5.5                    # ears are at the sides
