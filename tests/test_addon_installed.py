"""The Blender add-on as a user gets it: the linux-x64 extension zip built by build_addon.py,
installed headless into bpy 5.0.1 with Blender's install-from-disk operator, exercised there.

The zip is built and installed once per session; the checks are grouped into a few Blender
subprocesses (module-scoped fixtures) and each test asserts one behaviour on their results.
"""
from __future__ import annotations

import math
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest

from tests import blender_run
from tests.blender_run import BlenderUser

pytest.importorskip("bpy", reason="bpy 5.0.1 is a dev requirement: run bash scripts/setup_env.sh")

ROOT = Path(__file__).resolve().parents[1]
BUILD = ROOT / "build" / "addon-test"
CLIP_SECONDS = 1.5
CLIP_FPS = 30


@pytest.fixture(scope="session")
def addon_zip() -> Path:
    """The linux-x64 zip, rebuilt each session from the tree (wheels come from build/wheels)."""
    import build_addon

    if sys.platform != "linux":
        pytest.skip("the test zip is linux-x64")
    return build_addon.build_platform(build_addon.PLATFORMS["linux-x64"], BUILD)


@pytest.fixture(scope="session")
def demo_clip() -> Path:
    """A short demo clip (astronaut photo, head motion, a hand passing) made for the session."""
    from training.demo_clip import ClipOptions, write_demo_clip

    return write_demo_clip(BUILD / "demo_clip.mp4", ClipOptions(seconds=CLIP_SECONDS, fps=CLIP_FPS))


@pytest.fixture(scope="session")
def blender_user(addon_zip) -> BlenderUser:
    """A fresh Blender user folder with the zip installed. It lives in build/, not in pytest's
    temporary folders, which a concurrent pytest run may rotate away mid-session."""
    root = BUILD / "blender_user"
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    user = BlenderUser(root=root, site=blender_run.blender_site(root / "blender_site"))
    user.installed = blender_run.install(user, addon_zip)
    return user


# --- install ---------------------------------------------------------------------------------

def test_zip_installs_with_blenders_install_from_disk_operator(blender_user):
    assert blender_user.installed["install"] == ["FINISHED"]


def test_installed_module_lies_in_the_isolated_extensions_folder(blender_user):
    module_file = Path(blender_user.installed["module_file"])
    assert module_file == blender_user.addon_dir / "__init__.py"


# --- register, demo head, retargeting, bad input (one Blender run, no tracking) -------------------

BASICS = '''
import os
RESULT["registered"] = all(cls.is_registered for cls in pkg.CLASSES)
RESULT["class_count"] = len(pkg.CLASSES)
RESULT["has_settings"] = hasattr(bpy.types.Scene, "maskcap")
scene = bpy.context.scene
s = scene.maskcap

bpy.ops.maskcap.add_demo_head()
head = bpy.data.objects["maskcap_head"]
RESULT["demo_keys"] = [k.name for k in head.data.shape_keys.key_blocks]
RESULT["demo_target"] = s.target.name if s.target else None
RESULT["demo_head_object"] = s.head_object.name if s.head_object else None

# an ARKit-named rig with three keys left out, some names in other cases and separators
core = pkg.engine.core
arkit = [core.FACS_TO_ARKIT[name] for name in core.FACS_NAMES]
left_out = arkit[:3]
spelled = {"jawOpen": "JawOpen", "mouthSmileLeft": "mouth_smile_left", "cheekPuff": "CHEEK-PUFF"}
mesh = bpy.data.meshes.new("arkit_face")
mesh.from_pydata([(0, 0, 0), (1, 0, 0), (0, 1, 0)], [], [(0, 1, 2)])
rig = bpy.data.objects.new("arkit_face", mesh)
scene.collection.objects.link(rig)
rig.shape_key_add(name="Basis")
for name in arkit[3:]:
    rig.shape_key_add(name=spelled.get(name, name), from_mix=False)
s.target = rig
bpy.ops.maskcap.auto_map()
RESULT["arkit_map"] = {c.facs_name: c.shape_keys for c in s.channels}
RESULT["arkit_left_out"] = left_out
RESULT["arkit_spelled"] = spelled

# bad input: each gives an operator error, never an exception escaping the operator
empty_mesh = bpy.data.meshes.new("no_keys")
empty_mesh.from_pydata([(0, 0, 0), (1, 0, 0), (0, 1, 0)], [], [(0, 1, 2)])
no_keys = bpy.data.objects.new("no_keys", empty_mesh)
scene.collection.objects.link(no_keys)
s.target = head
s.source_path = "/nonexistent/missing_clip.mp4"
RESULT["missing_video"] = error_of(bpy.ops.maskcap.bake)
junk = os.path.join(os.getcwd(), "junk.mp4")
with open(junk, "w") as f:
    f.write("this is not a video")
s.source_path = junk
RESULT["unreadable_video"] = error_of(bpy.ops.maskcap.bake)
s.source_path = CLIP
s.target = no_keys
RESULT["no_shape_keys"] = error_of(bpy.ops.maskcap.bake)
s.target = head
s.source_type = "CAMERA"
s.camera_index = 16  # the highest index the setting allows; no such camera here
RESULT["camera_does_not_open"] = error_of(bpy.ops.maskcap.live_start)
RESULT["threads_after_camera_error"] = maskcap_threads()

bpy.ops.preferences.addon_disable(module=MODULE)
RESULT["unregistered"] = not any(cls.is_registered for cls in pkg.CLASSES)
RESULT["settings_after_disable"] = hasattr(bpy.types.Scene, "maskcap")
pkg = enable()
RESULT["registered_again"] = all(cls.is_registered for cls in pkg.CLASSES)
bpy.ops.preferences.addon_disable(module=MODULE)
RESULT["unregistered_again"] = not any(cls.is_registered for cls in pkg.CLASSES)
'''


@pytest.fixture(scope="module")
def basics(blender_user, demo_clip):
    return blender_run.run(blender_user, BASICS, CLIP=str(demo_clip))


def test_enabling_registers_every_class_and_the_scene_settings(basics):
    assert basics["class_count"] > 10
    assert basics["registered"] and basics["has_settings"]


def test_disabling_unregisters_every_class_and_the_scene_settings(basics):
    assert basics["unregistered"] and not basics["settings_after_disable"]


def test_the_addon_can_be_enabled_and_disabled_again(basics):
    assert basics["registered_again"] and basics["unregistered_again"]


def test_demo_head_has_the_46_facs_shape_keys_after_its_basis(basics):
    from core.facs import FACS_NAMES

    keys = basics["demo_keys"]
    assert len(keys) == 47
    assert keys[1:] == list(FACS_NAMES)


def test_demo_head_becomes_the_target_and_the_head_to_drive(basics):
    assert basics["demo_target"] == "maskcap_head"
    assert basics["demo_head_object"] == "maskcap_head_control"


def test_arkit_named_rig_maps_every_key_it_has_whatever_the_case_and_separators(basics):
    from core.facs import FACS_TO_ARKIT

    spelled = basics["arkit_spelled"]
    for facs, arkit in FACS_TO_ARKIT.items():
        if arkit not in basics["arkit_left_out"]:
            assert basics["arkit_map"][facs] == spelled.get(arkit, arkit), facs


def test_arkit_keys_the_rig_lacks_are_left_unmapped_and_reported(basics):
    from core.facs import ARKIT_TO_FACS

    missing = [ARKIT_TO_FACS[name] for name in basics["arkit_left_out"]]
    assert all(basics["arkit_map"][facs] == "" for facs in missing)
    warnings = [line for line in basics["_stdout"].splitlines() if line.startswith("Warning: maskcap")]
    assert warnings and all(facs in warnings[-1] for facs in missing), warnings


@pytest.mark.parametrize("case, words", [
    ("missing_video", ["missing_clip.mp4"]),
    ("unreadable_video", ["junk.mp4"]),
    ("no_shape_keys", ["shape key"]),
    ("camera_does_not_open", ["camera 16"]),
])
def test_bad_input_is_an_error_report_naming_the_problem_not_a_traceback(basics, case, words):
    message = basics[case]
    assert message is not None, f"{case}: the operator succeeded"
    assert "maskcap" in message and "Traceback" not in message, message
    assert all(word.lower() in message.lower() for word in words), message


def test_a_camera_that_does_not_open_leaves_no_thread(basics):
    assert basics["threads_after_camera_error"] == []


def test_no_python_traceback_is_printed_in_the_whole_run(basics):
    assert "Traceback" not in basics["_stderr"] and "Traceback" not in basics["_stdout"]
