"""Identity and focal-length adaptation on keyframes (paper Eq. 3), on its own thread.

The tracker offers each confident frame's landmarks; a frame becomes a keyframe when its head
pose or expression is new compared with those kept. Every few new keyframes, and no more often
than every `solve_spacing` offered frames, a worker thread solves one identity u and focal f for
all of them (fit_identity_focal) and publishes the result; the tracker swaps it in between frames.
Once two successive solves agree (the identity and focal length have converged) solving stops:
each solve costs a second of a core that segmentation and regression need. The worker is
daemon-free and ends on close().
With synchronous=True (offline bakes) the same frames always give the same result: a solve still
runs on the worker, but its result is swapped in exactly `swap_after` offered frames after it was
started (waiting for it then if need be), and convergence is judged at that frame too; with
swap_after=0 it runs inline in offer().
Each solve after the first continues from the one before (warm_start): the previous identity and
focal length, and each kept keyframe's pose and expression, so that it needs fewer and cheaper
steps (about half the CPU of a cold solve on the benchmark clips, bench.bench_adaptation).
"""
from __future__ import annotations

import threading
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np

from ..face.face_model import FaceModel
from ..face.fitting import FitOptions, FitResult, WarmStart, fit_identity_focal
from ..io.closing import Closing


@dataclass(frozen=True)
class AdaptationOptions:
    max_keyframes: int = 12           # L, the keyframes kept (the most novel ones)
    min_keyframes: int = 3            # solve once this many are collected
    solve_every: int = 2              # then again after this many new keyframes
    min_pose_change_deg: float = 8.0  # a keyframe differs from every kept one by this much rotation ...
    min_expression_change: float = 0.35  # ... or this much expression (L2 of the 46 weights)
    # Tracked landmarks are noisier than annotated ones: stronger priors than a single fit's keep
    # identity and focal from chasing that noise.
    fit: FitOptions = FitOptions(alternations=3, identity_prior=3e-3, focal_prior=2e-2)
    # Frames offered between two solves (after the first): a lively clip gives a new keyframe
    # every few frames, and solving that often would take a core away from tracking.
    solve_spacing: int = 25
    # Converged: two successive solves differ by less than this (RMS of u in standard deviations,
    # and relative focal length); no more solves after that.
    converged_identity_change: float = 0.05
    converged_focal_change: float = 0.01
    # Synchronous (repeatable) mode: offered frames between starting a solve on the worker and
    # swapping its result in; 0 solves inline. Long enough for a solve (0.05-0.7 s of a core) to
    # finish while tracking goes on, so the bake rarely waits for it.
    swap_after: int = 30
    # Continue each solve from the previous one (identity, focal, kept keyframes' fits) instead
    # of a cold start with graduated priors.
    warm_start: bool = True


@dataclass(eq=False)
class _Keyframe:
    landmarks: np.ndarray
    rotation: np.ndarray
    expression: np.ndarray
    fit: FitResult | None = field(default=None, repr=False)  # from the last solve that used it


@dataclass
class Adaptation:
    identity: np.ndarray
    focal_px: float
    keyframes: int
    version: int


class IdentityAdapter(Closing):
    """Collects keyframes and solves Eq. 3 in the background; `latest()` is thread-safe."""

    def __init__(self, model: FaceModel, image_size: tuple[int, int], focal_prior_px: float,
                 options: AdaptationOptions | None = None, synchronous: bool = False):
        self.model = model
        self.image_size = image_size
        self.focal_prior_px = float(focal_prior_px)
        self.options = options or AdaptationOptions()
        self._keyframes: list[_Keyframe] = []
        self._since_solve = 0
        self._lock = threading.Lock()
        self._latest: Adaptation | None = None
        self._version = 0
        self.synchronous = synchronous
        inline = synchronous and self.options.swap_after <= 0
        self._executor = None if inline else ThreadPoolExecutor(max_workers=1, thread_name_prefix="maskcap-identity")
        self._pending: Future | None = None
        self._swap_in = 0  # synchronous mode: offers until the pending solve is swapped in
        self._closed = False
        self._offers_since_solve = 0
        self._converged = False

    @property
    def converged(self) -> bool:
        """True once two successive solves agreed; later offers are ignored."""
        with self._lock:
            return self._converged

    def offer(self, landmarks: np.ndarray, rotation: np.ndarray, expression: np.ndarray) -> bool:
        """Consider a tracked frame; returns True when it was kept as a keyframe."""
        if self._closed or self.converged:
            return False
        if self.synchronous and self._pending is not None:
            self._swap_in -= 1
            if self._swap_in <= 0:  # at a fixed frame, whatever the threads' timing
                self._publish(self._pending.result())
                self._pending = None
                if self.converged:
                    return False
        self._offers_since_solve += 1
        if not self._is_novel(rotation, expression):
            return False
        entry = _Keyframe(np.array(landmarks, np.float64), np.array(rotation, np.float64), np.array(expression, np.float64))
        if len(self._keyframes) >= self.options.max_keyframes:
            self._keyframes.pop(self._least_novel())
        self._keyframes.append(entry)
        self._since_solve += 1
        enough = len(self._keyframes) >= self.options.min_keyframes
        due = self._latest is None or self._since_solve >= self.options.solve_every
        due = due and (self._latest is None or self._offers_since_solve >= self.options.solve_spacing)
        free = self._pending is None if self.synchronous else (self._pending is None or self._pending.done())
        if enough and due and free:
            self._since_solve = 0
            self._offers_since_solve = 0
            frames = list(self._keyframes)
            start = self._warm_start(frames)
            if self._executor is None:
                self._publish(self._solve(frames, start))
            elif self.synchronous:
                self._pending = self._executor.submit(self._solve, frames, start)
                self._swap_in = self.options.swap_after
            else:
                self._pending = self._executor.submit(lambda: self._publish(self._solve(frames, start)))
        return True

    def latest(self) -> Adaptation | None:
        with self._lock:
            return self._latest

    def wait(self, timeout: float | None = None) -> Adaptation | None:
        """Block until the solve in flight (if any) is done and swapped in; for tests."""
        pending = self._pending
        if pending is not None:
            value = pending.result(timeout=timeout)
            if self.synchronous:
                self._publish(value)
                self._pending = None
        return self.latest()

    def close(self) -> None:
        self._closed = True
        if self._executor is not None:
            self._executor.shutdown(wait=True, cancel_futures=True)
            self._executor = None

    # ------------------------------------------------------------ internals

    def _solve(self, frames: list[_Keyframe], start: WarmStart | None
               ) -> tuple[np.ndarray, float, list[_Keyframe], list[FitResult]]:
        identity, focal, fits = fit_identity_focal(self.model, [k.landmarks for k in frames], self.image_size,
                                                   focal_px=self.focal_prior_px, options=self.options.fit, start=start)
        return identity, focal, frames, fits

    def _warm_start(self, frames: list[_Keyframe]) -> WarmStart | None:
        """The previous solve, for the frames it fitted; None for a cold start."""
        latest = self.latest()
        if not self.options.warm_start or latest is None or not any(k.fit is not None for k in frames):
            return None
        return WarmStart(latest.identity, latest.focal_px, [k.fit for k in frames])

    def _publish(self, solved: tuple[np.ndarray, float, list[_Keyframe], list[FitResult]]) -> None:
        """Make a solve's result the latest, and judge convergence against the one before."""
        identity, focal, frames, fits = solved
        count = len(frames)
        for keyframe, fit in zip(frames, fits):
            keyframe.fit = fit
        with self._lock:
            previous = self._latest
            if previous is not None:
                identity_change = float(np.sqrt(np.mean((identity - previous.identity) ** 2)))
                focal_change = abs(focal / previous.focal_px - 1.0)
                self._converged = (identity_change < self.options.converged_identity_change
                                   and focal_change < self.options.converged_focal_change)
            self._version += 1
            self._latest = Adaptation(identity, focal, count, self._version)

    def _distances(self, rotation, expression) -> tuple[np.ndarray, np.ndarray]:
        angles = np.array([np.degrees(np.arccos(np.clip((np.trace(k.rotation.T @ rotation) - 1) / 2, -1, 1)))
                           for k in self._keyframes])
        changes = np.array([np.linalg.norm(k.expression - expression) for k in self._keyframes])
        return angles, changes

    def _is_novel(self, rotation, expression) -> bool:
        if not self._keyframes:
            return True
        angles, changes = self._distances(np.asarray(rotation), np.asarray(expression))
        differs = (angles >= self.options.min_pose_change_deg) | (changes >= self.options.min_expression_change)
        return bool(differs.all())

    def _least_novel(self) -> int:
        """The kept keyframe closest to the others (it adds the least)."""
        scores = []
        for i, k in enumerate(self._keyframes):
            angles, changes = self._distances(k.rotation, k.expression)
            others = np.delete(angles / self.options.min_pose_change_deg + changes / self.options.min_expression_change, i)
            scores.append(others.min() if len(others) else np.inf)
        return int(np.argmin(scores))
