"""Box-constrained quadratic steps for the fitting's Levenberg-Marquardt (min 0.5 d'Hd + g'd, lo <= d <= hi).

Two solvers. `dense_box_step` takes any positive definite H: a primal-dual active-set Newton
method, with L-BFGS-B to finish when the active set cycles (single-frame fits, small H).
`arrow_box_step` takes the Hessian of Eq. 3 over L keyframes, which is block arrow-shaped: each
frame's pose and expressions couple only to themselves and to the shared identity and focal
length (`ArrowHessian`). It alternates gradient projection and Newton steps on the free variables
(Moré and Toraldo 1991, "On the solution of large quadratic programming problems with bound
constraints"), and solves each Newton system by the Schur complement on the shared variables: L
small solves instead of one large one. It ends at the exact minimiser where the active-set
iteration cycles (most joint steps of a 12-keyframe solve did, and L-BFGS-B then left up to half
the decrease unmade).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.linalg.lapack import dposv
from scipy.optimize import minimize


@dataclass
class ArrowHessian:
    """H = [[A_1, .., 0, B_1], .., [0, .., A_L, B_L], [B_1', .., B_L', C]]: L frames of `per`
    variables each, then `shared` variables coupled to all frames. Vectors are flat, frames first."""

    frames: np.ndarray   # (L, per, per) A_i
    coupling: np.ndarray  # (L, per, shared) B_i
    shared: np.ndarray   # (shared, shared) C

    @staticmethod
    def zeros(num_frames: int, per: int, shared: int) -> "ArrowHessian":
        return ArrowHessian(np.zeros((num_frames, per, per)), np.zeros((num_frames, per, shared)),
                            np.zeros((shared, shared)))

    @property
    def num_frames(self) -> int:
        return self.frames.shape[0]

    @property
    def per(self) -> int:
        return self.frames.shape[1]

    def _split(self, v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        cut = self.num_frames * self.per
        return v[:cut].reshape(self.num_frames, self.per), v[cut:]

    def diagonal(self) -> np.ndarray:
        return np.concatenate([np.einsum("fii->fi", self.frames).ravel(), np.diag(self.shared)])

    def add_diagonal(self, values: np.ndarray) -> "ArrowHessian":
        """A copy with `values` added to the diagonal."""
        top, rest = self._split(values)
        frames, shared = self.frames.copy(), self.shared.copy()
        np.einsum("fii->fi", frames)[...] += top
        shared[np.diag_indices_from(shared)] += rest
        return ArrowHessian(frames, self.coupling, shared)

    def matvec(self, v: np.ndarray) -> np.ndarray:
        top, rest = self._split(v)
        out_top = np.matmul(self.frames, top[:, :, None])[:, :, 0] + self.coupling @ rest
        out_rest = self.coupling.reshape(-1, len(rest)).T @ top.ravel() + self.shared @ rest
        return np.concatenate([out_top.ravel(), out_rest])

    def dense(self) -> np.ndarray:
        """The full matrix (for tests and checks)."""
        n_top = self.num_frames * self.per
        h = np.zeros((n_top + len(self.shared),) * 2)
        for i in range(self.num_frames):
            rows = slice(i * self.per, (i + 1) * self.per)
            h[rows, rows] = self.frames[i]
            h[rows, n_top:] = self.coupling[i]
            h[n_top:, rows] = self.coupling[i].T
        h[n_top:, n_top:] = self.shared
        return h

    def solve_free(self, rhs: np.ndarray, free: np.ndarray) -> np.ndarray:
        """x with H[free, free] x[free] = rhs[free] and x = 0 elsewhere, by the Schur complement on
        the shared variables: one small Cholesky solve per frame, then one of the shared size."""
        top_free, rest_free = self._split(free)
        top_rhs, rest_rhs = self._split(rhs)
        shared_ids = np.flatnonzero(rest_free)
        schur = self.shared[np.ix_(shared_ids, shared_ids)]
        schur_rhs = rest_rhs[shared_ids]
        frame_parts = []
        for i in range(self.num_frames):
            ids = np.flatnonzero(top_free[i])
            b = self.coupling[i][np.ix_(ids, shared_ids)]
            solved = _positive_definite_solve(self.frames[i][np.ix_(ids, ids)],
                                              np.concatenate([b, top_rhs[i, ids, None]], axis=1))
            schur = schur - b.T @ solved[:, :-1]
            schur_rhs = schur_rhs - b.T @ solved[:, -1]
            frame_parts.append((ids, solved))
        x_shared = _positive_definite_solve(schur, schur_rhs[:, None])[:, 0]
        x_top = np.zeros((self.num_frames, self.per))
        for i, (ids, solved) in enumerate(frame_parts):
            x_top[i, ids] = solved[:, -1] - solved[:, :-1] @ x_shared
        x_rest = np.zeros(len(rest_free))
        x_rest[shared_ids] = x_shared
        return np.concatenate([x_top.ravel(), x_rest])


def _positive_definite_solve(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """a^-1 b for a symmetric positive definite a (Cholesky); LU if rounding made it indefinite."""
    if len(a) == 0:
        return np.zeros_like(b)
    _, x, info = dposv(a, b)
    return x if info == 0 else np.linalg.solve(a, b)


def arrow_box_step(h: ArrowHessian, g: np.ndarray, lo: np.ndarray, hi: np.ndarray,
                   max_iterations: int = 100, projection_steps: int = 10) -> np.ndarray:
    """argmin 0.5 d'Hd + g'd subject to lo <= d <= hi (lo <= 0 <= hi, H positive definite).

    Gradient projection then Newton on the free variables, repeated (Moré and Toraldo 1991):
    projected steps along the diagonally scaled gradient move many variables onto their bounds
    at once, until the set on a bound stops changing; then a Newton step in the variables off
    their bounds (or pulled off them by the gradient), projected and shortened until the
    energy drops enough. It ends when such a Newton step satisfies the optimality conditions
    exactly, as an active-set method does.
    """
    d = np.zeros(len(g))
    energy, grad = 0.0, g.copy()  # 0.5 d'Hd + g'd and Hd + g at d, kept up to date
    scale = 1.0 / h.diagonal()
    for _ in range(max_iterations):
        on_bound = None
        for _ in range(projection_steps):
            now = (d <= lo) | (d >= hi)
            if on_bound is not None and np.array_equal(now, on_bound):
                break
            on_bound = now
            direction = -grad * scale
            curvature = float(direction @ h.matvec(direction))
            length = -float(grad @ direction) / curvature if curvature > 0 else 1.0  # exact along the ray
            moved = _projected_search(h, d, energy, grad, direction, length, lo, hi)
            if moved is None:
                break
            d, energy, grad = moved
        held = ((d <= lo) & (grad > 0)) | ((d >= hi) & (grad < 0))
        free = ~held
        step = np.zeros(len(g))
        step[free] = h.solve_free(-grad, free)[free]
        full = d + step
        if np.all(full[free] >= lo[free]) and np.all(full[free] <= hi[free]):
            grad_full = grad + h.matvec(step)
            if not (((d <= lo) & held & (grad_full < 0)).any() or ((d >= hi) & held & (grad_full > 0)).any()):
                return full
        moved = _projected_search(h, d, energy, grad, step, 1.0, lo, hi)
        if moved is not None:
            d, energy, grad = moved
    return d


def _projected_search(h: ArrowHessian, d, energy: float, grad, direction, length: float, lo, hi):
    """The first of d + a * direction (a = length, length/2, ...), projected onto the box, that
    lowers the energy enough (Armijo), with its energy and gradient; None if none does."""
    while length > 1e-12:
        trial = np.clip(d + length * direction, lo, hi)
        change = trial - d
        h_change = h.matvec(change)
        trial_energy = energy + float(change @ grad) + 0.5 * float(change @ h_change)
        if trial_energy < energy and trial_energy <= energy + 1e-4 * float(grad @ change):
            return trial, trial_energy, grad + h_change
        length *= 0.5
    return None


def dense_box_step(h: np.ndarray, g: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """argmin 0.5 d'Hd + g'd subject to lo <= d <= hi (H positive definite).

    A primal active-set Newton solve, which ends in a few linear solves for a single frame's
    problem; if it cycles, L-BFGS-B finishes from its last point.
    """
    n = len(g)
    at_lo = (lo == 0.0) & (g > 0)   # warm start: variables on a bound that the gradient pushes on
    at_hi = (hi == 0.0) & (g < 0)
    d = np.zeros(n)
    for _ in range(12):
        free = ~(at_lo | at_hi)
        d[at_lo], d[at_hi] = lo[at_lo], hi[at_hi]
        rhs = -(g[free] + h[:, ~free][free] @ d[~free])
        d[free] = np.linalg.solve(h[:, free][free], rhs)
        below, above = free & (d < lo), free & (d > hi)
        grad = h @ d + g
        release = (at_lo & (grad < 0)) | (at_hi & (grad > 0))
        if not (below.any() or above.any() or release.any()):
            return d
        at_lo |= below
        at_hi |= above
        at_lo &= ~release
        at_hi &= ~release
    d = np.clip(d, lo, hi)

    def quad(v):
        hv = h @ v
        return 0.5 * float(v @ hv) + float(g @ v), hv + g

    bounds = list(zip(np.where(np.isfinite(lo), lo, None), np.where(np.isfinite(hi), hi, None)))
    return minimize(quad, d, jac=True, method="L-BFGS-B", bounds=bounds,
                    options={"maxiter": 200, "ftol": 1e-12, "gtol": 1e-10}).x
