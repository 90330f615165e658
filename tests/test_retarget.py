"""Retargeting: automatic mapping of FACS/ARKit/ICT key names, missing channels, value mapping, presets."""
import numpy as np
import pytest

from core.face.facs import ARKIT_NAMES, FACS_NAMES, FACS_TO_ICT, NUM_FACS
from core.capture.retarget import (ChannelMap, ChannelParams, auto_map, missing_channels, normalize_name, parse_preset,
                           preset_json, split_keys)


def test_every_facs_name_maps_to_itself():
    mapping = auto_map(FACS_NAMES)
    assert all(mapping[f] == (f,) for f in FACS_NAMES)


def test_arkit_names_map_index_for_index():
    mapping = auto_map(ARKIT_NAMES)
    assert [mapping[f] for f in FACS_NAMES] == [(a,) for a in ARKIT_NAMES]


def test_ict_names_map_and_a_split_channel_drives_both_keys():
    ict = sorted({n for names in FACS_TO_ICT.values() for n in names})
    mapping = auto_map(ict)
    assert missing_channels(mapping) == []
    assert mapping["BrowsU_C"] == ("browInnerUp_L", "browInnerUp_R")


def test_matching_ignores_case_separators_and_left_right_spelling():
    keys = ["EYE_BLINK_LEFT", "eye-blink.r", "Face.jawOpen", "mouth smile left"]
    mapping = auto_map(keys)
    assert mapping["EyeBlink_L"] == ("EYE_BLINK_LEFT",)
    assert mapping["EyeBlink_R"] == ("eye-blink.r",)
    assert mapping["JawOpen"] == ("Face.jawOpen",)
    assert mapping["MouthSmile_L"] == ("mouth smile left",)


def test_no_two_channels_share_a_normalised_name():
    for names in (FACS_NAMES, ARKIT_NAMES):
        assert len({normalize_name(n) for n in names}) == NUM_FACS


def test_channels_the_rig_lacks_are_listed():
    keys = [a for a in ARKIT_NAMES if a not in ("jawOpen", "mouthPucker")]
    assert missing_channels(auto_map(keys)) == ["JawOpen", "LipsPucker"]


def test_a_mapped_key_that_the_rig_does_not_have_counts_as_missing():
    mapping = {f: (f,) for f in FACS_NAMES}
    assert missing_channels(mapping, key_names=FACS_NAMES[1:]) == [FACS_NAMES[0]]


def test_typed_key_lists_are_split_on_commas():
    assert split_keys(" a, b ,,c ") == ("a", "b", "c")


def test_value_mapping_applies_neutral_gain_offset_and_clamp():
    params = [ChannelParams() for _ in range(NUM_FACS)]
    params[0] = ChannelParams(gain=2.0, offset=0.1, neutral=0.2, clamp_min=0.0, clamp_max=0.8)
    m = ChannelMap.from_params(params)
    raw = np.full((2, NUM_FACS), 0.3)
    raw[1, 0] = 0.9
    out = m.apply(raw)
    assert out[0, 0] == pytest.approx(2.0 * (0.3 - 0.2) + 0.1)
    assert out[1, 0] == pytest.approx(0.8)
    assert np.allclose(out[:, 1:], 0.3)


def test_value_mapping_rejects_the_wrong_channel_count():
    with pytest.raises(ValueError, match="46"):
        ChannelMap().apply(np.zeros(45))


def test_preset_round_trips_mapping_and_values_but_not_the_neutral():
    params = [ChannelParams(keys=(a,), gain=1.5, neutral=0.3) for a in ARKIT_NAMES]
    channels, head = parse_preset(preset_json(params, head={"axes": "X,Z,-Y"}))
    assert channels["JawOpen"].keys == ("jawOpen",) and channels["JawOpen"].gain == 1.5
    assert channels["JawOpen"].neutral == 0.0
    assert head == {"axes": "X,Z,-Y"}


@pytest.mark.parametrize("text, message", [
    ("not json", "not valid JSON"),
    ('{"hello": 1}', "not a maskcap preset"),
    ('{"maskcap_preset": 1, "channels": {"Smile": {}}}', "unknown channels"),
    ('{"maskcap_preset": 1, "channels": {"JawOpen": {"gain": "big"}}}', "JawOpen"),
])
def test_bad_presets_say_what_is_wrong(text, message):
    with pytest.raises(ValueError, match=message):
        parse_preset(text)


def test_key_values_follow_the_mapping_and_a_shared_key_takes_the_largest():
    from core.capture.retarget import key_values
    keys = [()] * NUM_FACS
    keys[0], keys[1], keys[2] = ("blink",), ("blink",), ("squint", "squint2")
    values = np.zeros((3, NUM_FACS))
    values[:, 0], values[:, 1], values[:, 2] = [0.1, 0.5, 0.2], [0.3, 0.2, 0.0], [0.7, 0.0, 0.4]
    out = key_values(keys, values)
    assert set(out) == {"blink", "squint", "squint2"}
    assert np.allclose(out["blink"], [0.3, 0.5, 0.2]) and np.allclose(out["squint2"], [0.7, 0.0, 0.4])
