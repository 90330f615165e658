"""Tracked head pose (OpenCV camera frame, cm) to a character's head (Blender world, metres).

The tracked frame of a head is the face model's: x the subject's left, y up, z out of the face;
in it, a head facing the camera upright has the identity rotation. `axes` names the Blender
axis of each tracked axis; the default "X,Z,-Y" reads: tracked x -> Blender X, tracked y ->
Blender Z, tracked z -> Blender -Y (characters face -Y in Blender).
"""
from __future__ import annotations

import numpy as np

from ..face.camera import FRONTAL

DEFAULT_AXES = "X,Z,-Y"
_AXIS = {"X": 0, "Y": 1, "Z": 2}


def axis_matrix(spec: str) -> np.ndarray:
    """Signed permutation A (Blender = A @ tracked) from "X,Z,-Y": the Blender axis of tracked
    x, y and z in turn. ValueError for anything but a rotation (no mirror, each axis once)."""
    parts = [p.strip().upper() for p in spec.split(",")]
    if len(parts) != 3:
        raise ValueError(f"head axes must name three axes like 'X,Z,-Y', got {spec!r}")
    a = np.zeros((3, 3))
    for col, part in enumerate(parts):
        sign = -1.0 if part.startswith("-") else 1.0
        axis = part.lstrip("+-")
        if axis not in _AXIS:
            raise ValueError(f"head axes: {part!r} is not X, Y or Z (with an optional sign)")
        a[_AXIS[axis], col] = sign
    if not np.allclose(np.abs(a).sum(0), 1) or not np.allclose(np.abs(a).sum(1), 1):
        raise ValueError(f"head axes must use each of X, Y and Z once, got {spec!r}")
    if np.linalg.det(a) < 0:
        raise ValueError(f"head axes {spec!r} mirror the head; flip the sign of one axis")
    return a


def tracked_rotation(rotation_cam: np.ndarray) -> np.ndarray:
    """The head's rotation in its own tracked frame (identity when facing the camera upright)."""
    return FRONTAL.T @ np.asarray(rotation_cam, np.float64)


def tracked_position_cm(translation_cam_cm: np.ndarray) -> np.ndarray:
    """The head origin's position in the tracked frame centred on the camera, in cm."""
    return FRONTAL.T @ np.asarray(translation_cam_cm, np.float64)


def head_pose_blender(rotation_cam, translation_cam_cm, reference_cm, axes: np.ndarray,
                      translation_scale: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """(rotation 3x3, offset in metres) of the head in Blender world axes: the rotation relative
    to facing the camera, and the move relative to `reference_cm` (a camera-frame translation)."""
    r = axes @ tracked_rotation(rotation_cam) @ axes.T
    move_cm = tracked_position_cm(np.asarray(translation_cam_cm) - np.asarray(reference_cm))
    return r, axes @ move_cm * (0.01 * float(translation_scale))


def camera_offset_blender(reference_cm, axes: np.ndarray) -> np.ndarray:
    """Where a camera goes relative to the head (metres, Blender axes) so that a head at rest
    matches the reference frame: minus the head's position as seen from the camera."""
    return -(axes @ tracked_position_cm(reference_cm)) * 0.01


def camera_rotation_blender(axes: np.ndarray) -> np.ndarray:
    """World rotation of a Blender camera (looks down its -Z, +Y up) that sees what the real
    camera saw: it looks along tracked -z and has tracked +y up."""
    look = axes @ np.array([0.0, 0.0, -1.0])
    up = axes @ np.array([0.0, 1.0, 0.0])
    right = np.cross(look, up)
    return np.column_stack([right, up, -look])
