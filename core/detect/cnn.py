"""Every face in a frame with a CNN: CenterFace (Xu et al., "CenterFace: joint face detection and
alignment using face as point", 2020) run by ONNX Runtime; weights in models/face_detector.onnx (MIT).

    with CnnFaceDetector() as detector:
        faces = detector.detect(frame_bgr)      # [DetectedFace(box, face_box, score, landmarks)], largest first

The frame is scaled so that its longer side is `input_side_px` (up to `max_upscale` times larger:
a 640x480 frame is seen at 960x720, which finds faces of 40 px, greyscale ones too, that the frame's
own size misses), padded on the right and bottom to multiples of 32, and run; with `mirror`, its
mirror image too (twice the time: on hard group photos the same recall with half the false faces
before the segmenter's score filter, docs/benchmarks.md). The network's heat map (stride 4) marks
face centres; each cell above `score_threshold` gives a box from the predicted size and sub-cell
offset, and five landmarks; overlapping boxes merge by non-maximum suppression. Each face also gets the square face box that the segmenter expects (the face region,
hairline to chin and ear to ear), through FACE_BOX_FROM_DETECTION. Boxes are in the frame's pixels,
x right and y down.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

import numpy as np

from ..io.files import shipped_model_path
from ..io.closing import Closing
from ..io.image_input import as_bgr_uint8
from ..io.onnx_runtime import open_session

__all__ = ["Box", "DetectedFace", "CnnDetectorOptions", "CnnFaceDetector", "DetectorModelError",
           "default_detector_path", "FACE_BOX_FROM_DETECTION", "non_maximum_suppression", "detect_all_faces"]

STRIDE = 4          # the heat map's cell, in network input pixels
PAD_TO = 32         # the network's input sides must be multiples of this

# How a CenterFace box maps to the face region's bounding box: centre shift (dx, dy) in units of the
# box's width and the square's side in units of the box's height. Medians over the 333 faces matched
# on 80 hard group photos made from lfw_parts and celebamask_mini *train* faces, default options
# (`python -m evaluation.detector_recall --calibrate --scenes 80`; 10-90 %: dx -0.09..0.09,
# dy -0.10..0.03, size 0.99..1.21).
FACE_BOX_FROM_DETECTION = {"dx": 0.001, "dy": -0.023, "size": 1.083}


class Box(NamedTuple):
    """An axis-aligned box in frame pixels: (x, y) its top-left corner, w and h its size."""
    x: float
    y: float
    w: float
    h: float

    @property
    def centre(self) -> tuple[float, float]:
        return (self.x + self.w / 2.0, self.y + self.h / 2.0)

    @property
    def area(self) -> float:
        return self.w * self.h


@dataclass(frozen=True)
class DetectedFace:
    """One face: the detector's box, the square face box for the segmenter, the score (the heat
    map's peak, 0..1) and five landmarks (5, 2) in frame pixels: the eye on the image's left, the
    other eye, the nose tip, the mouth corner on the image's left, the other mouth corner."""
    box: Box
    face_box: Box
    score: float
    landmarks: np.ndarray = field(repr=False, compare=False)


class DetectorModelError(RuntimeError):
    """The detector's model file exists but cannot be used (corrupt, or not a CenterFace network)."""


def default_detector_path() -> Path:
    return shipped_model_path("face_detector.onnx")


@dataclass
class CnnDetectorOptions:
    """How CnnFaceDetector runs.

    input_side_px: the frame is scaled so that its longer side is this many pixels (the network's
      cost grows with its area: 960x720 takes about 2.3x 640x480's time).
    max_upscale: ... but never enlarged more than this (a small frame is not blown up without end).
    mirror: run the mirrored frame too (twice the time; fewer false faces at a higher threshold).
    score_threshold: faces whose heat map peak is below this are dropped.
    nms_iou: boxes overlapping a stronger one by more than this IoU are dropped.
    min_face_px: boxes shorter than this (frame pixels) are dropped.
    device: "cpu", "auto" (CUDA when an ONNX Runtime session comes up on it) or "cuda" (core.io.onnx_runtime).
    threads: ONNX Runtime's threads for one detection (1 leaves the other core to other work).
    """
    model_path: str | Path | None = None
    input_side_px: int = 960
    max_upscale: float = 1.5
    mirror: bool = False
    score_threshold: float = 0.2
    nms_iou: float = 0.3
    min_face_px: float = 0.0
    device: str = "cpu"
    threads: int = 1

    def __post_init__(self):
        if int(self.input_side_px) < PAD_TO:
            raise ValueError(f"input_side_px must be at least {PAD_TO}, got {self.input_side_px}")
        if not self.max_upscale >= 1.0:
            raise ValueError(f"max_upscale must be at least 1, got {self.max_upscale}")
        if not 0.0 <= self.score_threshold < 1.0:
            raise ValueError(f"score_threshold must be in [0, 1), got {self.score_threshold}")
        if not 0.0 < self.nms_iou <= 1.0:
            raise ValueError(f"nms_iou must be in (0, 1], got {self.nms_iou}")
        if int(self.threads) < 1:
            raise ValueError(f"threads must be at least 1, got {self.threads}")

    @classmethod
    def fast(cls) -> "CnnDetectorOptions":
        """The frame at 640 px: about 2.3x quicker at 640x480, finds fewer small, rolled and greyscale faces."""
        return cls(input_side_px=640)

    @classmethod
    def tracker(cls) -> "CnnDetectorOptions":
        """The tracker's start in a video: one performer near the camera, the frame at 320 px, one
        pass (run on every frame while the face is lost, so it must cost no more than the cascade did)."""
        return cls(input_side_px=320, score_threshold=0.3)

    @classmethod
    def still_photo(cls) -> "CnnDetectorOptions":
        """The tracker's start on a still photo (one chance): the frame at 480 px, one pass (at 320 px
        the network scored some faces that fill a 256 px photo below 0.3)."""
        return cls(input_side_px=480, score_threshold=0.3)


class CnnFaceDetector(Closing):
    """Every face of a frame with CenterFace on ONNX Runtime. Create once, call per frame, close (or `with`)."""

    def __init__(self, options: CnnDetectorOptions | None = None):
        self.options = options or CnnDetectorOptions()
        path = Path(self.options.model_path or default_detector_path())
        if not path.is_file():
            raise FileNotFoundError(f"face detector model not found: {path} (rebuild it with "
                                    "`python -m training.detector.build` or pass model_path)")
        self.model_path = path
        self._session, self.device_note = open_session(path, self.options.device, self.options.threads, 1,
                                                       DetectorModelError, "face detector model")
        inputs = self._session.get_inputs()
        outputs = [o.name for o in self._session.get_outputs()]
        if len(inputs) != 1 or len(inputs[0].shape) != 4 or inputs[0].shape[1] != 3 \
                or outputs != ["heatmap", "box_size", "offset", "landmarks"]:
            raise DetectorModelError(
                f"{path} is not maskcap's face detector: expected one input (1, 3, H, W) and the outputs "
                f"heatmap, box_size, offset, landmarks; found inputs {[(i.name, i.shape) for i in inputs]} "
                f"and outputs {outputs}")
        self._input = inputs[0].name
        self.provider = self._session.get_providers()[0]

    def input_scale(self, frame_shape) -> float:
        """The factor the frame is scaled by before the network."""
        longer = max(frame_shape[0], frame_shape[1])
        return min(self.options.input_side_px / longer, self.options.max_upscale)

    def network_input(self, frame_bgr: np.ndarray) -> tuple[np.ndarray, float]:
        """(1, 3, H, W) float32 RGB 0..255, the scaled frame at the top left, zeros beyond; and the scale."""
        import cv2
        h, w = frame_bgr.shape[:2]
        scale = self.input_scale(frame_bgr.shape)
        sw, sh = max(1, round(w * scale)), max(1, round(h * scale))
        if (sw, sh) != (w, h):
            frame_bgr = cv2.resize(frame_bgr, (sw, sh), interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
        x = np.zeros((1, 3, math.ceil(sh / PAD_TO) * PAD_TO, math.ceil(sw / PAD_TO) * PAD_TO), np.float32)
        x[0, :, :sh, :sw] = frame_bgr[:, :, ::-1].transpose(2, 0, 1)
        return x, sw / w

    def detect(self, image) -> list[DetectedFace]:
        """Every face of the frame (BGR, BGRA or grey uint8), largest box first."""
        if self._session is None:
            raise RuntimeError("the face detector was closed")
        frame = as_bgr_uint8(image, "image")
        boxes, scores, landmarks, scale = self._pass(frame)
        if self.options.mirror:
            more, more_scores, more_points, _ = self._pass(np.ascontiguousarray(frame[:, ::-1]))
            width = frame.shape[1] * scale
            more[:, [0, 2]] = width - more[:, [2, 0]]
            more_points[:, :, 0] = width - more_points[:, :, 0]
            more_points = more_points[:, [1, 0, 2, 4, 3]]   # the image's left eye and mouth corner first again
            boxes, scores = np.concatenate([boxes, more]), np.concatenate([scores, more_scores])
            landmarks = np.concatenate([landmarks, more_points])
        keep = non_maximum_suppression(boxes, scores, self.options.nms_iou)
        boxes, scores, landmarks = boxes[keep] / scale, scores[keep], landmarks[keep] / scale
        faces = []
        for (x0, y0, x1, y1), score, points5 in zip(boxes, scores, landmarks):
            if y1 - y0 < self.options.min_face_px:
                continue
            box = Box(float(x0), float(y0), float(x1 - x0), float(y1 - y0))
            faces.append(DetectedFace(box, face_box_from_detection(box), float(score), points5))
        return sorted(faces, key=lambda f: f.box.area, reverse=True)

    def _pass(self, frame: np.ndarray):
        """One network pass: boxes (N, 4), scores, landmarks (N, 5, 2) in scaled-frame pixels, and the scale."""
        x, scale = self.network_input(frame)
        heat, size, offset, points = self._session.run(None, {self._input: x})
        return (*decode(heat[0, 0], size[0], offset[0], points[0], self.options.score_threshold), scale)

    def close(self) -> None:
        self._session = None


def decode(heat: np.ndarray, size: np.ndarray, offset: np.ndarray, points: np.ndarray, threshold: float):
    """The network's maps (heat HxW, size 2xHxW, offset 2xHxW, points 10xHxW) -> boxes (N, 4) as
    x0, y0, x1, y1, scores (N,) and landmarks (N, 5, 2) in network input pixels."""
    ys, xs = np.nonzero(heat > threshold)
    if len(ys) == 0:
        return np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros((0, 5, 2), np.float32)
    height = np.exp(size[0, ys, xs]) * STRIDE
    width = np.exp(size[1, ys, xs]) * STRIDE
    cy = (ys + offset[0, ys, xs] + 0.5) * STRIDE
    cx = (xs + offset[1, ys, xs] + 0.5) * STRIDE
    x0, y0 = cx - width / 2, cy - height / 2
    boxes = np.stack([x0, y0, x0 + width, y0 + height], axis=1)
    landmarks = np.stack([points[1::2, ys, xs].T * width[:, None] + x0[:, None],
                          points[0::2, ys, xs].T * height[:, None] + y0[:, None]], axis=2)
    return boxes, heat[ys, xs], landmarks


def non_maximum_suppression(boxes: np.ndarray, scores: np.ndarray, iou: float) -> np.ndarray:
    """Indices of the boxes (N, 4: x0, y0, x1, y1) kept by greedy NMS, strongest first."""
    order = np.argsort(-scores, kind="stable")
    area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    keep = []
    while len(order):
        best, rest = order[0], order[1:]
        keep.append(best)
        w = np.minimum(boxes[best, 2], boxes[rest, 2]) - np.maximum(boxes[best, 0], boxes[rest, 0])
        h = np.minimum(boxes[best, 3], boxes[rest, 3]) - np.maximum(boxes[best, 1], boxes[rest, 1])
        inter = np.clip(w, 0, None) * np.clip(h, 0, None)
        overlap = inter / np.maximum(area[best] + area[rest] - inter, 1e-9)
        order = rest[overlap <= iou]
    return np.array(keep, dtype=np.int64)


def face_box_from_detection(box: Box, mapping: dict | None = None) -> Box:
    """The square face-region box (hairline to chin, ear to ear) for a CenterFace box."""
    m = mapping or FACE_BOX_FROM_DETECTION
    cx, cy = box.centre
    cx += m["dx"] * box.w
    cy += m["dy"] * box.w
    side = m["size"] * box.h
    return Box(cx - side / 2, cy - side / 2, side, side)


_default_detector: CnnFaceDetector | None = None


def detect_all_faces(image) -> list[DetectedFace]:
    """Every face with the default CnnDetectorOptions, largest first (a shared detector)."""
    global _default_detector
    if _default_detector is None:
        _default_detector = CnnFaceDetector()
    return _default_detector.detect(image)
