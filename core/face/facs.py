"""The 46 FACS channels that maskcap regresses, and their ARKit and ICT-FaceKit names.

The order is the table in ../shared/data/README.md; every array of blendshape weights in
the project (tracker output, face model expression deltas, Blender shape keys) uses it.
Left and right are the subject's own (ARKit's convention).
"""
from __future__ import annotations

# (FACS name, ARKit name, ICT-FaceKit shapes summed to make it)
_TABLE: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("EyeBlink_L", "eyeBlinkLeft", ("eyeBlink_L",)),
    ("EyeBlink_R", "eyeBlinkRight", ("eyeBlink_R",)),
    ("EyeSquint_L", "eyeSquintLeft", ("eyeSquint_L",)),
    ("EyeSquint_R", "eyeSquintRight", ("eyeSquint_R",)),
    ("EyeDown_L", "eyeLookDownLeft", ("eyeLookDown_L",)),
    ("EyeDown_R", "eyeLookDownRight", ("eyeLookDown_R",)),
    ("EyeIn_L", "eyeLookInLeft", ("eyeLookIn_L",)),
    ("EyeIn_R", "eyeLookInRight", ("eyeLookIn_R",)),
    ("EyeOpen_L", "eyeWideLeft", ("eyeWide_L",)),
    ("EyeOpen_R", "eyeWideRight", ("eyeWide_R",)),
    ("EyeOut_L", "eyeLookOutLeft", ("eyeLookOut_L",)),
    ("EyeOut_R", "eyeLookOutRight", ("eyeLookOut_R",)),
    ("EyeUp_L", "eyeLookUpLeft", ("eyeLookUp_L",)),
    ("EyeUp_R", "eyeLookUpRight", ("eyeLookUp_R",)),
    ("BrowsD_L", "browDownLeft", ("browDown_L",)),
    ("BrowsD_R", "browDownRight", ("browDown_R",)),
    ("BrowsU_C", "browInnerUp", ("browInnerUp_L", "browInnerUp_R")),
    ("BrowsU_L", "browOuterUpLeft", ("browOuterUp_L",)),
    ("BrowsU_R", "browOuterUpRight", ("browOuterUp_R",)),
    ("JawOpen", "jawOpen", ("jawOpen",)),
    ("JawLeft", "jawLeft", ("jawLeft",)),
    ("JawRight", "jawRight", ("jawRight",)),
    ("JawFwd", "jawForward", ("jawForward",)),
    ("LipsTogether", "mouthClose", ("mouthClose",)),
    ("MouthLeft", "mouthLeft", ("mouthLeft",)),
    ("MouthRight", "mouthRight", ("mouthRight",)),
    ("MouthSmile_L", "mouthSmileLeft", ("mouthSmile_L",)),
    ("MouthSmile_R", "mouthSmileRight", ("mouthSmile_R",)),
    ("MouthFrown_L", "mouthFrownLeft", ("mouthFrown_L",)),
    ("MouthFrown_R", "mouthFrownRight", ("mouthFrown_R",)),
    ("MouthDimple_L", "mouthDimpleLeft", ("mouthDimple_L",)),
    ("MouthDimple_R", "mouthDimpleRight", ("mouthDimple_R",)),
    ("LipsStretch_L", "mouthStretchLeft", ("mouthStretch_L",)),
    ("LipsStretch_R", "mouthStretchRight", ("mouthStretch_R",)),
    ("MouthPress_L", "mouthPressLeft", ("mouthPress_L",)),
    ("MouthPress_R", "mouthPressRight", ("mouthPress_R",)),
    ("LipsUpperUp_L", "mouthUpperUpLeft", ("mouthUpperUp_L",)),
    ("LipsUpperUp_R", "mouthUpperUpRight", ("mouthUpperUp_R",)),
    ("LipsLowerDown_L", "mouthLowerDownLeft", ("mouthLowerDown_L",)),
    ("LipsLowerDown_R", "mouthLowerDownRight", ("mouthLowerDown_R",)),
    ("LipsPucker", "mouthPucker", ("mouthPucker",)),
    ("LipsFunnel", "mouthFunnel", ("mouthFunnel",)),
    ("LipsUpperClose", "mouthRollUpper", ("mouthRollUpper",)),
    ("LipsLowerClose", "mouthRollLower", ("mouthRollLower",)),
    ("ChinLowerRaise", "mouthShrugLower", ("mouthShrugLower",)),
    ("ChinUpperRaise", "mouthShrugUpper", ("mouthShrugUpper",)),
)

# Shapes kept beside the 46 for ARKit output only (not regressed as channels).
_EXTRA_TABLE: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("CheekPuff", "cheekPuff", ("cheekPuff_L", "cheekPuff_R")),
    ("CheekSquint_L", "cheekSquintLeft", ("cheekSquint_L",)),
    ("CheekSquint_R", "cheekSquintRight", ("cheekSquint_R",)),
    ("NoseSneer_L", "noseSneerLeft", ("noseSneer_L",)),
    ("NoseSneer_R", "noseSneerRight", ("noseSneer_R",)),
)

FACS_NAMES: tuple[str, ...] = tuple(row[0] for row in _TABLE)
"""The 46 channel names in the project's order (EyeBlink_L, EyeBlink_R, ..., ChinUpperRaise)."""

ARKIT_NAMES: tuple[str, ...] = tuple(row[1] for row in _TABLE)
"""ARKit names of the 46 channels, index for index with FACS_NAMES."""

FACS_TO_ARKIT: dict[str, str] = {row[0]: row[1] for row in _TABLE}
ARKIT_TO_FACS: dict[str, str] = {row[1]: row[0] for row in _TABLE}
FACS_TO_ICT: dict[str, tuple[str, ...]] = {row[0]: row[2] for row in _TABLE}

EXTRA_NAMES: tuple[str, ...] = tuple(row[0] for row in _EXTRA_TABLE)
"""Names of the ARKit-only shapes that the face model keeps after the 46."""
EXTRA_ARKIT_NAMES: tuple[str, ...] = tuple(row[1] for row in _EXTRA_TABLE)
EXTRA_TO_ICT: dict[str, tuple[str, ...]] = {row[0]: row[2] for row in _EXTRA_TABLE}

NUM_FACS = len(FACS_NAMES)
assert NUM_FACS == 46 and len(set(FACS_NAMES)) == 46 and len(set(ARKIT_NAMES)) == 46


def _index_pairs(pairs: tuple[tuple[str, str], ...]) -> tuple[tuple[int, int], ...]:
    return tuple((FACS_NAMES.index(a), FACS_NAMES.index(b)) for a, b in pairs)


ANTAGONIST_NAMES: tuple[tuple[str, str], ...] = (
    ("MouthLeft", "MouthRight"), ("JawLeft", "JawRight"),
    ("BrowsU_L", "BrowsD_L"), ("BrowsU_R", "BrowsD_R"), ("BrowsU_C", "BrowsD_L"), ("BrowsU_C", "BrowsD_R"),
    ("EyeBlink_L", "EyeOpen_L"), ("EyeBlink_R", "EyeOpen_R"),
    ("MouthSmile_L", "MouthFrown_L"), ("MouthSmile_R", "MouthFrown_R"),
    ("LipsPucker", "LipsStretch_L"), ("LipsPucker", "LipsStretch_R"),
    ("EyeIn_L", "EyeOut_L"), ("EyeIn_R", "EyeOut_R"), ("EyeUp_L", "EyeDown_L"), ("EyeUp_R", "EyeDown_R"),
)
"""Channel pairs that pull the same feature opposite ways: a fit lets at most one of each be non-zero."""
ANTAGONIST_PAIRS: tuple[tuple[int, int], ...] = _index_pairs(ANTAGONIST_NAMES)

GAZE_NAMES: tuple[str, ...] = tuple(f"Eye{d}_{s}" for d in ("Down", "In", "Out", "Up") for s in ("L", "R"))
"""The eight gaze channels: they turn the eyeballs, which the 68 landmarks do not see."""
GAZE_CHANNELS: tuple[int, ...] = tuple(FACS_NAMES.index(n) for n in GAZE_NAMES)

UNOBSERVED_NAMES: tuple[str, ...] = GAZE_NAMES + ("JawFwd",)
"""Channels that 68 landmarks seen from the front cannot tell: the gaze, and the jaw's move in depth."""
UNOBSERVED_CHANNELS: tuple[int, ...] = tuple(FACS_NAMES.index(n) for n in UNOBSERVED_NAMES)
