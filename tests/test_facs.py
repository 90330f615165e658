"""The 46 FACS channels: names, order and the ARKit mapping the whole project uses."""
import re

from core import ARKIT_NAMES, ARKIT_TO_FACS, FACS_NAMES, FACS_TO_ARKIT, NUM_FACS

from .helpers import data_or_skip


def test_there_are_46_unique_channels_from_eyeblink_to_chin():
    assert NUM_FACS == 46 == len(set(FACS_NAMES))
    assert FACS_NAMES[:2] == ("EyeBlink_L", "EyeBlink_R")
    assert FACS_NAMES[-1] == "ChinUpperRaise"


def test_every_channel_maps_one_to_one_to_an_arkit_name():
    assert len(set(ARKIT_NAMES)) == 46
    assert FACS_TO_ARKIT["EyeBlink_L"] == "eyeBlinkLeft"
    assert FACS_TO_ARKIT["LipsTogether"] == "mouthClose"
    assert all(ARKIT_TO_FACS[FACS_TO_ARKIT[n]] == n for n in FACS_NAMES)


def test_order_and_names_match_the_table_in_the_data_readme():
    readme = data_or_skip("README.md").read_text()
    rows = re.findall(r"^\| (\d+) \| (\w+) \| (\w+) \|", readme, flags=re.M)
    assert [int(r[0]) for r in rows] == list(range(46))
    assert tuple(r[1] for r in rows) == FACS_NAMES
    assert tuple(r[2] for r in rows) == ARKIT_NAMES
