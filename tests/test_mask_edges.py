"""Masks at the frame's resolution: the 128 px crop mask pasted without stair steps, an anti-aliased
alpha for compositing, and a crop grown where the face ran out of it instead of a straight cut;
the boundary F-score of evaluation/mask_edges.py."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from core.segment.segmentation import (CROP_SIZE, FaceSegmenter, SegmenterOptions, alpha_from_mask, cut_sides,
                                       grown_crop_box, paste_crop_mask)
from evaluation.mask_edges import boundary_f


def _disc(size: int, centre, radius: float) -> np.ndarray:
    yy, xx = np.mgrid[:size, :size] + 0.5
    return ((xx - centre[0]) ** 2 + (yy - centre[1]) ** 2 <= radius ** 2).astype(np.uint8)


def _outline_wobble(mask: np.ndarray, centre, radius: float) -> float:
    """How far the mask's outline strays from its own local course around a circle: the largest
    deviation of its radius from the running mean of 31 neighbouring outline pixels (stair steps
    stray by about their height; a smooth outline hardly at all)."""
    ys, xs = np.nonzero(mask ^ cv2.erode(mask, np.ones((3, 3), np.uint8)))
    order = np.argsort(np.arctan2(ys + 0.5 - centre[1], xs + 0.5 - centre[0]))
    r = np.hypot(xs + 0.5 - centre[0], ys + 0.5 - centre[1])[order] - radius
    k = 15
    local = np.convolve(np.r_[r[-k:], r, r[:k]], np.ones(2 * k + 1) / (2 * k + 1), "valid")
    return float(np.abs(r - local).max())


def test_the_smooth_paste_of_a_disc_has_no_stair_steps_at_the_frames_resolution():
    crop = _disc(CROP_SIZE, (64, 64), 40)       # a disc drawn at the network's resolution
    side = 480                                   # pasted into a 480 px crop: 3.75 frame px per crop px
    box = (0, 0, side, side)
    binary = paste_crop_mask(crop, box, (side, side), smooth=False)
    smooth = paste_crop_mask(crop, box, (side, side), smooth=True)
    wobble_binary = _outline_wobble(binary, (240, 240), 150.0)
    wobble_smooth = _outline_wobble(smooth, (240, 240), 150.0)
    assert wobble_binary > 1.8                   # steps about half a crop pixel (1.9 px) tall
    assert wobble_smooth < 0.7 * wobble_binary
    assert set(np.unique(smooth)) == {0, 1} and smooth.dtype == np.uint8
    assert abs(smooth.sum() / binary.sum() - 1.0) < 0.01


def test_the_smooth_paste_keeps_the_area_of_a_large_shape():
    crop = np.zeros((CROP_SIZE, CROP_SIZE), np.uint8)
    crop[30:100, 20:110] = 1
    box = (10, 20, 256, 256)
    pasted = paste_crop_mask(crop, box, (300, 300))
    assert abs(pasted.sum() / (crop.sum() * 4.0) - 1.0) < 0.02
    assert pasted[:20].sum() == 0 and pasted[:, :10].sum() == 0   # nothing outside the crop


def test_the_alpha_is_the_mask_with_only_its_outline_in_between():
    mask = _disc(200, (100, 100), 60)
    alpha = alpha_from_mask(mask)
    assert alpha.dtype == np.uint8 and alpha[100, 100] == 255 and alpha[0, 0] == 0
    between = (alpha > 0) & (alpha < 255)
    edge = mask ^ cv2.erode(mask, np.ones((3, 3), np.uint8))
    near_edge = cv2.dilate(edge, np.ones((7, 7), np.uint8)) > 0
    assert between.any() and not (between & ~near_edge).any()
    assert np.array_equal(alpha >= 128, mask > 0)


@pytest.mark.parametrize("rows, box, frame, sides", [
    (slice(126, 128), (100, 100, 200, 200), (480, 640), ("bottom",)),   # chin below the crop, inside the frame
    (slice(126, 128), (100, 300, 200, 200), (480, 640), ()),            # the crop ends past the frame: no cut
    (slice(0, 2), (100, 100, 200, 200), (480, 640), ("top",)),
    (slice(60, 62), (100, 100, 200, 200), (480, 640), ()),              # well inside the crop
])
def test_cut_sides_are_crop_edges_inside_the_frame_that_the_mask_reaches(rows, box, frame, sides):
    crop_mask = np.zeros((CROP_SIZE, CROP_SIZE), np.uint8)
    crop_mask[rows, 40:90] = 1
    assert cut_sides(crop_mask, box, frame) == sides


def test_a_crop_cut_at_the_bottom_grows_downwards_and_stays_centred_across():
    x, y, side, _ = grown_crop_box((100, 100, 200, 200), ("bottom",))
    assert side == pytest.approx(260) and y == pytest.approx(100)      # the top stays, the bottom gains 60 px
    assert x + side / 2 == pytest.approx(200)                           # still centred left to right
    x, y, side, _ = grown_crop_box((100, 100, 200, 200), ("left", "right"))
    assert (x, y, side) == pytest.approx((70, 70, 260))                 # cut on both sides: grown about the centre


def test_boundary_f_is_one_for_the_same_mask_and_counts_outline_pixels_within_two_pixels():
    mask = _disc(100, (50, 50), 30)
    assert boundary_f(mask, mask) == (1.0, 1.0, 1.0)
    near = np.roll(mask, 2, axis=1)       # 2 px off: every outline pixel within tolerance
    far = np.roll(mask, 6, axis=1)
    assert boundary_f(near, mask)[2] > 0.95 and boundary_f(far, mask)[2] < 0.5
    assert boundary_f(np.zeros_like(mask), mask) == (0.0, 0.0, 0.0)


@pytest.fixture(scope="module")
def astronaut():
    from examples.demo_clip import FACE_CENTRE_PX, astronaut_bgr

    return astronaut_bgr(), FACE_CENTRE_PX


def test_a_face_box_placed_too_high_gets_a_grown_crop_and_the_chin_is_not_cut_straight(astronaut):
    """The box a tracker gives from the previous frame can sit high on a face whose jaw dropped: the
    crop then ends across the chin. Grown, the mask reaches below that crop's edge."""
    image, (cx, cy) = astronaut
    box = (cx - 45, cy - 120, 90, 110)           # hairline to mid-face: the crop ends across the chin
    placed = FaceSegmenter(options=SegmenterOptions(grow_cut_crops=False)).run(image, box)
    grown = FaceSegmenter().run(image, box)
    bottom = int(placed.crop_box[1] + placed.crop_box[3])
    assert cut_sides(placed.crop_mask, placed.crop_box, image.shape) == ("bottom",)
    assert grown.crop_box[3] > placed.crop_box[3] and grown.crop_box[1] == pytest.approx(placed.crop_box[1])
    assert placed.mask[bottom:].sum() == 0 and grown.mask[bottom:].sum() > 200


def test_a_face_box_on_the_face_is_segmented_in_its_own_crop(astronaut):
    image, (cx, cy) = astronaut
    box = (cx - 50, cy - 65, 100, 130)
    result = FaceSegmenter().run(image, box)
    placed = FaceSegmenter(options=SegmenterOptions(grow_cut_crops=False, smooth_edges=False)).run(image, box)
    assert result.crop_box == placed.crop_box
    assert (result.mask != placed.mask).mean() < 0.01   # only the outline moves, by a pixel or two


def test_eight_neighbours_keep_an_unsure_round_edge_round_where_four_cut_it_along_rows_and_columns():
    """A disc whose edge the map is unsure of, on a flat image: with 4 neighbours a cut costs its
    city-block length, so the graph cut squares the disc off (its diagonals pulled in); with 8
    neighbours and Euclidean shares it stays round."""
    from core.segment.segmentation import graph_cut_refine

    yy, xx = np.mgrid[:CROP_SIZE, :CROP_SIZE] + 0.5
    radius = np.hypot(xx - 64, yy - 64)
    probability = (0.5 + 0.45 * np.tanh((40 - radius) / 10.0)).astype(np.float32)
    flat = np.full((CROP_SIZE, CROP_SIZE), 100, np.uint8)
    disc = radius <= 40

    def fit(neighbours):
        mask = graph_cut_refine(probability, flat, neighbours=neighbours).astype(bool)
        return (mask & disc).sum() / (mask | disc).sum()

    assert fit(8) > fit(4) + 0.015 and fit(8) > 0.91


def test_eight_neighbours_give_the_same_cut_as_four_on_a_sharp_straight_edge():
    from core.segment.segmentation import graph_cut_refine

    probability = np.full((CROP_SIZE, CROP_SIZE), 0.1, np.float32)
    probability[:, :64] = 0.9
    gray = np.full((CROP_SIZE, CROP_SIZE), 60, np.uint8)
    gray[:, :64] = 180
    four, eight = graph_cut_refine(probability, gray), graph_cut_refine(probability, gray, neighbours=8)
    assert np.array_equal(four, eight) and four[:, :64].all() and not four[:, 64:].any()


def test_the_segmenter_cuts_on_eight_neighbours_unless_told_four():
    assert SegmenterOptions().graph_cut_neighbours == 8
    with pytest.raises(ValueError, match="4 or 8"):
        from core.segment.segmentation import graph_cut_refine
        graph_cut_refine(np.zeros((4, 4), np.float32), np.zeros((4, 4), np.uint8), neighbours=6)
