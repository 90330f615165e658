"""Pinhole projection and head rotations.

Camera frame: OpenCV's (x right, y down, z forward), principal point at the image centre
(pixel centres at integer coordinates). A head that faces the camera upright has rotation
FRONTAL = diag(1, -1, -1): the model's +Y (up) goes to image up, its +Z (out of the face)
towards the camera.
"""
from __future__ import annotations

import numpy as np

FRONTAL = np.diag([1.0, -1.0, -1.0])
FULL_FRAME_WIDTH_MM = 36.0


def focal_from_mm(focal_mm: float, image_width: float) -> float:
    """Focal length in pixels from a 35 mm-equivalent focal length (36 mm wide sensor)."""
    return float(focal_mm) / FULL_FRAME_WIDTH_MM * float(image_width)


def mm_from_focal(focal_px: float, image_width: float) -> float:
    return float(focal_px) * FULL_FRAME_WIDTH_MM / float(image_width)


def principal_point(image_size: tuple[int, int]) -> np.ndarray:
    """Image centre (cx, cy) for image_size = (width, height)."""
    w, h = image_size
    return np.array([(w - 1) / 2.0, (h - 1) / 2.0])


def camera_matrix(focal_px: float, image_size: tuple[int, int]) -> np.ndarray:
    cx, cy = principal_point(image_size)
    return np.array([[focal_px, 0.0, cx], [0.0, focal_px, cy], [0.0, 0.0, 1.0]])


def project(points_cam: np.ndarray, focal_px: float, center: np.ndarray) -> np.ndarray:
    """Perspective projection of (..., 3) camera-frame points to (..., 2) pixels."""
    z = points_cam[..., 2:3]
    return focal_px * points_cam[..., :2] / z + center


def _axis_rotation(axis: int, angle: float) -> np.ndarray:
    c, s = np.cos(angle), np.sin(angle)
    i, j = [(1, 2), (2, 0), (0, 1)][axis]
    r = np.eye(3)
    r[i, i], r[i, j], r[j, i], r[j, j] = c, -s, s, c
    return r


def head_rotation(yaw: float, pitch: float, roll: float) -> np.ndarray:
    """Camera-from-model rotation for a head turned by yaw (about up), pitch, roll (radians).

    Positive yaw turns the face towards the subject's left (+X), positive pitch raises the chin,
    positive roll tilts the head towards the subject's left shoulder... all in the model frame.
    """
    r_model = _axis_rotation(1, yaw) @ _axis_rotation(0, -pitch) @ _axis_rotation(2, roll)
    return FRONTAL @ r_model


def head_angles(rotation: np.ndarray) -> tuple[float, float, float]:
    """Inverse of head_rotation: (yaw, pitch, roll) in radians."""
    m = FRONTAL.T @ np.asarray(rotation, float)  # = Ry(yaw) Rx(-pitch) Rz(roll)
    pitch = np.arcsin(np.clip(m[1, 2], -1.0, 1.0))
    yaw = np.arctan2(m[0, 2], m[2, 2])
    roll = np.arctan2(m[1, 0], m[1, 1])
    return float(yaw), float(pitch), float(roll)


def rotation_angle_deg(a: np.ndarray, b: np.ndarray) -> float:
    """Geodesic angle between two rotation matrices, in degrees."""
    cos = (np.trace(np.asarray(a).T @ np.asarray(b)) - 1.0) / 2.0
    return float(np.degrees(np.arccos(np.clip(cos, -1.0, 1.0))))
