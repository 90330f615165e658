"""Every face of a video without detecting on every frame: detect every N frames, follow between.

The detector costs several times the segmenter's 10 ms a face (core.detect.cnn). Between
two detections each face is segmented from a box placed on its previous mask (the square about
the mask's bounding box, its side half the previous side and half the mask's longer side, as a
face box is the face region's bounding box), so the box moves and grows with the face. A face
whose mask vanishes or scores below `min_score` (it left the frame or something covers it) is
dropped and the frame is detected again at once. At a detection the followed faces that no
detected box overlaps are segmented too, and kept if they still score enough: a detector misses
a face in some frames, and detecting would otherwise drop it until the next detection. A face that enters the picture is found at the
next detection, at most N - 1 frames late (also when no face was in the picture before).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..detect.cnn import CnnFaceDetector
from ..detect.detection import _overlap
from ..io.image_input import as_bgr_uint8
from ..segment.segmentation import DEFAULT_MIN_SCORE, FaceMask, FaceSegmenter

__all__ = ["FollowOptions", "FaceFollower", "box_from_mask"]


@dataclass
class FollowOptions:
    """detect_every: a full detection every this many frames (1: every frame, nothing followed:
      the faces of each frame are what its detection finds, as without a follower).
    min_score: faces (detected or followed) scoring below this are dropped.
    merge_overlap: two followed boxes overlapping more than this (IoU, or share of the smaller)
    have become one face: the weaker is dropped."""
    detect_every: int = 10
    min_score: float = DEFAULT_MIN_SCORE
    merge_overlap: float = 0.45

    def __post_init__(self):
        if int(self.detect_every) < 1:
            raise ValueError(f"detect_every must be at least 1, got {self.detect_every}")


def box_from_mask(mask: np.ndarray, previous_side: float) -> tuple[float, float, float, float] | None:
    """The next face box for a followed face: a square about the mask's bounding box, its side the
    mean of the previous side and the box's longer side (a hand over the face shrinks the mask
    for a while; the box follows it halfway). None for an empty mask."""
    ys, xs = np.nonzero(mask)
    if len(xs) == 0:
        return None
    x0, x1, y0, y1 = xs.min(), xs.max() + 1, ys.min(), ys.max() + 1
    side = 0.5 * (previous_side + max(x1 - x0, y1 - y0))
    cx, cy = (x0 + x1) / 2.0, (y0 + y1) / 2.0
    return (cx - side / 2.0, cy - side / 2.0, side, side)


class FaceFollower:
    """`step(frame)` gives the frame's faces (FaceMask, largest first), detecting every
    `detect_every` frames and following the faces in between. `detections` counts the frames
    detected, `last_detected` says whether the last step detected."""

    def __init__(self, segmenter: FaceSegmenter, detector: CnnFaceDetector, options: FollowOptions | None = None):
        self.segmenter = segmenter
        self.detector = detector
        self.options = options or FollowOptions()
        self._faces: list[FaceMask] = []
        self._since_detection = 0
        self._started = False
        self.detections = 0
        self.last_detected = False

    def reset(self) -> None:
        """Forget the followed faces: the next frame is detected (a cut in the footage)."""
        self._faces = []
        self._since_detection = 0
        self._started = False

    def resume(self, faces: list[FaceMask]) -> None:
        """Follow these faces (a frame's result read back from an earlier run) as if this frame
        had just been stepped: they count as detected now."""
        self._faces = list(faces)
        self._since_detection = 0
        self._started = True

    def step(self, frame) -> list[FaceMask]:
        image = as_bgr_uint8(frame, "frame")
        due = not self._started or self._since_detection >= self.options.detect_every - 1
        faces = None if due else self._follow(image)
        self.last_detected = faces is None
        if faces is None:
            faces = self._detect(image)
        else:
            self._since_detection += 1
        self._faces = faces
        return faces

    def _detect(self, image: np.ndarray) -> list[FaceMask]:
        """The detected faces, and (when following, detect_every > 1) the followed ones no
        detection overlaps (the detector misses a face now and then; its followed box still finds
        it), each kept if it scores enough."""
        boxes = [d.face_box for d in self.detector.detect(image)]
        followed = self._followed_boxes(image.shape) if self.options.detect_every > 1 else []
        for box in followed:
            if box is not None and all(_overlap(box, b) <= self.options.merge_overlap for b in boxes):
                boxes.append(box)
        self.detections += 1
        self._since_detection = 0
        self._started = True
        faces = self.segmenter.segment_all(image, boxes, min_score=self.options.min_score)
        return _drop_merged(faces, self.options.merge_overlap)

    def _followed_boxes(self, shape) -> list:
        """Per followed face its next box, or None when its mask is empty or its box's centre left the frame."""
        height, width = shape[:2]
        out = []
        for face in self._faces:
            box = box_from_mask(face.mask, face.box[2])
            inside = box is not None and 0 <= box[0] + box[2] / 2 < width and 0 <= box[1] + box[3] / 2 < height
            out.append(box if inside else None)
        return out

    def _follow(self, image: np.ndarray) -> list[FaceMask] | None:
        """The followed faces on this frame, or None when one was lost (detect instead)."""
        if not self._faces:
            return []
        boxes = self._followed_boxes(image.shape)
        if any(box is None for box in boxes):
            return None
        faces = self.segmenter.segment_all(image, boxes, min_score=self.options.min_score)
        if len(faces) < len(boxes):
            return None
        return _drop_merged(faces, self.options.merge_overlap)


def _drop_merged(faces: list[FaceMask], overlap: float) -> list[FaceMask]:
    """Followed faces whose boxes now overlap more than `overlap`: the higher-scoring one stays."""
    kept: list[FaceMask] = []
    for face in sorted(faces, key=lambda f: -f.score):
        if all(_overlap(face.box, k.box) <= overlap for k in kept):
            kept.append(face)
    return sorted(kept, key=lambda f: f.box[2] * f.box[3], reverse=True)
