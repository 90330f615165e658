"""Still photos: the mirrored twin of a photo's landmarks, and the face mask as a check on the
detection box.

A still photo gets no second frame to correct a bad start, so FaceTracker in IMAGE mode hedges:
it regresses the photo and its mirror image from several start boxes and takes the per-point
median (test-time flipping, as face alignment papers commonly report it), and it asks the
segmenter whether the Viola-Jones box holds a face at all before starting there, and whether
segmenting around what it found finds a larger face (the box held only part of one).
"""
from __future__ import annotations

import cv2
import numpy as np

# The 68-point (iBUG 300-W) order mirrored left to right: point i of a mirrored face is point
# MIRRORED_LANDMARKS[i] of the face. Jaw, brows, nose wings, eyes and mouth swap sides; the
# nose ridge and the mouth's middle points stay.
MIRRORED_LANDMARKS = np.array(
    list(range(16, -1, -1))                                 # jaw 0-16
    + list(range(26, 16, -1))                               # brows 17-26
    + [27, 28, 29, 30, 35, 34, 33, 32, 31]                  # nose ridge, nostrils
    + [45, 44, 43, 42, 47, 46, 39, 38, 37, 36, 41, 40]      # eyes
    + [54, 53, 52, 51, 50, 49, 48, 59, 58, 57, 56, 55]      # outer lips
    + [64, 63, 62, 61, 60, 67, 66, 65])                     # inner lips

# A mask is "empty" below this share of the segmenter's crop, and "runs out of the crop" when
# more than this share of its pixels lie on the crop's edge (away from the photo's own edge).
# A face fills 23 % of its crop on median; on a third of the landmarks68 photos outside our
# held-out tenth, every start box on the face gave 8.4 % or more and the three off it 0-4.3 %
# (the held-out photos: 9.2 % or more on the face, 0-3.5 % off it).
EMPTY_MASK_SHARE = 0.06
CLIPPED_MASK_SHARE = 0.002
_EDGE_PX = 3
# Segmented again in the box of its own blob, a whole face gives about the same blob (0.8-1.16x
# on our held-out photos); part of a face held by an off-centre box grows (2.1x on the one
# photo where that happened), because the new crop shows the rest of it.
MASK_GROWTH = 1.5


def mirror_landmarks(points: np.ndarray, width: int) -> np.ndarray:
    """Landmarks found on the mirrored photo (x -> width - 1 - x), as landmarks of the photo."""
    out = np.asarray(points, np.float64)[..., MIRRORED_LANDMARKS, :].copy()
    out[..., 0] = width - 1 - out[..., 0]
    return out


def eye_line_roll(points: np.ndarray) -> float:
    """The head's tilt in the image plane (radians), as head_rotation's roll: from the line
    through the outer eye corners (points 36 and 45); 0 for level eyes."""
    dx, dy = np.asarray(points, np.float64)[45] - np.asarray(points, np.float64)[36]
    return float(-np.arctan2(dy, dx))


def mirror_box(box, width: int) -> tuple[float, float, float, float]:
    """An (x, y, w, h) box of the photo, in the mirrored photo."""
    x, y, w, h = (float(v) for v in box)
    return (width - x - w, y, w, h)


def largest_component_box(mask: np.ndarray) -> tuple[tuple[float, float, float, float], int] | None:
    """The bounding box (x, y, w, h) and pixel count of the mask's largest blob; None if empty."""
    count, _, stats, _ = cv2.connectedComponentsWithStats((np.asarray(mask) > 0).astype(np.uint8))
    if count < 2:
        return None
    k = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
    return tuple(float(v) for v in stats[k, :4]), int(stats[k, cv2.CC_STAT_AREA])


def face_blob(mask: np.ndarray, crop_side: float) -> tuple[tuple[float, float, float, float], int] | None:
    """The mask's largest blob (box, pixel count) when it is large enough to be a face in a crop
    of crop_side pixels (EMPTY_MASK_SHARE), else None: the crop held no face."""
    found = largest_component_box(mask)
    return None if found is None or found[1] < EMPTY_MASK_SHARE * crop_side * crop_side else found


def mask_misses_face(mask: np.ndarray, crop_box) -> bool:
    """True when a mask segmented in crop_box says the box is wrong: (almost) no face in the
    crop, or a face that runs out of the crop's edge (the box holds only part of it)."""
    crop_x, crop_y, side, _ = (float(v) for v in crop_box)
    if face_blob(mask, side) is None:
        return True
    h, w = mask.shape
    x0, y0 = int(np.ceil(max(crop_x, 0.0))), int(np.ceil(max(crop_y, 0.0)))
    x1, y1 = int(min(crop_x + side, w)), int(min(crop_y + side, h))
    edge = np.asarray(mask) > 0
    area = int(edge.sum())
    edge[y0 + _EDGE_PX:y1 - _EDGE_PX, x0 + _EDGE_PX:x1 - _EDGE_PX] = False
    # the photo's own border is not the crop's fault: a face may be cut by the frame
    edge[:_EDGE_PX] = edge[h - _EDGE_PX:] = False
    edge[:, :_EDGE_PX] = edge[:, w - _EDGE_PX:] = False
    return int(edge.sum()) > CLIPPED_MASK_SHARE * area


def mask_grew(before: int, after: int) -> bool:
    """True when a face blob of `before` pixels, segmented again in its own box, gives a blob of
    `after` pixels so much larger that the first crop can only have held part of the face."""
    return after > MASK_GROWTH * max(before, 1)
