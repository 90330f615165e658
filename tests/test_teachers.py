"""Teacher label helpers (pure Python; the teachers themselves live in their own venvs and are not needed)."""
import json

import numpy as np

from training.teachers.label_faces import nme, write_json_atomic


def test_nme_is_mean_point_error_over_outer_eye_corner_distance():
    truth = np.zeros((68, 2))
    truth[45] = [100.0, 0.0]
    assert nme(truth + [3.0, 4.0], truth) == 0.05


def test_labels_file_is_written_whole_and_leaves_no_temp_file(tmp_path):
    out = tmp_path / "labels.json"
    write_json_atomic(out, {"images": {"a.jpg": {"points68": [[0.0, 0.0]] * 68}}, "no_face": ["b.jpg"]})
    assert json.loads(out.read_text())["no_face"] == ["b.jpg"]
    assert [p.name for p in tmp_path.iterdir()] == ["labels.json"]


def test_video_targets_take_dlibs_points_with_mediapipes_eyelids_and_drop_disagreeing_teachers():
    from training.teachers.fit_video_labels import EYELIDS, combined_points

    rng = np.random.default_rng(0)
    mapping = np.arange(68) * 7                      # a made-up mesh index for each iBUG point
    dlib = rng.uniform(60, 200, (68, 2))
    dlib[36], dlib[45] = (80.0, 100.0), (180.0, 100.0)
    mesh = np.zeros((478, 2))
    mesh[mapping] = dlib + 1.0                       # the teachers agree to a pixel
    mesh[mapping[list(EYELIDS)]] += [0.0, 3.0]       # but MediaPipe's lids sit lower (a closing eye)
    points = combined_points(dlib, mesh, mapping, max_disagreement=0.08)
    others = [k for k in range(68) if k not in EYELIDS]
    assert np.allclose(points[others], dlib[others])
    assert np.allclose(points[list(EYELIDS)], dlib[list(EYELIDS)] + [1.0, 4.0])
    mesh[mapping[48:68]] += 40.0                     # the mouths disagree by far more than 8 % of the eye distance
    assert combined_points(dlib, mesh, mapping, max_disagreement=0.08) is None


def test_video_targets_are_each_channels_rise_above_the_persons_rest():
    from core.face.facs import FACS_NAMES
    from training.teachers.fit_video_labels import above_rest

    jaw, eye = FACS_NAMES.index("JawOpen"), FACS_NAMES.index("EyeOpen_L")
    x = np.zeros((40, 46))
    x[:, jaw] = np.r_[np.full(20, 0.2), np.linspace(0.2, 1.0, 20)]   # talking: the jaw rests at 0.2
    x[:, eye] = np.r_[np.full(30, 0.6), np.full(10, 0.9)]             # wide eyes most of the time
    clips = np.array(["a"] * 40)
    y = above_rest(x, clips)
    assert np.allclose(y[:20, jaw], 0.0) and np.isclose(y[-1, jaw], 1.0)
    assert np.allclose(y[:30, eye], 0.0) and np.allclose(y[30:, eye], 0.75)  # (0.9 - 0.6) / (1 - 0.6)
    other = above_rest(np.vstack([x, x + 0.05]), np.array(["a"] * 40 + ["b"] * 40))
    assert np.allclose(other[:40], y)  # each clip has its own rest
