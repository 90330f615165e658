"""Temporal coherence of a video track: averaged regressions, steady landmarks, expressions fitted
with the previous frame's as a prior (the DDE paper's post-regression fit).

The fern cascade's output jumps when its start moves by a pixel (each fern's bin flips on a pixel
difference); the jumps of different starts are nearly independent, so averaging the regressions
from a few shifted starts steadies a frame without looking at any other frame (`shifted_starts`,
`mean_state`). What is left is smoothed by `LandmarkSmoother`, a per-point alpha-beta filter
(position and velocity) whose gain rises to 1 when a point moves further than the noise, so that
fast motion passes without lag. `ExpressionFitter` then fits pose and the 46 weights to the
steadied landmarks (Eq. 4 with the identity and focal length known, a few steps from the
regressed shape), with priors that keep antagonists apart and unobservable channels at 0, and the
previous frame's weights as a prior.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

from ..face.camera import project
from ..face.face_model import FaceModel
from ..face.facs import ANTAGONIST_PAIRS, FACS_NAMES, NUM_FACS, UNOBSERVED_NAMES
from ..face.fitting import FitOptions, fit_frame
from .regressor import ShapeState

OUTER_EYE_CORNERS = (36, 45)
# landmarks whose resting place the expression fit learns per person: brows (17-26) and eyes (36-47)
NEUTRAL_POINTS = np.r_[17:27, 36:48]

# directions (x, y) of the shifted starts, in order; the first is the previous shape itself
_SHIFTS = ((0, 0), (1, 0), (-1, 0), (0, 1), (0, -1), (1, 1), (-1, -1), (1, -1), (-1, 1))
MAX_STARTS = len(_SHIFTS)


@dataclass(frozen=True)
class SteadyOptions:
    """How a video track is steadied (FaceTracker in VIDEO mode).

    starts: regressions averaged per frame (1 to 9), from the previous shape and copies shifted by
    start_shift face sizes in x and y. alpha, beta: the smoother's position and velocity gains for
    a point that moves within the noise; noise: the regression's noise, in outer-eye-corner
    distances (a point moving k times further than this gets a gain of 1 - (1 - alpha) / k^2).
    fit_expression: blendshapes, rotation and translation from the expression fit on the steadied
    landmarks (else the regressed ones); expression_prior: weight of the previous frame's
    blendshapes in that fit."""

    starts: int = 5
    start_shift: float = 0.03
    smooth: bool = True
    alpha: float = 0.2
    beta: float = 0.02
    noise: float = 0.03
    fit_expression: bool = True
    expression_prior: float = 0.01
    fit_steps: int = 2
    # channels held at 0: the gaze (the 68 landmarks do not see the eyeballs) and JawFwd (a move in
    # depth, which a camera in front barely sees)
    unobserved: tuple[str, ...] = UNOBSERVED_NAMES
    learn_neutral: bool = True  # report each channel's rise above the person's resting value (ExpressionFitter)

    def __post_init__(self):
        if not 1 <= self.starts <= MAX_STARTS:
            raise ValueError(f"starts must be 1 to {MAX_STARTS}, got {self.starts}")
        if not (0.0 < self.alpha <= 1.0 and 0.0 <= self.beta < 1.0 and self.noise > 0.0):
            raise ValueError(f"need 0 < alpha <= 1, 0 <= beta < 1 and noise > 0, got {self.alpha}, "
                             f"{self.beta}, {self.noise}")


def shifted_starts(state: ShapeState, count: int, shift_px: float, focal_px: float) -> list[ShapeState]:
    """The state and count - 1 copies moved by about shift_px pixels in the image (x, y, then
    diagonals; exactly shift_px at the depth of the head's origin)."""
    step = shift_px / focal_px  # (a, b) of t = e^c (a, b, 1) move the face by focal_px * (da, db) pixels
    out = []
    for dx, dy in _SHIFTS[:count]:
        start = state.copy()
        start.abc = start.abc + np.array([dx * step, dy * step, 0.0])
        out.append(start)
    return out


def mean_state(states: list[ShapeState]) -> ShapeState:
    """The average of nearby states (rotations averaged as rotation vectors about the first)."""
    if len(states) == 1:
        return states[0]
    base = states[0].rotation
    omega = np.mean([cv2.Rodrigues(s.rotation @ base.T)[0].ravel() for s in states], axis=0)
    return ShapeState(cv2.Rodrigues(omega)[0] @ base, np.mean([s.abc for s in states], axis=0),
                      np.mean([s.expression for s in states], axis=0),
                      np.mean([s.displacements for s in states], axis=0))


@dataclass
class LandmarkSmoother:
    """Alpha-beta filter per landmark with an innovation-driven gain (see the module docstring)."""

    alpha: float = 0.2
    beta: float = 0.02
    noise: float = 0.03
    _position: np.ndarray | None = field(default=None, repr=False)
    _velocity: np.ndarray | None = field(default=None, repr=False)

    def reset(self) -> None:
        self._position = self._velocity = None

    def __call__(self, points: np.ndarray) -> np.ndarray:
        z = np.asarray(points, np.float64)
        if self._position is None or self._position.shape != z.shape:
            self._position, self._velocity = z.copy(), np.zeros_like(z)
            return z.copy()
        a, b = OUTER_EYE_CORNERS
        noise = self.noise * max(float(np.linalg.norm(z[a] - z[b])), 1e-6)
        predicted = self._position + self._velocity
        innovation = z - predicted
        k = np.maximum(np.linalg.norm(innovation, axis=1, keepdims=True) / noise, 1.0)
        gain = 1.0 - (1.0 - self.alpha) / k ** 2
        self._position = predicted + gain * innovation
        self._velocity = self._velocity + self.beta * innovation
        return self._position.copy()


def frame_fit_options(steady: SteadyOptions) -> FitOptions:
    """Eq. 4's options for a tracked frame: few steps, the tracking priors."""
    return FitOptions(max_iterations=steady.fit_steps, exclusive_pairs=ANTAGONIST_PAIRS,
                      fixed_zero=tuple(FACS_NAMES.index(name) for name in steady.unobserved),
                      anchor_weight=steady.expression_prior, solve_identity=False, solve_focal=False)


class ExpressionFitter:
    """Pose and blendshapes of tracked frames, fitted to their landmarks with the previous frame's
    blendshapes as a prior (reset() forgets them, not the person's neutral).

    The person's neutral: the face model, even with the fitted identity, reads some of the
    performer's own features as expressions (wide-open eyes as EyeOpen, so that a blink only
    brings them to the model's resting eye; thin lips as a press). Two corrections, each a running
    statistic over the last `neutral_frames` frames:
    - eyes and brows (NEUTRAL_POINTS): the landmarks' offsets from the fitted model without
      expression, lifted into the head's frame so that they turn with it; their median (eyes are
      open and brows at rest most of the time) is subtracted from the landmarks before the fit;
    - every channel: its 10th percentile is this person's resting value, and the weight reported
      is how far the channel rises above it, (x - rest) / (1 - rest). The mouth and jaw move most
      of the time in speech, so only a low percentile is their rest; the mapping keeps each
      channel's ordering over time, antagonists apart and held channels at 0."""

    def __init__(self, model: FaceModel, steady: SteadyOptions, neutral_frames: int = 300,
                 neutral_every: int = 10, neutral_min_frames: int = 30, rest_percentile: float = 10.0):
        self.model = model
        self.options = frame_fit_options(steady)
        self.learn_neutral = steady.learn_neutral
        self.neutral_frames, self.neutral_every, self.neutral_min_frames = neutral_frames, neutral_every, neutral_min_frames
        self.rest_percentile = rest_percentile
        self._previous: np.ndarray | None = None
        self._history: list[np.ndarray] = []
        self._offsets: list[np.ndarray] = []
        self._count = 0
        self.rest: np.ndarray | None = None     # (46,) the person's resting weights
        self.neutral: np.ndarray | None = None  # (68, 3) cm, head frame; zero outside NEUTRAL_POINTS

    def reset(self) -> None:
        self._previous = None

    def forget_person(self) -> None:
        self.reset()
        self._history, self._offsets, self._count, self.rest, self.neutral = [], [], 0, None, None

    def __call__(self, points, image_size, rotation, translation, expression, identity, focal_px):
        """(rotation, translation, blendshapes) that explain points (68, 2) in pixels; the fit
        starts from the given pose and from the previous frame's fitted weights (or the given ones)."""
        points = np.asarray(points, np.float64)
        rotation, translation = np.asarray(rotation, np.float64), np.asarray(translation, np.float64)
        target = points
        if self.neutral is not None:  # the neutral offsets, turned with the head and projected at its depth
            target = points - (self.neutral @ rotation.T)[:, :2] * (focal_px / translation[2])
        start = expression if self._previous is None else self._previous
        fit = fit_frame(self.model, target, image_size, rotation, translation, start, identity, focal_px,
                        anchor=self._previous, options=self.options)
        self._previous = fit.expression.copy()
        weights = fit.expression.copy()
        if self.learn_neutral:
            self._learn_offsets(points, fit, identity)
            self._learn_rest(weights)
            if self.rest is not None:
                weights = np.clip((weights - self.rest) / (1.0 - self.rest), 0.0, 1.0)
        return fit.rotation, fit.translation, weights

    def _learn_offsets(self, points, fit, identity) -> None:
        sub = self.model.subset(fit.vertex_ids)
        bare = project(sub.positions(np.asarray(identity, np.float64), np.zeros(NUM_FACS)) @ fit.rotation.T
                       + fit.translation, fit.focal_px, fit.center)
        in_camera = np.zeros((len(points), 3))
        in_camera[NEUTRAL_POINTS, :2] = (points - bare)[NEUTRAL_POINTS] * (fit.translation[2] / fit.focal_px)
        self._offsets.append(in_camera @ fit.rotation)  # camera to head frame
        del self._offsets[:-self.neutral_frames]
        if len(self._offsets) >= self.neutral_min_frames and (self.neutral is None or self._count % self.neutral_every == 0):
            self.neutral = np.median(np.stack(self._offsets), axis=0)

    def _learn_rest(self, weights: np.ndarray) -> None:
        self._history.append(weights)
        del self._history[:-self.neutral_frames]
        self._count += 1
        if len(self._history) >= self.neutral_min_frames and (self.rest is None or self._count % self.neutral_every == 0):
            self.rest = np.minimum(np.percentile(np.stack(self._history), self.rest_percentile, axis=0), 0.9)
