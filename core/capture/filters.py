"""The One Euro filter (Casiez, Roussel and Vogel, CHI 2012), vectorised over channels.

A low-pass filter whose cutoff rises with speed: slow motion is smoothed hard (no jitter),
fast motion passes with little lag. One instance filters all channels of one stream.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class OneEuroParams:
    """min_cutoff (Hz): smoothing at rest; beta: how fast the cutoff grows with speed;
    d_cutoff (Hz): smoothing of the speed estimate."""

    min_cutoff: float = 1.0
    beta: float = 0.3
    d_cutoff: float = 1.0

    def __post_init__(self):
        for name in ("min_cutoff", "d_cutoff"):
            if not getattr(self, name) > 0:
                raise ValueError(f"One Euro {name} must be positive, got {getattr(self, name)}")
        if not self.beta >= 0:
            raise ValueError(f"One Euro beta must be 0 or more, got {self.beta}")


def _alpha(cutoff_hz: np.ndarray | float, dt: float) -> np.ndarray | float:
    tau = 1.0 / (2.0 * math.pi * cutoff_hz)
    return 1.0 / (1.0 + tau / dt)


class OneEuroFilter:
    """Filters a stream of (C,) vectors sampled at increasing times (seconds)."""

    def __init__(self, params: OneEuroParams | None = None):
        self.params = params or OneEuroParams()
        self.reset()

    def reset(self) -> None:
        self._x: np.ndarray | None = None
        self._dx: np.ndarray | None = None
        self._t: float | None = None

    def __call__(self, x, t: float) -> np.ndarray:
        x = np.asarray(x, np.float64)
        if self._x is None or self._t is None or t <= self._t:
            # first sample, or time did not advance (a repeated or reordered timestamp): restart
            self._x, self._dx, self._t = x.copy(), np.zeros_like(x), float(t)
            return x.copy()
        if x.shape != self._x.shape:
            raise ValueError(f"One Euro filter got shape {x.shape} after {self._x.shape}")
        p = self.params
        dt = float(t) - self._t
        dx = (x - self._x) / dt
        self._dx = self._dx + _alpha(p.d_cutoff, dt) * (dx - self._dx)
        cutoff = p.min_cutoff + p.beta * np.abs(self._dx)
        self._x = self._x + _alpha(cutoff, dt) * (x - self._x)
        self._t = float(t)
        return self._x.copy()


def filter_sequence(values: np.ndarray, times_s: np.ndarray, params: OneEuroParams | None = None) -> np.ndarray:
    """Filter a whole (N, C) take whose rows were sampled at times_s (N,)."""
    values = np.asarray(values, np.float64)
    times_s = np.asarray(times_s, np.float64)
    if values.ndim != 2 or times_s.shape != (values.shape[0],):
        raise ValueError(f"need values (N, C) and times (N,), got {values.shape} and {times_s.shape}")
    f = OneEuroFilter(params)
    return np.stack([f(row, t) for row, t in zip(values, times_s)]) if len(values) else values.copy()
