"""Training and validation samples for the face segmenter: face crops, occluders, negatives.

Every source yields (image BGR uint8, face mask uint8 {0, 1}) in maskcap's face region
(data README): face skin from hairline to chin and ear to ear, with brows, eyes, nose, lips and
mouth; not neck, hair, hats, or anything that covers the face.

How each data set is mapped to that region:
  * lfw_parts: face = label 1. Beards are labelled hair (2), so they are not face, as hair is
    not. Ears are inside label 1, so ears count as face. Glasses are inside label 1 too; we
    cannot remove them, so LFW teaches "glasses are face" (label noise against our definition,
    which CelebAMask counters).
  * celebamask_mini: face = classes {1 skin, 2 nose, 4/5 eyes, 6/7 brows, 8/9 ears, 10 mouth,
    11/12 lips}. Ears are face, to agree with LFW; eyeglasses (3) are an occluder, not face
    (eyes seen through clear lenses keep their eye labels and stay face). Hair, hat, earring,
    necklace, neck, cloth and background are not face. `celebamask_face(..., ears=False)` gives
    the ear-less variant used to report IoU without ears.

Plugging in another (image, face-mask) source, e.g. the landmarks68 masks rendered from the
fitted face model: `folder_source("landmarks68", image_dir, mask_dir)` returns a MaskSource whose
masks are any PNG with face > 0; append it to the list that `training_sources()` returns.

Crops: a square of side CROP_SCALE_FROM_FACE x the longer side of the face mask's bounding box,
centred on it (core/detect/detection.py maps a Viola-Jones box to the same crop at run time), jittered
by translation, rotation and scale, warped straight to 128x128 (zero border, as at run time).
"""
from __future__ import annotations

import csv
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import cv2
import numpy as np

from core.detect.detection import CROP_SCALE_FROM_FACE, crop_box_from_face_box
from evaluation.paths import shared_data_dir
from training.segmenter.hands import Hand, hand_placement, hand_with_forearm
from training.segmenter.skin_hands import composite_skin_hand

CROP_SIZE = 128
CELEBAMASK_FACE = (1, 2, 4, 5, 6, 7, 8, 9, 10, 11, 12)
CELEBAMASK_EARS = (8, 9)
LFW_FACE = 1


def data_dir() -> Path:
    """../shared/data beside the repository, or $MASKCAP_DATA when set."""
    return shared_data_dir()


# ---------------------------------------------------------------- sources

@dataclass
class MaskSource:
    """A named list of samples; `load(i)` gives (image BGR uint8, face mask uint8 {0, 1})."""
    name: str
    items: list
    loader: Callable[[object], tuple[np.ndarray, np.ndarray]]
    _cache: dict = field(default_factory=dict, repr=False)

    def __len__(self) -> int:
        return len(self.items)

    def load(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        if i not in self._cache:
            self._cache[i] = self.loader(self.items[i])
        return self._cache[i]

    def names(self) -> list[str]:
        return [Path(str(item if not isinstance(item, tuple) else item[0])).stem for item in self.items]


def _read_image(path) -> np.ndarray:
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise FileNotFoundError(f"could not read image {path}")
    return image


def _read_label(path) -> np.ndarray:
    label = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if label is None:
        raise FileNotFoundError(f"could not read label {path}")
    return label


def lfw_face(label: np.ndarray) -> np.ndarray:
    return (label == LFW_FACE).astype(np.uint8)


def celebamask_face(label: np.ndarray, ears: bool = True) -> np.ndarray:
    classes = CELEBAMASK_FACE if ears else tuple(c for c in CELEBAMASK_FACE if c not in CELEBAMASK_EARS)
    return np.isin(label, classes).astype(np.uint8)


def lfw_parts_source(split: str) -> MaskSource:
    """lfw_parts 'train' or 'validation' (validation is for model selection only)."""
    folder = data_dir() / "lfw_parts" / split
    names = (data_dir() / "lfw_parts" / f"{split}.txt").read_text().split()
    items = [folder / f"{n}.jpg" for n in names]
    return MaskSource(f"lfw_parts/{split}", items,
                      lambda p: (_read_image(p), lfw_face(_read_label(p.with_suffix(".png")))))


def celebamask_source(split: str, ears: bool = True) -> MaskSource:
    """celebamask_mini 'train' or 'val' (sources.csv split), mapped to the face region."""
    root = data_dir() / "celebamask_mini"
    with open(root / "sources.csv", newline="") as f:
        ids = [row["id"] for row in csv.DictReader(f) if row["split"] == split]
    items = [root / "images" / f"{i}.jpg" for i in sorted(ids)]
    return MaskSource(f"celebamask_mini/{split}" + ("" if ears else "_noears"), items,
                      lambda p: (_read_image(p),
                                 celebamask_face(_read_label(root / "labels" / f"{p.stem}.png"), ears)))


def folder_source(name: str, image_dir, mask_dir, image_ext: str = ".jpg", mask_ext: str = ".png") -> MaskSource:
    """Any folder of images with same-named masks (face > 0), e.g. rendered landmarks68 masks."""
    image_dir, mask_dir = Path(image_dir), Path(mask_dir)
    items = [(image_dir / (m.stem + image_ext), m) for m in sorted(mask_dir.glob(f"*{mask_ext}"))
             if (image_dir / (m.stem + image_ext)).exists()]
    return MaskSource(name, items,
                      lambda pair: (_read_image(pair[0]), (_read_label(pair[1]) > 0).astype(np.uint8)))


def training_sources(landmarks68: bool = False) -> list[MaskSource]:
    """What the shipped weights are trained on; with `landmarks68`, also the landmarks68 faces with
    the masks rendered from their fitted face models (build/landmarks68_masks, made by
    training.regressor.fit_landmarks68 then training.regressor.landmarks68_masks)."""
    sources = [lfw_parts_source("train"), celebamask_source("train")]
    if landmarks68:
        from evaluation.paths import BUILD_DIR
        masks = BUILD_DIR / "landmarks68_masks"
        source = folder_source("landmarks68", data_dir() / "landmarks68" / "train", masks)
        if not len(source):
            raise FileNotFoundError(f"no landmarks68 masks in {masks}: run `python -m training.regressor.fit_landmarks68` "
                                    "then `python -m training.regressor.landmarks68_masks`")
        sources.append(source)
    return sources


def label_folder_source(folder) -> MaskSource:
    """An evaluation folder in the lfw_parts format: <name>.jpg with <name>.png, face = label 1."""
    folder = Path(folder)
    items = sorted(p for p in folder.glob("*.jpg") if p.with_suffix(".png").exists())
    return MaskSource(str(folder), items,
                      lambda p: (_read_image(p), lfw_face(_read_label(p.with_suffix(".png")))))


# ---------------------------------------------------------------- occluders and negatives

def load_hands() -> list[Hand]:
    """The hand cut-outs, rotated so that the wrist edge is at the bottom."""
    root = data_dir() / "hands"
    hands = []
    with open(root / "index.csv", newline="") as f:
        for row in csv.DictReader(f):
            rgba = cv2.imread(str(root / row["file"]), cv2.IMREAD_UNCHANGED)
            if rgba is None or rgba.ndim != 3 or rgba.shape[2] != 4:
                continue
            edges = row["cut_edges"]
            if edges.startswith("left") or edges == "left":
                rgba = cv2.rotate(rgba, cv2.ROTATE_90_COUNTERCLOCKWISE)
            elif edges.startswith("right"):
                rgba = cv2.rotate(rgba, cv2.ROTATE_90_CLOCKWISE)
            elif edges.startswith("top") and "bottom" not in edges:
                rgba = cv2.rotate(rgba, cv2.ROTATE_180)
            hands.append(Hand(rgba))
    return hands


def load_negative_images() -> list[np.ndarray]:
    """Face-free pictures: hand photos and backgrounds."""
    root = data_dir()
    paths = sorted((root / "hands" / "negatives").glob("*.jpg")) + sorted((root / "backgrounds").glob("*.jpg"))
    return [_read_image(p) for p in paths]


# ---------------------------------------------------------------- geometry

def face_crop_box(face_mask: np.ndarray) -> tuple[float, float, float, float] | None:
    """The un-jittered square crop (x, y, side, side) of a face mask, or None if it is empty."""
    ys, xs = np.nonzero(face_mask)
    if len(xs) < 20:
        return None
    x0, x1, y0, y1 = xs.min(), xs.max() + 1, ys.min(), ys.max() + 1
    return crop_box_from_face_box((x0, y0, x1 - x0, y1 - y0), CROP_SCALE_FROM_FACE)


def crop_affine(box, angle_deg: float = 0.0, size: int = CROP_SIZE) -> np.ndarray:
    """2x3 matrix mapping frame pixels to crop pixels for a square box rotated about its centre."""
    x, y, side, _ = box
    cx, cy = x + side / 2.0, y + side / 2.0
    s = size / side
    a = math.radians(angle_deg)
    c, si = math.cos(a) * s, math.sin(a) * s
    # crop = R*S*(p - centre) + size/2
    return np.array([[c, si, size / 2.0 - c * cx - si * cy],
                     [-si, c, size / 2.0 + si * cx - c * cy]], dtype=np.float64)


def warp_crop(image, mask, matrix, size: int = CROP_SIZE):
    img = cv2.warpAffine(image, matrix, (size, size), flags=cv2.INTER_LINEAR,
                         borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    if mask is None:
        return img, None
    m = cv2.warpAffine(mask.astype(np.float32), matrix, (size, size), flags=cv2.INTER_LINEAR,
                       borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    return img, (m > 0.5).astype(np.uint8)


def jittered_box(box, rng: np.random.Generator, shift: float = 0.10, scale=(0.85, 1.25)):
    x, y, side, _ = box
    new_side = side * math.exp(rng.uniform(math.log(scale[0]), math.log(scale[1])))
    cx = x + side / 2.0 + rng.uniform(-shift, shift) * side
    cy = y + side / 2.0 + rng.uniform(-shift, shift) * side
    return (cx - new_side / 2.0, cy - new_side / 2.0, new_side, new_side)


# ---------------------------------------------------------------- augmentation

def add_rectangles(image, target, rng: np.random.Generator, count: int | None = None):
    """Uniformly coloured random rectangles, at least partly over the face; target loses what they cover."""
    size = image.shape[0]
    ys, xs = np.nonzero(target)
    for _ in range(count if count is not None else rng.integers(1, 3)):
        w, h = (rng.uniform(0.12, 0.5, size=2) * size).astype(int)
        if len(xs):
            k = rng.integers(len(xs))
            cx, cy = xs[k], ys[k]
        else:
            cx, cy = rng.integers(0, size, size=2)
        x0, y0 = int(cx - w * rng.uniform(0, 1)), int(cy - h * rng.uniform(0, 1))
        x0, y0 = max(x0, 0), max(y0, 0)
        colour = tuple(int(c) for c in rng.integers(0, 256, size=3))
        cv2.rectangle(image, (x0, y0), (x0 + w, y0 + h), colour, thickness=-1)
        target[y0:y0 + h + 1, x0:x0 + w + 1] = 0
    return image, target


def skin_tone_lab(image, face_mask):
    """Mean and std of the face pixels in Lab (OpenCV's 8-bit Lab), or None if too few."""
    if face_mask is None or face_mask.sum() < 30:
        return None
    lab = cv2.cvtColor(image, cv2.COLOR_BGR2LAB).reshape(-1, 3).astype(np.float32)
    pix = lab[face_mask.reshape(-1) > 0]
    return pix.mean(0), pix.std(0) + 1.0


def recolour_hand(bgr, alpha, tone, rng: np.random.Generator):
    """The hand recoloured to a skin tone (Lab mean of the face), its own shading kept."""
    lab = cv2.cvtColor(bgr, cv2.COLOR_BGR2LAB).astype(np.float32)
    inside = alpha > 128
    if inside.sum() < 10:
        return bgr
    mean, std = lab[inside].mean(0), lab[inside].std(0) + 1.0
    face_mean, face_std = tone
    gain = np.clip(face_std / std, 0.5, 1.5)
    gain[0] = rng.uniform(0.8, 1.2)                  # keep the hand's own shading in L
    target_mean = face_mean + rng.normal(0, [6.0, 2.0, 2.0])
    out = (lab - mean) * gain + target_mean
    return cv2.cvtColor(np.clip(out, 0, 255).astype(np.uint8), cv2.COLOR_LAB2BGR)


def composite_hand(image, target, hand: Hand, tone, rng: np.random.Generator):
    """A hand (and a forearm: its wrist row stretched to the border) over the crop; the target
    loses what it covers. `tone` is the Lab skin tone to recolour to, or None to keep colours."""
    size = image.shape[0]
    h, w = hand.rgba.shape[:2]
    rgba = hand_with_forearm(hand, rng)
    bgr, alpha = rgba[:, :, :3], rgba[:, :, 3]
    if tone is not None:
        bgr = recolour_hand(np.ascontiguousarray(bgr), alpha, tone, rng)
    m = hand_placement(h, w, target, size, rng)
    hand_bgr = cv2.warpAffine(bgr, m, (size, size), flags=cv2.INTER_LINEAR, borderValue=0)
    a = cv2.warpAffine(alpha, m, (size, size), flags=cv2.INTER_LINEAR, borderValue=0)
    if rng.random() < 0.3:
        k = int(rng.choice([3, 5]))
        hand_bgr = cv2.GaussianBlur(hand_bgr, (k, k), 0)
        a = cv2.GaussianBlur(a, (k, k), 0)
    af = (a.astype(np.float32) / 255.0)[:, :, None]
    image = (image.astype(np.float32) * (1 - af) + hand_bgr.astype(np.float32) * af).astype(np.uint8)
    target = target.copy()
    target[a > 127] = 0
    return image, target


def photometric(image, rng: np.random.Generator):
    """Brightness, contrast, colour balance, blur and noise; deterministic given rng."""
    img = image.astype(np.float32)
    img = img * rng.uniform(0.7, 1.3) + rng.uniform(-25, 25)
    img = img * rng.uniform(0.9, 1.1, size=3)[None, None, :]
    if rng.random() < 0.2:
        gray = img.mean(2, keepdims=True)
        img = np.repeat(gray, 3, axis=2)
    if rng.random() < 0.2:
        img = cv2.GaussianBlur(img, (0, 0), rng.uniform(0.5, 1.5))
    if rng.random() < 0.3:
        img = img + rng.normal(0, rng.uniform(2, 8), size=img.shape)
    return np.clip(img, 0, 255).astype(np.uint8)


def changed_pixels(before: np.ndarray, after: np.ndarray) -> np.ndarray:
    """uint8 {0, 1}: the pixels where two same-sized BGR images differ (what an occluder painted)."""
    return (np.abs(after.astype(np.int16) - before.astype(np.int16)).sum(2) > 0).astype(np.uint8)


# ---------------------------------------------------------------- sample makers

@dataclass
class AugmentOptions:
    p_rectangles: float = 0.3
    p_hand: float = 0.4
    p_skin_hand: float = 0.0   # share of those hands made of the face's own skin (training.segmenter.skin_hands)
    p_photometric: float = 0.8
    max_rotation_deg: float = 25.0
    p_flip: float = 0.5


class SampleMaker:
    """Makes 128x128 (crop, target) pairs: positives from face sources, negatives from
    face-free pictures and from crops away from the face."""

    def __init__(self, sources: list[MaskSource], hands: list[Hand] | None = None,
                 negatives: list[np.ndarray] | None = None, options: AugmentOptions | None = None):
        self.sources = sources
        self.index = [(s, i) for s in sources for i in range(len(s))]
        self.hands = hands or []
        self.negatives = negatives or []
        self.options = options or AugmentOptions()

    def positive(self, rng: np.random.Generator):
        crop, target, _ = self.positive_with_cover(rng)
        return crop, target

    def positive_with_cover(self, rng: np.random.Generator):
        """(crop, target, covered): `covered` marks the face pixels that occluders took away
        (the pixels a hand-weighted loss stresses)."""
        o = self.options
        source, i = self.index[rng.integers(len(self.index))]
        image, face = source.load(i)
        box = face_crop_box(face)
        if box is None:
            crop, target = self.negative(rng)
            return crop, target, np.zeros_like(target)
        box = jittered_box(box, rng)
        angle = rng.uniform(-o.max_rotation_deg, o.max_rotation_deg)
        crop, target = warp_crop(image, face, crop_affine(box, angle))
        flipped = bool(rng.random() < o.p_flip)
        if flipped:
            crop, target = crop[:, ::-1].copy(), target[:, ::-1].copy()
        face_before = target.copy()
        tone = skin_tone_lab(crop, target)
        if self.hands and rng.random() < o.p_hand:
            for _ in range(1 if rng.random() < 0.8 else 2):
                hand = self.hands[rng.integers(len(self.hands))]
                if rng.random() < o.p_skin_hand:
                    crop, target = composite_skin_hand(crop, target, hand, rng)
                else:
                    crop, target = composite_hand(crop, target, hand, tone, rng)
        if rng.random() < o.p_rectangles:
            crop, target = add_rectangles(crop, target, rng)
        if rng.random() < o.p_photometric:
            crop = photometric(crop, rng)
        return crop, target, face_before & (1 - target)

    def negative(self, rng: np.random.Generator):
        """A crop with no face (or only the edge of one): a face-free picture, maybe with a hand
        on it, or a region of a face image away from the face (its true mask is the target)."""
        if self.negatives and rng.random() < 0.7:
            picture = self.negatives[rng.integers(len(self.negatives))]
            h, w = picture.shape[:2]
            side = rng.uniform(0.3, 1.0) * min(h, w)
            x, y = rng.uniform(0, w - side), rng.uniform(0, h - side)
            crop, _ = warp_crop(picture, None, crop_affine((x, y, side, side), rng.uniform(-20, 20)))
            target = np.zeros((CROP_SIZE, CROP_SIZE), np.uint8)
            if self.hands and rng.random() < 0.5:
                hand = self.hands[rng.integers(len(self.hands))]
                tone = (np.array([rng.uniform(60, 200), rng.uniform(135, 160), rng.uniform(135, 165)]),
                        np.array([12.0, 4.0, 4.0]))
                crop, target = composite_hand(crop, target, hand, tone, rng)
                target[:] = 0
        else:
            source, i = self.index[rng.integers(len(self.index))]
            image, face = source.load(i)
            h, w = image.shape[:2]
            side = rng.uniform(0.25, 0.5) * min(h, w)
            corner = rng.integers(4)
            x = 0 if corner % 2 == 0 else w - side
            y = 0 if corner < 2 else h - side
            crop, target = warp_crop(image, face, crop_affine((x, y, side, side)))
        if rng.random() < self.options.p_photometric:
            crop = photometric(crop, rng)
        return crop, target

    def batch(self, rng: np.random.Generator, size: int, negative_fraction: float = 0.0):
        crops, targets, _ = self.batch_with_cover(rng, size, negative_fraction)
        return crops, targets

    def batch_with_cover(self, rng: np.random.Generator, size: int, negative_fraction: float = 0.0):
        """(crops, targets, covered): as `batch`, plus the face pixels occluders took away."""
        crops = np.empty((size, CROP_SIZE, CROP_SIZE, 3), np.uint8)
        targets = np.empty((size, CROP_SIZE, CROP_SIZE), np.uint8)
        covered = np.zeros((size, CROP_SIZE, CROP_SIZE), np.uint8)
        for k in range(size):
            if rng.random() < negative_fraction:
                crops[k], targets[k] = self.negative(rng)
            else:
                crops[k], targets[k], covered[k] = self.positive_with_cover(rng)
        return crops, targets, covered


def validation_crops(source: MaskSource):
    """Un-jittered crops of every sample with a face, for model selection at 128x128."""
    crops, targets = [], []
    for i in range(len(source)):
        image, face = source.load(i)
        box = face_crop_box(face)
        if box is None:
            continue
        c, t = warp_crop(image, face, crop_affine(box))
        crops.append(c)
        targets.append(t)
    return np.stack(crops), np.stack(targets)


def hand_occluded(val, hands, seed: int = 7):
    """The validation crops with one recoloured hand each (seeded, the same every run)."""
    crops, targets = [], []
    for k, (crop, target) in enumerate(zip(*val)):
        rng = np.random.default_rng(seed * 100003 + k)
        c, t = composite_hand(crop, target, hands[rng.integers(len(hands))], skin_tone_lab(crop, target), rng)
        crops.append(c)
        targets.append(t)
    return np.stack(crops), np.stack(targets)


def rectangle_occluded(val, seed: int = 11):
    """The validation crops with one uniformly coloured rectangle each (seeded)."""
    crops, targets = [], []
    for k, (crop, target) in enumerate(zip(*val)):
        c, t = add_rectangles(crop.copy(), target.copy(), np.random.default_rng(seed * 100003 + k), count=1)
        crops.append(c)
        targets.append(t)
    return np.stack(crops), np.stack(targets)


def occlude_for_evaluation(image, face, seed: int, hands: list[Hand], kind: str):
    """The same image with a synthetic occluder, deterministic for (seed, kind): 'hand' (a cut-out
    recoloured to the image's own skin tone), 'skinhand' (a hand silhouette made of the face's own
    skin, training.segmenter.skin_hands) or 'rectangle'. Works in frame pixels; returns (image, face).

    The face loses what the occluder covers as training defines it (a hand's alpha over 0.5),
    not every pixel the occluder changed: the cut-outs' feathered edges (alpha 1-127, a tenth
    of their pixels) leave the face visible through them, and training keeps them as face."""
    rng = np.random.default_rng(seed)
    box = face_crop_box(face)
    if box is None:
        return image, face
    matrix = crop_affine(box)
    crop, target = warp_crop(image, face, matrix)
    if kind == "hand":
        occluded, visible = composite_hand(crop, target, hands[rng.integers(len(hands))],
                                           skin_tone_lab(crop, target), rng)
    elif kind == "skinhand":
        occluded, visible = composite_skin_hand(crop, target, hands[rng.integers(len(hands))], rng)
    else:
        occluded, visible = add_rectangles(crop.copy(), target.copy(), rng, count=1)
    # put the occluder back into the frame: pixels that changed in the crop
    changed = changed_pixels(crop, occluded)
    # gone from the face: the covered face pixels, and off the crop's face every changed pixel
    # (so that frame face pixels just outside the crop's coarser face outline go too)
    covered = ((target & (1 - visible)) | (changed & (1 - target))).astype(np.float32)
    inverse = cv2.invertAffineTransform(matrix)
    h, w = image.shape[:2]
    back = cv2.warpAffine(occluded, inverse, (w, h), flags=cv2.INTER_LINEAR)
    cover = cv2.warpAffine(changed * 255, inverse, (w, h), flags=cv2.INTER_LINEAR) > 127
    image = image.copy()
    image[cover] = back[cover]
    face = face.copy()
    face[cv2.warpAffine(covered, inverse, (w, h), flags=cv2.INTER_LINEAR) > 0.5] = 0
    return image, face


def calibrate_detector(split: str = "train", step: int = 3) -> dict:
    """Median centre offset and size of the face-mask box relative to the Haar box (units of
    the Haar box width), over lfw_parts `split`; the source of core.detect.detection.DETECTION_TO_FACE."""
    from core.detect.detection import detect_faces
    source = lfw_parts_source(split)
    rows = []
    for i in range(0, len(source), step):
        image, face = source.load(i)
        boxes = detect_faces(image)
        ys, xs = np.nonzero(face)
        if not boxes or len(xs) < 100:
            continue
        h, w = face.shape
        x, y, bw, bh = min(boxes, key=lambda b: (b[0] + b[2] / 2 - w / 2) ** 2 + (b[1] + b[3] / 2 - h / 2) ** 2)
        fx0, fx1, fy0, fy1 = xs.min(), xs.max() + 1, ys.min(), ys.max() + 1
        rows.append((((fx0 + fx1) / 2 - (x + bw / 2)) / bw, ((fy0 + fy1) / 2 - (y + bh / 2)) / bw,
                     max(fx1 - fx0, fy1 - fy0) / bw))
    dx, dy, size = np.median(np.array(rows), axis=0)
    return {"dx": float(dx), "dy": float(dy), "size": float(size), "images": len(rows)}
