"""Pictures of tracked frames: the frame with its face mask tinted and landmarks drawn, a grid of
them (contact sheet), and the small RGBA preview the add-on shows."""
from __future__ import annotations

import cv2
import numpy as np

from ..track.tracker import TrackResult

__all__ = ["draw_preview", "contact_sheet", "mask_preview_rgba", "SHEET_TILES"]


def draw_preview(image: np.ndarray, result: TrackResult) -> np.ndarray:
    """The frame with the face mask tinted green and the landmarks drawn."""
    out = image.copy()
    if result.mask is not None and result.mask.any():
        m = result.mask.astype(bool)
        out[m] = (0.6 * out[m] + np.array([0, 100, 0])).astype(np.uint8)
    if result.landmarks is not None:
        colour = (0, 220, 255) if result.ok else (0, 0, 255)
        for x, y in result.landmarks:
            cv2.circle(out, (int(round(x)), int(round(y))), 2, colour, -1, cv2.LINE_AA)
    cv2.putText(out, f"{'ok' if result.ok else 'lost'} {result.confidence:.2f}", (8, 20),
                cv2.FONT_HERSHEY_SIMPLEX, 0.5, (255, 255, 255), 1, cv2.LINE_AA)
    return out


SHEET_TILES = 8


def contact_sheet(tiles: list[np.ndarray], columns: int = 4) -> np.ndarray:
    """Preview frames in a grid, scaled to 320 pixels wide each."""
    scaled = [cv2.resize(t, (320, int(round(320 * t.shape[0] / t.shape[1])))) for t in tiles]
    blank = np.zeros_like(scaled[0])
    rows = [np.hstack((scaled[i:i + columns] + [blank] * columns)[:columns]) for i in range(0, len(scaled), columns)]
    return np.vstack(rows)


def mask_preview_rgba(image_bgr: np.ndarray, result: TrackResult, width: int = 320) -> np.ndarray:
    """A small RGBA float32 picture, bottom row first (Blender's pixel order): the frame with
    the face mask tinted and the landmarks drawn."""
    picture = draw_preview(image_bgr, result)
    h, w = picture.shape[:2]
    height = max(1, int(round(h * width / w)))
    small = cv2.resize(picture, (width, height), interpolation=cv2.INTER_AREA)
    rgba = cv2.cvtColor(small, cv2.COLOR_BGR2RGBA)[::-1]
    return np.ascontiguousarray(rgba, np.float32) * np.float32(1.0 / 255.0)
