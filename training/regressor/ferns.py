"""Training of random ferns by correlation-based feature selection (Cao et al. 2012, ESR).

Each fern level picks the pair of features whose intensity difference correlates best with
the residual projected on a random direction; a random threshold splits it; each bin outputs
the shrunk mean residual of its samples, sum / (count + beta).
"""
from __future__ import annotations

import numpy as np

from core.track.regressor import fern_bins


class PairSelector:
    """argmax over pairs (i, j) of corr(target, values_i - values_j), for many targets.

    The spread of every pair difference depends on the features only, so it is computed once
    per stage; each target then costs one (N, P) product and a (P, P) scan.
    """

    def __init__(self, values: np.ndarray):
        # float64 once: a float32 matrix would be converted on every product
        self.centred = (values - values.mean(0)).astype(np.float64)
        cov = (self.centred.T @ self.centred) / len(values)
        var = np.diag(cov)
        den = var[:, None] + var[None, :] - 2.0 * cov
        valid = den > 1e-9
        np.fill_diagonal(valid, False)
        self.inv_spread = np.where(valid, 1.0 / np.sqrt(np.maximum(den, 1e-9)), 0.0)
        self.invalid = np.where(valid, 0.0, -np.inf)

    def select(self, target: np.ndarray) -> tuple[int, int]:
        cov_y = self.centred.T @ (target - target.mean()) / len(target)  # (P,)
        corr = (cov_y[:, None] - cov_y[None, :]) * self.inv_spread + self.invalid
        i, j = np.unravel_index(np.argmax(corr), corr.shape)
        return int(i), int(j)


def bin_means(bins: np.ndarray, residuals: np.ndarray, count: int, beta: float) -> np.ndarray:
    """Shrunk mean residual per bin, sum / (count + beta); a one-hot product is many times
    faster than np.add.at over (N, D) residuals."""
    one_hot = (bins[None, :] == np.arange(count)[:, None]).astype(residuals.dtype)
    return (one_hot @ residuals) / (one_hot.sum(1)[:, None] + beta)


def train_ferns(values: np.ndarray, residuals: np.ndarray, count: int, depth: int, rng: np.random.Generator,
                beta: float = 250.0, dim_scale: np.ndarray | None = None):
    """K ferns of depth F that regress residuals (N, D) from values (N, P).

    Returns (pairs (K, F, 2), thresholds (K, F), outputs (K, 2^F, D), prediction (N, D)).
    Ferns are trained in sequence, each on what the ones before left unexplained.
    """
    values = np.ascontiguousarray(values, np.float32)
    d = residuals.shape[1]
    scale = np.ones(d) if dim_scale is None else dim_scale
    selector = PairSelector(values)
    remaining = residuals.astype(np.float64).copy()
    pairs = np.zeros((count, depth, 2), np.int32)
    thresholds = np.zeros((count, depth), np.float32)
    outputs = np.zeros((count, 2 ** depth, d), np.float32)
    for k in range(count):
        for level in range(depth):
            direction = rng.normal(size=d) / scale
            i, j = selector.select(remaining @ direction)
            diff = values[:, i] - values[:, j]
            pairs[k, level] = i, j
            thresholds[k, level] = np.percentile(diff, rng.uniform(25.0, 75.0))
        bins = fern_bins(values, pairs[k], thresholds[k])
        outputs[k] = bin_means(bins, remaining, 2 ** depth, beta)
        remaining -= outputs[k][bins]
    return pairs, thresholds, outputs, residuals - remaining
