"""Anonymisation inside face masks: blur, pixelate or a solid fill, with a feathered edge.

    faces = segmenter.segment_all(frame)
    private = anonymize_faces(frame, faces, AnonymizeOptions(method="pixelate"))

The whole mask is covered fully; the feather is a smooth ramp *outside* the mask, from full
cover at its edge to none at `feather_px` beyond it, so no face pixel keeps any of its own
colour and nothing further than `feather_px` from a mask changes. Work is done on the region
around each mask only (vectorised OpenCV/numpy).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..io.image_input import as_bgr_uint8

__all__ = ["AnonymizeOptions", "METHODS", "anonymize", "anonymize_faces", "feather_alpha"]

METHODS = ("blur", "pixelate", "fill")


@dataclass
class AnonymizeOptions:
    """method: "blur" (Gaussian), "pixelate" (mean colour of square cells) or "fill" (fill_bgr).
    strength: the blur's sigma, or the cell's side, as a share of the face's longer box side
    (so a small and a large face are equally unrecognisable); never below min_strength_px.
    feather_px: width of the soft edge outside the mask (0: a hard edge)."""
    method: str = "blur"
    strength: float = 0.12
    min_strength_px: float = 3.0
    feather_px: float = 6.0
    fill_bgr: tuple[int, int, int] = (128, 128, 128)

    def __post_init__(self):
        if self.method not in METHODS:
            raise ValueError(f"anonymisation method must be one of {METHODS}, got {self.method!r}")
        if not (self.strength >= 0 and self.feather_px >= 0 and self.min_strength_px > 0):
            raise ValueError(f"strength, min_strength_px and feather_px must be non-negative (min_strength_px "
                             f"positive), got {self.strength}, {self.min_strength_px}, {self.feather_px}")


def feather_alpha(mask: np.ndarray, feather_px: float) -> np.ndarray:
    """HxW float32 cover: 1 on the mask, a smoothstep down to 0 at feather_px outside it."""
    import cv2
    inside = mask > 0
    if feather_px <= 0:
        return inside.astype(np.float32)
    distance = cv2.distanceTransform((~inside).astype(np.uint8), cv2.DIST_L2, 5)
    t = np.clip(1.0 - distance / np.float32(feather_px), 0.0, 1.0)
    return (t * t * (3.0 - 2.0 * t)).astype(np.float32)


def _replacement(region: np.ndarray, options: AnonymizeOptions, strength_px: float) -> np.ndarray:
    """What the face pixels become: the region blurred, pixelated or filled."""
    import cv2
    if options.method == "fill":
        return np.broadcast_to(np.array(options.fill_bgr, np.uint8), region.shape)
    if options.method == "blur":
        return cv2.GaussianBlur(region, (0, 0), sigmaX=strength_px, borderType=cv2.BORDER_REPLICATE)
    h, w = region.shape[:2]
    small = cv2.resize(region, (max(1, round(w / strength_px)), max(1, round(h / strength_px))),
                       interpolation=cv2.INTER_AREA)
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_NEAREST)


def anonymize(image, mask: np.ndarray, options: AnonymizeOptions | None = None,
              strength_px: float | None = None) -> np.ndarray:
    """A copy of the BGR image with the mask's pixels replaced (feathered edge). strength_px is
    the blur sigma or cell side in pixels; by default from the mask's bounding box."""
    options = options or AnonymizeOptions()
    frame = as_bgr_uint8(image, "image")
    if mask is None or mask.shape[:2] != frame.shape[:2]:
        raise ValueError(f"mask must be HxW like the image {frame.shape[:2]}, got "
                         f"{None if mask is None else mask.shape}")
    out = frame.copy()
    _anonymize_region(out, mask, options, strength_px)
    return out


def anonymize_faces(image, faces, options: AnonymizeOptions | None = None) -> np.ndarray:
    """A copy of the image with every face of `segment_all` anonymised, each at a strength
    scaled to its own box."""
    options = options or AnonymizeOptions()
    out = as_bgr_uint8(image, "image").copy()
    for face in faces:
        _anonymize_region(out, face.mask, options, options.strength * max(face.box[2], face.box[3]))
    return out


def _anonymize_region(out: np.ndarray, mask: np.ndarray, options: AnonymizeOptions, strength_px) -> None:
    """In place: blend the replacement into `out` around the mask's bounding box."""
    ys, xs = np.nonzero(mask)
    if len(xs) == 0:
        return
    if strength_px is None:
        strength_px = options.strength * max(xs.max() - xs.min() + 1, ys.max() - ys.min() + 1)
    strength_px = max(float(strength_px), options.min_strength_px)
    # room for the feather, and for the blur to read real pixels around the mask
    pad = int(np.ceil(options.feather_px + (3 * strength_px if options.method == "blur" else strength_px))) + 1
    h, w = mask.shape[:2]
    x0, x1 = max(xs.min() - pad, 0), min(xs.max() + 1 + pad, w)
    y0, y1 = max(ys.min() - pad, 0), min(ys.max() + 1 + pad, h)
    region = out[y0:y1, x0:x1]
    alpha = feather_alpha(mask[y0:y1, x0:x1], options.feather_px)[:, :, None]
    replacement = _replacement(np.ascontiguousarray(region), options, strength_px).astype(np.float32)
    blended = region.astype(np.float32) * (1.0 - alpha) + replacement * alpha
    out[y0:y1, x0:x1] = np.clip(np.rint(blended), 0, 255).astype(np.uint8)
