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
