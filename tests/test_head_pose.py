"""Tracked head pose to Blender axes: rotations relative to facing the camera, moves in metres."""
import numpy as np
import pytest

from core.face.camera import FRONTAL, head_rotation
from core.capture.head_pose import (DEFAULT_AXES, axis_matrix, camera_offset_blender, camera_rotation_blender,
                            head_pose_blender)

A = axis_matrix(DEFAULT_AXES)


def test_default_axes_put_up_on_blender_z_and_the_face_towards_minus_y():
    assert np.allclose(A @ [0, 1, 0], [0, 0, 1])
    assert np.allclose(A @ [0, 0, 1], [0, -1, 0])


def test_a_frontal_head_has_no_rotation():
    r, move = head_pose_blender(FRONTAL, [0, 0, 60], [0, 0, 60], A)
    assert np.allclose(r, np.eye(3)) and np.allclose(move, 0)


def test_yaw_turns_the_head_about_blender_z_towards_its_left():
    r, _ = head_pose_blender(head_rotation(np.radians(30), 0, 0), [0, 0, 60], [0, 0, 60], A)
    face_dir = r @ [0, -1, 0]  # the face looks along -Y at rest
    assert face_dir[0] > 0.4 and abs(face_dir[2]) < 1e-9   # +X is the character's left


def test_moving_towards_the_camera_moves_the_head_forward_in_metres():
    _, move = head_pose_blender(FRONTAL, [0, 0, 50], [0, 0, 60], A, translation_scale=2.0)
    assert np.allclose(move, [0, -0.2, 0])


def test_image_up_is_blender_up():
    _, move = head_pose_blender(FRONTAL, [0, -10, 60], [0, 0, 60], A)  # camera y points down
    assert np.allclose(move, [0, 0, 0.1])


@pytest.mark.parametrize("spec", ["X,Y", "X,X,Z", "X,Y,-Z", "X,Q,Z"])
def test_bad_axis_specs_are_rejected(spec):
    with pytest.raises(ValueError):
        axis_matrix(spec)


def test_matched_camera_looks_at_a_head_in_front_of_it():
    offset = camera_offset_blender([0, 0, 60], A)
    rot = camera_rotation_blender(A)
    look = rot @ [0, 0, -1]
    assert np.allclose(offset, [0, -0.6, 0])
    assert np.allclose(look, -offset / np.linalg.norm(offset))
    assert np.allclose(rot @ [0, 1, 0], [0, 0, 1]) and np.isclose(np.linalg.det(rot), 1)
