"""Training of random ferns by correlation-based feature selection (Cao et al. 2012, ESR).

Each fern level picks the pair of features whose intensity difference correlates best with
the residual projected on a random direction; a random threshold splits it; each bin outputs
the shrunk mean residual of its samples, sum / (count + beta).
"""
from __future__ import annotations

import numpy as np

from core.regressor import fern_bins


def select_pair(values: np.ndarray, centred: np.ndarray, cov: np.ndarray, target: np.ndarray) -> tuple[int, int]:
    """argmax over pairs (i, j) of corr(target, values_i - values_j).

    centred: values minus column means; cov: (P, P) covariance of the features.
    """
    y = target - target.mean()
    cov_y = centred.T @ y / len(y)                               # (P,)
    var = np.diag(cov)
    num = cov_y[:, None] - cov_y[None, :]
    den = var[:, None] + var[None, :] - 2.0 * cov
    corr = np.where(den > 1e-9, num / np.sqrt(np.maximum(den, 1e-9)), -np.inf)
    np.fill_diagonal(corr, -np.inf)
    i, j = np.unravel_index(np.argmax(corr), corr.shape)
    return int(i), int(j)


def train_ferns(values: np.ndarray, residuals: np.ndarray, count: int, depth: int, rng: np.random.Generator,
                beta: float = 250.0, dim_scale: np.ndarray | None = None):
    """K ferns of depth F that regress residuals (N, D) from values (N, P).

    Returns (pairs (K, F, 2), thresholds (K, F), outputs (K, 2^F, D), prediction (N, D)).
    Ferns are trained in sequence, each on what the ones before left unexplained.
    """
    values = np.ascontiguousarray(values, np.float32)
    n, p = values.shape
    d = residuals.shape[1]
    scale = np.ones(d) if dim_scale is None else dim_scale
    centred = values - values.mean(0)
    cov = (centred.T @ centred) / n
    remaining = residuals.astype(np.float64).copy()
    prediction = np.zeros_like(remaining)
    pairs = np.zeros((count, depth, 2), np.int32)
    thresholds = np.zeros((count, depth), np.float32)
    outputs = np.zeros((count, 2 ** depth, d), np.float32)
    for k in range(count):
        for level in range(depth):
            direction = rng.normal(size=d) / scale
            i, j = select_pair(values, centred, cov, remaining @ direction)
            diff = values[:, i] - values[:, j]
            pairs[k, level] = i, j
            thresholds[k, level] = np.percentile(diff, rng.uniform(25.0, 75.0))
        bins = fern_bins(values, pairs[k], thresholds[k])
        counts = np.bincount(bins, minlength=2 ** depth).astype(np.float64)
        sums = np.zeros((2 ** depth, d))
        np.add.at(sums, bins, remaining)
        outputs[k] = sums / (counts[:, None] + beta)
        step = outputs[k][bins]
        remaining -= step
        prediction += step
    return pairs, thresholds, outputs, prediction
