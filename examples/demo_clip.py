"""A demo clip that needs no shared data: a photo that scikit-image ships, moved like a head,
with a hand-like occluder passing over the face.

The photo is scikit-image's `astronaut` (Eileen Collins, NASA; public domain, see
skimage/data/README.txt). The head motion is an in-plane affine warp (roll, translation, scale)
over time; the occluder is a skin-toned palm with fingers that sweeps across the lower face in
the middle of the clip, so that the segmenter has something to cut out.

    python -m examples.demo_clip --out out/demo_clip.mp4 --seconds 4
"""
from __future__ import annotations

import argparse
import math
import os
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

FACE_CENTRE_PX = (222.0, 118.0)  # the astronaut's face centre in the 512x512 photo
HAND_BGR = (118, 150, 205)       # a light skin tone, BGR
HAND_EDGE_BGR = (70, 96, 150)
HAND_SPAN = 0.32                 # the hand's palm width as a fraction of the frame height


@dataclass(frozen=True)
class ClipOptions:
    seconds: float = 4.0
    fps: float = 30.0
    size: tuple[int, int] = (640, 480)  # width, height
    face_scale: float = 1.6             # photo pixels -> clip pixels at rest
    roll_deg: float = 8.0               # amplitude of the head's in-plane rotation
    shift_px: tuple[float, float] = (30.0, 12.0)
    occluder_start_s: float = 1.2       # when the hand enters; it takes occluder_seconds to cross
    occluder_seconds: float = 1.6


def astronaut_bgr() -> np.ndarray:
    """scikit-image's astronaut photo (shipped in its wheel, no download) as BGR uint8."""
    from skimage import data

    return cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR)


def head_warp(t: float, options: ClipOptions) -> np.ndarray:
    """2x3 affine map photo -> clip at time t seconds: the face centre lands near the frame's
    centre, swaying, nodding in scale and rolling with incommensurate periods."""
    width, height = options.size
    roll = options.roll_deg * math.sin(2 * math.pi * t / 2.3)
    scale = options.face_scale * (1.0 + 0.06 * math.sin(2 * math.pi * t / 3.1))
    dx = options.shift_px[0] * math.sin(2 * math.pi * t / 2.9)
    dy = options.shift_px[1] * math.sin(2 * math.pi * t / 1.7)
    matrix = cv2.getRotationMatrix2D(FACE_CENTRE_PX, roll, scale)
    matrix[:, 2] += np.array([width / 2 + dx, height * 0.42 + dy]) - np.array(FACE_CENTRE_PX)
    return matrix


def hand_mask(centre: tuple[float, float], size: tuple[int, int], span_px: float) -> np.ndarray:
    """float32 coverage in [0, 1] of an upright hand (palm, four fingers, thumb) of width span_px."""
    width, height = size
    scale = 8  # draw at 8x for smooth edges, then area-downsample
    canvas = np.zeros((height * scale // 4, width * scale // 4), np.uint8)
    k = scale / 4
    cx, cy, s = centre[0] * k, centre[1] * k, span_px * k
    cv2.ellipse(canvas, (int(cx), int(cy + 0.25 * s)), (int(0.5 * s), int(0.6 * s)), 0, 0, 360, 255, -1)
    for i, length in enumerate((0.75, 0.9, 0.85, 0.65)):  # fingers, left to right
        x = cx + (i - 1.5) * 0.26 * s
        top = cy - length * s
        cv2.rectangle(canvas, (int(x - 0.11 * s), int(top)), (int(x + 0.11 * s), int(cy)), 255, -1)
        cv2.circle(canvas, (int(x), int(top)), int(0.11 * s), 255, -1)
    thumb = np.array([[cx + 0.45 * s, cy + 0.3 * s], [cx + 0.95 * s, cy - 0.15 * s],
                      [cx + 1.05 * s, cy - 0.02 * s], [cx + 0.5 * s, cy + 0.6 * s]], np.int32)
    cv2.fillConvexPoly(canvas, thumb, 255)
    small = cv2.resize(canvas, (width, height), interpolation=cv2.INTER_AREA)
    return small.astype(np.float32) / 255.0


def occluder_centre(t: float, options: ClipOptions) -> tuple[float, float] | None:
    """Where the hand is at time t (it sweeps right to left across the lower face), or None."""
    progress = (t - options.occluder_start_s) / options.occluder_seconds
    if not 0.0 <= progress <= 1.0:
        return None
    width, height = options.size
    return (width * 1.2 - progress * width * 1.4, height * 0.70)


def occluder_coverage(t: float, options: ClipOptions) -> np.ndarray | None:
    """float32 (height, width) coverage of the hand at time t, or None when it is out of view."""
    centre = occluder_centre(t, options)
    return None if centre is None else hand_mask(centre, options.size, HAND_SPAN * options.size[1])


def render_frame(photo: np.ndarray, t: float, options: ClipOptions) -> np.ndarray:
    """The clip's frame at time t seconds, BGR uint8 of options.size."""
    frame = cv2.warpAffine(photo, head_warp(t, options), options.size, flags=cv2.INTER_LINEAR,
                           borderMode=cv2.BORDER_REFLECT_101)
    coverage = occluder_coverage(t, options)
    if coverage is not None:
        span = HAND_SPAN * options.size[1]
        coverage = coverage[..., None]
        # shade the hand from its edge inwards so it reads as a solid object, not a flat cut-out
        inner = cv2.GaussianBlur(coverage, (0, 0), span * 0.08)[..., None]
        hand = np.array(HAND_EDGE_BGR, np.float32) + inner * (np.array(HAND_BGR, np.float32) - HAND_EDGE_BGR)
        frame = (frame * (1 - coverage) + hand * coverage).astype(np.uint8)
    return frame


def demo_frames(options: ClipOptions = ClipOptions()):
    """Yield the clip's frames in order."""
    photo = astronaut_bgr()
    for index in range(round(options.seconds * options.fps)):
        yield render_frame(photo, index / options.fps, options)


def write_demo_clip(path: str | Path, options: ClipOptions = ClipOptions()) -> Path:
    """Write the clip as MPEG-4 (mp4v) at path, atomically; return the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name("." + path.name + ".tmp" + path.suffix)
    writer = cv2.VideoWriter(str(partial), cv2.VideoWriter_fourcc(*"mp4v"), options.fps, options.size)
    if not writer.isOpened():
        raise OSError(f"OpenCV cannot write a video at {partial}")
    try:
        for frame in demo_frames(options):
            writer.write(frame)
        writer.release()
        os.replace(partial, path)
    finally:
        writer.release()
        partial.unlink(missing_ok=True)
    return path


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("out/demo_clip.mp4"))
    parser.add_argument("--seconds", type=float, default=ClipOptions.seconds)
    parser.add_argument("--fps", type=float, default=ClipOptions.fps)
    args = parser.parse_args(argv)
    path = write_demo_clip(args.out, ClipOptions(seconds=args.seconds, fps=args.fps))
    print(f"wrote {path} ({args.seconds:g} s at {args.fps:g} fps, 640x480)")


if __name__ == "__main__":
    main()
