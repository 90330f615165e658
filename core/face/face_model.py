"""The linear 3D face: neutral, identity PCA, 46 FACS expression deltas, landmarks, topology.

Loaded from models/face_model.npz (built by training/face_model/build.py from ICT-FaceKit).
Units are centimetres; +X is the subject's left, +Y up, +Z out of the face.
"""
from __future__ import annotations

import json
import zipfile
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np

from ..io.files import shipped_model_path
from .facs import FACS_NAMES, NUM_FACS

_REQUIRED = ("neutral", "identity_basis", "identity_sd_cm", "expression_deltas", "quads",
             "quad_region", "landmark_vertex_ids", "contour_candidate_ids", "contour_outward",
             "meta_json")


class FaceModelError(RuntimeError):
    """The face model file is missing, unreadable or not a maskcap face model."""


def default_face_model_path() -> Path:
    """models/face_model.npz beside core/ (repository) or inside the add-on package."""
    return shipped_model_path("face_model.npz")


@dataclass(frozen=True)
class SubsetBasis:
    """The model restricted to some vertices, laid out for fast fitting.

    position(identity, expression) = neutral + identity_basis @ identity + expression_basis @ expression
    with neutral (n, 3), identity_basis (n, 3, K) and expression_basis (n, 3, 46).
    """

    vertex_ids: np.ndarray
    neutral: np.ndarray
    identity_basis: np.ndarray
    expression_basis: np.ndarray

    def positions(self, identity: np.ndarray, expression: np.ndarray) -> np.ndarray:
        return self.neutral + self.identity_basis @ identity + self.expression_basis @ expression


@dataclass(frozen=True, eq=False)
class FaceModel:
    """A linear face model; see the module docstring for units and axes."""

    neutral: np.ndarray              # (V, 3) float32, cm
    identity_basis: np.ndarray       # (K, V, 3) float32, cm per standard deviation
    identity_sd_cm: np.ndarray       # (K,) sd of each unit PCA direction, cm
    expression_deltas: np.ndarray    # (E, V, 3) float32, cm; first 46 are FACS_NAMES
    quads: np.ndarray                # (F, 4) int32; triangles repeat their last index
    quad_region: np.ndarray          # (F,) uint8, index into meta["regions"]
    landmark_vertex_ids: np.ndarray  # (68,) int32
    contour_candidate_ids: np.ndarray  # (17, M) int32, jaw silhouette candidates
    contour_outward: np.ndarray      # (17, 3) outward direction of each jaw point (model frame)
    uv: np.ndarray | None = None
    quad_uv: np.ndarray | None = None
    meta: dict = field(default_factory=dict)
    path: Path | None = None

    @property
    def num_identity(self) -> int:
        return self.identity_basis.shape[0]

    @property
    def expression_names(self) -> tuple[str, ...]:
        return tuple(self.meta.get("expression_names", FACS_NAMES))

    def vertices(self, identity: np.ndarray | None = None, expression: np.ndarray | None = None) -> np.ndarray:
        """All vertex positions (V, 3) in cm; expression may be 46 FACS or all E weights."""
        v = self.neutral.copy()
        if identity is not None:
            identity = np.asarray(identity, np.float32)
            v += np.tensordot(identity, self.identity_basis[: len(identity)], axes=1)
        if expression is not None:
            expression = np.asarray(expression, np.float32)
            v += np.tensordot(expression, self.expression_deltas[: len(expression)], axes=1)
        return v

    def subset(self, vertex_ids: np.ndarray) -> SubsetBasis:
        """The model on chosen vertices only (FACS expressions), for fitting."""
        ids = np.asarray(vertex_ids, np.int64).ravel()
        return SubsetBasis(
            vertex_ids=ids,
            neutral=self.neutral[ids].astype(np.float64),
            identity_basis=np.ascontiguousarray(self.identity_basis[:, ids].transpose(1, 2, 0), np.float64),
            expression_basis=np.ascontiguousarray(
                self.expression_deltas[:NUM_FACS, ids].transpose(1, 2, 0), np.float64),
        )

    def region_quads(self, *names: str) -> np.ndarray:
        """Quads of the named regions (e.g. "face")."""
        regions = self.meta["regions"]
        wanted = [regions.index(n) for n in names]
        return self.quads[np.isin(self.quad_region, wanted)]

    def triangles(self, quads: np.ndarray | None = None) -> np.ndarray:
        """Quads split into triangles (0,1,2), (0,2,3); degenerate triangles dropped."""
        q = self.quads if quads is None else quads
        tris = np.concatenate([q[:, [0, 1, 2]], q[:, [0, 2, 3]]])
        keep = (tris[:, 0] != tris[:, 1]) & (tris[:, 1] != tris[:, 2]) & (tris[:, 0] != tris[:, 2])
        return tris[keep]


@lru_cache(maxsize=4)
def _load_cached(path: str, mtime: float) -> FaceModel:
    p = Path(path)
    try:
        with np.load(p, allow_pickle=False) as z:
            missing = [k for k in _REQUIRED if k not in z.files]
            if missing:
                raise FaceModelError(f"{p} is not a maskcap face model: missing arrays {missing}")
            data = {k: z[k] for k in z.files}
    except FaceModelError:
        raise
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as exc:
        raise FaceModelError(f"cannot read face model {p}: {exc}; rebuild it with "
                             "`python -m training.face_model.build`") from exc
    meta = json.loads(str(data["meta_json"]))
    if data["expression_deltas"].shape[0] < NUM_FACS:
        raise FaceModelError(f"{p} has {data['expression_deltas'].shape[0]} expressions, need {NUM_FACS}")
    return FaceModel(
        neutral=data["neutral"].astype(np.float32),
        identity_basis=data["identity_basis"].astype(np.float32),
        identity_sd_cm=data["identity_sd_cm"].astype(np.float32),
        expression_deltas=data["expression_deltas"].astype(np.float32),
        quads=data["quads"],
        quad_region=data["quad_region"],
        landmark_vertex_ids=data["landmark_vertex_ids"],
        contour_candidate_ids=data["contour_candidate_ids"],
        contour_outward=data["contour_outward"].astype(np.float64),
        uv=data.get("uv"),
        quad_uv=data.get("quad_uv"),
        meta=meta,
        path=p,
    )


def load_face_model(path: str | Path | None = None) -> FaceModel:
    """Load (and cache) the face model; raises FaceModelError naming the file when it fails."""
    p = Path(path) if path is not None else default_face_model_path()
    if not p.is_file():
        raise FaceModelError(f"face model file not found: {p}; build it with "
                             "`python -m training.face_model.build`")
    return _load_cached(str(p.resolve()), p.stat().st_mtime)
