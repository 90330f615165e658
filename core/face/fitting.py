"""Fit the 3D face to 68 2D landmarks (paper Eq. 4) and identity/focal over keyframes (Eq. 3).

Pose (R, t) starts from PnP; then a Levenberg-Marquardt refinement moves pose, expressions
x in [0, 1]^46, identity u (in standard deviations, Gaussian prior) and log focal length (weak
prior) together, each step a box-constrained quadratic problem (alternating pose and shape
blocks with L-BFGS-B, tried first, converged too slowly and into poor minima).
Jaw points 0-16 are silhouette points: between refinements they move to the contour candidate
that lies furthest out for the current pose (landmark marching).
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from functools import lru_cache

import cv2
import numpy as np

from .box_qp import ArrowHessian, arrow_box_step, dense_box_step
from .camera import camera_matrix, focal_from_mm, head_angles, principal_point, project
from .face_model import FaceModel, SubsetBasis
from .facs import ANTAGONIST_PAIRS, NUM_FACS, UNOBSERVED_CHANNELS

NUM_LANDMARKS = 68
DEFAULT_FOCAL_MM = 50.0


@dataclass(frozen=True)
class FitOptions:
    """Weights of Eq. 4's regularisers, relative to landmark residuals in face-size units."""

    alternations: int = 4               # silhouette re-assignments, each followed by a refinement
    identity_prior: float = 1e-4        # on |u|^2, u in standard deviations
    expression_l1: float = 1e-3         # on sum(x): prefers few active shapes
    expression_l2: float = 2e-5         # on |x|^2
    focal_prior: float = 2e-3           # on (log f - log f_prior)^2
    focal_range: float = 3.0            # f stays within [f_prior / r, f_prior * r]
    solve_identity: bool = True
    solve_focal: bool = True
    silhouette_jaw: bool = True
    jaw_tangent_weight: float = 0.1     # weight of jaw residuals along the outline
    max_iterations: int = 30            # Levenberg-Marquardt steps per refinement
    tolerance: float = 1e-4             # stop when a step lowers the energy by less than this fraction
    # channel pairs of which at most one may be non-zero (facs.ANTAGONIST_PAIRS): the smaller of
    # the two is held at 0, so that opposite shapes never cancel each other out
    exclusive_pairs: tuple[tuple[int, int], ...] = ()
    fixed_zero: tuple[int, ...] = ()    # channels held at 0: ones the landmarks cannot see (facs.GAZE_CHANNELS)
    anchor_weight: float = 0.0          # on |x - anchor|^2 per frame, where a frame has an anchor (tracking)


def with_expression_priors(options: FitOptions) -> FitOptions:
    """options with the priors that give the 46 weights their meaning for animation: antagonists
    apart (facs.ANTAGONIST_PAIRS), channels the landmarks cannot see at 0 (facs.UNOBSERVED_NAMES).
    The regressor's training targets and the tracker's per-frame fit both use them."""
    return replace(options, exclusive_pairs=ANTAGONIST_PAIRS, fixed_zero=UNOBSERVED_CHANNELS)


@dataclass
class FitResult:
    """Parameters of Eq. 2 that explain a set of 2D landmarks."""

    rotation: np.ndarray          # (3, 3) camera from model
    translation: np.ndarray       # (3,) cm, camera frame
    expression: np.ndarray        # (46,) in [0, 1], FACS_NAMES order
    identity: np.ndarray          # (K,) standard deviations
    focal_px: float
    center: np.ndarray            # (2,) principal point, pixels
    projected: np.ndarray         # (68, 2) model landmarks projected, pixels
    displacements: np.ndarray     # (68, 2) D = landmarks - projected
    vertex_ids: np.ndarray        # (68,) model vertices used (jaw re-assigned to the silhouette)
    rmse_px: float                # weighted RMS of D


@dataclass
class WarmStart:
    """A previous Eq. 3 solve to continue from: its identity and focal length, and the fit of each
    keyframe that it shared with this solve (None for a keyframe new since then)."""

    identity: np.ndarray
    focal_px: float
    fits: list[FitResult | None]


@dataclass
class _Problem:
    landmarks: np.ndarray
    weights: np.ndarray
    center: np.ndarray
    scale: float
    image_size: tuple[int, int]
    jaw_tangent_weight: float = 1.0


class _ModelBases:
    """The model at the 68 landmark vertices and the jaw candidates, cached per model."""

    def __init__(self, model: FaceModel):
        self.model = model
        self.landmark_ids = model.landmark_vertex_ids.astype(np.int64)
        self.candidate_ids = model.contour_candidate_ids.astype(np.int64)
        ids = np.concatenate([self.landmark_ids, self.candidate_ids.ravel()])
        self.basis: SubsetBasis = model.subset(ids)
        self.num_candidates = self.candidate_ids.shape[1]
        # row of each (jaw point, candidate) in the subset
        self.candidate_rows = NUM_LANDMARKS + np.arange(self.candidate_ids.size).reshape(self.candidate_ids.shape)
        self.outward = model.contour_outward


@lru_cache(maxsize=4)
def _bases(model: FaceModel) -> _ModelBases:
    return _ModelBases(model)


# ----------------------------------------------------------------------------- validation

def _check_landmarks(landmarks, name: str = "landmarks") -> np.ndarray:
    if landmarks is None:
        raise ValueError(f"{name} is None; expected an array of shape (68, 2) in pixels")
    pts = np.asarray(landmarks)
    if pts.dtype == object or not np.issubdtype(pts.dtype, np.number):
        raise ValueError(f"{name} must be numeric, got dtype {pts.dtype}")
    if pts.shape != (NUM_LANDMARKS, 2):
        raise ValueError(f"{name} must have shape (68, 2), got {pts.shape}")
    pts = pts.astype(np.float64)
    if not np.all(np.isfinite(pts)):
        bad = np.flatnonzero(~np.isfinite(pts).all(axis=1))
        raise ValueError(f"{name} contain NaN or infinite values at points {bad.tolist()}")
    if np.ptp(pts, axis=0).max() < 1e-6:
        raise ValueError(f"{name}: all points are equal ({pts[0].tolist()}); a face needs spread-out points")
    return pts


def _check_image_size(image_size) -> tuple[int, int]:
    try:
        w, h = (int(v) for v in image_size)
    except (TypeError, ValueError):
        raise ValueError(f"image_size must be (width, height), got {image_size!r}") from None
    if w <= 0 or h <= 0:
        raise ValueError(f"image_size must be positive, got width={w}, height={h}")
    return w, h


def _check_weights(weights, n: int) -> np.ndarray:
    if weights is None:
        return np.ones(n)
    w = np.asarray(weights, np.float64)
    if w.shape != (n,):
        raise ValueError(f"weights must have shape ({n},), got {w.shape}")
    if not np.all(np.isfinite(w)) or np.any(w < 0):
        raise ValueError("weights must be finite and non-negative")
    if np.count_nonzero(w) < 6:
        raise ValueError(f"at least 6 landmarks need a positive weight, got {np.count_nonzero(w)}")
    return w


def _make_problem(landmarks, image_size, weights, jaw_tangent_weight: float = 1.0) -> _Problem:
    pts = _check_landmarks(landmarks)
    size = _check_image_size(image_size)
    w = _check_weights(weights, NUM_LANDMARKS)
    active = pts[w > 0]
    scale = float(np.sqrt(((active - active.mean(0)) ** 2).sum(1).mean()))
    if scale < 1e-3:
        raise ValueError("landmarks are degenerate: the weighted points have no spread")
    return _Problem(pts, w / w.mean(), principal_point(size), scale, size, jaw_tangent_weight)


# ----------------------------------------------------------------------------- the steps

def _positions(bases: _ModelBases, identity: np.ndarray, expression: np.ndarray) -> np.ndarray:
    """Model positions (rows of the subset) for given identity and expression."""
    b = bases.basis
    return b.neutral + b.identity_basis @ identity + b.expression_basis @ expression


def _solve_pose(points3d, prob: _Problem, focal: float, rotation=None, translation=None):
    """Iterative PnP over the weighted landmarks; returns (R, t)."""
    mask = prob.weights > 0
    k = camera_matrix(focal, prob.image_size)
    obj = np.ascontiguousarray(points3d[mask], np.float64)
    img = np.ascontiguousarray(prob.landmarks[mask], np.float64)
    if rotation is None:
        ok, rvec, tvec = cv2.solvePnP(obj, img, k, None, flags=cv2.SOLVEPNP_SQPNP)
        if not ok:
            raise RuntimeError("PnP failed to find a pose for these landmarks")
    else:
        rvec, _ = cv2.Rodrigues(np.asarray(rotation, np.float64))
        tvec = np.asarray(translation, np.float64).reshape(3, 1).copy()
    ok, rvec, tvec = cv2.solvePnP(obj, img, k, None, rvec, tvec, True, cv2.SOLVEPNP_ITERATIVE)
    rot, _ = cv2.Rodrigues(rvec)
    return rot, tvec.ravel()


def _silhouette_rows(bases: _ModelBases, positions: np.ndarray, rotation, translation, focal, center):
    """Subset row of each of the 68 landmarks, with jaw points moved to the silhouette."""
    rows = np.arange(NUM_LANDMARKS)
    cand = positions[bases.candidate_rows]                      # (17, M, 3)
    cam = cand @ rotation.T + translation
    px = project(cam, focal, center)                            # (17, M, 2)
    out_dir = (bases.outward @ rotation.T)[:, :2]               # outward in the image
    out_dir /= np.linalg.norm(out_dir, axis=1, keepdims=True) + 1e-12
    score = np.einsum("jmk,jk->jm", px, out_dir)
    best = np.argmax(score, axis=1)
    rows[:17] = bases.candidate_rows[np.arange(17), best]
    return rows


def _residual_frames(bases: _ModelBases, rotation, tangent_weight: float) -> np.ndarray:
    """(68, 2, 2) maps from image residuals to the residuals that the energy uses.

    Jaw points lie on the silhouette, which slides over the surface as the head turns: only
    their offset across the outline (the projected outward direction) is measured at full
    weight; along the outline it counts with tangent_weight. By the envelope theorem the fixed
    vertex's Jacobian is then right for the part that counts.
    """
    frames = np.broadcast_to(np.eye(2), (NUM_LANDMARKS, 2, 2)).copy()
    out_dir = (bases.outward @ rotation.T)[:, :2]
    out_dir /= np.linalg.norm(out_dir, axis=1, keepdims=True) + 1e-12
    frames[:17, 0, :] = out_dir
    frames[:17, 1, 0] = -out_dir[:, 1] * np.sqrt(tangent_weight)
    frames[:17, 1, 1] = out_dir[:, 0] * np.sqrt(tangent_weight)
    return frames


@dataclass
class _FrameState:
    """One frame's pose and expression; t = exp(c) * (a, b, 1) keeps depth positive."""

    rotation: np.ndarray
    abc: np.ndarray
    expression: np.ndarray
    rows: np.ndarray

    @staticmethod
    def from_pose(rotation, translation, expression, rows) -> "_FrameState":
        t = np.asarray(translation, np.float64)
        if t[2] <= 0:
            raise RuntimeError("the fitted face lies behind the camera")
        return _FrameState(np.asarray(rotation, np.float64), np.array([t[0] / t[2], t[1] / t[2], np.log(t[2])]),
                           np.asarray(expression, np.float64), rows)

    def translation(self) -> np.ndarray:
        a, b, c = self.abc
        return np.exp(c) * np.array([a, b, 1.0])


N_POSE = 6  # rotation increment omega (3), then (a, b, c)


def _frame_linearisation(bases, prob, st: _FrameState, u, log_f, want_identity: bool):
    """Weighted residuals e (2n,) of one frame and their Jacobian blocks at the current state.

    Returns e, J_frame (2n, 6 + 46) for [omega, a, b, c, x], J_shared_u (2n, K) or None and
    J_logf (2n,). omega is a rotation increment applied on the left: R <- exp(omega) R.
    """
    b = bases.basis
    rows = st.rows
    bx, bu = b.expression_basis[rows], b.identity_basis[rows]
    pos = b.neutral[rows] + bu @ u + bx @ st.expression
    q = pos @ st.rotation.T
    tz = np.exp(st.abc[2])
    t = tz * np.array([st.abc[0], st.abc[1], 1.0])
    cam = q + t
    f = np.exp(log_f)
    inv_z = 1.0 / cam[:, 2]
    proj = f * cam[:, :2] * inv_z[:, None]
    sw = np.sqrt(prob.weights)[:, None]
    frames = _residual_frames(bases, st.rotation, prob.jaw_tangent_weight) * sw[:, :, None]
    e = np.matmul(frames, ((proj + prob.center - prob.landmarks) / prob.scale)[:, :, None]).ravel()
    n = len(rows)
    # d(residual)/d(cam): (n, 2, 3)
    k = (f / prob.scale) * inv_z
    d_cam = np.zeros((n, 2, 3))
    d_cam[:, 0, 0] = k
    d_cam[:, 1, 1] = k
    d_cam[:, :, 2] = -k[:, None] * cam[:, :2] * inv_z[:, None]
    d_cam = np.matmul(frames, d_cam)
    skew = np.zeros((n, 3, 3))                       # d(cam)/d(omega) = -[q]x
    skew[:, 0, 1], skew[:, 0, 2] = q[:, 2], -q[:, 1]
    skew[:, 1, 0], skew[:, 1, 2] = -q[:, 2], q[:, 0]
    skew[:, 2, 0], skew[:, 2, 1] = q[:, 1], -q[:, 0]
    d_pose = np.concatenate([skew, tz * np.eye(3)[None, :, :2].repeat(n, 0), np.broadcast_to(t, (n, 3))[:, :, None]], axis=2)
    d_pos = np.matmul(d_cam, st.rotation)                          # d(residual)/d(model position)
    j_frame = np.concatenate([np.matmul(d_cam, d_pose), np.matmul(d_pos, bx)], axis=2).reshape(2 * n, -1)
    j_u = np.matmul(d_pos, bu).reshape(2 * n, -1) if want_identity else None
    j_logf = np.matmul(frames, (proj / prob.scale)[:, :, None]).ravel()
    return e, j_frame, j_u, j_logf


def _total_energy(bases, probs, states, u, log_f, log_f_prior, options: FitOptions, anchors=None) -> float:
    total = 0.0
    for k, (prob, st) in enumerate(zip(probs, states)):
        e = _frame_residuals(bases, prob, st, u, log_f)
        x = st.expression
        total += float(e @ e) + options.expression_l1 * x.sum() + options.expression_l2 * float(x @ x)
        if anchors is not None and anchors[k] is not None:
            total += options.anchor_weight * float(((x - anchors[k]) ** 2).sum())
    total /= len(states)
    return total + options.identity_prior * float(u @ u) + options.focal_prior * (log_f - log_f_prior) ** 2


def _frame_residuals(bases, prob, st: _FrameState, u, log_f) -> np.ndarray:
    b = bases.basis
    rows = st.rows
    pos = b.neutral[rows] + b.identity_basis[rows] @ u + b.expression_basis[rows] @ st.expression
    cam = pos @ st.rotation.T + st.translation()
    proj = project(cam, np.exp(log_f), prob.center)
    frames = _residual_frames(bases, st.rotation, prob.jaw_tangent_weight) * np.sqrt(prob.weights)[:, None, None]
    return np.matmul(frames, ((proj - prob.landmarks) / prob.scale)[:, :, None]).ravel()


def _normal_equations(bases, probs, states, u, log_f, solve_identity: bool, solve_focal: bool):
    """Gauss-Newton Hessian 2 J'J and gradient 2 J'e of the landmark energy (mean over frames).

    One frame: a dense matrix over [pose, x, u, log f]. Several: an ArrowHessian, since each
    frame's pose and expressions couple only to themselves and the shared u and log f.
    """
    n_frames = len(states)
    per = N_POSE + NUM_FACS
    n_shared = (len(u) if solve_identity else 0) + (1 if solve_focal else 0)
    arrow = ArrowHessian.zeros(n_frames, per, n_shared) if n_frames > 1 else None
    g = np.zeros(n_frames * per + n_shared)
    for i, (prob, st) in enumerate(zip(probs, states)):
        e, jf, ju, jl = _frame_linearisation(bases, prob, st, u, log_f, solve_identity)
        js = np.concatenate([jf[:, :0]] + ([ju] if solve_identity else []) + ([jl[:, None]] if solve_focal else []), axis=1)
        if arrow is None:
            j = np.concatenate([jf, js], axis=1)
            return 2.0 * j.T @ j, 2.0 * j.T @ e
        arrow.frames[i] = (2.0 / n_frames) * (jf.T @ jf)
        arrow.coupling[i] = (2.0 / n_frames) * (jf.T @ js)
        arrow.shared += (2.0 / n_frames) * (js.T @ js)
        g[i * per:(i + 1) * per] = (2.0 / n_frames) * (jf.T @ e)
        g[n_frames * per:] += (2.0 / n_frames) * (js.T @ e)
    return arrow, g


def _held_at_zero(expression: np.ndarray, gradient: np.ndarray, options: FitOptions) -> np.ndarray:
    """Channels held at 0 this step: the fixed ones, and of each exclusive pair the smaller (when
    both are 0, the one whose gradient pulls it up less)."""
    held = np.zeros(len(expression), bool)
    held[list(options.fixed_zero)] = True
    for a, b in options.exclusive_pairs:
        xa, xb = expression[a], expression[b]
        held[b if (xa > xb or (xa == xb and gradient[a] <= gradient[b])) else a] = True
    return held


def _refine(bases, probs, states, u, log_f, log_f_prior, options: FitOptions,
            solve_identity: bool, solve_focal: bool, anchors=None):
    """Levenberg-Marquardt on every frame's pose and expression and the shared identity and focal.

    Each step minimises the damped Gauss-Newton model under the bounds x in [0, 1], |u| <= 4 and
    the focal range (core.face.box_qp), then keeps it if the energy drops.
    """
    n_frames, n_x, k = len(states), NUM_FACS, len(u)
    per = N_POSE + n_x
    n_var = n_frames * per + (k if solve_identity else 0) + (1 if solve_focal else 0)
    u_slice = slice(n_frames * per, n_frames * per + k) if solve_identity else None
    span = np.log(options.focal_range)
    mu = 1e-3
    constrained = bool(options.exclusive_pairs or options.fixed_zero)
    crossing = _crossing_pairs(options)
    if constrained:  # start inside the constraints
        states = [replace(st, expression=np.where(_held_at_zero(st.expression, np.zeros(n_x), options), 0.0,
                                                  st.expression)) for st in states]
    energy = _total_energy(bases, probs, states, u, log_f, log_f_prior, options, anchors)
    diag_idx = np.arange(n_var)
    prior_diag = np.zeros(n_var)                 # curvature of the quadratic priors
    for i in range(n_frames):
        anchored = anchors is not None and anchors[i] is not None
        prior_diag[i * per + N_POSE:(i + 1) * per] = 2.0 * (options.expression_l2
                                                            + (options.anchor_weight if anchored else 0.0)) / n_frames
    if solve_identity:
        prior_diag[u_slice] = 2.0 * options.identity_prior
    if solve_focal:
        prior_diag[-1] = 2.0 * options.focal_prior
    lo = np.full(n_var, -np.inf)
    hi = np.full(n_var, np.inf)
    for i in range(n_frames):
        lo[i * per:i * per + 3], hi[i * per:i * per + 3] = -0.5, 0.5
    for _ in range(options.max_iterations):
        h, g = _normal_equations(bases, probs, states, u, log_f, solve_identity, solve_focal)
        for i, st in enumerate(states):
            xs = slice(i * per + N_POSE, (i + 1) * per)
            g[xs] += (options.expression_l1 + 2.0 * options.expression_l2 * st.expression) / n_frames
            if anchors is not None and anchors[i] is not None:
                g[xs] += 2.0 * options.anchor_weight * (st.expression - anchors[i]) / n_frames
            lo[xs], hi[xs] = -st.expression, 1.0 - st.expression
            if constrained:
                held = _held_at_zero(st.expression, g[xs], options)
                lo[xs][held] = 0.0
                hi[xs][held] = 0.0
                for a, b in crossing.items():  # an active channel may pass through 0 to its partner
                    if held[b] and not held[a] and b not in options.fixed_zero:
                        lo[xs][a] = -st.expression[a] - 1.0
        h = h.add_diagonal(prior_diag) if n_frames > 1 else h + np.diag(prior_diag)
        if solve_identity:
            g[u_slice] += 2.0 * options.identity_prior * u
            lo[u_slice], hi[u_slice] = -4.0 - u, 4.0 - u
        if solve_focal:
            g[-1] += 2.0 * options.focal_prior * (log_f - log_f_prior)
            lo[-1], hi[-1] = log_f_prior - span - log_f, log_f_prior + span - log_f
        diag = (h.diagonal() if n_frames > 1 else np.diag(h)) + 1e-9
        improved = False
        for _attempt in range(6):
            if n_frames > 1:
                step = arrow_box_step(h.add_diagonal(mu * diag), g, lo, hi)
            else:
                hd = h.copy()
                hd[diag_idx, diag_idx] += mu * diag
                step = dense_box_step(hd, g, lo, hi)
            new_states, new_u, new_log_f = _apply_step(states, u, log_f, step, per, u_slice, solve_focal,
                                                       options, crossing)
            new_energy = _total_energy(bases, probs, new_states, new_u, new_log_f, log_f_prior, options, anchors)
            if new_energy < energy:
                improved = True
                mu = max(mu / 3.0, 1e-7)
                break
            mu *= 4.0
        if not improved:
            break
        decrease = energy - new_energy
        states, u, log_f, energy = new_states, new_u, new_log_f, new_energy
        if decrease < options.tolerance * energy:
            break
    return states, u, log_f


def _crossing_pairs(options: FitOptions) -> dict[int, int]:
    """Exclusive pairs whose active channel may cross over to its partner within one step (as one
    signed weight): channel -> partner, for channels that belong to a single pair."""
    count: dict[int, int] = {}
    for a, b in options.exclusive_pairs:
        count[a], count[b] = count.get(a, 0) + 1, count.get(b, 0) + 1
    out = {}
    for a, b in options.exclusive_pairs:
        if count[a] == 1 and count[b] == 1:
            out[a], out[b] = b, a
    return out


def _settle_pairs(x: np.ndarray, options: FitOptions, crossing: dict[int, int]) -> np.ndarray:
    """Weights after a step: a crossing channel pushed below 0 becomes its partner's weight, then
    x is clipped to [0, 1] and the smaller of any pair still both active is set to 0."""
    x = x.copy()
    for a, b in crossing.items():
        if x[a] < 0.0 and x[b] <= 0.0:
            x[b], x[a] = -x[a], 0.0
    x = np.clip(x, 0.0, 1.0)
    for a, b in options.exclusive_pairs:
        if x[a] > 0.0 and x[b] > 0.0:
            x[b if x[a] >= x[b] else a] = 0.0
    return x


def _apply_step(states, u, log_f, step, per, u_slice, solve_focal, options: FitOptions | None = None,
                crossing: dict[int, int] | None = None):
    new_states = []
    for i, st in enumerate(states):
        d = step[i * per:(i + 1) * per]
        rw, _ = cv2.Rodrigues(d[:3])
        x = st.expression + d[N_POSE:]
        x = _settle_pairs(x, options, crossing) if options is not None and options.exclusive_pairs else np.clip(x, 0.0, 1.0)
        new_states.append(_FrameState(rw @ st.rotation, st.abc + d[3:6], x, st.rows))
    new_u = u + step[u_slice] if u_slice is not None else u
    new_log_f = log_f + step[-1] if solve_focal else log_f
    return new_states, new_u, new_log_f


# ----------------------------------------------------------------------------- public API

# Landmarks that expressions move least (nose, eye corners), for the first PnP.
_STABLE_POINTS = np.array([27, 28, 29, 30, 31, 32, 33, 34, 35, 36, 39, 42, 45])
# Prior strength for each alternation: strong at first so that the pose settles before
# expression and identity explain the details (graduated regularisation avoids poor minima).
_PRIOR_SCHEDULE = (30.0, 5.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0)


def _initial_pose(bases, prob: _Problem, positions, focal):
    """PnP on the stable points when enough are visible, then on every weighted point."""
    stable = np.zeros(NUM_LANDMARKS, bool)
    stable[_STABLE_POINTS] = True
    if np.count_nonzero(prob.weights[stable] > 0) >= 6:
        sub = replace(prob, landmarks=prob.landmarks[stable], weights=prob.weights[stable])
        rot, t = _solve_pose(positions[:NUM_LANDMARKS][stable], sub, focal)
        return _solve_pose(positions[:NUM_LANDMARKS], prob, focal, rot, t)
    return _solve_pose(positions[:NUM_LANDMARKS], prob, focal)


def _best_start(bases, prob, pos, rot, t, u, log_f, log_f_prior, options: FitOptions) -> _FrameState:
    """Refine the PnP pose and yaw-turned copies of it under strong priors; keep the best.

    Strongly turned faces with expressions have a second minimum at a smaller yaw (the jaw
    silhouette and the cheek trade places); a start turned further away finds the right one.
    """
    strong = replace(_scaled(options, _PRIOR_SCHEDULE[0]), tolerance=_COARSE_TOLERANCE)
    best, best_energy = None, np.inf
    yaw_sign = 1.0 if head_angles(rot)[0] >= 0 else -1.0
    for yaw_offset in _START_YAW_OFFSETS:
        turn, _ = cv2.Rodrigues(np.asarray(rot @ np.array([0.0, np.radians(yaw_offset) * yaw_sign, 0.0])))
        r0 = turn @ rot
        rows = np.arange(NUM_LANDMARKS)
        if options.silhouette_jaw:
            rows = _silhouette_rows(bases, pos, r0, t, np.exp(log_f), prob.center)
        start = _FrameState.from_pose(r0, t, np.zeros(NUM_FACS), rows)
        light_jaw = _with_jaw_weight(prob, _JAW_WEIGHT_SCHEDULE[0])
        (state,), _, _ = _refine(bases, [light_jaw], [start], u, log_f, log_f_prior, strong, False, False)
        energy = _total_energy(bases, [light_jaw], [state], u, log_f, log_f_prior, strong)
        if energy < best_energy:
            best, best_energy = state, energy
    return best


_START_YAW_OFFSETS = (0.0, 20.0)  # degrees about the head's vertical axis, away from frontal


# Weight of the jaw silhouette points per alternation: the inner points settle the pose first,
# so that the silhouette is re-assigned from a pose it did not pull off course.
_JAW_WEIGHT_SCHEDULE = (0.1, 0.3, 1.0)
_FINAL_TANGENT_WEIGHT = 0.1
_COARSE_TOLERANCE = 1e-3  # the early, strongly regularised stages need not converge tightly


def _with_jaw_weight(prob: _Problem, factor: float) -> _Problem:
    if factor == 1.0:
        return prob
    w = prob.weights.copy()
    w[:17] *= factor
    return replace(prob, weights=w)


def _scaled(options: FitOptions, factor: float) -> FitOptions:
    return replace(options, identity_prior=options.identity_prior * factor,
                   expression_l1=options.expression_l1 * factor, expression_l2=options.expression_l2 * factor)


def _fit_frames(model, probs, identity, focal_prior, focal_start, options: FitOptions,
                solve_identity: bool, solve_focal: bool, warm: list[FitResult | None] | None = None):
    """From a PnP start, alternate jaw silhouette re-assignment and the joint refinement.

    With `warm` (one entry per frame), frames with a previous fit start from it and only the
    last, fully relaxed alternation runs: the strong early priors are there to keep a cold start
    out of poor minima, which a previous solve has already left.
    """
    bases = _bases(model)
    u = np.array(identity, np.float64)
    log_f = float(np.log(focal_start))
    log_f_prior = float(np.log(focal_prior))
    pos = _positions(bases, u, np.zeros(NUM_FACS))
    states = []
    for prob, previous in zip(probs, warm or [None] * len(probs)):
        if previous is not None:
            states.append(_FrameState.from_pose(previous.rotation, previous.translation, previous.expression,
                                                np.arange(NUM_LANDMARKS)))
            continue
        rows = np.arange(NUM_LANDMARKS)
        rot, t = _initial_pose(bases, prob, pos, np.exp(log_f))
        if options.silhouette_jaw:
            rows = _silhouette_rows(bases, pos, rot, t, np.exp(log_f), prob.center)
            rot, t = _solve_pose(pos[rows], prob, np.exp(log_f), rot, t)
        states.append(_best_start(bases, prob, pos, rot, t, u, log_f, log_f_prior, options))
    if warm is not None:
        _reassign_silhouettes(bases, probs, states, u, log_f, options)
    first = options.alternations - 1 if warm is not None else 0
    for i in range(max(first, 0), options.alternations):
        factor = _PRIOR_SCHEDULE[min(i, len(_PRIOR_SCHEDULE) - 1)] if i < options.alternations - 1 else 1.0
        stage_probs = [_with_jaw_weight(p, _JAW_WEIGHT_SCHEDULE[min(i, len(_JAW_WEIGHT_SCHEDULE) - 1)]) for p in probs]
        stage = _scaled(options, factor)
        if i < options.alternations - 2:
            stage = replace(stage, tolerance=max(options.tolerance, _COARSE_TOLERANCE))
        states, u, log_f = _refine(bases, stage_probs, states, u, log_f, log_f_prior, stage,
                                   solve_identity, solve_focal)
        _reassign_silhouettes(bases, probs, states, u, log_f, options)
    if options.silhouette_jaw:  # a last refinement on the final silhouette
        final_probs = [replace(p, jaw_tangent_weight=_FINAL_TANGENT_WEIGHT) for p in probs]
        states, u, log_f = _refine(bases, final_probs, states, u, log_f, log_f_prior, options, solve_identity, solve_focal)
    fits = [_result(bases, st, prob, u, float(np.exp(log_f))) for st, prob in zip(states, probs)]
    return u, float(np.exp(log_f)), fits


def _reassign_silhouettes(bases, probs, states, u, log_f, options: FitOptions) -> None:
    """Move each frame's jaw points to the silhouette of its current pose and expression."""
    if not options.silhouette_jaw:
        return
    for prob, st in zip(probs, states):
        pos = _positions(bases, u, st.expression)
        st.rows = _silhouette_rows(bases, pos, st.rotation, st.translation(), np.exp(log_f), prob.center)


def fit_landmarks(
    model: FaceModel,
    landmarks,
    image_size,
    *,
    weights=None,
    focal_px: float | None = None,
    identity=None,
    fix_focal: bool = False,
    options: FitOptions = FitOptions(),
) -> FitResult:
    """Solve Eq. 4 for one set of 68 landmarks (pixels) in an image of (width, height).

    focal_px seeds and regularises the focal length (default: 50 mm equivalent); fix_focal
    keeps it. identity, when given, is held fixed (tracking a known person). weights (68,)
    down-weight occluded points; zero removes a point.
    """
    prob = _make_problem(landmarks, image_size, weights, _tangent_weight(options))
    focal_prior = _check_focal(focal_px, prob.image_size)
    solve_identity = identity is None and options.solve_identity
    u0 = np.zeros(model.num_identity) if identity is None else _check_vector(identity, model.num_identity, "identity")
    _, _, fits = _fit_frames(model, [prob], u0, focal_prior, focal_prior, options, solve_identity,
                             options.solve_focal and not fix_focal)
    return fits[0]


def fit_identity_focal(
    model: FaceModel,
    keyframes,
    image_size,
    *,
    weights=None,
    focal_px: float | None = None,
    options: FitOptions = FitOptions(),
    start: WarmStart | None = None,
) -> tuple[np.ndarray, float, list[FitResult]]:
    """Eq. 3: one identity u and focal f shared by L keyframes of one person (same camera).

    Every keyframe keeps its own pose and expression; all are refined jointly. Returns
    (u, f, per-frame fits). `start`, a previous solve on mostly the same keyframes, makes the
    solve continue from it (fewer, cheaper steps) instead of starting cold.
    """
    if keyframes is None or len(keyframes) == 0:
        raise ValueError("fit_identity_focal needs at least one keyframe")
    size = _check_image_size(image_size)
    wlist = list(weights) if weights is not None else [None] * len(keyframes)
    if len(wlist) != len(keyframes):
        raise ValueError(f"got {len(wlist)} weight arrays for {len(keyframes)} keyframes")
    probs = []
    for i, (pts, w) in enumerate(zip(keyframes, wlist)):
        try:
            probs.append(_make_problem(pts, size, w, _tangent_weight(options)))
        except ValueError as exc:
            raise ValueError(f"keyframe {i}: {exc}") from None
    focal_prior = _check_focal(focal_px, size)
    if start is None:
        return _fit_frames(model, probs, np.zeros(model.num_identity), focal_prior, focal_prior, options,
                           options.solve_identity, options.solve_focal)
    if len(start.fits) != len(probs):
        raise ValueError(f"the warm start has {len(start.fits)} fits for {len(probs)} keyframes")
    return _fit_frames(model, probs, _check_vector(start.identity, model.num_identity, "start.identity"),
                       focal_prior, _check_focal(start.focal_px, size), options, options.solve_identity,
                       options.solve_focal, warm=list(start.fits))


def _tangent_weight(options: FitOptions) -> float:
    return options.jaw_tangent_weight if options.silhouette_jaw else 1.0


def _check_focal(focal_px, image_size) -> float:
    if focal_px is None:
        return focal_from_mm(DEFAULT_FOCAL_MM, image_size[0])
    f = float(focal_px)
    if not np.isfinite(f) or f <= 0:
        raise ValueError(f"focal_px must be a positive number of pixels, got {focal_px}")
    return f


def _check_vector(v, n: int, name: str) -> np.ndarray:
    arr = np.asarray(v, np.float64)
    if arr.shape != (n,) or not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} must be a finite vector of length {n}, got shape {arr.shape}")
    return arr


def _result(bases, state: _FrameState, prob, u, f) -> FitResult:
    rows = state.rows
    pos = _positions(bases, u, state.expression)
    rot, t = state.rotation, state.translation()
    projected = project(pos[rows] @ rot.T + t, f, prob.center)
    disp = prob.landmarks - projected
    w = prob.weights
    rmse = float(np.sqrt((w * (disp ** 2).sum(1)).sum() / w.sum()))
    return FitResult(rotation=rot, translation=t, expression=state.expression.copy(), identity=u.copy(),
                     focal_px=f, center=prob.center.copy(), projected=projected, displacements=disp,
                     vertex_ids=bases.basis.vertex_ids[rows].astype(np.int32), rmse_px=rmse)


def fit_frame(
    model: FaceModel,
    landmarks,
    image_size,
    rotation,
    translation,
    expression,
    identity,
    focal_px: float,
    *,
    anchor=None,
    weights=None,
    options: FitOptions = FitOptions(),
) -> FitResult:
    """Eq. 4 for one tracked frame whose identity and focal length are known: a few
    Levenberg-Marquardt steps on pose and expression from a start near the answer (the frame's
    regressed shape). anchor: expression weights that x is drawn to with options.anchor_weight
    (the previous frame's, for temporal coherence)."""
    prob = _make_problem(landmarks, image_size, weights, _tangent_weight(options))
    bases = _bases(model)
    u = _check_vector(identity, model.num_identity, "identity")
    log_f = float(np.log(_check_focal(focal_px, prob.image_size)))
    x0 = np.clip(np.asarray(expression, np.float64), 0.0, 1.0)
    rot, t = np.asarray(rotation, np.float64), np.asarray(translation, np.float64)
    rows = np.arange(NUM_LANDMARKS)
    if options.silhouette_jaw:
        rows = _silhouette_rows(bases, _positions(bases, u, x0), rot, t, np.exp(log_f), prob.center)
    state = _FrameState.from_pose(rot, t, x0, rows)
    anchors = [None if anchor is None else np.asarray(anchor, np.float64)]
    (state,), _, _ = _refine(bases, [prob], [state], u, log_f, log_f, options, False, False, anchors)
    return _result(bases, state, prob, u, float(np.exp(log_f)))
