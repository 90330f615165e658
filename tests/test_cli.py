"""The command line: a take written as JSON and CSV, clear failures for bad sources."""
import csv
import json

import cv2
import numpy as np
import pytest

from core.cli import main
from core.face.facs import ARKIT_NAMES


def _video(path, frames=6):
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 25.0, (64, 48))
    for i in range(frames):
        writer.write(np.full((48, 64, 3), 30 + i, np.uint8))
    writer.release()


def test_a_clip_without_faces_gives_a_take_of_lost_frames(tmp_path):
    from core.segment.segmentation import default_segmenter_path

    if not default_segmenter_path().exists():
        pytest.skip("needs the trained segmenter models/segmenter.onnx (python -m training.segmenter.train)")
    clip = tmp_path / "empty_room.avi"
    _video(clip)
    code = main(["track", str(clip), "--json", str(tmp_path / "take.json"), "--csv", str(tmp_path / "take.csv"),
                 "--preview", str(tmp_path / "preview.mp4"), "--contact-sheet", str(tmp_path / "sheet.png"), "--quiet"])
    assert code == 0
    take = json.loads((tmp_path / "take.json").read_text())
    assert len(take["frames"]) == 6 and not any(f["ok"] for f in take["frames"])
    assert take["arkit_names"] == list(ARKIT_NAMES)
    rows = list(csv.reader((tmp_path / "take.csv").open()))
    assert rows[0][4:50] == list(ARKIT_NAMES) and len(rows) == 7
    assert (tmp_path / "preview.mp4").stat().st_size > 0
    assert cv2.imread(str(tmp_path / "sheet.png")).shape[1] == 4 * 320
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty_room.avi", "preview.mp4", "sheet.png", "take.csv",
                                                          "take.json"]


def test_a_missing_file_or_camera_exits_with_a_clear_message(tmp_path, capsys):
    assert main(["track", str(tmp_path / "nope.mp4"), "--json", str(tmp_path / "t.json")]) == 2
    assert "nope.mp4" in capsys.readouterr().err
    assert main(["track", "97", "--json", str(tmp_path / "t.json"), "--frames", "5"]) == 2
    assert "camera 97" in capsys.readouterr().err
    assert not (tmp_path / "t.json").exists()


def test_an_output_is_required():
    with pytest.raises(SystemExit):
        main(["track", "clip.mp4"])


def test_tracking_a_file_twice_writes_the_same_take(tmp_path):
    """A file goes the bake's way (identity and focal solved inline), so a take is repeatable."""
    from examples.demo_clip import ClipOptions, write_demo_clip

    clip = write_demo_clip(tmp_path / "clip.mp4", ClipOptions(seconds=1.0, fps=30))
    takes = []
    for run in range(2):
        out = tmp_path / f"take{run}.json"
        assert main(["track", str(clip), "--json", str(out), "--quiet"]) == 0
        takes.append(out.read_bytes())
    assert sum(f["ok"] for f in json.loads(takes[0])["frames"]) >= 20  # the astronaut's face is tracked
    assert takes[0] == takes[1]
