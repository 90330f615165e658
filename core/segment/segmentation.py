"""Face segmentation at run time: ONNX Runtime network on a 128x128 crop, graph-cut refinement
(paper Eq. 1), and the mask pasted back into the frame. No PyTorch here.

    with FaceSegmenter() as segmenter:
        mask = segmenter.segment(frame_bgr)              # HxW uint8 in {0, 1}
        mask = segmenter.segment(frame_bgr, box=face_box)
        faces = segmenter.segment_all(frame_bgr)          # every face: [FaceMask(box, mask, score)]
        frame_mask = merge_face_masks(faces, frame_bgr.shape)

Boxes are (x, y, w, h) in frame pixels. `box` is a *face box*: the face region from hairline to
chin and ear to ear (e.g. the bounding box of the tracked face model's projection). The network's
crop is a square of CROP_SCALE_FROM_FACE x its longer side about its centre. With box=None the
largest face of the CNN detector is used (its square face box, core.detect.cnn). The box may
reach past the frame: the crop is padded with black there (as in training) and the mask is
clipped to the frame.
"""
from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..detect.cnn import detect_all_faces
from ..detect.detection import CROP_SCALE_FROM_FACE, crop_box_from_face_box
from ..io.files import shipped_model_path
from ..io.closing import Closing
from ..io.onnx_runtime import DEVICES, DeviceError, cuda_listed, open_session
from ..io.image_input import as_bgr_uint8

__all__ = ["FaceSegmenter", "SegmenterOptions", "SegmenterDeviceError", "DEVICES", "cuda_listed",
           "SegmentationResult", "SegmenterModelError", "FaceMask", "DEFAULT_MIN_SCORE", "default_segmenter_path",
           "streams_model_path", "graph_cut_refine", "merge_face_masks", "CROP_SIZE", "paste_crop_mask",
           "alpha_from_mask", "cut_sides", "grown_crop_box"]

CROP_SIZE = 128
STREAM_OUTPUTS = ("fused", "fcn", "deconv")


def default_segmenter_path(stream: str = "fused") -> Path:
    """models/segmenter.onnx, the fused output alone (what runs); for the one-stream ablations
    ("fcn", "deconv") models/segmenter_streams.onnx, the same weights with every stream's output
    (a repository file: the add-on does not ship it)."""
    path = shipped_model_path("segmenter.onnx")
    return path if stream == "fused" else streams_model_path(path)


def streams_model_path(path: str | Path) -> Path:
    """The every-stream export beside a run-time segmenter: segmenter.onnx -> segmenter_streams.onnx."""
    path = Path(path)
    return path if path.stem.endswith("_streams") else path.with_name(f"{path.stem}_streams{path.suffix}")


class SegmenterModelError(RuntimeError):
    """The segmentation model file exists but cannot be used (corrupt, or not a segmenter)."""


class SegmenterDeviceError(DeviceError):
    """device="cuda" was asked for and ONNX Runtime cannot run the segmenter on CUDA here."""


@dataclass
class SegmenterOptions:
    """How FaceSegmenter runs.

    device: "cpu" (default); "auto" to use CUDA only if an ONNX Runtime session really comes up
      on the CUDA provider (onnxruntime-gpu lists it even where CUDA is missing), the CPU
      otherwise (FaceSegmenter.device_note says why); "cuda" to insist on CUDA (an error naming
      what is missing when it cannot start).
    intra_op_threads: ONNX Runtime threads per inference; 1 leaves the other core of a 2-core
      machine to the tracker.
    stream: which network output to use, "fused" (default), "fcn" or "deconv" (for ablations).
    graph_cut: refine the 128x128 map with the graph cut of Eq. 1; otherwise threshold it.
    graph_cut_neighbours: 8 (default) measures a cut by its Euclidean length; 4 is Eq. 1's grid as
      the paper writes it, whose cuts run straight along rows and columns where the map is unsure.
    smooth_edges: paste the 128 px mask into the frame through a smooth field (paste_crop_mask),
      not as a binary mask upsampled and cut (stair steps of side/128 pixels).
    grow_cut_crops: when the mask runs out of its crop inside the frame, segment once more in a
      crop grown towards that side (cut_sides, grown_crop_box) instead of cutting the face straight.
    mirror_average: average the map with the map of the mirrored crop (mirrored back): a
      two-view ensemble of the same network, a little more IoU for twice the network's time
      (off by default: it takes the probability map past its 5 ms budget; README, Segmentation).
    """
    model_path: str | Path | None = None
    device: str = "cpu"
    intra_op_threads: int = 1
    inter_op_threads: int = 1
    stream: str = "fused"
    graph_cut: bool = True
    mirror_average: bool = False
    graph_cut_lambda: float = 10.0
    graph_cut_sigma: float = 5.0
    graph_cut_neighbours: int = 8
    threshold: float = 0.5
    crop_scale: float = CROP_SCALE_FROM_FACE
    smooth_edges: bool = True
    grow_cut_crops: bool = True


@dataclass
class SegmentationResult:
    """mask: HxW uint8 {0, 1} in the frame. crop_probability: the network's 128x128 face
    probability of the crop. crop_box: (x, y, side, side) of that crop in the frame.
    face_box: the face box used, or None if none was given and none was detected."""
    mask: np.ndarray
    crop_probability: np.ndarray | None = None
    crop_box: tuple[float, float, float, float] | None = None
    face_box: tuple[float, float, float, float] | None = None
    crop_mask: np.ndarray | None = field(default=None, repr=False)


# A face whose mask's mean face probability is below this is dropped by the batch and video paths.
# 0.5 since the CNN detector (core.detect.cnn) finds the faces: on 150 hard group photos 0.5 kept
# recall at 0.983 (0.989 unfiltered) and cut false faces from 0.127 to 0.047 per photo, where 0.8
# cut them to 0.027 but dropped rolled and covered true faces (recall 0.974)
# (`python -m evaluation.detector_recall`, docs/benchmarks.md). With the cascades it was 0.8.
DEFAULT_MIN_SCORE = 0.5


@dataclass
class FaceMask:
    """One face of `segment_all`: box (x, y, w, h) is the face box in frame pixels, mask is HxW
    uint8 {0, 1} at the frame's size, score in [0, 1] is the network's mean face probability over
    the mask's crop pixels (0 when the mask is empty: a false detection usually scores low)."""
    box: tuple[float, float, float, float]
    mask: np.ndarray
    score: float
    crop_box: tuple[float, float, float, float] | None = None


def merge_face_masks(faces: list[FaceMask], frame_shape) -> np.ndarray:
    """One HxW uint8 {0, 1} mask for the frame: the union of the faces' masks."""
    out = np.zeros(frame_shape[:2], np.uint8)
    for face in faces:
        np.bitwise_or(out, face.mask, out=out)
    return out


def central_components(crop_mask: np.ndarray, crop_scale: float) -> np.ndarray:
    """The crop mask without blobs that miss the face box at its centre (a neighbour's face, a
    hand): keeps every connected component that reaches the central face box."""
    import cv2
    count, labels = cv2.connectedComponents(crop_mask, connectivity=4)
    if count <= 2:
        return crop_mask
    size = crop_mask.shape[0]
    half = size / (2.0 * crop_scale)
    lo, hi = int(math.floor(size / 2 - half)), int(math.ceil(size / 2 + half))
    central = np.unique(labels[lo:hi, lo:hi])
    central = central[central > 0]
    return np.isin(labels, central).astype(np.uint8)


@functools.lru_cache(maxsize=4)
def _grid_pairs(height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """Node indices (i, j) of every 4-neighbour pair of a height x width grid: the rightward
    pairs row by row, then the downward ones (the order `_contrast_weights` gives weights in)."""
    index = np.arange(height * width, dtype=np.int32).reshape(height, width)
    i = np.concatenate([index[:, :-1].ravel(), index[:-1, :].ravel()])
    j = np.concatenate([index[:, 1:].ravel(), index[1:, :].ravel()])
    i.flags.writeable = j.flags.writeable = False
    return i, j


@functools.lru_cache(maxsize=8)
def _contrast_table(lam: float, sigma: float) -> np.ndarray:
    """lam * exp(-d^2 / (2 sigma^2)) for every absolute grey-level difference d = 0..255."""
    d = np.arange(256, dtype=np.float64)
    table = (lam * np.exp(-d * d / (2.0 * sigma * sigma))).astype(np.float32)
    table.flags.writeable = False
    return table


def _contrast_weights(gray: np.ndarray, lam: float, sigma: float) -> np.ndarray:
    """lam * exp(-(I_i - I_j)^2 / (2 sigma^2)) of every pair of `_grid_pairs`, from a uint8 image
    (a 256-entry table instead of an exp per pair)."""
    g = gray.astype(np.int16)
    table = _contrast_table(float(lam), float(sigma))
    return np.concatenate([table[np.abs(g[:, 1:] - g[:, :-1]).ravel()],
                           table[np.abs(g[1:, :] - g[:-1, :]).ravel()]])


@functools.lru_cache(maxsize=4)
def _diagonal_pairs(height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """Node indices (i, j) of every diagonal pair: down-right row by row, then down-left."""
    index = np.arange(height * width, dtype=np.int32).reshape(height, width)
    i = np.concatenate([index[:-1, :-1].ravel(), index[:-1, 1:].ravel()])
    j = np.concatenate([index[1:, 1:].ravel(), index[1:, :-1].ravel()])
    i.flags.writeable = j.flags.writeable = False
    return i, j


def _diagonal_contrast_weights(gray: np.ndarray, lam: float, sigma: float) -> np.ndarray:
    """The contrast weight of every pair of `_diagonal_pairs`."""
    g = gray.astype(np.int16)
    table = _contrast_table(float(lam), float(sigma))
    return np.concatenate([table[np.abs(g[1:, 1:] - g[:-1, :-1]).ravel()],
                           table[np.abs(g[1:, :-1] - g[:-1, 1:]).ravel()]])


# 8 neighbours with these shares of each pair's weight make a cut's cost close to its Euclidean
# length (Boykov and Kolmogorov, ICCV 2003: a pair's weight is proportional to the angle it covers
# over its length, pi/4 for each of the 8 directions), scaled so that a horizontal or vertical cut
# costs what it costs with 4 neighbours. With 4 neighbours a cut is measured in city-block length:
# where the map is unsure it runs straight along a row or a column (a flat chin, a straight cheek).
AXIS_SHARE_8 = 1.0 / (1.0 + math.sqrt(2.0))
DIAGONAL_SHARE_8 = AXIS_SHARE_8 / math.sqrt(2.0)


def graph_cut_refine(probability: np.ndarray, gray: np.ndarray, lam: float = 10.0, sigma: float = 5.0,
                     eps: float = 1e-4, neighbours: int = 4) -> np.ndarray:
    """Binary face mask minimising Eq. 1: sum of -log p (face) / -log(1-p) (not face) plus
    lam * exp(-(I_i - I_j)^2 / (2 sigma^2)) for every 4-neighbour pair with different labels.
    `gray` is the crop's uint8 intensity at the map's resolution. neighbours=8 adds the diagonal
    pairs and shares each pair's weight so that a cut's cost follows its Euclidean length
    (AXIS_SHARE_8, DIAGONAL_SHARE_8) instead of its city-block length. The grid's edges go in with
    one vectorised call (PyMaxflow's structured add_grid_edges took half the time)."""
    import maxflow
    if gray.dtype != np.uint8 or gray.shape != probability.shape:
        raise ValueError(f"gray must be uint8 of the map's shape {probability.shape}, got {gray.dtype} {gray.shape}")
    if neighbours not in (4, 8):
        raise ValueError(f"neighbours must be 4 or 8, got {neighbours!r}")
    height, width = probability.shape
    p = np.clip(probability.astype(np.float32), np.float32(eps), np.float32(1.0 - eps))
    i, j = _grid_pairs(height, width)
    weights = _contrast_weights(gray, lam, sigma)
    if neighbours == 8:
        di, dj = _diagonal_pairs(height, width)
        i, j = np.concatenate([i, di]), np.concatenate([j, dj])
        weights = np.concatenate([weights * np.float32(AXIS_SHARE_8),
                                  _diagonal_contrast_weights(gray, lam, sigma) * np.float32(DIAGONAL_SHARE_8)])
    graph = maxflow.GraphFloat(height * width, len(i))
    nodes = graph.add_grid_nodes((height, width))
    graph.add_edges(i, j, weights, weights)
    # a node that ends on the sink side (face, as in the paper) has its source edge cut: cost -log p
    graph.add_grid_tedges(nodes, -np.log(p), -np.log1p(-p))
    graph.maxflow()
    return graph.get_grid_segments(nodes).astype(np.uint8)


def _validate_box(box, frame_shape) -> tuple[float, float, float, float]:
    try:
        x, y, w, h = (float(v) for v in box)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"box must be (x, y, w, h) numbers in pixels, got {box!r}") from exc
    if not all(math.isfinite(v) for v in (x, y, w, h)):
        raise ValueError(f"box {box!r} has a NaN or infinite value")
    if w < 1 or h < 1:
        raise ValueError(f"box {box!r} has a width or height below 1 pixel")
    height, width = frame_shape[:2]
    if x >= width or y >= height or x + w <= 0 or y + h <= 0:
        raise ValueError(f"box {box!r} lies entirely outside the {width}x{height} frame")
    return x, y, w, h


def _integer_crop(crop_box):
    x, y, side, _ = crop_box
    x0, y0 = int(math.floor(x)), int(math.floor(y))
    return x0, y0, max(1, int(round(side)))


def extract_crop(frame: np.ndarray, crop_box, size: int = CROP_SIZE) -> np.ndarray:
    """The square crop resized to size x size, black where it leaves the frame."""
    import cv2
    x0, y0, side = _integer_crop(crop_box)
    h, w = frame.shape[:2]
    cx0, cy0, cx1, cy1 = max(x0, 0), max(y0, 0), min(x0 + side, w), min(y0 + side, h)
    if cx0 == x0 and cy0 == y0 and cx1 == x0 + side and cy1 == y0 + side:
        region = frame[y0:y0 + side, x0:x0 + side]
    else:
        region = np.zeros((side, side, 3), np.uint8)
        if cx1 > cx0 and cy1 > cy0:
            region[cy0 - y0:cy1 - y0, cx0 - x0:cx1 - x0] = frame[cy0:cy1, cx0:cx1]
    if side > 2 * size:
        # INTER_AREA at a fractional ratio is slow (1.2 ms for a 480 px crop); a linear resize to
        # twice the size, then INTER_AREA by exactly 2, averages the same way in a sixth of the time
        region = cv2.resize(region, (2 * size, 2 * size), interpolation=cv2.INTER_LINEAR)
    interp = cv2.INTER_AREA if side > size else cv2.INTER_LINEAR
    return cv2.resize(region, (size, size), interpolation=interp)


# The 128 px crop mask reaches the frame through a smooth field: blurred by EDGE_SIGMA crop pixels,
# upsampled bilinearly and cut at 0.5 there, so that its outline is smooth at the frame's resolution
# (a binary 128 px mask upsampled and cut shows stair steps side/128 frame pixels tall: 3.75 px for a
# 480 px crop). evaluation/mask_edges.py measures IoU and the boundary F-score of both pastes.
EDGE_SIGMA = 1.0
# A mask with at least CUT_MIN_PIXELS of its pixels on a crop's outer CUT_EDGE_PX rows or columns,
# on a side where the crop lies inside the frame, was cut by the crop (a chin below a crop placed
# on the previous frame's face): the crop grows by CROP_GROWTH of its side towards each such side
# and the face is segmented once more there.
CUT_EDGE_PX = 2
CUT_MIN_PIXELS = 3
CROP_GROWTH = 0.3
# The anti-aliased alpha of a frame mask (alpha_from_mask): a Gaussian of this many frame pixels.
ALPHA_SIGMA_PX = 0.75


def mask_field(crop_mask: np.ndarray, sigma: float = EDGE_SIGMA) -> np.ndarray:
    """The crop mask as a smooth float32 field in [0, 1] whose 0.5 level is its outline."""
    import cv2
    return cv2.GaussianBlur(crop_mask.astype(np.float32), (0, 0), sigma, borderType=cv2.BORDER_REPLICATE)


def paste_crop_mask(crop_mask: np.ndarray, crop_box, frame_shape, smooth: bool = True) -> np.ndarray:
    """HxW uint8 {0, 1}: a 128x128 {0, 1} crop mask at the frame's resolution. smooth: through
    mask_field (an outline without stair steps); otherwise the binary mask upsampled and cut."""
    if not smooth:
        return (paste_crop_map(crop_mask * np.uint8(255), crop_box, frame_shape, np.uint8) > 127).astype(np.uint8)
    return (paste_crop_map(mask_field(crop_mask), crop_box, frame_shape, np.float32) >= 0.5).astype(np.uint8)


def alpha_from_mask(mask: np.ndarray, sigma_px: float = ALPHA_SIGMA_PX) -> np.ndarray:
    """HxW uint8 0..255: a {0, 1} frame mask with its outline anti-aliased (for compositing)."""
    import cv2
    soft = cv2.GaussianBlur((np.asarray(mask) > 0).astype(np.float32), (0, 0), sigma_px,
                            borderType=cv2.BORDER_REPLICATE)
    return np.clip(np.rint(soft * 255.0), 0, 255).astype(np.uint8)


def cut_sides(crop_mask: np.ndarray, crop_box, frame_shape) -> tuple[str, ...]:
    """The sides ("left", "top", "right", "bottom") where the crop mask runs out of its crop while
    the crop lies inside the frame there (at the frame's own edge the face simply leaves the picture)."""
    x0, y0, side = _integer_crop(crop_box)
    h, w = frame_shape[:2]
    e = CUT_EDGE_PX
    edges = {"left": (crop_mask[:, :e], x0 > 0), "top": (crop_mask[:e, :], y0 > 0),
             "right": (crop_mask[:, -e:], x0 + side < w), "bottom": (crop_mask[-e:, :], y0 + side < h)}
    return tuple(name for name, (strip, inside) in edges.items() if inside and int(strip.sum()) >= CUT_MIN_PIXELS)


def grown_crop_box(crop_box, sides, growth: float = CROP_GROWTH) -> tuple[float, float, float, float]:
    """The square crop grown by `growth` of its side and moved so that each cut side gains all of
    it (both sides of an axis cut, or neither: grown evenly about the centre)."""
    x, y, side, _ = (float(v) for v in crop_box)
    extra = growth * side
    shift_x = 0.5 * extra * (("right" in sides) - ("left" in sides))
    shift_y = 0.5 * extra * (("bottom" in sides) - ("top" in sides))
    return (x - extra / 2 + shift_x, y - extra / 2 + shift_y, side + extra, side + extra)


def paste_crop_map(crop_map: np.ndarray, crop_box, frame_shape, dtype) -> np.ndarray:
    """A 128x128 map upsampled bilinearly to the crop's size and placed into a zero frame."""
    import cv2
    x0, y0, side = _integer_crop(crop_box)
    h, w = frame_shape[:2]
    out = np.zeros((h, w), dtype)
    cx0, cy0, cx1, cy1 = max(x0, 0), max(y0, 0), min(x0 + side, w), min(y0 + side, h)
    if cx1 <= cx0 or cy1 <= cy0:
        return out
    up = cv2.resize(crop_map, (side, side), interpolation=cv2.INTER_LINEAR)
    out[cy0:cy1, cx0:cx1] = up[cy0 - y0:cy1 - y0, cx0 - x0:cx1 - x0]
    return out


def network_input(crops_bgr: np.ndarray) -> np.ndarray:
    """(N, 128, 128, 3) uint8 BGR crops -> the segmenter's input, (N, 3, 128, 128) float32 0..255."""
    return np.ascontiguousarray(crops_bgr.transpose(0, 3, 1, 2), dtype=np.float32)


class FaceSegmenter(Closing):
    """Face / not-face segmentation of a frame. Create once, call per frame, close (or `with`)."""

    def __init__(self, model_path: str | Path | None = None, options: SegmenterOptions | None = None):
        self.options = options or SegmenterOptions()
        if self.options.stream not in STREAM_OUTPUTS:
            raise ValueError(f"stream must be one of {STREAM_OUTPUTS}, got {self.options.stream!r}")
        path = Path(model_path or self.options.model_path or default_segmenter_path(self.options.stream))
        self.model_path = path
        self._session = self._open_session(path)
        self._input = self._session.get_inputs()[0].name
        self._output = self.options.stream
        self.provider = self._session.get_providers()[0]

    @property
    def intra_op_threads(self) -> int:
        """The threads ONNX Runtime's session really runs each inference on."""
        return int(self._session.get_session_options().intra_op_num_threads)

    def describe(self) -> str:
        """Where the network runs, for a user: "CPUExecutionProvider, 2 threads; CUDA is not used: ..."."""
        threads = self.intra_op_threads
        text = f"{self.provider}, {threads} thread{'s' if threads != 1 else ''}"
        return f"{text}; {self.device_note}" if self.device_note else text

    def _open_session(self, path: Path):
        if not path.is_file():
            raise FileNotFoundError(f"segmentation model not found: {path} (retrain it with "
                                    "`python -m training.segmenter.train` or pass model_path)")
        session, self.device_note = open_session(
            path, self.options.device, self.options.intra_op_threads, self.options.inter_op_threads,
            SegmenterModelError, "segmentation model", SegmenterDeviceError)
        inputs = session.get_inputs()
        outputs = {o.name for o in session.get_outputs()}
        if len(inputs) != 1 or list(inputs[0].shape[1:]) != [3, CROP_SIZE, CROP_SIZE] \
                or self.options.stream not in outputs:
            raise SegmenterModelError(
                f"{path} is not a maskcap segmenter: expected one input (n, 3, {CROP_SIZE}, {CROP_SIZE}) "
                f"and an output named {self.options.stream!r}, found inputs "
                f"{[(i.name, i.shape) for i in inputs]} and outputs {sorted(outputs)}")
        return session

    # ------------------------------------------------------------ per frame

    def crop_probability(self, image, box=None):
        """(128x128 float32 face probability of the crop, crop box (x, y, side, side)), or
        (None, None) when box is None and no face is detected."""
        frame = as_bgr_uint8(image, "image")
        face_box = self._face_box(frame, box)
        if face_box is None:
            return None, None
        crop_box = crop_box_from_face_box(face_box, self.options.crop_scale)
        return self._infer(extract_crop(frame, crop_box)), crop_box

    def probability(self, image, box=None) -> np.ndarray:
        """HxW float32 face probability in the frame (bilinear from the 128x128 map; 0 outside
        the crop, and everywhere when no face is found)."""
        frame = as_bgr_uint8(image, "image")
        prob, crop_box = self.crop_probability(frame, box)
        if prob is None:
            return np.zeros(frame.shape[:2], np.float32)
        return paste_crop_map(prob, crop_box, frame.shape, np.float32)

    def run(self, image, box=None) -> SegmentationResult:
        """Mask and the intermediate results (crop probability, crop box, face box)."""
        frame = as_bgr_uint8(image, "image")
        face_box = self._face_box(frame, box)
        if face_box is None:
            return SegmentationResult(mask=np.zeros(frame.shape[:2], np.uint8))
        crop_box = crop_box_from_face_box(face_box, self.options.crop_scale)
        crop = extract_crop(frame, crop_box)
        prob = self._infer(crop)
        crop_mask = self.refine(prob, crop)
        if self.options.grow_cut_crops:
            sides = cut_sides(crop_mask, crop_box, frame.shape)
            if sides:  # the face runs out of the crop: once more in a crop grown that way
                crop_box = grown_crop_box(crop_box, sides)
                crop = extract_crop(frame, crop_box)
                prob = self._infer(crop)
                crop_mask = self.refine(prob, crop)
        mask = paste_crop_mask(crop_mask, crop_box, frame.shape, self.options.smooth_edges)
        return SegmentationResult(mask, prob, crop_box, face_box, crop_mask)

    def segment(self, image, box=None) -> np.ndarray:
        """HxW uint8 mask, 1 on the face, at the frame's full resolution."""
        return self.run(image, box).mask

    def segment_all(self, image, boxes=None, min_score: float = 0.0) -> list[FaceMask]:
        """Every face of the frame, largest first: `boxes` are face boxes (x, y, w, h) or None to
        detect them (core.detect.cnn.detect_all_faces). The crops go through the network in one
        batch; each is refined, cut to the blobs at its centre and pasted at the frame's size.
        Faces scoring below `min_score` are dropped."""
        frame = as_bgr_uint8(image, "image")
        if boxes is None:
            boxes = [d.face_box for d in detect_all_faces(frame)]
        face_boxes = [_validate_box(b, frame.shape) for b in boxes]
        if not face_boxes:
            return []
        crop_boxes = [crop_box_from_face_box(b, self.options.crop_scale) for b in face_boxes]
        crops = np.stack([extract_crop(frame, c) for c in crop_boxes])
        probabilities = self.infer_crops(crops)
        faces = []
        for face_box, crop_box, crop, prob in zip(face_boxes, crop_boxes, crops, probabilities):
            crop_mask = central_components(self.refine(prob, crop), self.options.crop_scale)
            if self.options.grow_cut_crops and crop_mask.any():
                sides = cut_sides(crop_mask, crop_box, frame.shape)
                if sides:  # the face runs out of the crop: once more in a crop grown that way
                    crop_box = grown_crop_box(crop_box, sides)
                    crop = extract_crop(frame, crop_box)
                    prob = self._infer(crop)
                    crop_mask = central_components(self.refine(prob, crop),
                                                   self.options.crop_scale * (1 + CROP_GROWTH))
            score = float(prob[crop_mask > 0].mean()) if crop_mask.any() else 0.0
            if score < min_score:
                continue
            mask = paste_crop_mask(crop_mask, crop_box, frame.shape, self.options.smooth_edges)
            faces.append(FaceMask(face_box, mask, score, crop_box))
        return faces

    def refine(self, probability: np.ndarray, crop_bgr: np.ndarray) -> np.ndarray:
        """The 128x128 {0, 1} mask: graph cut (Eq. 1) on the crop's intensity, or a threshold."""
        if not self.options.graph_cut:
            return (probability >= self.options.threshold).astype(np.uint8)
        import cv2
        gray = cv2.cvtColor(crop_bgr, cv2.COLOR_BGR2GRAY)
        return graph_cut_refine(probability, gray, self.options.graph_cut_lambda, self.options.graph_cut_sigma,
                                neighbours=self.options.graph_cut_neighbours)

    def infer_crops(self, crops_bgr: np.ndarray) -> np.ndarray:
        """(N, 128, 128) probabilities of a batch of (N, 128, 128, 3) uint8 BGR crops."""
        x = network_input(crops_bgr)
        if self.options.mirror_average:
            x = np.concatenate([x, x[..., ::-1]])
        p = self._session.run([self._output], {self._input: x})[0][:, 0]
        if self.options.mirror_average:
            n = len(crops_bgr)
            p = 0.5 * (p[:n] + p[n:, :, ::-1])
        return p

    def _infer(self, crop_bgr: np.ndarray) -> np.ndarray:
        return self.infer_crops(crop_bgr[None])[0]

    def _face_box(self, frame, box):
        if box is not None:
            return _validate_box(box, frame.shape)
        faces = detect_all_faces(frame)
        return faces[0].face_box if faces else None

    # ------------------------------------------------------------ lifetime

    def close(self) -> None:
        self._session = None
