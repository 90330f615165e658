"""Build models/face_model.npz from ICT-FaceKit: neutral, identity PCA, the 46 FACS deltas.

Run: .venv/bin/python -m training.face_model.build [--components 50]
Reads ../shared/data/ict_facekit/ict_facekit.npz (MIT, USC ICT). Keeps the head (face, head and
neck, mouth and eye sockets), the eyeballs, teeth and gums; writes the file atomically.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from core.io.files import write_npz, write_text
from core.face.facs import ARKIT_NAMES, EXTRA_ARKIT_NAMES, EXTRA_NAMES, EXTRA_TO_ICT, FACS_NAMES, FACS_TO_ICT

from evaluation.paths import REPO_ROOT, require_data

PARTS = ("head", "eyeballs", "mouth")
NARROW_FACE_LAST_VERTEX = 6705  # ICT "narrow face area": no ears, no neck; jaw contour lives here
CONTOUR_BAND_CM = 0.35           # half-width of the slice that holds a jaw point's candidates
CONTOUR_RANGE_CM = (-2.5, 2.0)   # inward / outward reach of a jaw point's candidates
CONTOUR_CANDIDATES = 12

# Region id of each face (quad) in the built model, for masks and materials.
(REGION_FACE, REGION_HEAD_NECK, REGION_MOUTH_SOCKET, REGION_EYE_SOCKET, REGION_EYEBALL, REGION_TEETH_GUMS,
 REGION_EARS, REGION_FACE_OUTER) = range(8)
REGION_NAMES = ("face", "head_and_neck", "mouth_socket", "eye_socket", "eyeball", "teeth_and_gums",
                "ears", "face_outer")
# "face" is ICT's narrow face area (hairline to chin, no ears, no neck): maskcap's face region.
# The rest of ICT's "Face" polygons are split into the ears (with the skin just in front of
# them) and "face_outer" (the front of the scalp and the throat), found by position on the neutral.
EAR_MIN_ABS_X_CM, EAR_Y_RANGE_CM, EAR_MAX_Z_CM = 6.0, (-2.5, 6.0), 4.5


def _identity_pca(deltas: np.ndarray, n_components: int) -> tuple[np.ndarray, np.ndarray, float]:
    """PCA of ICT's identity distribution sum_i w_i d_i with w ~ N(0, 1).

    Its covariance is D^T D, so the principal directions are the right singular vectors of D
    and the standard deviations the singular values. Returns (basis scaled to 1 sd, sd, kept var).
    """
    flat = deltas.reshape(deltas.shape[0], -1).astype(np.float64)
    _, sing, vt = np.linalg.svd(flat, full_matrices=False)
    vt *= np.sign(vt[np.arange(len(vt)), np.abs(vt).argmax(axis=1)])[:, None]  # a fixed sign per mode
    kept = float((sing[:n_components] ** 2).sum() / (sing ** 2).sum())
    basis = (vt[:n_components] * sing[:n_components, None]).reshape(n_components, *deltas.shape[1:])
    return basis.astype(np.float32), sing[:n_components].astype(np.float32), kept


def _expression_deltas(src, part_deltas: np.ndarray, names: tuple[str, ...], table: dict) -> np.ndarray:
    ict_names = [str(n) for n in src["expression_names"]]
    out = np.zeros((len(names), *part_deltas.shape[1:]), np.float32)
    for k, name in enumerate(names):
        for ict in table[name]:
            out[k] += part_deltas[ict_names.index(ict)].astype(np.float32)
    return out


def _check_left_right(neutral: np.ndarray, deltas: np.ndarray) -> None:
    """The data README asks: `_L` shapes must act on the subject's left, which is +X here."""
    for name in ("EyeBlink_L", "MouthSmile_L", "BrowsU_L"):
        d = np.linalg.norm(deltas[FACS_NAMES.index(name)], axis=1)
        x_weighted = float((neutral[:, 0] * d).sum() / d.sum())
        if x_weighted <= 0:
            raise RuntimeError(f"{name} acts on -X (x={x_weighted:.2f}); left/right convention broken")


def _contour_candidates(neutral: np.ndarray, landmark_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For each jaw point 0-16, vertices on a slice across the jaw line, and its outward direction.

    At fitting time the candidate that lies furthest along the projected outward direction is
    taken as the silhouette point (landmark marching, as in Zhu et al. 2016 / 3DDFA).
    """
    jaw = neutral[landmark_ids[:17]]
    face = neutral[: NARROW_FACE_LAST_VERTEX + 1]
    candidates = np.zeros((17, CONTOUR_CANDIDATES), np.int32)
    outward = np.zeros((17, 3), np.float32)
    for j in range(17):
        a, b = jaw[max(j - 1, 0), :2], jaw[min(j + 1, 16), :2]
        tangent = (b - a) / np.linalg.norm(b - a)
        normal = np.array([tangent[1], -tangent[0]])
        if normal @ (jaw[j, :2] - np.array([0.0, jaw[:, 1].max()])) < 0:
            normal = -normal
        rel = face[:, :2] - jaw[j, :2]
        off_plane = np.abs(rel @ tangent)
        along = rel @ normal
        ok = (off_plane < CONTOUR_BAND_CM) & (along > CONTOUR_RANGE_CM[0]) & (along < CONTOUR_RANGE_CM[1])
        ok &= np.sign(face[:, 0]) == np.sign(jaw[j, 0]) if j != 8 else True
        idx = np.flatnonzero(ok)
        bins = np.linspace(*CONTOUR_RANGE_CM, CONTOUR_CANDIDATES + 1)
        chosen = []
        for lo, hi in zip(bins[:-1], bins[1:]):
            in_bin = idx[(along[idx] >= lo) & (along[idx] < hi)]
            if len(in_bin):
                chosen.append(in_bin[np.argmin(off_plane[in_bin])])
        chosen.append(int(landmark_ids[j]))
        chosen = list(dict.fromkeys(chosen))  # unique, order kept
        chosen += [chosen[-1]] * (CONTOUR_CANDIDATES + 1 - len(chosen))
        candidates[j] = chosen[: CONTOUR_CANDIDATES]
        if int(landmark_ids[j]) not in candidates[j]:
            candidates[j, -1] = landmark_ids[j]
        outward[j, :2] = normal
    return candidates, outward


def _quad_regions(src) -> np.ndarray:
    """Region id per quad of the head part, from ICT polygon ids and the narrow face area."""
    poly = src["head_quad_poly_ids"]
    quads = src["head_quads"]
    centre = src["head_neutral"][quads].mean(axis=1)
    rng = {str(n): r for n, r in zip(src["region_names"], src["region_polygon_range"])}
    region = np.full(len(poly), REGION_HEAD_NECK, np.uint8)
    for name, rid in (("Face", REGION_FACE), ("Head and Neck", REGION_HEAD_NECK),
                      ("Mouth socket", REGION_MOUTH_SOCKET), ("Eye socket left", REGION_EYE_SOCKET),
                      ("Eye socket right", REGION_EYE_SOCKET)):
        lo, hi = rng[name]
        region[(poly >= lo) & (poly <= hi)] = rid
    outer = (region == REGION_FACE) & (quads.max(axis=1) > NARROW_FACE_LAST_VERTEX)
    ear = (outer & (np.abs(centre[:, 0]) > EAR_MIN_ABS_X_CM) & (centre[:, 1] > EAR_Y_RANGE_CM[0])
           & (centre[:, 1] < EAR_Y_RANGE_CM[1]) & (centre[:, 2] < EAR_MAX_Z_CM))
    region[outer] = REGION_FACE_OUTER
    region[ear] = REGION_EARS
    return region


def build(components: int, out_path: Path) -> dict:
    src_dir = require_data("ict_facekit")
    src = np.load(src_dir / "ict_facekit.npz")
    neutral = np.concatenate([src[f"{p}_neutral"] for p in PARTS]).astype(np.float32)
    offsets = np.cumsum([0] + [len(src[f"{p}_neutral"]) for p in PARTS])
    id_deltas = np.concatenate([src[f"{p}_identity_deltas"] for p in PARTS], axis=1)
    ex_deltas = np.concatenate([src[f"{p}_expression_deltas"] for p in PARTS], axis=1)

    identity_basis, identity_sd, kept = _identity_pca(id_deltas, components)
    facs = _expression_deltas(src, ex_deltas, FACS_NAMES, FACS_TO_ICT)
    extra = _expression_deltas(src, ex_deltas, EXTRA_NAMES, EXTRA_TO_ICT)
    _check_left_right(neutral, facs)

    # Faces: head quads, then eyeball quads and triangles (triangles stored as degenerate quads).
    quads = [src["head_quads"]]
    quad_uv = [src["head_quad_uv"]]
    region = [_quad_regions(src)]
    uv = [src["head_uv"]]
    eq = src["eyeballs_quads"] + offsets[1]
    et = src["eyeballs_tris"] + offsets[1]
    quads += [eq, np.concatenate([et, et[:, 2:]], axis=1)]
    uv_off = len(src["head_uv"])
    quad_uv += [src["eyeballs_quad_uv"] + uv_off,
                np.concatenate([src["eyeballs_tri_uv"], src["eyeballs_tri_uv"][:, 2:]], axis=1) + uv_off]
    region += [np.full(len(eq), REGION_EYEBALL, np.uint8), np.full(len(et), REGION_EYEBALL, np.uint8)]
    uv.append(src["eyeballs_uv"])
    uv_off += len(src["eyeballs_uv"])
    mq = src["mouth_quads"] + offsets[2]
    mt = src["mouth_tris"] + offsets[2]
    quads += [mq, np.concatenate([mt, mt[:, 2:]], axis=1)]
    quad_uv += [src["mouth_quad_uv"] + uv_off,
                np.concatenate([src["mouth_tri_uv"], src["mouth_tri_uv"][:, 2:]], axis=1) + uv_off]
    region += [np.full(len(mq), REGION_TEETH_GUMS, np.uint8), np.full(len(mt), REGION_TEETH_GUMS, np.uint8)]
    uv.append(src["mouth_uv"])

    landmark_ids = src["landmarks68_vertex_ids"].astype(np.int32)
    contour_ids, contour_outward = _contour_candidates(neutral, landmark_ids)

    meta = {
        "format": "maskcap-face-model",
        "version": 1,
        "units": "centimetre",
        "axes": "right-handed; +X = subject's left, +Y = up, +Z = out of the face (face looks toward +Z)",
        "model": ("V = neutral + sum_k identity[k] * identity_basis[k] + sum_j expression[j] * "
                  "expression_deltas[j]; identity in standard deviations (prior N(0, 1)); "
                  "expression weights in [0, 1]"),
        "identity": {"components": components, "variance_kept": kept,
                     "sd_cm": "identity_sd_cm: sd of each unit-norm PCA direction, in cm"},
        "expression_names": list(FACS_NAMES) + list(EXTRA_NAMES),
        "expression_arkit_names": list(ARKIT_NAMES) + list(EXTRA_ARKIT_NAMES),
        "num_facs": len(FACS_NAMES),
        "parts": {p: [int(offsets[i]), int(offsets[i + 1])] for i, p in enumerate(PARTS)},
        "regions": list(REGION_NAMES),
        "source": {"name": "ICT-FaceKit", "url": "https://github.com/ICT-VGL/ICT-FaceKit",
                   "meta": json.loads(str(src["meta_json"]))},
        "license": (src_dir / "LICENSE").read_text(),
        "built_by": "training/face_model/build.py",
    }
    arrays = {
        "neutral": neutral,
        "identity_basis": identity_basis.astype(np.float16),
        "identity_sd_cm": identity_sd,
        "expression_deltas": np.concatenate([facs, extra]).astype(np.float16),
        "quads": np.concatenate(quads).astype(np.int32),
        "quad_region": np.concatenate(region),
        "quad_uv": np.concatenate(quad_uv).astype(np.int32),
        "uv": np.concatenate(uv).astype(np.float32),
        "landmark_vertex_ids": landmark_ids,
        "contour_candidate_ids": contour_ids,
        "contour_outward": contour_outward,
        "meta_json": np.array(json.dumps(meta)),
    }
    write_npz(out_path, **arrays)
    write_text(out_path.parent / "ICT-FaceKit-LICENSE.txt", 
        "models/face_model.npz is built from ICT-FaceKit (https://github.com/ICT-VGL/ICT-FaceKit).\n\n"
        + meta["license"])
    return {"path": str(out_path), "bytes": out_path.stat().st_size, "vertices": len(neutral),
            "faces": len(arrays["quads"]), "identity_variance_kept": kept}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--components", type=int, default=50, help="identity PCA components (>= 50)")
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "models" / "face_model.npz")
    args = parser.parse_args()
    print(json.dumps(build(args.components, args.out), indent=2))


if __name__ == "__main__":
    main()
