"""DDE shape regression (paper §5): a two-level cascade of random ferns over pixel differences.

The shape vector Q = [R, t, x (46), D (68 x 2)] is updated by T stages; each stage samples 400
feature points, placed by barycentric coordinates in a triangulation of the landmarks so that
they follow the face, and K ferns of depth F on intensity differences of point pairs. Pixels
outside the face mask read as the face's mean intensity (0 after normalisation), so occluders
carry no information (the paper's "mark non-face pixels"). Identity u and focal f stay fixed.
"""
from __future__ import annotations

import json
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numba
import numpy as np

from ..face.camera import project
from ..face.face_model import FaceModel
from ..face.facs import NUM_FACS
from ..io.files import write_npz

NUM_LANDMARKS = 68
Q_DIM = 3 + 3 + NUM_FACS + 2 * NUM_LANDMARKS  # omega, (a, b, c), x, D / scale


class RegressorModelError(RuntimeError):
    """The regressor file is missing, unreadable or not a maskcap regressor."""


@dataclass
class ShapeState:
    """Q of one face: R (camera from model), t = e^c (a, b, 1), x in [0, 1]^46, D in pixels."""

    rotation: np.ndarray
    abc: np.ndarray
    expression: np.ndarray
    displacements: np.ndarray

    def translation(self) -> np.ndarray:
        a, b, c = self.abc
        return np.exp(c) * np.array([a, b, 1.0])

    def copy(self) -> "ShapeState":
        return ShapeState(self.rotation.copy(), self.abc.copy(), self.expression.copy(), self.displacements.copy())

    @staticmethod
    def from_pose(rotation, translation, expression, displacements=None) -> "ShapeState":
        t = np.asarray(translation, np.float64)
        d = np.zeros((NUM_LANDMARKS, 2)) if displacements is None else np.asarray(displacements, np.float64)
        return ShapeState(np.asarray(rotation, np.float64), np.array([t[0] / t[2], t[1] / t[2], np.log(t[2])]),
                          np.asarray(expression, np.float64).copy(), d.copy())


@dataclass(frozen=True, eq=False)
class LandmarkModel:
    """The face model at the 68 landmark vertices, for one identity: neutral + B x."""

    neutral: np.ndarray      # (68, 3) for the identity in use
    expression: np.ndarray   # (68, 3, 46)

    @staticmethod
    def from_face_model(model: FaceModel, identity=None) -> "LandmarkModel":
        sub = model.subset(model.landmark_vertex_ids)
        neutral = sub.neutral + (sub.identity_basis @ np.asarray(identity, np.float64) if identity is not None else 0.0)
        return LandmarkModel(neutral, sub.expression_basis)


def landmarks(state: ShapeState, lm: LandmarkModel, focal_px: float, center) -> np.ndarray:
    """Eq. 2: the 68 projected landmarks plus displacements, in pixels."""
    pos = lm.neutral + lm.expression @ state.expression
    return project(pos @ state.rotation.T + state.translation(), focal_px, np.asarray(center)) + state.displacements


def face_scale(points: np.ndarray) -> float:
    """RMS distance of the landmarks from their centroid: the unit of D in Q's regression space."""
    return float(np.sqrt(((points - points.mean(0)) ** 2).sum(1).mean()))


def apply_update(state: ShapeState, dq: np.ndarray, focal_px: float, scale: float) -> ShapeState:
    """Q + dQ, with dQ in the normalised space: omega, (a, b) in face-scale pixels, c, x, D / scale."""
    rw, _ = cv2.Rodrigues(np.asarray(dq[:3], np.float64))
    abc = state.abc + np.array([dq[3] * scale / focal_px, dq[4] * scale / focal_px, dq[5]])
    x = np.clip(state.expression + dq[6:6 + NUM_FACS], 0.0, 1.0)
    d = state.displacements + dq[6 + NUM_FACS:].reshape(NUM_LANDMARKS, 2) * scale
    return ShapeState(rw @ state.rotation, abc, x, d)


def difference(target: ShapeState, current: ShapeState, focal_px: float, scale: float) -> np.ndarray:
    """The dQ that takes current to target (inverse of apply_update, ignoring the clip)."""
    omega, _ = cv2.Rodrigues(target.rotation @ current.rotation.T)
    d_abc = target.abc - current.abc
    return np.concatenate([omega.ravel(), [d_abc[0] * focal_px / scale, d_abc[1] * focal_px / scale, d_abc[2]],
                           target.expression - current.expression,
                           ((target.displacements - current.displacements) / scale).ravel()])


def mean_face_in_box(lm: LandmarkModel, box, focal_px: float, center, rotation=None) -> ShapeState:
    """The mean face with no expression, frontal or turned by rotation (camera from model),
    placed so that its landmarks fill box.

    box = (x, y, w, h) of the 68 landmarks (the start of a still image or after a loss).
    """
    from ..face.camera import head_rotation

    x, y, w, h = (float(v) for v in box)
    size, target = max(w, h), np.array([x + w / 2.0, y + h / 2.0])
    rot = head_rotation(0.0, 0.0, 0.0) if rotation is None else np.asarray(rotation, np.float64)
    t = np.array([0.0, 0.0, 60.0])
    for _ in range(3):  # depth from the size, then the centre; settles in a couple of rounds
        px = project(lm.neutral @ rot.T + t, focal_px, np.asarray(center))
        t[2] *= (px.max(0) - px.min(0)).max() / size
        px = project(lm.neutral @ rot.T + t, focal_px, np.asarray(center))
        t[:2] += (target - (px.max(0) + px.min(0)) / 2.0) * t[2] / focal_px
    return ShapeState.from_pose(rot, t, np.zeros(NUM_FACS))


# ----------------------------------------------------------------------------- feature points

@dataclass(frozen=True, eq=False)
class FeatureLayout:
    """Feature points of one stage as (triangle, barycentric weights) over the landmarks."""

    triangle_vertices: np.ndarray  # (P, 3) landmark indices
    barycentric: np.ndarray        # (P, 3)

    def points(self, landmarks_px: np.ndarray) -> np.ndarray:
        """(P, 2) pixel positions for the current landmarks; they follow any affine change."""
        return np.einsum("pk,pkd->pd", self.barycentric, landmarks_px[self.triangle_vertices])


def make_layout(mean_shape_unit: np.ndarray, triangles: np.ndarray, count: int, rng: np.random.Generator,
                sigma: float = 0.3) -> FeatureLayout:
    """Gaussian points on the unit square of the mean shape, in barycentric coordinates.

    Points outside the triangulation take the nearest triangle's (extrapolated) coordinates.
    """
    pts = np.clip(rng.normal(0.5, sigma, (count, 2)), -0.1, 1.1)
    a = mean_shape_unit[triangles]                         # (T, 3, 2)
    centroids = a.mean(1)
    best_tri = np.zeros(count, np.int64)
    best_bary = np.zeros((count, 3))
    for i, p in enumerate(pts):
        bary = _barycentric(a, p)
        inside = np.flatnonzero((bary >= -1e-9).all(1))
        k = inside[0] if len(inside) else int(np.argmin(((centroids - p) ** 2).sum(1)))
        best_tri[i], best_bary[i] = k, bary[k]
    return FeatureLayout(triangles[best_tri].astype(np.int32), best_bary)


def _barycentric(tri: np.ndarray, p: np.ndarray) -> np.ndarray:
    a, b, c = tri[:, 0], tri[:, 1], tri[:, 2]
    v0, v1, v2 = b - a, c - a, p - a
    den = v0[:, 0] * v1[:, 1] - v1[:, 0] * v0[:, 1]
    den = np.where(np.abs(den) < 1e-12, 1e-12, den)
    w1 = (v2[:, 0] * v1[:, 1] - v1[:, 0] * v2[:, 1]) / den
    w2 = (v0[:, 0] * v2[:, 1] - v2[:, 0] * v0[:, 1]) / den
    return np.stack([1 - w1 - w2, w1, w2], axis=1)


# ----------------------------------------------------------------------------- hot loops

@numba.njit(cache=False, nogil=True)
def sample_features(gray: np.ndarray, mask: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Intensities at points, normalised over the face pixels among them; non-face reads 0."""
    n = points.shape[0]
    h, w = gray.shape
    raw = np.zeros(n, np.float32)
    valid = np.zeros(n, np.bool_)
    total, total_sq, count = 0.0, 0.0, 0
    for i in range(n):
        x = int(points[i, 0] + 0.5)
        y = int(points[i, 1] + 0.5)
        if 0 <= x < w and 0 <= y < h and mask[y, x] != 0:
            v = float(gray[y, x])
            raw[i] = v
            valid[i] = True
            total += v
            total_sq += v * v
            count += 1
    out = np.zeros(n, np.float32)
    if count < 2:
        return out
    mean = total / count
    std = max(np.sqrt(max(total_sq / count - mean * mean, 0.0)), 1.0)
    for i in range(n):
        if valid[i]:
            out[i] = (raw[i] - mean) / std
    return out


@numba.njit(cache=False, nogil=True)
def apply_ferns(values: np.ndarray, pairs: np.ndarray, thresholds: np.ndarray, outputs: np.ndarray) -> np.ndarray:
    """Sum of the bin outputs of K ferns of depth F over one feature vector."""
    k_count, depth = thresholds.shape
    dq = np.zeros(outputs.shape[2], np.float32)
    for k in range(k_count):
        index = 0
        for d in range(depth):
            if values[pairs[k, d, 0]] - values[pairs[k, d, 1]] > thresholds[k, d]:
                index |= 1 << d
        row = outputs[k, index]
        for j in range(dq.shape[0]):
            dq[j] += row[j]
    return dq


@numba.njit(cache=False, nogil=True)
def fern_bins(values: np.ndarray, pairs: np.ndarray, thresholds: np.ndarray) -> np.ndarray:
    """Bin index of one fern (pairs (F, 2), thresholds (F,)) for many samples (N, P)."""
    n = values.shape[0]
    out = np.zeros(n, np.int32)
    for i in range(n):
        index = 0
        for d in range(thresholds.shape[0]):
            if values[i, pairs[d, 0]] - values[i, pairs[d, 1]] > thresholds[d]:
                index |= 1 << d
        out[i] = index
    return out


@numba.njit(cache=False, nogil=True)
def sample_features_many(gray: np.ndarray, mask: np.ndarray, points: np.ndarray) -> np.ndarray:
    """sample_features for K point sets (K, P, 2) at once: (K, P)."""
    out = np.zeros((points.shape[0], points.shape[1]), np.float32)
    for k in range(points.shape[0]):
        out[k] = sample_features(gray, mask, points[k])
    return out


@numba.njit(cache=False, nogil=True)
def apply_ferns_many(values: np.ndarray, pairs: np.ndarray, thresholds: np.ndarray, outputs: np.ndarray) -> np.ndarray:
    """apply_ferns for K feature vectors (K, P) at once: (K, Q)."""
    out = np.zeros((values.shape[0], outputs.shape[2]), np.float32)
    for k in range(values.shape[0]):
        out[k] = apply_ferns(values[k], pairs, thresholds, outputs)
    return out


def _rotations(omega: np.ndarray) -> np.ndarray:
    """Rodrigues' formula for K rotation vectors (K, 3): (K, 3, 3)."""
    theta = np.linalg.norm(omega, axis=1)
    safe = np.where(theta > 1e-12, theta, 1.0)
    k = omega / safe[:, None]
    skew = np.zeros((len(omega), 3, 3))
    skew[:, 0, 1], skew[:, 0, 2], skew[:, 1, 2] = -k[:, 2], k[:, 1], -k[:, 0]
    skew[:, 1, 0], skew[:, 2, 0], skew[:, 2, 1] = k[:, 2], -k[:, 1], k[:, 0]
    s, c = np.sin(theta)[:, None, None], np.cos(theta)[:, None, None]
    return np.eye(3) + s * skew + (1.0 - c) * (skew @ skew)


# ----------------------------------------------------------------------------- the cascade

@dataclass
class Stage:
    layout: FeatureLayout
    pairs: np.ndarray        # (K, F, 2) int32 feature indices
    thresholds: np.ndarray   # (K, F) float32
    outputs: np.ndarray      # (K, 2^F, Q_DIM) float32 (float16 on disk)


@dataclass
class FernCascade:
    """T stages of K ferns; run() regresses Q from a start for one image and mask."""

    stages: list[Stage]
    meta: dict = field(default_factory=dict)

    def run(self, gray: np.ndarray, mask: np.ndarray, state: ShapeState, lm: LandmarkModel,
            focal_px: float, center) -> ShapeState:
        for stage in self.stages:
            pts = landmarks(state, lm, focal_px, center)
            values = sample_features(gray, mask, stage.layout.points(pts).astype(np.float64))
            dq = apply_ferns(values, stage.pairs, stage.thresholds, stage.outputs)
            state = apply_update(state, dq.astype(np.float64), focal_px, face_scale(pts))
        return state

    def run_many(self, gray: np.ndarray, mask: np.ndarray, states: list[ShapeState], lm: LandmarkModel,
                 focal_px: float, center) -> list[ShapeState]:
        """run() for several starts on the same image, stage by stage for all of them at once
        (the per-stage work is small; doing it once for K starts saves most of K - 1 runs' overhead)."""
        center = np.asarray(center, np.float64)
        rotation = np.stack([s.rotation for s in states])
        abc = np.stack([s.abc for s in states])
        x = np.stack([s.expression for s in states])
        d = np.stack([s.displacements for s in states])
        for stage in self.stages:
            pos = lm.neutral[None] + np.einsum("pcj,kj->kpc", lm.expression, x)
            t = np.exp(abc[:, 2])[:, None] * np.stack([abc[:, 0], abc[:, 1], np.ones(len(abc))], axis=1)
            cam = np.einsum("kpc,kdc->kpd", pos, rotation) + t[:, None, :]
            pts = focal_px * cam[:, :, :2] / cam[:, :, 2:3] + center + d
            layout = stage.layout
            feature_points = np.einsum("pj,kpjd->kpd", layout.barycentric, pts[:, layout.triangle_vertices])
            values = sample_features_many(gray, mask, np.ascontiguousarray(feature_points))
            dq = apply_ferns_many(values, stage.pairs, stage.thresholds, stage.outputs).astype(np.float64)
            centred = pts - pts.sum(axis=1, keepdims=True) / NUM_LANDMARKS
            scale = np.sqrt((centred * centred).sum(axis=(1, 2)) / NUM_LANDMARKS)
            rotation = _rotations(dq[:, :3]) @ rotation
            abc = abc + np.stack([dq[:, 3] * scale / focal_px, dq[:, 4] * scale / focal_px, dq[:, 5]], axis=1)
            x = np.clip(x + dq[:, 6:6 + NUM_FACS], 0.0, 1.0)
            d = d + dq[:, 6 + NUM_FACS:].reshape(-1, NUM_LANDMARKS, 2) * scale[:, None, None]
        return [ShapeState(rotation[k], abc[k], x[k], d[k]) for k in range(len(states))]

    def save(self, path: Path) -> None:
        arrays = {"meta_json": np.array(json.dumps(self.meta)), "stages": np.array(len(self.stages))}
        for i, s in enumerate(self.stages):
            arrays[f"s{i}_tri"] = s.layout.triangle_vertices.astype(np.int16)
            arrays[f"s{i}_bary"] = s.layout.barycentric.astype(np.float32)
            arrays[f"s{i}_pairs"] = s.pairs.astype(np.int16)
            arrays[f"s{i}_thr"] = s.thresholds.astype(np.float32)
            arrays[f"s{i}_out"] = s.outputs.astype(np.float16)
        write_npz(path, **arrays)

    @staticmethod
    def load(path: str | Path) -> "FernCascade":
        p = Path(path)
        if not p.is_file():
            raise RegressorModelError(f"regressor file not found: {p}; train it with "
                                      "`python -m training.regressor.train`")
        try:
            with np.load(p, allow_pickle=False) as z:
                n = int(z["stages"])
                stages = [Stage(FeatureLayout(z[f"s{i}_tri"].astype(np.int32), z[f"s{i}_bary"].astype(np.float64)),
                                z[f"s{i}_pairs"].astype(np.int32), z[f"s{i}_thr"].astype(np.float32),
                                z[f"s{i}_out"].astype(np.float32)) for i in range(n)]
                meta = json.loads(str(z["meta_json"]))
        except (OSError, KeyError, ValueError, zipfile.BadZipFile, EOFError) as exc:
            raise RegressorModelError(f"cannot read regressor {p}: {exc}") from exc
        return FernCascade(stages, meta)
