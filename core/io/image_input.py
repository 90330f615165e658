"""Validation of the frames that enter the engine: one place that says what a frame may be."""
from __future__ import annotations

import numpy as np

__all__ = ["as_bgr_uint8", "as_gray_uint8"]


def _check_array(image, name: str) -> np.ndarray:
    if image is None:
        raise ValueError(f"{name} is None; pass an image as a numpy array (uint8, HxW, HxWx3 or "
                         "HxWx4), e.g. a frame from cv2.imread or cv2.VideoCapture.read")
    if not isinstance(image, np.ndarray):
        raise ValueError(f"{name} must be a numpy array, got {type(image).__name__}")
    if image.dtype != np.uint8:
        raise ValueError(f"{name} has dtype {image.dtype}, expected uint8 (0-255, as OpenCV "
                         "reads images); convert with np.clip(x, 0, 255).astype(np.uint8)")
    if image.ndim not in (2, 3):
        raise ValueError(f"{name} has {image.ndim} dimensions (shape {image.shape}); expected "
                         "HxW grayscale, HxWx3 BGR or HxWx4 BGRA")
    if image.ndim == 3 and image.shape[2] not in (1, 3, 4):
        raise ValueError(f"{name} has {image.shape[2]} channels (shape {image.shape}); expected "
                         "1 (gray), 3 (BGR) or 4 (BGRA)")
    if image.shape[0] < 1 or image.shape[1] < 1:
        raise ValueError(f"{name} is empty (shape {image.shape})")
    return image


def as_bgr_uint8(image, name: str = "frame") -> np.ndarray:
    """The frame as a C-contiguous HxWx3 uint8 BGR array (gray is replicated, alpha dropped).

    Raises ValueError naming `name` for None, non-arrays, empty arrays, wrong dtype or a
    channel count other than 1, 3 or 4. A valid BGR input is returned without copying.
    """
    image = _check_array(image, name)
    if image.ndim == 2 or image.shape[2] == 1:
        gray = image.reshape(image.shape[0], image.shape[1])
        return np.ascontiguousarray(np.repeat(gray[:, :, None], 3, axis=2))
    if image.shape[2] == 4:
        return np.ascontiguousarray(image[:, :, :3])
    return np.ascontiguousarray(image)


def as_gray_uint8(image, name: str = "frame") -> np.ndarray:
    """The frame as an HxW uint8 luma image (BT.601 weights, as cv2.COLOR_BGR2GRAY)."""
    image = _check_array(image, name)
    if image.ndim == 2:
        return np.ascontiguousarray(image)
    if image.shape[2] == 1:
        return np.ascontiguousarray(image[:, :, 0])
    import cv2
    code = cv2.COLOR_BGRA2GRAY if image.shape[2] == 4 else cv2.COLOR_BGR2GRAY
    return cv2.cvtColor(np.ascontiguousarray(image), code)
