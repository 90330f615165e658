"""The same extension zip on the oldest Blender it supports: bpy 4.2.0 (Blender 4.2 LTS) as a
module, in its own venv .venv-bpy42 with only what Blender 4.2 ships. The paths that differ from
5.0 are exercised here: legacy actions (`action.fcurves`), the compositor's `scene.node_tree` with a
Composite node and the old Math/Mix nodes, and extensions installed from disk by 4.2's operator.
"""
from __future__ import annotations

import numpy as np
import pytest

from tests import blender_run
from tests.addon_checks import RENDER_FRAME, composite_differences, curve_values
from tests.blender_run import BlenderUser
from tests.conftest import CLIP_FPS, CLIP_SECONDS

SITE = blender_run.bpy42_site()
if SITE is None:
    pytest.skip("bpy 4.2.0 lives in .venv-bpy42: run bash scripts/setup_env.sh", allow_module_level=True)

SCRIPT = '''
import os, time
scene = bpy.context.scene
RESULT["version"] = list(bpy.app.version)
RESULT["registered"] = all(cls.is_registered for cls in pkg.CLASSES)
bpy.data.objects.remove(bpy.data.objects["Cube"])
s = scene.maskcap
bpy.ops.maskcap.add_demo_head()
RESULT["demo_keys"] = [k.name for k in bpy.data.objects["maskcap_head"].data.shape_keys.key_blocks]

s.source_path = "/nonexistent/missing_clip.mp4"
RESULT["missing_video"] = error_of(bpy.ops.maskcap.bake)

s.source_path = CLIP
s.write_masks = True
s.mask_dir = MASKS
bpy.ops.maskcap.bake()
RESULT["keys"] = fcurves(bpy.data.objects["maskcap_head"].data.shape_keys)
RESULT["head"] = fcurves(bpy.data.objects["maskcap_head_control"])
RESULT["take_frames"] = s.take_frames
RESULT["mask"] = os.path.join(bpy.path.abspath(s.take_mask_dir),
                              importlib.import_module(pkg.__name__ + ".core.capture.take").MASK_PATTERN.format(RENDER_FRAME))
bpy.ops.maskcap.camera_match()
bpy.ops.maskcap.build_compositor()
RESULT["has_compositing_node_group"] = hasattr(scene, "compositing_node_group")
RESULT["tree_valid"] = scene.use_nodes and pkg.compositor.tree_is_valid(scene.node_tree)
render_still(RENDER_FRAME, RENDER)

applied, start = 0, time.perf_counter()
bpy.ops.maskcap.live_start()
RESULT["threads_while_live"] = maskcap_threads()
while applied < 3 and time.perf_counter() - start < 60 and pkg.live.current_session() is not None:
    if pkg.live.apply_newest(scene):  # timers do not run in background mode: poll their body
        applied += 1
    else:
        time.sleep(0.01)
RESULT["live_applied"] = applied
bpy.ops.maskcap.live_stop()
RESULT["threads_after_stop"] = maskcap_threads()
bpy.ops.preferences.addon_disable(module=MODULE)
RESULT["unregistered"] = not any(cls.is_registered for cls in pkg.CLASSES)
'''


@pytest.fixture(scope="module")
def blender42(work_dir, addon_zip, demo_clip) -> dict:
    """Install the zip into Blender 4.2 with its own operator, then run the script there."""
    root = work_dir / "blender42_user"
    root.mkdir()
    user = BlenderUser(root=root, site=SITE, python=str(blender_run.BPY42_VENV / "bin" / "python"),
                       hard_exit=True)
    installed = blender_run.install(user, addon_zip)
    out = work_dir / "bake42"
    result = blender_run.run(user, SCRIPT, CLIP=str(demo_clip), MASKS=str(out / "masks"),
                             RENDER=str(out / "render.png"), RENDER_FRAME=RENDER_FRAME)
    result["installed"], result["render"] = installed, out / "render.png"
    return result


def test_it_is_blender_4_2_that_runs(blender42):
    assert blender42["version"][:2] == [4, 2]


def test_the_zip_installs_and_registers_with_blender_4_2s_own_operator(blender42):
    assert blender42["installed"]["install"] == ["FINISHED"]
    assert blender42["registered"] and blender42["unregistered"]


def test_demo_head_has_the_46_facs_shape_keys(blender42):
    from core.face.facs import FACS_NAMES

    assert blender42["demo_keys"][1:] == list(FACS_NAMES)


def test_a_missing_video_is_an_error_report_naming_it(blender42):
    message = blender42["missing_video"]
    assert message is not None and "missing_clip.mp4" in message and "Traceback" not in message


def test_bake_keys_all_46_shape_keys_on_every_frame_into_a_legacy_action(blender42):
    frames = list(range(1, int(CLIP_SECONDS * CLIP_FPS) + 1))
    assert blender42["take_frames"] == len(frames) and len(blender42["keys"]) == 46
    for name, curve in blender42["keys"].items():
        assert [frame for frame, _ in curve] == frames, name
        assert all(0.0 <= value <= 1.0 for _, value in curve), name


def test_baked_head_sway_follows_the_clips_sideways_motion(blender42):
    t = np.arange(blender42["take_frames"]) / CLIP_FPS
    assert np.corrcoef(curve_values(blender42["head"], "location[0]"), np.sin(2 * np.pi * t / 2.9))[0, 1] > 0.8


def test_compositor_is_built_in_scene_node_tree_and_valid(blender42):
    assert not blender42["has_compositing_node_group"] and blender42["tree_valid"]


def test_composite_keeps_the_footage_off_the_face_and_the_hand_in_front(blender42, demo_clip):
    found = composite_differences(blender42["render"], blender42["mask"], demo_clip)
    assert found["face_pixels"] > 2000 and found["hand_pixels"] > 2000
    assert found["outside"] < 6 and found["hand"] < 6 and found["face"] > 20


def test_live_capture_applies_results_and_stopping_leaves_no_thread(blender42):
    assert any(name.startswith("maskcap-") for name in blender42["threads_while_live"])
    assert blender42["live_applied"] == 3 and blender42["threads_after_stop"] == []


def test_no_python_traceback_is_printed(blender42):
    assert "Traceback" not in blender42["_stderr"] and "Traceback" not in blender42["_stdout"]
