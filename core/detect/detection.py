"""The segmenter's crop around a face box, and OpenCV's bundled Viola-Jones cascades.

The cascades no longer find faces for maskcap (core.detect.cnn's CNN does: more faces, fewer false
ones, a tenth of the time on group photos; README, Batch masks): they stay as the measured baseline
of the benchmarks. `detect_faces` gives the frontal cascade's boxes; `MultiFaceDetector` runs
frontal and profile cascades (the profile one on the mirrored frame too, for faces turned the other
way), merged by non-maximum suppression, each mapped to a square face box for the segmenter; its
passes may run on several threads (OpenCV releases the GIL).
Boxes are (x, y, w, h) in pixels of the frame, x right and y down.
"""
from __future__ import annotations

import math
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..io.closing import Closing
from ..io.image_input import as_gray_uint8

__all__ = ["FaceDetector", "DetectorOptions", "detect_faces", "crop_box_from_face_box",
           "crop_box_from_detection", "face_box_from_detection", "CROP_SCALE_FROM_FACE", "DETECTION_TO_FACE",
           "MultiFaceDetector", "MultiFaceOptions", "FaceDetection", "box_iou",
           "PROFILE_TO_FACE", "box_intersection", "DetectorPass"]

# The segmenter's square crop is CROP_SCALE_FROM_FACE times the longer side of the face
# region's bounding box (hairline to chin, ear to ear), centred on that box. Training crops
# are made the same way from the label masks (training/segmenter/data.py).
CROP_SCALE_FROM_FACE = 1.6

# How a cascade box maps to the face region's bounding box: centre shift (dx, dy) and size,
# in units of the cascade box's width. Calibrated on lfw_parts train (1500 images; median of
# the per-image ratios between the Haar box of haarcascade_frontalface_default and the bounding
# box of label 1, 491 faces found) by training/segmenter/data.py's `calibrate_detector`:
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


class FaceDetector(Closing):
    """Viola-Jones face detection; `detect(frame)` returns boxes sorted by area, largest first."""

    def __init__(self, options: DetectorOptions | None = None):
        import cv2
        self.options = options or DetectorOptions()
        self._cascade = _load_cascade(cv2, self.options.cascade)

    def detect(self, image) -> list[tuple[int, int, int, int]]:
        gray, scale = _equalized(as_gray_uint8(image, "image"), self.options.max_width_px)
        side = max(1, int(self.options.min_size_fraction * min(gray.shape)))
        found = self._cascade.detectMultiScale(
            gray, scaleFactor=self.options.scale_factor, minNeighbors=self.options.min_neighbors,
            minSize=(side, side))
        boxes = [tuple(int(round(v / scale)) for v in box) for box in np.asarray(found).reshape(-1, 4)]
        return sorted(boxes, key=lambda b: b[2] * b[3], reverse=True)

    def close(self) -> None:
        self._cascade = None


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


def face_box_from_detection(detection_box, mapping: dict | None = None) -> tuple[float, float, float, float]:
    """The face-region box (x, y, w, h) for a Viola-Jones box, through DETECTION_TO_FACE (or
    `mapping`, e.g. PROFILE_TO_FACE; dx is towards the side the face looks at for a profile)."""
    mapping = mapping or DETECTION_TO_FACE
    x, y, w, h = (float(v) for v in detection_box)
    if not all(math.isfinite(v) for v in (x, y, w, h)) or w <= 0 or h <= 0:
        raise ValueError(f"detection box {detection_box} must be finite with positive size")
    cx = x + w / 2.0 + mapping["dx"] * w
    cy = y + h / 2.0 + mapping["dy"] * w
    size = mapping["size"] * w
    return (cx - size / 2.0, cy - size / 2.0, size, size)


def crop_box_from_detection(detection_box) -> tuple[float, float, float, float]:
    """The segmenter's square crop for a Viola-Jones box."""
    return crop_box_from_face_box(face_box_from_detection(detection_box))


# ------------------------------------------------------------------ every face in a frame

# The profile cascade's box against the face region, as DETECTION_TO_FACE for the frontal one,
# in the orientation the cascade was trained on (face looking to the image's left); dx is mirrored
# for the mirrored pass. Measured on group photos made from lfw_parts *train* and celebamask_mini
# train faces (`python -m evaluation.group_photo_recall --calibrate`), median over matched boxes.
PROFILE_TO_FACE = {"dx": 0.0, "dy": 0.02, "size": 0.90}


@dataclass
class MultiFaceOptions:
    """Options of `MultiFaceDetector`. The defaults are the quickest settings that kept the
    recall of `thorough()` (the earlier default, 3x slower) on group photos, the segmenter's score
    dropping the extra false boxes that one neighbour lets through (evaluation/detector_speed.py,
    README); `fast()` is quicker again and finds fewer faces (0.69 against 0.87 of them)."""
    frontal_cascade: str = "haarcascade_frontalface_default.xml"
    profile_cascade: str | None = "haarcascade_profileface.xml"   # None: frontal faces only
    mirrored_profile: bool = True       # run the profile cascade on the mirrored frame too
    scale_factor: float = 1.2           # the upright frontal pass's
    min_neighbors: int = 1
    min_face_px: int = 24               # smallest cascade box side, in frame pixels
    max_width_px: int = 640             # frames wider than this are downscaled before detection
    profile_max_width_px: int = 640     # the profile passes may run on a smaller frame (they cost 2x)
    merge_overlap: float = 0.45         # boxes overlapping more than this (IoU, or share of the smaller) merge
    rolled_deg: tuple[float, ...] = (-20.0, 20.0)   # extra frontal passes on the frame turned by these
    extra_scale_factor: float | None = 1.4    # the rolled and profile passes' (None: scale_factor)
    extra_min_neighbors: int | None = 1       # the rolled and profile passes' (None: min_neighbors)
    threads: int = 1                    # the passes run on this many threads (each its own cascades)

    @classmethod
    def fast(cls) -> "MultiFaceOptions":
        return cls(scale_factor=1.2, min_neighbors=3, extra_scale_factor=1.2, extra_min_neighbors=3,
                   profile_max_width_px=320, rolled_deg=())

    @classmethod
    def thorough(cls) -> "MultiFaceOptions":
        """The slower, older default: every pass at scale factor 1.1, 3 neighbours."""
        return cls(scale_factor=1.1, min_neighbors=3, extra_scale_factor=1.1, extra_min_neighbors=3)


@dataclass(frozen=True)
class DetectorPass:
    """One cascade pass of `MultiFaceDetector`: which cascade and orientation ("frontal",
    "frontal_rolled", "profile" or "profile_mirrored"), the frame width it runs at, the angle the
    frame is turned by, the cascade's scale factor and its neighbour threshold (None: the options'
    min_neighbors)."""
    kind: str
    max_width_px: int
    angle_deg: float
    scale_factor: float
    min_neighbors: int | None = None


@dataclass
class FaceDetection:
    """One face: the cascade's box, the square face-region box the segmenter wants, which cascade
    found it ("frontal", "profile" or "profile_mirrored"), and its neighbour count (strength)."""
    box: tuple[int, int, int, int]
    face_box: tuple[float, float, float, float]
    kind: str
    neighbors: int


def box_iou(a, b) -> float:
    """Intersection over union of two (x, y, w, h) boxes."""
    inter = box_intersection(a, b)
    union = a[2] * a[3] + b[2] * b[3] - inter
    return inter / union if union > 0 else 0.0


def box_intersection(a, b) -> float:
    """Area shared by two (x, y, w, h) boxes."""
    w = min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0])
    h = min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1])
    return max(w, 0.0) * max(h, 0.0)


def _overlap(a, b) -> float:
    """The larger of IoU and the intersection's share of the smaller box (catches nested boxes)."""
    inter = box_intersection(a, b)
    smaller = min(a[2] * a[3], b[2] * b[3])
    return max(box_iou(a, b), inter / smaller if smaller > 0 else 0.0)


def merge_detections(detections: list[FaceDetection], overlap: float) -> list[FaceDetection]:
    """Greedy non-maximum suppression on the face boxes: frontal before profile, then by strength;
    a box is dropped when it overlaps a kept one by more than `overlap`."""
    rank = {"frontal": 0, "frontal_rolled": 1, "profile": 1, "profile_mirrored": 1}
    ordered = sorted(detections, key=lambda d: (rank.get(d.kind, 2), -d.neighbors))
    kept: list[FaceDetection] = []
    for det in ordered:
        if all(_overlap(det.face_box, k.face_box) <= overlap for k in kept):
            kept.append(det)
    return sorted(kept, key=lambda d: d.face_box[2] * d.face_box[3], reverse=True)


class MultiFaceDetector(Closing):
    """Every face in a frame: `detect(frame)` returns FaceDetections, largest first.

    What it misses (group photos, README): about a third of the faces under 32 px tall (boxes
    start at `min_face_px`, 24 px) and a third of those with a hand or an object over part of the
    face; faces rolled past about 40 degrees (upright passes and passes at +-20 degrees), looking
    up or down steeply, or turned past profile were not measured and are likely missed."""

    def __init__(self, options: MultiFaceOptions | None = None):
        import cv2
        self.options = options or MultiFaceOptions()
        self._frontal = _load_cascade(cv2, self.options.frontal_cascade)
        self._profile = _load_cascade(cv2, self.options.profile_cascade) if self.options.profile_cascade else None
        if int(self.options.threads) < 1:
            raise ValueError(f"threads must be at least 1, got {self.options.threads}")
        self._pool: ThreadPoolExecutor | None = None
        self._local = threading.local()   # a pool thread's own cascades (one cascade is not thread-safe)

    def _load_thread_cascades(self) -> None:
        import cv2
        o = self.options
        self._local.cascades = (_load_cascade(cv2, o.frontal_cascade),
                                _load_cascade(cv2, o.profile_cascade) if o.profile_cascade else None)

    def passes(self) -> list[DetectorPass]:
        """The cascade passes `detect` runs, from the options: upright frontal, rolled frontal,
        profile and mirrored profile."""
        o = self.options
        sf = o.scale_factor if o.extra_scale_factor is None else o.extra_scale_factor
        n = o.extra_min_neighbors
        out = [DetectorPass("frontal", o.max_width_px, 0.0, o.scale_factor)]
        out += [DetectorPass("frontal_rolled", o.max_width_px, float(a), sf, n) for a in o.rolled_deg]
        if self._profile is not None:
            out.append(DetectorPass("profile", o.profile_max_width_px, 0.0, sf, n))
            if o.mirrored_profile:
                out.append(DetectorPass("profile_mirrored", o.profile_max_width_px, 0.0, sf, n))
        return out

    def detect(self, image) -> list[FaceDetection]:
        gray = as_gray_uint8(image, "image")
        passes = self.passes()
        scaled = {w: _equalized(gray, w) for w in {p.max_width_px for p in passes}}   # once, before threads share them
        if self.options.threads > 1 and len(passes) > 1:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(int(self.options.threads), thread_name_prefix="maskcap-detect",
                                                initializer=self._load_thread_cascades)
            # the costliest passes first (profile, then rolled); results in pass order, so the merge
            # is the same whatever the threads' timing
            order = sorted(range(len(passes)), key=lambda i: _PASS_COST[passes[i].kind])
            futures = {i: self._pool.submit(self.run_pass, gray, passes[i], scaled) for i in order}
            results = [futures[i].result() for i in range(len(passes))]
        else:
            results = [self.run_pass(gray, one, scaled) for one in passes]
        return merge_detections([d for found in results for d in found], self.options.merge_overlap)

    def run_pass(self, gray: np.ndarray, one: DetectorPass,
                 scaled: dict[int, tuple[np.ndarray, float]] | None = None) -> list[FaceDetection]:
        """One cascade pass over a grayscale frame, boxes in the frame's pixels, unmerged.
        `scaled` caches the downscaled, equalised frame per width between passes."""
        import cv2
        o = self.options
        scaled = {} if scaled is None else scaled
        if one.max_width_px not in scaled:
            scaled[one.max_width_px] = _equalized(gray, one.max_width_px)
        img, scale = scaled[one.max_width_px]
        frontal, profile = getattr(self._local, "cascades", (self._frontal, self._profile))
        cascade = frontal if one.kind.startswith("frontal") else profile
        if cascade is None:
            raise ValueError(f"a {one.kind} pass needs a profile cascade in the options")
        if one.kind == "profile_mirrored":
            img = np.ascontiguousarray(img[:, ::-1])
        back = None
        if one.angle_deg:   # the frame turned about its centre; boxes' centres are turned back
            turn = cv2.getRotationMatrix2D((img.shape[1] / 2, img.shape[0] / 2), one.angle_deg, 1.0)
            img = cv2.warpAffine(img, turn, (img.shape[1], img.shape[0]), flags=cv2.INTER_LINEAR)
            back = cv2.invertAffineTransform(turn)
        side = max(8, int(round(o.min_face_px * scale)))
        boxes, neighbors = cascade.detectMultiScale2(
            img, scaleFactor=one.scale_factor, minSize=(side, side),
            minNeighbors=o.min_neighbors if one.min_neighbors is None else one.min_neighbors)
        found = []
        for (x, y, w, h), n in zip(np.asarray(boxes).reshape(-1, 4), np.asarray(neighbors).reshape(-1)):
            if one.kind == "profile_mirrored":
                x = img.shape[1] - x - w
            if back is not None:
                cx, cy = back @ np.array([x + w / 2, y + h / 2, 1.0])
                x, y = cx - w / 2, cy - h / 2
            box = tuple(int(round(v / scale)) for v in (x, y, w, h))
            found.append(FaceDetection(box, _face_box_for(box, one.kind), one.kind, int(n)))
        return found

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None
        self._frontal = self._profile = None


_PASS_COST = {"profile": 0, "profile_mirrored": 0, "frontal_rolled": 1, "frontal": 2}   # dearest first


def _load_cascade(cv2, name: str):
    path = Path(cv2.data.haarcascades) / name
    cascade = cv2.CascadeClassifier(str(path))
    if cascade.empty():
        raise FileNotFoundError(f"could not load the OpenCV cascade {path}")
    return cascade


def _equalized(gray: np.ndarray, max_width: int) -> tuple[np.ndarray, float]:
    """The frame downscaled to at most max_width pixels wide and histogram-equalised, and its scale."""
    import cv2
    scale = min(1.0, max_width / gray.shape[1])
    if scale < 1.0:
        gray = cv2.resize(gray, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    return cv2.equalizeHist(gray), scale


def _face_box_for(box, kind: str) -> tuple[float, float, float, float]:
    if kind.startswith("frontal"):
        return face_box_from_detection(box)
    mapping = dict(PROFILE_TO_FACE)
    if kind == "profile_mirrored":
        mapping["dx"] = -mapping["dx"]
    return face_box_from_detection(box, mapping)
