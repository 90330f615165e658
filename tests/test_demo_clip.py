"""The demo clip made from scikit-image's astronaut photo: size, motion, occluder, file."""
import cv2
import numpy as np

from examples.demo_clip import ClipOptions, demo_frames, head_warp, occluder_centre, write_demo_clip

SHORT = ClipOptions(seconds=1.0, fps=30.0)


def test_frames_are_640x480_bgr_uint8_at_the_asked_length():
    frames = list(demo_frames(SHORT))
    assert len(frames) == 30
    assert all(f.shape == (480, 640, 3) and f.dtype == np.uint8 for f in frames)


def test_the_head_moves_over_time():
    centres = [head_warp(t, ClipOptions()) @ np.array([222.0, 118.0, 1.0]) for t in np.arange(0, 4, 0.25)]
    spread = np.ptp(np.array(centres), axis=0)
    assert spread[0] > 30 and spread[1] > 10


def test_the_occluder_crosses_the_face_only_in_the_middle_of_the_clip():
    options = ClipOptions()
    assert occluder_centre(0.0, options) is None
    assert occluder_centre(options.seconds - 0.1, options) is None
    xs = [occluder_centre(t, options)[0] for t in np.linspace(1.3, 2.7, 8)]
    assert xs[0] > 320 > xs[-1]  # right to left, across the frame's centre


def test_a_hand_coloured_patch_covers_the_face_when_the_occluder_passes():
    options = ClipOptions()
    frames = list(demo_frames(ClipOptions(seconds=4.0)))
    mid = next(i for i in range(len(frames)) if (c := occluder_centre(i / 30, options)) and abs(c[0] - 320) < 15)
    face = (slice(240, 300), slice(290, 350))
    assert np.abs(frames[mid][face].astype(int) - frames[0][face]).mean() > 20


def test_written_clip_decodes_to_the_same_number_of_frames(tmp_path):
    path = write_demo_clip(tmp_path / "clip.mp4", SHORT)
    capture = cv2.VideoCapture(str(path))
    count = 0
    while capture.read()[0]:
        count += 1
    assert count == 30
    assert capture.get(cv2.CAP_PROP_FPS) == 30
    assert not list(tmp_path.glob(".*"))  # no temporary file left behind
