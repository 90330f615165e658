"""Per-frame face tracking (paper §5): segment the face, then regress its shape from the last one.

    with FaceTracker() as tracker:                    # VIDEO mode: each frame starts from the last
        result = tracker.track(frame_bgr)
    with FaceTracker(TrackerOptions(running_mode=RunningMode.IMAGE)) as tracker:
        still = tracker.track(photo_bgr)                # a photo: detection, then several starts

This is the sequential tracker; the threaded pipeline that overlaps segmentation and
regression of consecutive frames builds on it.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from enum import Enum
from pathlib import Path

import cv2
import numpy as np

from ..face.camera import focal_from_mm, head_rotation, principal_point
from ..detect.cnn import CnnDetectorOptions, CnnFaceDetector
from ..detect.detection import FaceDetector, crop_box_from_face_box
from ..face.face_model import FaceModel, load_face_model
from ..face.facs import NUM_FACS
from ..io.files import shipped_model_path
from ..io.image_input import as_bgr_uint8
from ..segment.segmentation import SegmenterOptions
from .regressor import FernCascade, LandmarkModel, ShapeState, face_scale, landmarks, mean_face_in_box
from .temporal import ExpressionFitter, LandmarkSmoother, SteadyOptions, mean_state, shifted_starts
from .still import (eye_line_roll, face_blob, largest_component_box, mask_grew, mask_misses_face, mirror_box,
                    mirror_landmarks)

# The mappings are measured by `python -m training.regressor.calibrate_boxes` on the landmarks68 training
# faces. A start detector's box mapped to the box of the 68 landmarks: centre shift (dx, dy) and size
# in units of the detector box's width. The CNN's (core.detect.cnn) per input side: medians over the
# 1086 of 1086 faces it finds, at 320 px (CnnDetectorOptions.tracker(), video; 10-90 % ranges: dx
# -0.04..0.03, dy 0.10..0.19, size 0.94..1.09; `--detector cnn`) and at 480 px (still_photo();
# dx -0.03..0.04, dy 0.10..0.20, size 1.00..1.13; `--detector cnn --input-side 480`). The Viola-Jones
# cascade's: medians over the 1000 of 1086 faces the default cascade finds (10-90 %: dx -0.10..0.11,
# dy 0.08..0.18, size 0.78..0.98; `--detector cascade`).
CNN_DETECTION_TO_LANDMARKS = {320: {"dx": -0.014, "dy": 0.139, "size": 0.990},
                              480: {"dx": -0.012, "dy": 0.152, "size": 1.058}}
DETECTION_TO_LANDMARKS = {"dx": 0.0, "dy": 0.136, "size": 0.859}
# The face region (hairline to chin, ear to ear) around the landmark box, in fractions of the
# landmark box: medians over the 1086 face-region masks rendered from the fits.
LANDMARKS_TO_FACE = {"left": -0.079, "top": -0.203, "right": 0.072, "bottom": 0.058}


# Share of the landmarks' hull that the face mask must cover for full confidence. Occluders
# lower the coverage, but an occluded face is still a face: only a mask that all but vanishes
# (the face left, or is almost entirely covered) should read as lost.
FULL_CONFIDENCE_COVERAGE = 0.3


def default_regressor_path() -> Path:
    return shipped_model_path("regressor.npz")


class RunningMode(str, Enum):
    """What `FaceTracker.track` is given: unrelated still photos, or the frames of one video in
    order (each frame starts from the previous one's shape; identity and focal adapt on
    keyframes). A live camera is a video whose frames come as they are made: run it through
    `core.track.pipeline.Pipeline(live=True)` or `core.capture.live_feed.LiveFeed`."""

    IMAGE = "image"
    VIDEO = "video"


@dataclass
class StillPhotoOptions:
    """How IMAGE mode regresses a photo (it gets no second frame to correct a bad start); the
    defaults are what measured best on held-out photos (evaluation.tracker_stills)."""

    passes: int = 1
    starts: int = 5                  # start boxes (scaled about the detection)
    resegment: bool = False          # segment again around the first result, regress again
    mirror: bool = True              # regress the mirrored photo too; keep the per-point median of all starts
    roll_restart: bool = True        # with mirror, a tilted head: again from the mean face tilted as much
    check_detection: bool = True     # a detection whose mask is empty or cut by its crop moves to the mask's face
    segment_undetected: bool = False  # no detection: look for a face with the segmenter on the whole photo


@dataclass
class TrackerOptions:
    """How FaceTracker runs. focal_mm: the camera's 35 mm-equivalent focal length until the
    identity/focal adaptation knows better. segmenter: the face segmenter's options (model file,
    device, threads); None regresses from unmasked crops (an evaluation baseline). repeatable:
    each identity/focal solve is swapped in a fixed count of frames after it started, not
    whenever its worker finishes, so a clip always gives the same take (bakes, files)."""

    running_mode: RunningMode = RunningMode.VIDEO
    focal_mm: float = 50.0
    segmenter: SegmenterOptions | None = field(default_factory=SegmenterOptions)
    still: StillPhotoOptions = field(default_factory=StillPhotoOptions)
    regressor_path: str | Path | None = None
    face_model_path: str | Path | None = None
    # what finds the face on the first frame and after a loss: "cnn" (core.detect.cnn with
    # start_detector_options; by default CnnDetectorOptions.tracker() in VIDEO mode, still_photo() in
    # IMAGE mode) or "cascade" (OpenCV's frontal Viola-Jones cascade, the earlier start, for comparison)
    start_detector: str = "cnn"
    start_detector_options: CnnDetectorOptions | None = None
    min_confidence: float = 0.35
    adapt_identity: bool = True          # solve identity and focal on keyframes while tracking
    keyframe_confidence: float = 0.6     # only frames this confident become keyframes
    synchronous_adaptation: bool = False  # repeatable (see above)
    # VIDEO mode's temporal coherence (core.track.temporal): averaged regressions, steadied
    # landmarks, blendshapes fitted with the previous frame's as a prior; None: raw regressions
    steady: SteadyOptions | None = field(default_factory=SteadyOptions)


# share of the 2D displacements D a frame starts from (DDE carries them between frames)
DISPLACEMENT_CARRY = 0.5


@dataclass
class TrackResult:
    """One frame's result; arrays are None-free only when ok."""

    ok: bool
    landmarks: np.ndarray | None = None      # (68, 2) pixels
    blendshapes: np.ndarray = field(default_factory=lambda: np.zeros(NUM_FACS))  # FACS_NAMES order
    rotation: np.ndarray | None = None       # (3, 3) camera from head
    translation: np.ndarray | None = None    # (3,) cm
    focal: float = 0.0                       # pixels
    identity: np.ndarray | None = None
    mask: np.ndarray | None = None           # (H, W) uint8 {0, 1}
    confidence: float = 0.0
    face_box: tuple[float, float, float, float] | None = None
    timings: dict = field(default_factory=dict)  # milliseconds per stage


@dataclass
class PreparedFrame:
    """A frame with its face mask; start_box is the detection's landmark box when the tracker
    had lost the face (the regression then starts from the mean face there)."""

    image: np.ndarray
    mask: np.ndarray
    face_box: tuple[float, float, float, float] | None
    start_box: tuple[float, float, float, float] | None
    timings: dict


@dataclass(frozen=True)
class TrackingBasis:
    """What prepare() starts from: the kept shape, the landmark model of the current identity,
    and the focal length. A pipeline that must give the same take every run prepares frame k from
    the basis left by frame k-2, whatever the threads' timing."""

    state: ShapeState | None
    landmark_model: LandmarkModel
    focal: float | None


def _check_mask(mask, shape) -> np.ndarray | None:
    if mask is None:
        return None
    m = np.asarray(mask)
    if m.shape != shape[:2]:
        raise ValueError(f"mask must have the frame's shape {shape[:2]}, got {m.shape}")
    return (m > 0).astype(np.uint8)


def landmark_box_from_detection(box, mapping: dict | None = None) -> tuple[float, float, float, float]:
    """The square box of the 68 landmarks for a start detector's box, through `mapping` (by
    default the CNN's at 320 px, CNN_DETECTION_TO_LANDMARKS[320]; DETECTION_TO_LANDMARKS for a cascade box)."""
    m = mapping or CNN_DETECTION_TO_LANDMARKS[320]
    x, y, w, h = (float(v) for v in box)
    size = m["size"] * w
    cx = x + w / 2 + m["dx"] * w
    cy = y + h / 2 + m["dy"] * w
    return (cx - size / 2, cy - size / 2, size, size)


# Start boxes for a still photo: the detection's landmark box, then smaller and larger ones
# (Viola-Jones boxes vary in size by about this much, the CNN's by half as much; see the mappings above).
STILL_START_SCALES = (1.0, 0.9, 1.1, 0.8, 1.2)


# A still photo whose first-round eye line tilts by more than this gets a second round of starts
# tilted as much (StillPhotoOptions.roll_restart); below it the second round changed little on the held-out
# landmarks68 photos (5.21 % mean error against 5.19 % with a second round for every photo,
# evaluation.tracker_stills, README "Fixing the tail").
ROLL_RESTART_MIN_DEG = 5.0


def _start_boxes(box, count: int) -> list[tuple[float, float, float, float]]:
    if not 1 <= count <= len(STILL_START_SCALES):
        raise ValueError(f"still.starts must be 1 to {len(STILL_START_SCALES)}, got {count}")
    x, y, w, h = box
    cx, cy = x + w / 2, y + h / 2
    return [(cx - w * k / 2, cy - h * k / 2, w * k, h * k) for k in STILL_START_SCALES[:count]]


def landmark_box_from_face_box(face_box) -> tuple[float, float, float, float]:
    """The square box of the 68 landmarks inside a face-region box (inverse of LANDMARKS_TO_FACE):
    where a still photo starts when the face mask, not the detection, placed the face."""
    x, y, w, h = (float(v) for v in face_box)
    width = w / (1.0 - LANDMARKS_TO_FACE["left"] + LANDMARKS_TO_FACE["right"])
    height = h / (1.0 - LANDMARKS_TO_FACE["top"] + LANDMARKS_TO_FACE["bottom"])
    cx = x - LANDMARKS_TO_FACE["left"] * width + width / 2
    cy = y - LANDMARKS_TO_FACE["top"] * height + height / 2
    size = max(width, height)
    return (cx - size / 2, cy - size / 2, size, size)


def _whole_photo_box(shape, segmenter) -> tuple[float, float, float, float]:
    """The face box whose segmenter crop is the whole photo (centred, the longer side)."""
    h, w = shape[:2]
    side = max(w, h) / segmenter.options.crop_scale
    return (w / 2 - side / 2, h / 2 - side / 2, side, side)


def _square_box(points: np.ndarray) -> tuple[float, float, float, float]:
    """The square (x, y, side, side) around the points' bounding box, as a start box."""
    lo, hi = points.min(0), points.max(0)
    side = float((hi - lo).max())
    cx, cy = (lo + hi) / 2
    return (float(cx) - side / 2, float(cy) - side / 2, side, side)


def face_box_from_landmarks(points: np.ndarray) -> tuple[float, float, float, float]:
    """The face-region box (x, y, w, h) that the segmenter expects, around tracked landmarks."""
    lo, hi = points.min(0), points.max(0)
    w, h = hi - lo
    x0 = lo[0] + LANDMARKS_TO_FACE["left"] * w
    y0 = lo[1] + LANDMARKS_TO_FACE["top"] * h
    x1 = hi[0] + LANDMARKS_TO_FACE["right"] * w
    y1 = hi[1] + LANDMARKS_TO_FACE["bottom"] * h
    return (float(x0), float(y0), float(x1 - x0), float(y1 - y0))


def _plausible_face_box(box, size) -> bool:
    """A face box worth segmenting: finite and at most a few frames across (a tracked shape that
    blew up otherwise asks the segmenter for a crop of millions of pixels)."""
    return bool(np.all(np.isfinite(box)) and max(box[2], box[3]) <= 4.0 * max(size))


class FaceTracker:
    """Tracks one face: a detector's start (a CNN), then segmentation and fern regression per frame."""

    def __init__(self, options: TrackerOptions | None = None, face_model: FaceModel | None = None):
        self.options = options or TrackerOptions()
        self.model = face_model or load_face_model(self.options.face_model_path)
        self.cascade = FernCascade.load(self.options.regressor_path or default_regressor_path())
        self.identity = np.zeros(self.model.num_identity)
        self._mean_lm = LandmarkModel.from_face_model(self.model)
        self._lm = self._mean_lm
        self._segmenter = None
        if self.options.segmenter is not None:
            from ..segment.segmentation import FaceSegmenter
            self._segmenter = FaceSegmenter(options=self.options.segmenter)
        if self.options.start_detector == "cnn":
            options = self.options.start_detector_options or (
                CnnDetectorOptions.still_photo() if self.options.running_mode == RunningMode.IMAGE
                else CnnDetectorOptions.tracker())
            self._detector = CnnFaceDetector(options)
            side = min(CNN_DETECTION_TO_LANDMARKS, key=lambda k: abs(k - options.input_side_px))
            self._to_landmarks = CNN_DETECTION_TO_LANDMARKS[side]
        elif self.options.start_detector == "cascade":
            self._detector = FaceDetector()
            self._to_landmarks = DETECTION_TO_LANDMARKS
        else:
            raise ValueError(f"start_detector must be 'cnn' or 'cascade', got {self.options.start_detector!r}")
        self._state: ShapeState | None = None
        self._focal: float | None = None
        self._frame_size: tuple[int, int] | None = None
        self._adapter = None
        self._adaptation_version = 0
        steady = self.options.steady
        self._smoother = LandmarkSmoother(steady.alpha, steady.beta, steady.noise) if steady and steady.smooth else None
        self._fitter = ExpressionFitter(self.model, steady) if steady and steady.fit_expression else None

    # ------------------------------------------------------------ per frame

    def track(self, frame, mask=None) -> TrackResult:
        """One frame in the options' running mode: VIDEO starts from the previous frame's shape
        (or a detection); IMAGE treats it as an unrelated still photo and keeps no state.

        mask: an HxW face mask to use instead of the segmenter's (e.g. a matte of your own).
        """
        if self.options.running_mode == RunningMode.IMAGE:
            return self._track_still(frame, mask)
        image = as_bgr_uint8(frame, "frame")
        return self._track(image, passes=1, keep=True, mask=_check_mask(mask, image.shape))

    def _track_still(self, image, mask=None) -> TrackResult:
        """A still photo: detect, check the box against the face mask (still.check_detection),
        then regress from still.starts boxes (and from the same boxes on the mirrored photo with
        still.mirror) and keep the per-point median, or with one photo the result closest to the
        others; with still.resegment, segment again in the face box of that result and regress
        once more. No state is kept."""
        image = as_bgr_uint8(image, "image")
        mask = _check_mask(mask, image.shape)
        saved = self._state, self._focal, self._lm
        self._state, self._focal, self._lm = None, None, self._mean_lm  # a photo may be anyone
        try:
            frame = self.prepare(image, mask)
            if mask is None and self._segmenter is not None:
                if frame.start_box is None and self.options.still.segment_undetected:
                    whole = _whole_photo_box(image.shape, self._segmenter)
                    frame = self._check_detection(replace(frame, face_box=whole))
                elif frame.start_box is not None and self.options.still.check_detection:
                    frame = self._check_detection(frame)
            result = self._regress_still(frame)
            if (self.options.still.resegment and result.landmarks is not None and mask is None
                    and self._segmenter is not None):
                t0 = time.perf_counter()
                frame.mask = self._segment(image, face_box_from_landmarks(result.landmarks))
                frame.timings["resegmentation_ms"] = (time.perf_counter() - t0) * 1000
                result = self._regress_still(frame)
            return result
        finally:
            self._state, self._focal, self._lm = saved

    def _choose_detection(self, image, boxes, mask, lm, focal, center, candidates: int = 3):
        """The start box, face box and (when segmented here) mask of the detection to start from:
        the largest box whose segmentation looks like a face (not empty, not cut by its crop),
        trying the `candidates` largest; the largest box when none does, or with no segmenter.
        The detector's largest box is not always the face (a cascade's: a patch of background beside it)."""
        def boxes_of(detection):
            start = landmark_box_from_detection(detection, self._to_landmarks)
            return start, face_box_from_landmarks(
                landmarks(mean_face_in_box(lm, start, focal, center), lm, focal, center))

        first = boxes_of(boxes[0])
        if mask is not None or self._segmenter is None or len(boxes) < 2:
            return first + (mask,)
        scale = self._segmenter.options.crop_scale
        tried = []
        for detection in boxes[:candidates]:
            start, face_box = boxes_of(detection)
            segmented = self._segment(image, face_box)
            if not mask_misses_face(segmented, crop_box_from_face_box(face_box, scale)):
                return start, face_box, segmented
            tried.append(segmented)
        return first + (tried[0],)

    def _check_detection(self, frame: "PreparedFrame", rounds: int = 3) -> "PreparedFrame":
        """Move a still photo's start to the face the segmenter sees when the detection's mask
        says the box is wrong (empty: the detector fired on something else; cut by the crop, or
        much larger when segmented again around itself: the box holds part of a turned face).
        The face is searched for around the partial mask, or in the whole photo when there is
        none or when the search around it found nothing or no whole face either (a speck of a
        mask, just over the empty share, leads nowhere), and segmented again in the box of the
        blob found."""
        t0 = time.perf_counter()
        image, mask, face_box = frame.image, frame.mask, frame.face_box
        scale = self._segmenter.options.crop_scale
        moved, searched_part = None, False
        for _ in range(rounds):
            crop = crop_box_from_face_box(face_box, scale)
            blob = face_blob(mask, crop[2])
            if not mask_misses_face(mask, crop):
                # the mask fits its crop; segmented around itself, does it stay the same face?
                again = self._segment(image, blob[0])
                grown = largest_component_box(again)
                if grown is None or not mask_grew(blob[1], grown[1]):
                    break
                face_box = grown[0]
                mask = self._segment(image, face_box)
                moved = largest_component_box(mask) or grown
                continue
            # no face in the crop: search the whole photo; part of one: around that part, once
            whole = blob is None or searched_part
            searched_part = True
            found = largest_component_box(self._segment(
                image, _whole_photo_box(image.shape, self._segmenter) if whole else blob[0]))
            if found is None:
                if whole:
                    break
                continue  # nothing around the part: the next round searches the whole photo
            face_box = found[0]
            mask = self._segment(image, face_box)
            moved = largest_component_box(mask)
        if moved is None:
            return frame
        timings = dict(frame.timings, detection_check_ms=(time.perf_counter() - t0) * 1000)
        return PreparedFrame(image, mask, face_box, landmark_box_from_face_box(moved[0]), timings)

    def _regress_still(self, frame: "PreparedFrame") -> TrackResult:
        o = self.options
        if frame.start_box is None or (o.still.starts == 1 and not o.still.mirror):
            return self.regress(frame, passes=o.still.passes, keep=False)
        boxes = _start_boxes(frame.start_box, o.still.starts)
        if not o.still.mirror:
            results = [self.regress(replace(frame, start_box=box), passes=o.still.passes, keep=False) for box in boxes]
            points = np.stack([r.landmarks for r in results])
            spread = [np.linalg.norm(points - p, axis=2).mean() for p in points]
            return results[int(np.argmin(spread))]
        t0 = time.perf_counter()
        gray = cv2.cvtColor(frame.image, cv2.COLOR_BGR2GRAY)
        views = ((gray, frame.mask), (np.ascontiguousarray(gray[:, ::-1]), np.ascontiguousarray(frame.mask[:, ::-1])))
        states, points = self._still_round(views, boxes, 0.0)
        median = np.median(points, axis=0)
        roll = eye_line_roll(median)
        if o.still.roll_restart and abs(roll) > np.radians(ROLL_RESTART_MIN_DEG):
            # the cascade learnt upright box starts and starts near the true pose; a tilted head
            # gets a second round from the mean face tilted as the first round's eye line
            more_states, more_points = self._still_round(views, _start_boxes(_square_box(median), o.still.starts), roll)
            states, points = states + more_states, np.concatenate([points, more_points])
            median = np.median(points, axis=0)
        # pose and blendshapes from the (unmirrored) start that ended nearest the median
        center = principal_point((gray.shape[1], gray.shape[0]))
        own = np.stack([landmarks(st, self._lm, self._focal, center) for st in states])
        best = states[int(np.argmin(np.linalg.norm(own - median, axis=2).mean(1)))]
        timings = dict(frame.timings, regression_ms=(time.perf_counter() - t0) * 1000)
        return self._result(best, median, frame.mask, timings)

    def _still_round(self, views, boxes, roll: float) -> tuple[list[ShapeState], np.ndarray]:
        """Regress a photo from the mean face tilted by roll (radians, image plane) in each box,
        and its mirror image from the mirrored starts; views = ((gray, mask), (their mirror
        images)). Returns the photo's states, and the landmarks of all the results (mirrored ones
        mapped back) as one (2 x boxes, 68, 2) array."""
        (gray, mask), (gray_mirrored, mask_mirrored) = views
        w = gray.shape[1]
        center = principal_point((w, gray.shape[0]))
        tilt = head_rotation(0.0, 0.0, roll)
        flip = np.diag([-1.0, 1.0, 1.0])
        passes = self.options.still.passes
        states, twins = [], []
        for box in boxes:
            start = mean_face_in_box(self._lm, box, self._focal, center, tilt)
            states.append(self._run_cascade(gray, mask, start, passes))
            start = mean_face_in_box(self._lm, mirror_box(box, w), self._focal, center, flip @ tilt @ flip)
            twins.append(self._run_cascade(gray_mirrored, mask_mirrored, start, passes))
        points = [landmarks(st, self._lm, self._focal, center) for st in states + twins]
        n = len(states)
        return states, np.concatenate([np.stack(points[:n]), mirror_landmarks(np.stack(points[n:]), w)])

    def basis(self) -> TrackingBasis:
        """A snapshot of what the next prepare() would start from."""
        state = None if self._state is None else self._state.copy()
        return TrackingBasis(state, self._lm, self._focal)

    def reset(self) -> None:
        """Forget the face (the next frame starts from a detection); identity and focal stay."""
        self._state = None
        self._forget_motion()

    def _forget_motion(self) -> None:
        for part in (self._smoother, self._fitter):
            if part is not None:
                part.reset()

    def _track(self, image: np.ndarray, passes: int, keep: bool, mask: np.ndarray | None) -> TrackResult:
        return self.regress(self.prepare(image, mask), passes=passes, keep=keep)

    # The two halves of a frame, which the pipeline runs on different threads for consecutive
    # frames: prepare (find the face box, segment) and regress (update the shape).

    def prepare(self, image: np.ndarray, mask: np.ndarray | None = None,
                basis: TrackingBasis | None = None) -> "PreparedFrame":
        """Face box from the last tracked shape (or a detection), and the face mask in it.
        basis: start from this snapshot (see TrackingBasis) instead of the tracker's latest shape."""
        timings: dict[str, float] = {}
        h, w = image.shape[:2]
        state = self._state if basis is None else basis.state
        if self._focal is None or self._frame_size != (w, h):
            # first frame, or a new size (another clip, camera mode): the focal length in pixels
            # and the kept shape were for the old size
            self._focal, self._frame_size = focal_from_mm(self.options.focal_mm, w), (w, h)
            self._state = state = None
        lm, focal = self._lm, self._focal
        if basis is not None and basis.focal is not None:
            lm, focal = basis.landmark_model, basis.focal
        center = principal_point((w, h))
        start = face_box = None
        if state is not None:
            face_box = face_box_from_landmarks(landmarks(state, lm, focal, center))
            if not _plausible_face_box(face_box, (w, h)):
                state = face_box = None  # the kept shape blew up: start again from a detection
                if basis is None:
                    self._state = None
        t0 = time.perf_counter()
        if state is None:
            boxes = self._detect(image)
            timings["detection_ms"] = (time.perf_counter() - t0) * 1000
            if not boxes:
                return PreparedFrame(image, np.zeros((h, w), np.uint8), None, None, timings)
            given = mask
            t1 = time.perf_counter()
            start, face_box, mask = self._choose_detection(image, boxes, mask, lm, focal, center)
            if mask is not given:
                timings["segmentation_ms"] = (time.perf_counter() - t1) * 1000
        if mask is None:
            t1 = time.perf_counter()
            mask = self._segment(image, face_box)
            timings["segmentation_ms"] = (time.perf_counter() - t1) * 1000
        return PreparedFrame(image, mask, face_box, start, timings)

    def _detect(self, image: np.ndarray) -> list[tuple[float, float, float, float]]:
        """The start detector's boxes (x, y, w, h), largest first."""
        found = self._detector.detect(image)
        return [tuple(f.box) for f in found] if self.options.start_detector == "cnn" else found

    def regress(self, frame: "PreparedFrame", passes: int = 1, keep: bool = True) -> TrackResult:
        """Regress the shape on a prepared frame, from the last shape or the detection's start."""
        image, mask, timings = frame.image, frame.mask, dict(frame.timings)
        h, w = image.shape[:2]
        center = principal_point((w, h))
        state = self._state
        if state is None:
            if frame.start_box is None:
                return TrackResult(ok=False, mask=mask, timings=timings)
            state = mean_face_in_box(self._lm, frame.start_box, self._focal, center)
        elif DISPLACEMENT_CARRY < 1.0:
            # D carries over only in part: the regression re-estimates it each frame, and a full
            # carry lets its errors add up from frame to frame
            state = state.copy()
            state.displacements *= DISPLACEMENT_CARRY
        t0 = time.perf_counter()
        gray = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
        steady = self.options.steady if keep else None
        if steady is not None and steady.starts > 1:
            shift = steady.start_shift * face_scale(landmarks(state, self._lm, self._focal, center))
            starts = shifted_starts(state, steady.starts, shift, self._focal)
            for _ in range(passes):
                starts = self.cascade.run_many(gray, mask, starts, self._lm, self._focal, center)
            state = mean_state(starts)
        else:
            state = self._run_cascade(gray, mask, state, passes)
        timings["regression_ms"] = (time.perf_counter() - t0) * 1000
        points = landmarks(state, self._lm, self._focal, center)
        confidence = self._confidence(points, mask, (w, h))
        ok = confidence >= self.options.min_confidence
        if not keep:
            return self._result(state, points, mask, timings, confidence)
        if ok and self.options.adapt_identity:
            state, points = self._adapt(points, state, confidence, (w, h))
        self._state = state if ok else None
        if not ok:
            self._forget_motion()
            return self._result(state, points, mask, timings, confidence)
        return self._steady_result(state, points, mask, timings, confidence, (w, h))

    def _steady_result(self, state: ShapeState, points: np.ndarray, mask: np.ndarray, timings: dict,
                       confidence: float, size) -> TrackResult:
        """A tracked video frame's result: its landmarks steadied, and pose and blendshapes fitted
        to them (SteadyOptions); the kept shape, which the next frame starts from, stays the
        regressed one."""
        t0 = time.perf_counter()
        if self._smoother is not None:
            points = self._smoother(points)
        result = self._result(state, points, mask, timings, confidence)
        if self._fitter is not None:
            result.rotation, result.translation, result.blendshapes = self._fitter(
                points, size, state.rotation, state.translation(), state.expression, self.identity, self._focal)
        timings["temporal_ms"] = (time.perf_counter() - t0) * 1000
        return result

    def _run_cascade(self, gray: np.ndarray, mask: np.ndarray, state: ShapeState, passes: int) -> ShapeState:
        center = principal_point((gray.shape[1], gray.shape[0]))
        for _ in range(passes):
            state = self.cascade.run(gray, mask, state, self._lm, self._focal, center)
        return state

    def _result(self, state: ShapeState, points: np.ndarray, mask: np.ndarray, timings: dict,
                confidence: float | None = None) -> TrackResult:
        """The TrackResult of a regressed state whose landmarks are points (its own, or a median);
        confidence: the one already measured on them, if any (it decided whether the shape is kept)."""
        if confidence is None:
            h, w = mask.shape
            confidence = self._confidence(points, mask, (w, h))
        return TrackResult(ok=confidence >= self.options.min_confidence, landmarks=points,
                           blendshapes=state.expression.copy(), rotation=state.rotation.copy(),
                           translation=state.translation(), focal=self._focal, identity=self.identity.copy(), mask=mask,
                           confidence=confidence, face_box=face_box_from_landmarks(points), timings=timings)

    def _adapt(self, points: np.ndarray, state: ShapeState, confidence: float, size):
        """Offer the frame as a keyframe; swap in a newly solved identity and focal length.

        Returns the (state, landmarks) to keep: the same landmarks, re-expressed for the new
        identity and focal length (D absorbs the difference until the next frames settle it).
        """
        from .adaptation import IdentityAdapter

        if self._adapter is not None and tuple(self._adapter.image_size) != tuple(size):
            self._adapter.close()  # its keyframes are for another frame size
            self._adapter = None
        if self._adapter is None:
            self._adapter = IdentityAdapter(self.model, size, self._focal,
                                            synchronous=self.options.synchronous_adaptation)
        inside = bool(np.all((points >= 0) & (points < np.array(size, np.float64))))
        if confidence >= self.options.keyframe_confidence and inside:  # a face cut by the frame's edge misleads Eq. 3
            self._adapter.offer(points, state.rotation, state.expression)
        latest = self._adapter.latest()
        if latest is None or latest.version == self._adaptation_version:
            return state, points
        self._adaptation_version = latest.version
        state = state.copy()
        ratio = self._focal / latest.focal_px  # keep the face where it is in the image
        state.abc = np.array([state.abc[0] * ratio, state.abc[1] * ratio, state.abc[2] - np.log(ratio)])
        lm = LandmarkModel.from_face_model(self.model, latest.identity)
        state.displacements = np.zeros_like(state.displacements)
        state.displacements = points - landmarks(state, lm, latest.focal_px, principal_point(size))
        self.identity, self._focal, self._lm = latest.identity.copy(), latest.focal_px, lm
        return state, points

    def _segment(self, image: np.ndarray, face_box) -> np.ndarray:
        h, w = image.shape[:2]
        if self._segmenter is None:
            return np.ones((h, w), np.uint8)
        try:
            return self._segmenter.segment(image, box=face_box)
        except ValueError:  # the box left the frame entirely
            return np.zeros((h, w), np.uint8)

    @staticmethod
    def _confidence(points: np.ndarray, mask: np.ndarray, size) -> float:
        """Share of landmarks inside the frame, times the face mask's coverage of their hull
        relative to FULL_CONFIDENCE_COVERAGE, capped at 1; 0 when the shape collapsed or exploded."""
        w, h = size
        inside = (points[:, 0] >= 0) & (points[:, 0] < w) & (points[:, 1] >= 0) & (points[:, 1] < h)
        scale = face_scale(points)
        if not np.all(np.isfinite(points)) or scale < 4.0 or scale > 2.0 * max(w, h):
            return 0.0
        hull = cv2.convexHull(points.astype(np.float32)).astype(np.int32)
        # only the hull's bounding box inside the frame is drawn and counted, not the whole frame
        bx, by, bw, bh = cv2.boundingRect(hull)
        x0, y0, x1, y1 = max(bx, 0), max(by, 0), min(bx + bw, w), min(by + bh, h)
        if x1 <= x0 or y1 <= y0:
            return 0.0
        region = np.zeros((y1 - y0, x1 - x0), np.uint8)
        cv2.fillConvexPoly(region, hull - np.array([x0, y0], np.int32), 1)
        area = int(region.sum())
        coverage = float((mask[y0:y1, x0:x1] & region).sum()) / area if area else 0.0
        return float(inside.mean() * min(1.0, coverage / FULL_CONFIDENCE_COVERAGE))

    # ------------------------------------------------------------ lifetime

    @property
    def segmenter(self):
        """The FaceSegmenter this tracker runs (None without one): its provider, threads and
        device_note say where the network really runs."""
        return self._segmenter

    def close(self) -> None:
        if self._adapter is not None:
            self._adapter.close()
            self._adapter = None
        if self._segmenter is not None:
            self._segmenter.close()
            self._segmenter = None
        if self._detector is not None:
            self._detector.close()
            self._detector = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
