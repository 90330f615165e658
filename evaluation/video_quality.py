"""Tracking quality on video without ground truth: what an animator sees (bench.tracking_quality).

Every measure here compares a tool's output with an independent geometric reading of the same
frames from MediaPipe FaceMesh's 478 points (eyelids, irises, lips, brows), never with the
tracker's own idea of the face:
- `expression_geometry`: rigid-motion-free measures per frame (eye openness, mouth opening, jaw
  drop, mouth width, mouth-corner lift, brow heights), in units of the outer-eye-corner distance;
- `static_expression_frames`: frames inside windows where those measures stay still (the face may
  move rigidly), and among them the frames of windows where the head also moves;
- `jitter`: the mean second difference of the landmarks there (a steady track of a smoothly
  moving head has next to none), over the outer-eye-corner distance;
- `blink_scores`: per eye, closed frames (openness under 45 % of the clip's open eye) and open
  frames (over 75 %), and how often EyeBlink is at least 0.5 on each;
- `channel_correlations`: JawOpen, MouthSmile and BrowsU against jaw drop, smile geometry and
  brow height; `antagonist_frames`: frames where both channels of a pair exceed 0.3;
- `lag_frames`: how many frames a track's motion trails dlib's per-frame detections.
"""
from __future__ import annotations

import numpy as np

# MediaPipe FaceMesh indices; the subject's right eye is on the image's left
MP_RIGHT_EYE = {"corners": (33, 133), "lids": ((159, 145), (158, 153), (160, 144))}
MP_LEFT_EYE = {"corners": (362, 263), "lids": ((386, 374), (385, 380), (387, 373))}
MP_OUTER_EYE_CORNERS = (33, 263)
MP_BROWS_INNER = (107, 66, 336, 296)
MP_BROWS_OUTER = (105, 70, 334, 300)
MP_INNER_LIPS = (13, 14)       # upper, lower
MP_UPPER_LIP_TOP = 0
MP_MOUTH_CORNERS = (61, 291)   # subject's right, left
MP_NOSE_BOTTOM, MP_CHIN = 2, 152

# how still the measures must stay over a window to call the expression static (outer-eye units;
# eye openness in its own ratio)
STATIC_LIMITS = {"eye_openness_R": 0.04, "eye_openness_L": 0.04, "mouth_open": 0.03, "mouth_width": 0.03,
                 "corner_lift": 0.02, "brow_inner": 0.02, "brow_outer": 0.02}
STATIC_WINDOW = 15           # frames (half a second at 30 fps)
MOVING_PATH = 0.15           # a window's head path (outer-eye distances) to count as moving
CLOSED_BELOW, OPEN_ABOVE = 0.45, 0.75   # of the clip's open-eye openness (its 75th percentile)


def expression_geometry(mesh: np.ndarray) -> dict[str, np.ndarray]:
    """Measures per frame from MediaPipe's points (N, 478, 2+) (NaN rows where no face)."""
    p = np.asarray(mesh, np.float64)[:, :, :2]
    a, b = MP_OUTER_EYE_CORNERS
    iod = np.linalg.norm(p[:, b] - p[:, a], axis=1)
    across = (p[:, b] - p[:, a]) / iod[:, None]
    down = np.stack([-across[:, 1], across[:, 0]], axis=1)   # along the face, towards the chin

    def openness(eye) -> np.ndarray:
        c0, c1 = eye["corners"]
        width = np.linalg.norm(p[:, c0] - p[:, c1], axis=1)
        return np.mean([np.linalg.norm(p[:, u] - p[:, lo], axis=1) for u, lo in eye["lids"]], axis=0) / width

    def along(i: int, j: int) -> np.ndarray:  # (p_j - p_i) . down / iod
        return ((p[:, j] - p[:, i]) * down).sum(1) / iod

    eye_middle = p[:, [33, 133, 362, 263]].mean(1)

    def brow(ids) -> np.ndarray:
        return np.mean([((eye_middle - p[:, k]) * down).sum(1) / iod for k in ids], axis=0)

    right, left = MP_MOUTH_CORNERS
    return {
        "eye_openness_R": openness(MP_RIGHT_EYE), "eye_openness_L": openness(MP_LEFT_EYE),
        "mouth_open": np.linalg.norm(p[:, MP_INNER_LIPS[1]] - p[:, MP_INNER_LIPS[0]], axis=1) / iod,
        "jaw_drop": along(MP_NOSE_BOTTOM, MP_CHIN),
        "mouth_width": np.linalg.norm(p[:, left] - p[:, right], axis=1) / iod,
        "corner_lift": (along(right, MP_UPPER_LIP_TOP) + along(left, MP_UPPER_LIP_TOP)) / 2,
        "brow_inner": brow(MP_BROWS_INNER), "brow_outer": brow(MP_BROWS_OUTER),
        "eye_distance": iod, "centre": p[:, [33, 263, 1, 152]].mean(1),
    }


def zscore(v: np.ndarray) -> np.ndarray:
    return (v - np.nanmean(v)) / (np.nanstd(v) + 1e-12)


def smile_geometry(g: dict) -> np.ndarray:
    """Mouth corners raised towards the upper lip and pulled apart, as one score (z-scores)."""
    return zscore(g["corner_lift"]) + zscore(g["mouth_width"])


def brow_geometry(g: dict) -> np.ndarray:
    return (zscore(g["brow_inner"]) + zscore(g["brow_outer"])) / 2


def static_expression_frames(g: dict, window: int = STATIC_WINDOW) -> tuple[np.ndarray, np.ndarray]:
    """(static, static_and_moving) boolean masks over frames."""
    n = len(g["eye_distance"])
    static, moving = np.zeros(n, bool), np.zeros(n, bool)
    for s in range(n - window + 1):
        part = slice(s, s + window)
        if not np.all(np.isfinite(g["eye_distance"][part])):
            continue
        if all(np.ptp(g[k][part]) < limit for k, limit in STATIC_LIMITS.items()):
            static[part] = True
            path = np.linalg.norm(np.diff(g["centre"][part], axis=0), axis=1).sum()
            if path / np.median(g["eye_distance"][part]) > MOVING_PATH:
                moving[part] = True
    return static, moving


def _triples(frames: np.ndarray) -> np.ndarray:
    """Indices i with frames i-1, i, i+1 all selected."""
    f = np.asarray(frames, bool)
    return np.flatnonzero(f[1:-1] & f[:-2] & f[2:]) + 1


def jitter(points: np.ndarray, eye_distance: np.ndarray, frames: np.ndarray) -> float | None:
    """Mean |p[i+1] - 2 p[i] + p[i-1]| over points and selected frames, / eye distance."""
    i = _triples(frames)
    if len(i) == 0:
        return None
    p = np.asarray(points, np.float64)
    d = np.linalg.norm(p[i + 1] - 2 * p[i] + p[i - 1], axis=2).mean(1) / eye_distance[i]
    d = d[np.isfinite(d)]
    return float(d.mean()) if len(d) else None


def channel_jitter(values: np.ndarray, frames: np.ndarray) -> dict[str, float | None]:
    """Mean absolute change of the channels from frame to frame, and mean |second difference|."""
    v = np.asarray(values, np.float64)
    f = np.asarray(frames, bool)
    j = np.flatnonzero(f[1:] & f[:-1]) + 1
    i = _triples(f)
    step = np.abs(v[j] - v[j - 1]).mean(1) if len(j) else np.array([])
    second = np.abs(v[i + 1] - 2 * v[i] + v[i - 1]).mean(1) if len(i) else np.array([])
    step, second = step[np.isfinite(step)], second[np.isfinite(second)]
    return {"step": float(step.mean()) if len(step) else None, "second_difference": float(second.mean()) if len(second) else None}


def correlation(a: np.ndarray, b: np.ndarray, frames: np.ndarray) -> float | None:
    m = np.asarray(frames, bool) & np.isfinite(a) & np.isfinite(b)
    if m.sum() < 10 or np.std(a[m]) < 1e-9 or np.std(b[m]) < 1e-9:
        return None
    return float(np.corrcoef(a[m], b[m])[0, 1])


def blink_scores(blink: np.ndarray, openness: np.ndarray, frames: np.ndarray) -> dict:
    """EyeBlink of one eye against that eye's openness: recall on closed frames, false rate on open."""
    ok = np.asarray(frames, bool) & np.isfinite(openness) & np.isfinite(blink)
    if not ok.any():
        return {"closed_frames": 0, "open_frames": 0, "recall": None, "false_rate": None}
    relative = openness / np.percentile(openness[ok], 75)
    closed, opened = ok & (relative < CLOSED_BELOW), ok & (relative > OPEN_ABOVE)
    return {"closed_frames": int(closed.sum()), "open_frames": int(opened.sum()),
            "recall": float((blink[closed] >= 0.5).mean()) if closed.any() else None,
            "false_rate": float((blink[opened] > 0.5).mean()) if opened.any() else None,
            "mean_on_closed": float(blink[closed].mean()) if closed.any() else None,
            "r_with_closure": correlation(blink, -relative, ok)}


def antagonist_frames(blendshapes: np.ndarray, pairs, frames: np.ndarray, level: float = 0.3) -> np.ndarray:
    """Per pair, the frames where both channels exceed level."""
    b = np.asarray(blendshapes, np.float64)[np.asarray(frames, bool)]
    return np.array([int((np.minimum(b[:, i], b[:, j]) > level).sum()) for i, j in pairs], np.int64)


def lag_frames(track: np.ndarray, reference: np.ndarray, frames: np.ndarray, max_lag: int = 6) -> float | None:
    """Frames by which a (N, 2) track's velocity trails the reference's (best correlation, refined
    to a fraction of a frame by a parabola through its neighbours); negative leads."""
    va, vb = np.diff(track, axis=0), np.diff(reference, axis=0)
    f = np.asarray(frames, bool)
    good = f[1:] & f[:-1] & np.isfinite(va).all(1) & np.isfinite(vb).all(1)
    scores = {}
    for lag in range(-max_lag, max_lag + 1):
        i = np.arange(max(0, -lag), min(len(va), len(va) - lag))
        m = good[i] & good[i + lag]
        if m.sum() >= 20:
            scores[lag] = float(np.corrcoef(va[i + lag][m].ravel(), vb[i][m].ravel())[0, 1])
    if not scores:
        return None
    best = max(scores, key=scores.get)
    if best - 1 in scores and best + 1 in scores:
        y0, y1, y2 = scores[best - 1], scores[best], scores[best + 1]
        den = y0 - 2 * y1 + y2
        if abs(den) > 1e-12:
            return float(best + 0.5 * (y0 - y2) / den)
    return float(best)


def inner_error(points: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """Per frame: mean distance over the inner 51 iBUG points / the reference's outer-eye distance."""
    eye = np.linalg.norm(reference[:, 36] - reference[:, 45], axis=1)
    return np.linalg.norm(points[:, 17:] - reference[:, 17:], axis=2).mean(1) / eye
