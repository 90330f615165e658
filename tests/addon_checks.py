"""Readers of what a bake in Blender left behind, shared by the add-on's tests on 5.0 and 4.2."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from tests.conftest import CLIP_FPS, CLIP_SECONDS

RENDER_FRAME = 58  # the hand covers the right half of the face here (see examples.demo_clip)


def curve_values(curves: dict, name: str) -> np.ndarray:
    """The key values of one F-curve as read by blender_run's fcurves()."""
    return np.array([value for _, value in curves[name]])


def clip_frame(path: Path, index: int) -> np.ndarray:
    """Frame `index` (0-based) of a video, as int BGR."""
    import cv2

    capture = cv2.VideoCapture(str(path))
    for _ in range(index + 1):
        ok, frame = capture.read()
        assert ok, f"{path} has no frame {index}"
    return frame.astype(int)


def composite_differences(render: Path, mask: Path, clip: Path) -> dict:
    """Mean |composite - footage| at RENDER_FRAME where the mask is not face, on the visible face,
    and under the demo clip's hand (paper Fig. 5: only the visible face may change)."""
    import cv2

    from examples.demo_clip import ClipOptions, occluder_coverage

    composite = cv2.imread(str(render)).astype(int)
    mask = cv2.imread(str(mask), cv2.IMREAD_GRAYSCALE)
    footage = clip_frame(clip, RENDER_FRAME - 1)
    assert composite.shape == footage.shape and mask.shape == footage.shape[:2]
    hand = occluder_coverage((RENDER_FRAME - 1) / CLIP_FPS, ClipOptions(seconds=CLIP_SECONDS, fps=CLIP_FPS)) > 0.99
    face = (mask > 247) & ~hand
    difference = np.abs(composite - footage)
    return {"outside": difference[mask < 8].mean(), "face": difference[face].mean(),
            "hand": difference[hand].mean(), "face_pixels": int(face.sum()), "hand_pixels": int(hand.sum())}
