"""The add-on on the oldest and the newest Blender it supports, as a user installs it: bpy 4.2.0
(Blender 4.2 LTS, CPython 3.11, numpy 1.26.4, in .venv-bpy42) gets the zip for Blender 4.2 to 5.0,
the same one tests/test_addon_installed.py runs in bpy 5.0.1; bpy 5.2.3 (Blender 5.2 LTS, CPython
3.13, numpy 2.3.4 as Blender 5.1 and 5.2 ship it, in .venv-bpy52) gets the zip for Blender 5.1 and
newer. Each venv holds only what that Blender ships. In each: the other range's zip is refused by
Blender's own install-from-disk operator and this range's installs and enables; the demo head; the
compute device preference reaching the segmenter (CUDA refused with the reason, Auto on the CPU
with the threads asked for); a 2 s bake; the compositor tree and a Cycles frame of it; live capture.

The paths that differ between versions are exercised: 4.2's legacy actions (`action.fcurves`) and
`scene.node_tree` compositor with the old Math/Mix nodes; 5.2's slotted actions and
`scene.compositing_node_group`.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from tests import blender_run
from tests.addon_checks import RENDER_FRAME, composite_differences, curve_values
from tests.blender_run import BlenderUser
from tests.conftest import CLIP_FPS, CLIP_SECONDS


@dataclass(frozen=True)
class Version:
    name: str
    venv: Path
    zip_range: str        # the build_addon.BLENDER_RANGES zip it installs
    refused_range: str    # the other one, which Blender must refuse
    python: tuple[int, int]
    numpy: str


VERSIONS = {
    "4.2": Version("4.2", blender_run.BPY42_VENV, "4.2", "5.1", (3, 11), "1.26.4"),
    "5.2": Version("5.2", blender_run.BPY52_VENV, "5.1", "4.2", (3, 13), "2.3.4"),
}

SCRIPT = '''
import os, time
import numpy
scene = bpy.context.scene
RESULT["version"] = list(bpy.app.version)
RESULT["python"] = list(sys.version_info[:2])
RESULT["numpy"] = numpy.__version__
RESULT["registered"] = all(cls.is_registered for cls in pkg.CLASSES)
bpy.data.objects.remove(bpy.data.objects["Cube"])
s = scene.maskcap
bpy.ops.maskcap.add_demo_head()
RESULT["demo_keys"] = [k.name for k in bpy.data.objects["maskcap_head"].data.shape_keys.key_blocks]

s.source_path = "/nonexistent/missing_clip.mp4"
RESULT["missing_video"] = error_of(bpy.ops.maskcap.bake)

# the compute device preference: CUDA cannot start on this machine's CPU build of ONNX Runtime
prefs = bpy.context.preferences.addons[MODULE].preferences
RESULT["default_device"] = [prefs.compute_device, prefs.threads]
s.source_path = CLIP
prefs.compute_device = 'CUDA'
RESULT["cuda_error"] = error_of(bpy.ops.maskcap.bake)
RESULT["threads_after_cuda_error"] = maskcap_threads()
prefs.compute_device = 'AUTO'
prefs.threads = 2

s.write_masks = True
s.mask_dir = MASKS
bpy.ops.maskcap.bake()
RESULT["segmenter_ran_on"] = pkg.preferences.last_run()
RESULT["keys"] = fcurves(bpy.data.objects["maskcap_head"].data.shape_keys)
RESULT["head"] = fcurves(bpy.data.objects["maskcap_head_control"])
RESULT["take_frames"] = s.take_frames
take_module = importlib.import_module(pkg.__name__ + ".core.capture.take")
RESULT["mask"] = os.path.join(bpy.path.abspath(s.take_mask_dir), take_module.MASK_PATTERN.format(RENDER_FRAME))
bpy.ops.maskcap.camera_match()
bpy.ops.maskcap.build_compositor()
RESULT["has_compositing_node_group"] = hasattr(scene, "compositing_node_group")
if RESULT["has_compositing_node_group"]:
    RESULT["tree_valid"] = pkg.compositor.tree_is_valid(scene.compositing_node_group)
else:
    RESULT["tree_valid"] = scene.use_nodes and pkg.compositor.tree_is_valid(scene.node_tree)
render_still(RENDER_FRAME, RENDER)

applied, start = 0, time.perf_counter()
prefs.compute_device = 'CPU'
prefs.threads = 1
bpy.ops.maskcap.live_start()
RESULT["live_segmenter"] = pkg.preferences.last_run()
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


@pytest.fixture(scope="module", params=sorted(VERSIONS), ids=lambda name: f"blender{name}")
def blender(request, work_dir, addon_zips, demo_clip) -> dict:
    """Install this version's zip with its own operator (after the other range's, refused), then
    run the script there."""
    version = VERSIONS[request.param]
    site = blender_run.venv_site(version.venv)
    if site is None:
        pytest.skip(f"bpy for Blender {version.name} lives in {version.venv.name}: run "
                    "bash scripts/setup_env.sh --blender")
    root = work_dir / f"blender{version.name}_user"
    root.mkdir()
    # bpy 4.2 as a module crashes at interpreter exit with any Panel class registered
    user = BlenderUser(root=root, site=site, python=str(version.venv / "bin" / "python"),
                       hard_exit=version.name == "4.2")
    installed = blender_run.install(user, addon_zips[version.zip_range], refused=addon_zips[version.refused_range])
    out = work_dir / f"bake{version.name}"
    result = blender_run.run(user, SCRIPT, CLIP=str(demo_clip), MASKS=str(out / "masks"),
                             RENDER=str(out / "render.png"), RENDER_FRAME=RENDER_FRAME)
    result["installed"], result["render"], result["expected"] = installed, out / "render.png", version
    return result


def test_it_is_that_blender_with_its_python_and_numpy(blender):
    version = blender["expected"]
    assert blender["version"][:2] == [int(v) for v in version.name.split(".")]
    assert tuple(blender["python"]) == version.python and blender["numpy"] == version.numpy


def test_the_zip_for_other_blender_versions_is_refused_with_the_reason(blender):
    installed = blender["installed"]
    said = (installed["refused"] or "") + installed["_stdout"]  # 4.2 prints the reason and finishes
    # 4.2: "... doesn't meet the minimum supported version (5.1.0)"; 5.2: "... must be less than
    # the maximum version (5.1.0)"
    assert "version (5.1.0)" in said and "Traceback" not in said, said
    assert not installed["refused_installed"]


def test_the_zip_for_this_version_installs_and_registers_with_blenders_own_operator(blender):
    assert blender["installed"]["install"] == ["FINISHED"]
    assert blender["registered"] and blender["unregistered"]


def test_demo_head_has_the_46_facs_shape_keys(blender):
    from core.face.facs import FACS_NAMES

    assert blender["demo_keys"][1:] == list(FACS_NAMES)


def test_a_missing_video_is_an_error_report_naming_it(blender):
    message = blender["missing_video"]
    assert message is not None and "missing_clip.mp4" in message and "Traceback" not in message


def test_compute_device_defaults_to_auto_with_one_thread(blender):
    assert blender["default_device"] == ["AUTO", 1]


def test_cuda_chosen_without_cuda_is_an_error_naming_the_cause_and_leaves_no_thread(blender):
    message = blender["cuda_error"]
    assert message is not None and "cuda" in message.lower() and "CPU build" in message
    assert blender["threads_after_cuda_error"] == []


def test_auto_without_cuda_bakes_on_the_cpu_with_the_threads_chosen_and_says_why(blender):
    ran = blender["segmenter_ran_on"]
    assert ran.startswith("CPUExecutionProvider, 2 threads; CUDA is not used"), ran
    assert f"segmenter on {ran}" in blender["_stdout"]  # the bake's report


def test_live_capture_runs_its_segmenter_where_the_preferences_say(blender):
    assert blender["live_segmenter"] == "CPUExecutionProvider, 1 thread"


def test_bake_keys_all_46_shape_keys_on_every_frame(blender):
    frames = list(range(1, int(CLIP_SECONDS * CLIP_FPS) + 1))
    assert blender["take_frames"] == len(frames) and len(blender["keys"]) == 46
    for name, curve in blender["keys"].items():
        assert [frame for frame, _ in curve] == frames, name
        assert all(0.0 <= value <= 1.0 for _, value in curve), name


def test_baked_head_sway_follows_the_clips_sideways_motion(blender):
    t = np.arange(blender["take_frames"]) / CLIP_FPS
    assert np.corrcoef(curve_values(blender["head"], "location[0]"), np.sin(2 * np.pi * t / 2.9))[0, 1] > 0.8


def test_compositor_tree_is_built_where_this_version_keeps_it_and_valid(blender):
    assert blender["has_compositing_node_group"] == (blender["version"][0] >= 5)
    assert blender["tree_valid"]


def test_composite_keeps_the_footage_off_the_face_and_the_hand_in_front(blender, demo_clip):
    found = composite_differences(blender["render"], blender["mask"], demo_clip)
    assert found["face_pixels"] > 2000 and found["hand_pixels"] > 2000
    assert found["outside"] < 6 and found["hand"] < 6 and found["face"] > 20


def test_live_capture_applies_results_and_stopping_leaves_no_thread(blender):
    assert any(name.startswith("maskcap-") for name in blender["threads_while_live"])
    assert blender["live_applied"] == 3 and blender["threads_after_stop"] == []


def test_no_python_traceback_is_printed(blender):
    assert "Traceback" not in blender["_stderr"] and "Traceback" not in blender["_stdout"]
