"""A contact sheet of a clip's expressions: the real frame above, the face model with the tracked
blendshapes below (frontal, mean identity), for frames spread evenly over the clip.

Run: .venv/bin/python -m examples.expression_sheet [--clip expressions_grimaces] [--tiles 12] [--raw]
Tracks the clip with FaceTracker (repeatable identity solves; --raw: TrackerOptions(steady=None),
the raw regressions), and writes reports/expression_sheet_<clip>[_raw].jpg. Each tile names the
three strongest channels. The frames are chosen by time only, not by what the tracker saw.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np

from core.face.camera import head_rotation
from core.face.facs import FACS_NAMES
from core.face.render import render_face
from core.io.files import write_image
from core.io.sources import open_source
from core.track.tracker import FaceTracker, TrackerOptions

REPORTS = Path(__file__).resolve().parents[1] / "reports"
TILE = 200


def face_crop(frame: np.ndarray, landmarks: np.ndarray | None) -> np.ndarray:
    """A square around the landmarks (the whole frame when there are none), TILE pixels wide."""
    h, w = frame.shape[:2]
    if landmarks is None:
        side, cx, cy = min(h, w), w / 2, h / 2
    else:
        lo, hi = landmarks.min(0), landmarks.max(0)
        side, (cx, cy) = 1.6 * float((hi - lo).max()), (lo + hi) / 2
    scale = TILE / side
    m = np.array([[scale, 0, TILE / 2 - cx * scale], [0, scale, TILE / 2 - cy * scale]])
    return cv2.warpAffine(frame, m, (TILE, TILE), borderMode=cv2.BORDER_CONSTANT)


class FrontalHead:
    """The face model seen from the front, filling a TILE x TILE picture."""

    def __init__(self, model):
        self.model = model
        self.rotation = head_rotation(0.0, 0.0, 0.0)
        points = model.neutral[model.landmark_vertex_ids] @ self.rotation.T
        centre = (points.min(0) + points.max(0)) / 2
        span = float((points.max(0) - points.min(0))[:2].max())
        self.translation = -centre + np.array([0.0, 0.0, 60.0])
        self.focal = TILE / 1.6 * 60.0 / span

    def __call__(self, blendshapes: np.ndarray) -> np.ndarray:
        vertices = self.model.vertices(None, blendshapes)
        image, _, _ = render_face(self.model, vertices, self.rotation, self.translation, self.focal, (TILE, TILE),
                                  background=np.full((TILE, TILE, 3), 40, np.uint8))
        return image


def label(tile: np.ndarray, lines: list[str]) -> np.ndarray:
    out = tile.copy()
    for k, text in enumerate(lines):
        cv2.putText(out, text, (4, 14 + 14 * k), cv2.FONT_HERSHEY_SIMPLEX, 0.38, (255, 255, 255), 1, cv2.LINE_AA)
    return out


def main() -> None:
    from evaluation.paths import require_data

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clip", default="expressions_grimaces")
    parser.add_argument("--tiles", type=int, default=12)
    parser.add_argument("--raw", action="store_true", help="raw regressions (TrackerOptions(steady=None))")
    parser.add_argument("--frames", type=int, default=0, help="only the first N frames (0: all)")
    args = parser.parse_args()
    options = TrackerOptions(synchronous_adaptation=True, **({"steady": None} if args.raw else {}))
    with open_source(require_data("videos") / f"{args.clip}.mp4") as source:
        frames = [f.image for k, f in enumerate(source) if not args.frames or k < args.frames]
    with FaceTracker(options) as tracker:
        results = [tracker.track(f) for f in frames]
        head = FrontalHead(tracker.model)
    picks = np.linspace(0, len(frames) - 1, args.tiles + 2).astype(int)[1:-1]
    columns = []
    for i in picks:
        r = results[i]
        weights = r.blendshapes if r.ok else np.zeros(len(FACS_NAMES))
        top = [f"{FACS_NAMES[k]} {weights[k]:.2f}" for k in np.argsort(-weights)[:3] if weights[k] >= 0.1]
        above = label(face_crop(frames[i], r.landmarks if r.ok else None), [f"frame {i}"])
        columns.append(np.vstack([above, label(head(weights), top)]))
    rows = [np.hstack(columns[k:k + 6]) for k in range(0, len(columns), 6)]
    path = REPORTS / f"expression_sheet_{args.clip}{'_raw' if args.raw else ''}.jpg"
    write_image(path, np.vstack(rows))
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
