"""Group photos made from labelled faces: several people pasted into a 640x480 scene, with the
visible face mask of each as ground truth. Used by the group-photo evaluation and the batch
benchmark; every scene is fixed by its seed.

A person is the labelled photo's foreground (lfw_parts labels 1-3: face, hair, neck and below;
celebamask_mini every class but background), scaled so that its face is a chosen height, turned in
the image plane for some, mirrored for half, and pasted with a soft edge over a background from
../shared/data/backgrounds. Smaller (further) people are pasted first, so nearer ones cover them.
Some faces get a hand (hands/) or a coloured rectangle over part of them. A face's ground truth is
its face label (maskcap's face region, mapped as training/segmenter/data.py does) minus every
pixel that something pasted later covers.

The hard scenes of the detector's evaluation (`hard_scene_maker`) roll faces up to 45 degrees,
cover every third face, and mix in profiles: landmarks68 faces turned so far that the nose tip lies
near one end of the jaw line, pasted as a soft-edged oval of their photo, their face region the hull
of the jaw line and the brows raised by a third of the brow-to-chin height (a box for recall; no
mask good enough for IoU). Every face carries the ITA angle of its skin (Chardon et al. 1991):
atan((L* - 50) / b*) in degrees, medians of CIELAB L* and b* over the face pixels of its photo.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass

import cv2
import numpy as np

from core.detect.detection import box_intersection
from training.segmenter.data import (MaskSource, _read_image, add_rectangles, celebamask_source,
                                        composite_hand, data_dir, lfw_parts_source, load_hands, skin_tone_lab)

FRAME_W, FRAME_H = 640, 480


@dataclass
class PlacedFace:
    """Ground truth of one pasted face: face_box is the bounding box (x, y, w, h) of its whole face
    region (before anything covers it), visible the HxW {0, 1} face pixels left visible."""
    face_box: tuple[float, float, float, float]
    visible: np.ndarray
    full_area: int
    height_px: float
    angle_deg: float
    covered: str          # "", "hand" or "rectangle"
    source: str
    ita_deg: float | None = None   # the skin's individual typology angle (see ita_deg)

    @property
    def visible_share(self) -> float:
        return float(self.visible.sum()) / max(self.full_area, 1)


@dataclass
class GroupPhoto:
    image: np.ndarray
    faces: list[PlacedFace]


def face_sources(split: str) -> list[MaskSource]:
    """'validation': lfw_parts validation and celebamask_mini val; 'train': their train splits."""
    if split == "validation":
        return [lfw_parts_source("validation"), celebamask_source("val")]
    if split == "train":
        return [lfw_parts_source("train"), celebamask_source("train")]
    raise ValueError(f"split must be 'validation' or 'train', got {split!r}")


def _person_alpha(source: MaskSource, index: int) -> np.ndarray:
    """The labelled foreground (person) of a face photo as float alpha with a 2 px soft edge."""
    item = source.items[index]
    if source.name.startswith("lfw_parts"):
        label = cv2.imread(str(item.with_suffix(".png")), cv2.IMREAD_UNCHANGED)
    else:
        label = cv2.imread(str(data_dir() / "celebamask_mini" / "labels" / f"{item.stem}.png"), cv2.IMREAD_UNCHANGED)
    person = (label > 0).astype(np.float32)
    return cv2.GaussianBlur(person, (5, 5), 0)


def _bounding_box(mask: np.ndarray):
    ys, xs = np.nonzero(mask)
    if len(xs) == 0:
        return None
    return float(xs.min()), float(ys.min()), float(xs.max() + 1 - xs.min()), float(ys.max() + 1 - ys.min())


# Skin-tone groups by ITA angle (degrees), as in dermatology (Chardon et al. 1991; Del Bino et al. 2006)
ITA_GROUPS = (("very light", 55.0, 90.0), ("light", 41.0, 55.0), ("intermediate", 28.0, 41.0),
              ("tan", 10.0, 28.0), ("brown", -30.0, 10.0), ("dark", -90.0, -30.0))


def ita_deg(photo_bgr: np.ndarray, face_mask: np.ndarray) -> float | None:
    """The individual typology angle of a face's skin, atan((L* - 50) / b*) in degrees from the
    medians of CIELAB L* and b* over the face pixels (uncalibrated photos: a relative measure)."""
    if face_mask.sum() < 30:
        return None
    lab = cv2.cvtColor(photo_bgr.astype(np.float32) / 255.0, cv2.COLOR_BGR2LAB)[face_mask > 0]
    return float(math.degrees(math.atan2(np.median(lab[:, 0]) - 50.0, np.median(lab[:, 2]))))


def ita_group(angle: float | None) -> str:
    for name, lo, hi in ITA_GROUPS:
        if angle is not None and lo <= angle < hi:
            return name
    return "unknown"


def profile_faces(min_turn: float = 0.3) -> list[tuple[str, np.ndarray]]:
    """landmarks68 faces turned towards profile: the nose tip (point 30) nearer than 0.5 - min_turn
    of the jaw line's width to one of its ends (points 0, 16). (image path, 68 points)."""
    root = data_dir() / "landmarks68"
    meta = json.loads((root / "landmarks.json").read_text())
    out = []
    for im in meta["images"]:
        p = np.asarray(im["points"], np.float64)
        along = (p[30, 0] - p[0, 0]) / max(p[16, 0] - p[0, 0], 1e-9)
        if abs(along - 0.5) > min_turn:
            out.append((str(root / im["file"]), p))
    return out


def _profile_person(path: str, points: np.ndarray):
    """A profile photo, its face region (hull of the jaw line and the raised brows) and a soft oval alpha."""
    photo = _read_image(path)
    brows = points[17:27].copy()
    brows[:, 1] -= (points[8, 1] - brows[:, 1].mean()) / 3.0
    hull = cv2.convexHull(np.concatenate([points[0:17], brows]).astype(np.float32)).astype(np.int32)
    face = np.zeros(photo.shape[:2], np.uint8)
    cv2.fillConvexPoly(face, hull, 1)
    x, y, w, h = cv2.boundingRect(hull)
    alpha = np.zeros(photo.shape[:2], np.float32)
    cv2.ellipse(alpha, (int(x + w / 2), int(y + 0.55 * h)), (int(0.75 * w), int(0.85 * h)), 0, 0, 360, 1.0, -1)
    return photo, face, cv2.GaussianBlur(alpha, (0, 0), 4)


class GroupPhotoMaker:
    """`make(n_faces, seed)` gives a GroupPhoto with n_faces people (fewer if they do not fit).
    turn_share of the faces are rolled by 10 to max_roll_deg degrees, cover_share get a hand or a
    rectangle, profile_share are landmarks68 profiles (none by default)."""

    def __init__(self, split: str = "validation", cover_share: float = 0.25, turn_share: float = 0.3,
                 max_roll_deg: float = 25.0, profile_share: float = 0.0):
        self.sources = face_sources(split)
        self.pool = [(s, i) for s in self.sources for i in range(len(s))]
        root = data_dir() / "backgrounds"
        self.backgrounds = [p for p in sorted(root.glob("*.jpg"))]
        self.hands = load_hands()
        self.cover_share = cover_share
        self.turn_share = turn_share
        self.max_roll_deg = max_roll_deg
        self.profile_share = profile_share
        self.profiles = profile_faces() if profile_share > 0 else []

    def background(self, rng: np.random.Generator) -> np.ndarray:
        image = _read_image(self.backgrounds[rng.integers(len(self.backgrounds))])
        scale = max(FRAME_W / image.shape[1], FRAME_H / image.shape[0])
        image = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_LINEAR)
        y0 = (image.shape[0] - FRAME_H) // 2
        x0 = (image.shape[1] - FRAME_W) // 2
        return np.ascontiguousarray(image[y0:y0 + FRAME_H, x0:x0 + FRAME_W])

    def make(self, n_faces: int, seed: int, min_height: float = 24.0, max_height: float | None = None) -> GroupPhoto:
        rng = np.random.default_rng(seed)
        image = self.background(rng)
        if max_height is None:   # room for n faces: a face of height h needs about (2h)^2 of the frame
            max_height = min(220.0, 0.5 * math.sqrt(FRAME_W * FRAME_H / n_faces))
        heights = np.exp(rng.uniform(math.log(min_height), math.log(max(max_height, min_height + 1)), n_faces))
        placed_heads: list[tuple[float, float, float, float]] = []
        faces: list[PlacedFace] = []
        for height in sorted(heights):              # far (small) first, near (large) last
            for _ in range(30):                     # tries to find a place that overlaps little
                face = self._paste(image, faces, placed_heads, float(height), rng)
                if face is not None:
                    break
        return GroupPhoto(image, faces)

    def _paste(self, image, faces, placed_heads, height, rng) -> PlacedFace | None:
        if self.profiles and rng.random() < self.profile_share:
            path, points = self.profiles[rng.integers(len(self.profiles))]
            photo, face, alpha = _profile_person(path, points)
            name = "landmarks68/" + path.rsplit("/", 1)[-1]
        else:
            source, index = self.pool[rng.integers(len(self.pool))]
            photo, face = source.load(index)
            alpha, name = None, f"{source.name}/{source.names()[index]}"
        box = _bounding_box(face)
        if box is None:
            return None
        scale = height / box[3]
        head_w, head_h = 1.6 * box[2] * scale, 1.6 * box[3] * scale
        cx = rng.uniform(0.5 * box[2] * scale, FRAME_W - 0.5 * box[2] * scale)
        cy = rng.uniform(0.5 * height, FRAME_H - 0.5 * height)
        head = (cx - head_w / 2, cy - head_h / 2, head_w, head_h)
        if any(_overlap_share(head, other) > 0.15 for other in placed_heads):
            return None
        angle = (rng.choice([-1.0, 1.0]) * rng.uniform(10, self.max_roll_deg) if rng.random() < self.turn_share
                 else rng.uniform(-5, 5))
        if alpha is None:
            alpha = _person_alpha(source, index)
        skin = ita_deg(photo, face)
        if rng.random() < 0.5:
            photo, face, alpha = photo[:, ::-1], face[:, ::-1], alpha[:, ::-1]
            box = _bounding_box(face)
        fcx, fcy = box[0] + box[2] / 2, box[1] + box[3] / 2
        m = cv2.getRotationMatrix2D((fcx, fcy), angle, scale)
        m[0, 2] += cx - fcx
        m[1, 2] += cy - fcy
        size = (FRAME_W, FRAME_H)
        warped = cv2.warpAffine(np.ascontiguousarray(photo), m, size, flags=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
        a = cv2.warpAffine(np.ascontiguousarray(alpha), m, size, flags=cv2.INTER_LINEAR)[:, :, None]
        visible = (cv2.warpAffine(np.ascontiguousarray(face).astype(np.float32), m, size) > 0.5).astype(np.uint8)
        if visible.sum() < 30:
            return None
        image[:] = (image * (1 - a) + warped * a).astype(np.uint8)
        covered_now = a[:, :, 0] > 0.5
        for other in faces:
            other.visible[covered_now] = 0
        placed = PlacedFace(_bounding_box(visible), visible, int(visible.sum()), height, float(angle), "", name, skin)
        if rng.random() < self.cover_share:
            self._cover(image, placed, faces, photo, face, rng)
        faces.append(placed)
        placed_heads.append(head)
        return placed

    def _cover(self, image, placed: PlacedFace, faces, photo, face, rng) -> None:
        """A hand or a rectangle over part of the face, in the face's square crop (only when that
        crop lies inside the frame); every face loses the pixels it covers."""
        x, y, w, h = placed.face_box
        side = int(round(1.6 * max(w, h)))
        x0, y0 = int(round(x + w / 2 - side / 2)), int(round(y + h / 2 - side / 2))
        if x0 < 0 or y0 < 0 or x0 + side > FRAME_W or y0 + side > FRAME_H or side < 16:
            return
        crop = image[y0:y0 + side, x0:x0 + side].copy()
        target = placed.visible[y0:y0 + side, x0:x0 + side].copy()
        if self.hands and rng.random() < 0.6:
            hand = self.hands[rng.integers(len(self.hands))]
            new_crop, _ = composite_hand(crop, target, hand, skin_tone_lab(photo, face), rng)
            placed.covered = "hand"
        else:
            new_crop, _ = add_rectangles(crop.copy(), target, rng, count=1)
            placed.covered = "rectangle"
        changed = np.zeros(image.shape[:2], bool)
        changed[y0:y0 + side, x0:x0 + side] = np.any(new_crop != image[y0:y0 + side, x0:x0 + side], axis=2)
        image[y0:y0 + side, x0:x0 + side] = new_crop
        for other in (*faces, placed):
            other.visible[changed] = 0


def _overlap_share(a, b) -> float:
    """Intersection over the smaller of two (x, y, w, h) boxes."""
    return box_intersection(a, b) / max(min(a[2] * a[3], b[2] * b[3]), 1e-9)


def camera_clip(photo: GroupPhoto, frames: int, seed: int, zoom=(1.3, 1.7)) -> list[GroupPhoto]:
    """A clip of `frames` 640x480 frames from one group photo: a camera zooming from zoom[0] to
    zoom[1] and panning in a straight line between two random points, so every face moves
    (about 4-10 px a frame), grows, and some leave the picture or enter it. Each frame is a
    GroupPhoto whose faces' ground truth went through the same move (a face counts while half of
    it is in the picture and visible)."""
    rng = np.random.default_rng(seed)
    z = np.linspace(zoom[0], zoom[1], frames)
    ends = []
    for zz in (zoom[0], zoom[1]):
        half_w, half_h = FRAME_W / (2 * zz), FRAME_H / (2 * zz)
        ends.append((rng.uniform(half_w, FRAME_W - half_w), rng.uniform(half_h, FRAME_H - half_h)))
    if rng.random() < 0.5:   # pan left to right or right to left
        ends.reverse()
    out = []
    for t in range(frames):
        s = t / max(frames - 1, 1)
        cx, cy = (1 - s) * ends[0][0] + s * ends[1][0], (1 - s) * ends[0][1] + s * ends[1][1]
        m = np.array([[z[t], 0, FRAME_W / 2 - z[t] * cx], [0, z[t], FRAME_H / 2 - z[t] * cy]], np.float32)
        image = cv2.warpAffine(photo.image, m, (FRAME_W, FRAME_H), flags=cv2.INTER_LINEAR)
        faces = []
        for f in photo.faces:
            visible = (cv2.warpAffine(f.visible.astype(np.float32), m, (FRAME_W, FRAME_H)) > 0.5).astype(np.uint8)
            x, y, w, h = f.face_box
            box = (x * m[0, 0] + m[0, 2], y * m[1, 1] + m[1, 2], w * m[0, 0], h * m[1, 1])
            faces.append(PlacedFace(box, visible, int(round(f.full_area * z[t] ** 2)), f.height_px * z[t],
                                    f.angle_deg, f.covered, f.source, f.ita_deg))
        out.append(GroupPhoto(image, faces))
    return out


def hard_scene_maker(split: str = "validation") -> GroupPhotoMaker:
    """The detector's hard scenes: 40 % of the faces rolled 10-45 degrees, a third covered, 15 % profiles."""
    return GroupPhotoMaker(split, cover_share=1 / 3, turn_share=0.4, max_roll_deg=45.0, profile_share=0.15)
