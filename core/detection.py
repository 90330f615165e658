"""Face boxes for the first frame: OpenCV's bundled Viola-Jones cascade, and the segmenter's crop.

Boxes are (x, y, w, h) in pixels of the frame, x to the right and y down.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .image_input import as_gray_uint8

__all__ = ["FaceDetector", "DetectorOptions", "detect_faces", "crop_box_from_face_box",
           "crop_box_from_detection", "face_box_from_detection", "CROP_SCALE_FROM_FACE", "DETECTION_TO_FACE"]

# The segmenter's square crop is CROP_SCALE_FROM_FACE times the longer side of the face
# region's bounding box (hairline to chin, ear to ear), centred on that box. Training crops
# are made the same way from the label masks (training/segmentation_data.py).
CROP_SCALE_FROM_FACE = 1.6

# How a cascade box maps to the face region's bounding box: centre shift (dx, dy) and size,
# in units of the cascade box's width. Calibrated on lfw_parts train (1500 images; median of
# the per-image ratios between the Haar box of haarcascade_frontalface_default and the bounding
# box of label 1, 491 faces found) by training/segmentation_data.py's `calibrate_detector`:
# the face region is 1.15 cascade widths tall and centred on the cascade box (medians dx 0.02,
# dy 0.00; the 10-90 % range of the size ratio is 1.03-1.34).
DETECTION_TO_FACE = {"dx": 0.0, "dy": 0.0, "size": 1.15}


@dataclass
class DetectorOptions:
    """Options of the Viola-Jones detector (see cv2.CascadeClassifier.detectMultiScale)."""
    cascade: str = "haarcascade_frontalface_default.xml"
    scale_factor: float = 1.1
    min_neighbors: int = 5
    min_size_fraction: float = 0.08   # smallest face side, as a fraction of the frame's shorter side
    max_width_px: int = 480           # frames wider than this are downscaled before detection


class FaceDetector:
    """Viola-Jones face detection; `detect(frame)` returns boxes sorted by area, largest first."""

    def __init__(self, options: DetectorOptions | None = None):
        import cv2
        self.options = options or DetectorOptions()
        path = Path(cv2.data.haarcascades) / self.options.cascade
        self._cascade = cv2.CascadeClassifier(str(path))
        if self._cascade.empty():
            raise FileNotFoundError(f"could not load the OpenCV cascade {path}")

    def detect(self, image) -> list[tuple[int, int, int, int]]:
        import cv2
        gray = as_gray_uint8(image, "image")
        scale = min(1.0, self.options.max_width_px / gray.shape[1])
        if scale < 1.0:
            gray = cv2.resize(gray, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        gray = cv2.equalizeHist(gray)
        side = max(1, int(self.options.min_size_fraction * min(gray.shape)))
        found = self._cascade.detectMultiScale(
            gray, scaleFactor=self.options.scale_factor, minNeighbors=self.options.min_neighbors,
            minSize=(side, side))
        boxes = [tuple(int(round(v / scale)) for v in box) for box in np.asarray(found).reshape(-1, 4)]
        return sorted(boxes, key=lambda b: b[2] * b[3], reverse=True)

    def close(self) -> None:
        self._cascade = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


_default_detector: FaceDetector | None = None


def detect_faces(image) -> list[tuple[int, int, int, int]]:
    """Face boxes (x, y, w, h) with the default options, largest first (a shared detector)."""
    global _default_detector
    if _default_detector is None:
        _default_detector = FaceDetector()
    return _default_detector.detect(image)


def crop_box_from_face_box(face_box, scale: float = CROP_SCALE_FROM_FACE) -> tuple[float, float, float, float]:
    """The segmenter's square crop (x, y, side, side) around a face-region box (x, y, w, h)."""
    x, y, w, h = (float(v) for v in face_box)
    side = scale * max(w, h)
    cx, cy = x + w / 2.0, y + h / 2.0
    return (cx - side / 2.0, cy - side / 2.0, side, side)


def face_box_from_detection(detection_box) -> tuple[float, float, float, float]:
    """The face-region box (x, y, w, h) for a Viola-Jones box, through DETECTION_TO_FACE."""
    x, y, w, h = (float(v) for v in detection_box)
    if not all(math.isfinite(v) for v in (x, y, w, h)) or w <= 0 or h <= 0:
        raise ValueError(f"detection box {detection_box} must be finite with positive size")
    cx = x + w / 2.0 + DETECTION_TO_FACE["dx"] * w
    cy = y + h / 2.0 + DETECTION_TO_FACE["dy"] * w
    size = DETECTION_TO_FACE["size"] * w
    return (cx - size / 2.0, cy - size / 2.0, size, size)


def crop_box_from_detection(detection_box) -> tuple[float, float, float, float]:
    """The segmenter's square crop for a Viola-Jones box."""
    return crop_box_from_face_box(face_box_from_detection(detection_box))
