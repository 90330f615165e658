"""The Blender add-on as a user gets it: the linux-x64 extension zip built by build_addon.py,
installed headless into bpy 5.0.1 with Blender's install-from-disk operator, exercised there.

The zip is built and installed once per session; the checks are grouped into a few Blender
subprocesses (module-scoped fixtures) and each test asserts one behaviour on their results.
"""
from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from tests import blender_run
from tests.blender_run import BlenderUser
from tests.addon_checks import RENDER_FRAME, composite_differences, curve_values
from tests.conftest import CLIP_FPS, CLIP_SECONDS
from evaluation.paths import shared_data_dir

if importlib.util.find_spec("bpy") is None:  # not imported here: Blender runs only in subprocesses
    pytest.skip("bpy 5.0.1 is a dev requirement: run bash scripts/setup_env.sh", allow_module_level=True)

ROOT = Path(__file__).resolve().parents[1]
LIVE_CLIP_SECONDS = 12.0


@pytest.fixture(scope="session")
def blender_user(work_dir, addon_zip) -> BlenderUser:
    """A fresh Blender user folder with the zip installed."""
    root = work_dir / "blender_user"
    root.mkdir()
    user = BlenderUser(root=root, site=blender_run.blender_site(root / "blender_site"))
    user.installed = blender_run.install(user, addon_zip)
    return user


# --- the zip ----------------------------------------------------------------------------------

def _manifest(zip_path: Path) -> dict:
    import tomllib
    import zipfile

    with zipfile.ZipFile(zip_path) as archive:
        return tomllib.loads(archive.read("blender_manifest.toml").decode())


def test_manifest_declares_an_addon_for_blender_4_2_to_5_0_with_camera_and_file_permissions(addon_zip):
    manifest = _manifest(addon_zip)
    assert manifest["schema_version"] == "1.0.0" and manifest["id"] == "maskcap"
    assert manifest["type"] == "add-on" and manifest["blender_version_min"] == "4.2.0"
    assert manifest["blender_version_max"] == "5.1.0"  # the first version it does not support
    assert manifest["license"] == ["SPDX:GPL-3.0-or-later"]
    assert set(manifest["permissions"]) == {"camera", "files"}
    assert manifest["platforms"] == ["linux-x64"]


def test_zip_bundles_the_exact_runtime_pins_as_wheels_but_not_numpy(addon_zip):
    import zipfile

    import build_addon

    wheels = [Path(w).name for w in _manifest(addon_zip)["wheels"]]
    with zipfile.ZipFile(addon_zip) as archive:
        assert all(f"wheels/{w}" in archive.namelist() for w in wheels)
    bundled = {build_addon.normalise(w.split("-")[0]): w.split("-")[1] for w in wheels}
    assert bundled == build_addon.runtime_pins()
    assert all(w.split("-")[2] in ("cp311", "cp37") for w in wheels), wheels  # CPython 3.11, or abi3
    assert "numpy" not in bundled and bundled["onnxruntime"] == build_addon.read_pins(ROOT / "requirements.txt")["onnxruntime"]


def test_the_zip_for_blender_5_1_and_newer_carries_the_same_pins_for_python_3_13(addon_zips):
    import build_addon

    manifest = _manifest(addon_zips["5.1"])
    assert manifest["blender_version_min"] == "5.1.0" and "blender_version_max" not in manifest
    wheels = [Path(w).name for w in manifest["wheels"]]
    assert {build_addon.normalise(w.split("-")[0]): w.split("-")[1] for w in wheels} == build_addon.runtime_pins()
    assert all(w.split("-")[2] in ("cp313", "cp37") for w in wheels), wheels


def test_zip_holds_the_addon_at_its_root_with_core_and_models_vendored_inside(addon_zip):
    import zipfile

    with zipfile.ZipFile(addon_zip) as archive:
        names = set(archive.namelist())
    assert {"__init__.py", "core/__init__.py", "core/track/tracker.py", "models/segmenter.onnx",
            "models/regressor.npz", "models/face_model.npz", "models/ICT-FaceKit-LICENSE.txt", "LICENSE",
            "models/face_detector.onnx", "models/CenterFace-LICENSE.txt"} <= names
    assert not any("__pycache__" in n or n.endswith(".pyc") for n in names)
    assert "models/segmenter_streams.onnx" not in names  # training's source and ablations; never loaded there


def test_shipped_code_never_edits_sys_path_nor_runs_pip_or_subprocesses(addon_zip):
    import re
    import zipfile

    forbidden = re.compile(r"\bsys\.path\b|\bpip\b|ensurepip|\bsubprocess\b")
    with zipfile.ZipFile(addon_zip) as archive:
        sources = {n: archive.read(n).decode() for n in archive.namelist() if n.endswith(".py")}
    assert len(sources) > 20
    offending = {n: forbidden.findall(text) for n, text in sources.items() if forbidden.search(text)}
    assert offending == {}


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
core = pkg.core
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

# a preset round trip: saved outside the add-on's folder, restores an edited gain and mapping
addon_root = os.path.dirname(pkg.__file__)
jaw = next(c for c in s.channels if c.facs_name == "JawOpen")
jaw.gain = 1.7
bpy.ops.maskcap.preset_save(name="arkit rig")
jaw.gain = 1.0
jaw.shape_keys = ""
bpy.ops.maskcap.preset_load(name="arkit rig")
jaw = next(c for c in s.channels if c.facs_name == "JawOpen")
RESULT["preset_gain"] = jaw.gain
RESULT["preset_keys"] = jaw.shape_keys
RESULT["preset_files"] = [os.path.join(d, f) for d, _, names in os.walk(os.environ["BLENDER_USER_EXTENSIONS"])
                          for f in names if f.endswith(".json") and "arkit rig" in f]
RESULT["addon_root"] = addon_root

# every panel and the channel list drawn with a layout that checks what they ask of Blender: each
# property exists on its data, each operator and its set properties exist, each icon is Blender's
ICONS = set(bpy.types.UILayout.bl_rna.functions["label"].parameters["icon"].enum_items.keys())
draw_problems = []

class Operator:
    def __init__(self, idname):
        module, name = idname.split(".")
        self.props = set(getattr(getattr(bpy.ops, module), name).get_rna_type().properties.keys())
    def __setattr__(self, name, value):
        if name != "props" and name not in self.props:
            draw_problems.append(f"operator has no property {name}")
        object.__setattr__(self, name, value)

class Layout:
    drawn = []
    def _icon(self, kw):
        if kw.get("icon", "NONE") not in ICONS:
            draw_problems.append(f"no icon {kw['icon']}")
    def _has(self, data, name):
        if name not in data.bl_rna.properties.keys():
            draw_problems.append(f"{data.bl_rna.identifier} has no property {name}")
    def row(self, **kw): return Layout()
    column = box = split = row
    def label(self, **kw):
        self._icon(kw)
        Layout.drawn.append(("label", kw.get("text", "")))
    def prop(self, data, name, **kw):
        self._has(data, name)
        self._icon(kw)
        Layout.drawn.append(("prop", name))
    def prop_search(self, data, name, search_data, search_name, **kw):
        self._has(data, name)
        self._has(search_data, search_name)
        Layout.drawn.append(("prop", name))
    def operator(self, idname, **kw):
        self._icon(kw)
        Layout.drawn.append(("operator", idname))
        try:
            return Operator(idname)
        except (AttributeError, KeyError):
            draw_problems.append(f"no operator {idname}")
            return Layout()
    def template_list(self, list_type, list_id, data, name, active_data, active_name, **kw):
        self._has(data, name)
        self._has(active_data, active_name)
        ui_list = getattr(bpy.types, list_type, None)
        if ui_list is None:
            draw_problems.append(f"no list {list_type}")
            return
        for index, item in enumerate(getattr(data, name)):
            ui_list.draw_item(ui_list, bpy.context, Layout(), data, item, 0, active_data, active_name, index)

def draw_all_panels():
    for cls in pkg.CLASSES:
        if issubclass(cls, bpy.types.Panel):
            try:
                cls.draw(type("Drawn", (), {"layout": Layout()})(), bpy.context)
            except Exception as error:
                draw_problems.append(f"{cls.__name__}: {type(error).__name__}: {error}")

def draw_preferences():
    prefs = bpy.context.preferences.addons[MODULE].preferences
    stand_in = type("Drawn", (), {"layout": Layout(), "bl_rna": prefs.bl_rna,
                                  "compute_device": prefs.compute_device, "threads": prefs.threads})()
    try:
        type(prefs).draw(stand_in, bpy.context)
    except Exception as error:
        draw_problems.append(f"preferences: {type(error).__name__}: {error}")

draw_preferences()
s.channel_index = 5
draw_all_panels()                                  # a mapped ARKit rig, a file source
s.source_type = "CAMERA"
s.head_object = None
s.last_report = "a report"
draw_all_panels()                                  # a camera source, no head, a report shown
s.source_type = "FILE"
RESULT["draw_problems"] = draw_problems
RESULT["drawn"] = sorted(set(f"{kind}:{what}" for kind, what in Layout.drawn))

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
RESULT["anonymize_without_strip"] = error_of(lambda: bpy.ops.maskcap.anonymize_clip(use_strip=True))
RESULT["anonymize_missing_video"] = error_of(lambda: bpy.ops.maskcap.anonymize_clip(filepath="/nonexistent/gone.mp4"))

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
    from core.face.facs import FACS_NAMES

    keys = basics["demo_keys"]
    assert len(keys) == 47
    assert keys[1:] == list(FACS_NAMES)


def test_demo_head_becomes_the_target_and_the_head_to_drive(basics):
    assert basics["demo_target"] == "maskcap_head"
    assert basics["demo_head_object"] == "maskcap_head_control"


def test_arkit_named_rig_maps_every_key_it_has_whatever_the_case_and_separators(basics):
    from core.face.facs import FACS_TO_ARKIT

    spelled = basics["arkit_spelled"]
    for facs, arkit in FACS_TO_ARKIT.items():
        if arkit not in basics["arkit_left_out"]:
            assert basics["arkit_map"][facs] == spelled.get(arkit, arkit), facs


def test_arkit_keys_the_rig_lacks_are_left_unmapped_and_reported(basics):
    from core.face.facs import ARKIT_TO_FACS

    missing = [ARKIT_TO_FACS[name] for name in basics["arkit_left_out"]]
    assert all(basics["arkit_map"][facs] == "" for facs in missing)
    warnings = [line for line in basics["_stdout"].splitlines() if line.startswith("Warning: maskcap")]
    assert warnings and all(facs in warnings[-1] for facs in missing), warnings


def test_a_preset_restores_the_mapping_and_gains_and_lives_outside_the_addons_folder(basics):
    assert basics["preset_gain"] == pytest.approx(1.7)
    assert basics["preset_keys"] == "JawOpen"
    assert len(basics["preset_files"]) == 1
    assert not basics["preset_files"][0].startswith(basics["addon_root"] + "/")


def test_every_panel_draws_only_properties_operators_and_icons_that_exist(basics):
    assert basics["draw_problems"] == []


def test_the_panels_offer_the_source_target_live_bake_and_mapping_controls(basics):
    drawn = set(basics["drawn"])
    for item in ("prop:source_type", "prop:source_path", "prop:camera_index", "prop:target",
                 "prop:head_object", "operator:maskcap.live_start", "operator:maskcap.bake",
                 "operator:maskcap.build_compositor", "operator:maskcap.auto_map", "prop:gain",
                 "prop:clamp_max", "operator:maskcap.anonymize_clip", "label:a report",
                 "prop:compute_device", "prop:threads",
                 "label:Segmenter: starts with the next bake, live session or anonymise run"):
        assert item in drawn, item


@pytest.mark.parametrize("case, words", [
    ("missing_video", ["missing_clip.mp4"]),
    ("unreadable_video", ["junk.mp4"]),
    ("no_shape_keys", ["shape key"]),
    ("camera_does_not_open", ["camera 16"]),
    ("anonymize_without_strip", ["movie strip"]),
    ("anonymize_missing_video", ["gone.mp4"]),
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


# --- bake, camera match, compositor, render (one Blender run) ------------------------------------


BAKE = '''
import os
def addon_files():
    root = os.path.dirname(pkg.__file__)
    return sorted(os.path.relpath(os.path.join(d, f), root) for d, _, names in os.walk(root)
                  for f in names if "__pycache__" not in d)

before = addon_files()
scene = bpy.context.scene
bpy.data.objects.remove(bpy.data.objects["Cube"])  # the startup cube would enclose the head
bpy.ops.ed.undo_push(message="test start")  # background mode starts with undo off until a first push
s = scene.maskcap
bpy.ops.maskcap.add_demo_head("EXEC_DEFAULT", True)  # undo=True: an undo step, as a click in the UI
s.source_path = CLIP
s.write_masks = True
s.mask_dir = MASKS
bpy.ops.maskcap.bake("EXEC_DEFAULT", True)
RESULT["keys"] = fcurves(bpy.data.objects["maskcap_head"].data.shape_keys)
RESULT["head"] = fcurves(bpy.data.objects["maskcap_head_control"])
RESULT["take_frames"] = s.take_frames

# the bake is one undo step: undo removes its keys from the face and the head, redo brings them back
def baked_state():
    keys = bpy.data.objects["maskcap_head"].data.shape_keys
    return [len(fcurves(keys)), len(fcurves(bpy.data.objects["maskcap_head_control"])),
            bpy.context.scene.maskcap.take_frames]
RESULT["undo_states"] = [baked_state()]
bpy.ops.ed.undo()
RESULT["undo_states"].append(baked_state())
bpy.ops.ed.redo()
RESULT["undo_states"].append(baked_state())
scene = bpy.context.scene  # undo reloads the file's data: fetch it again
s = scene.maskcap
RESULT["mask"] = os.path.join(bpy.path.abspath(s.take_mask_dir),
                              importlib.import_module(pkg.__name__ + ".core.capture.take").MASK_PATTERN.format(RENDER_FRAME))
bpy.ops.maskcap.camera_match()
RESULT["camera"] = {"name": scene.camera.name, "lens_mm": scene.camera.data.lens,
                    "sensor_mm": scene.camera.data.sensor_width, "focal_px": s.take_focal_px,
                    "resolution": [scene.render.resolution_x, scene.render.resolution_y]}
bpy.ops.maskcap.build_compositor()
RESULT["tree_valid"] = pkg.compositor.tree_is_valid(scene.compositing_node_group)
render_still(RENDER_FRAME, RENDER)
bpy.context.preferences.addons[MODULE].preferences.threads = 2
bpy.ops.maskcap.anonymize_clip(filepath=ANON_CLIP, method="fill", fast=True, output=ANON_OUT)
RESULT["anonymize_segmenter"] = pkg.preferences.last_run()
bpy.context.preferences.addons[MODULE].preferences.threads = 1

# the UI path (modal operators do not run in background mode): invoke, then timer events, with a
# stand-in window manager; once to the end, once cancelled with Esc after the first event
import time as _time
class _WM:
    def progress_begin(self, *a): pass
    def progress_update(self, *a): pass
    def progress_end(self): pass
    def event_timer_add(self, *a, **k): return object()
    def event_timer_remove(self, *a): pass
    def modal_handler_add(self, *a): pass
class _Context:
    window_manager, window, area, scene = _WM(), None, None, scene
class _Event:
    def __init__(self, kind): self.type = kind
Op = pkg.anonymize.MASKCAP_OT_anonymize_clip
class _Anonymize(pkg.worker.ModalWorker):
    _prepare, invoke, worker_done, progress_verb = Op._prepare, Op.invoke, Op.worker_done, Op.progress_verb
    def __init__(self, output):
        self.filepath, self.use_strip, self.method, self.fast, self.output = ANON_CLIP, False, "blur", True, output
        self.reports = []
    def report(self, kind, message): self.reports.append(message)
def drive_modal(op, escape=False):
    state = op.invoke(_Context, None)
    if escape:
        op.modal(_Context, _Event('ESC'))
    while state == {'RUNNING_MODAL'}:
        _time.sleep(0.05)
        state = op.modal(_Context, _Event('TIMER'))
    return [sorted(state), op.reports]
modal_out, cancelled_out = ANON_OUT.replace(".mp4", "_modal.mp4"), ANON_OUT.replace(".mp4", "_esc.mp4")
RESULT["modal_anonymize"] = drive_modal(_Anonymize(modal_out)) + [os.path.exists(modal_out)]
RESULT["modal_anonymize_esc"] = drive_modal(_Anonymize(cancelled_out), escape=True) + [os.path.exists(cancelled_out)]
RESULT["threads_after_modal"] = maskcap_threads()
RESULT["new_addon_files"] = [f for f in addon_files() if f not in before]

# the bake's UI path, cancelled with Esc after 10 frames: discarding leaves the previous take's
# keys as they were; keeping puts the partial take on the rig
Bake = pkg.bake.MASKCAP_OT_bake
class _Bake(pkg.worker.ModalWorker):
    _prepare, invoke, worker_done, progress_verb = Bake._prepare, Bake.invoke, Bake.worker_done, Bake.progress_verb
    def __init__(self):
        self.filepath, self.max_frames, self.reports = "", 0, []
    def report(self, kind, message): self.reports.append(message)
def esc_after(op, frames):
    state = op.invoke(_Context, None)
    while state == {'RUNNING_MODAL'}:
        _time.sleep(0.02)
        if op._progress[0] >= frames and not op._cancel.is_set():
            op.modal(_Context, _Event('ESC'))
        state = op.modal(_Context, _Event('TIMER'))
    return [sorted(state), op.reports]
def face_keys():
    return fcurves(bpy.data.objects["maskcap_head"].data.shape_keys)
full_take = face_keys()
s.write_masks = False
s.keep_partial = False
RESULT["bake_esc_discard"] = esc_after(_Bake(), 10) + [face_keys() == full_take]
s.keep_partial = True
RESULT["bake_esc_keep"] = esc_after(_Bake(), 10) + [sorted({len(c) for c in face_keys().values()}), len(face_keys())]
RESULT["threads_after_bake_esc"] = maskcap_threads()

if REAL_CLIP:  # real webcam footage (shared data): another size and frame rate, a real hand
    s.source_path = REAL_CLIP
    s.write_masks = False
    bpy.ops.maskcap.bake()
    take = pkg.bake.last_take()
    RESULT["real"] = {"frames": len(take), "tracked": take.tracked,
                      "keys": fcurves(bpy.data.objects["maskcap_head"].data.shape_keys)}
'''

REAL_CLIP = "webcam_hand_occlusion"  # ../shared/data/videos: a hand passes over a talking face
REAL_FRAMES = 50
ANON_FRAMES = 8


def _first_frames(source: Path, target: Path, count: int) -> Path:
    """The first count frames of a video, re-encoded (the bake has no frame limit)."""
    import cv2

    capture = cv2.VideoCapture(str(source))
    fps = capture.get(cv2.CAP_PROP_FPS)
    writer = None
    for _ in range(count):
        ok, frame = capture.read()
        assert ok, f"{source} has fewer than {count} frames"
        if writer is None:
            writer = cv2.VideoWriter(str(target), cv2.VideoWriter_fourcc(*"mp4v"), fps,
                                     (frame.shape[1], frame.shape[0]))
        writer.write(frame)
    writer.release()
    return target


@pytest.fixture(scope="module")
def baked(work_dir, blender_user, demo_clip):
    out = work_dir / "bake"
    out.mkdir()
    videos = shared_data_dir() / "videos"
    real = videos / f"{REAL_CLIP}.mp4"
    real_clip = str(_first_frames(real, out / "real.mp4", REAL_FRAMES)) if real.is_file() else None
    anon_clip = _first_frames(demo_clip, out / "anon_source.mp4", ANON_FRAMES)
    result = blender_run.run(blender_user, BAKE, CLIP=str(demo_clip), MASKS=str(out / "masks"),
                             RENDER=str(out / "render.png"), RENDER_FRAME=RENDER_FRAME, REAL_CLIP=real_clip,
                             ANON_CLIP=str(anon_clip), ANON_OUT=str(out / "anonymized.mp4"))
    result["anon_source"], result["anon_out"] = anon_clip, out / "anonymized.mp4"
    result.setdefault("real", None)
    result["render"] = out / "render.png"
    return result


def _frames_of(path: Path) -> list:
    import cv2

    capture = cv2.VideoCapture(str(path))
    frames = []
    while True:
        ok, frame = capture.read()
        if not ok:
            return frames
        frames.append(frame.astype(np.int16))


def test_anonymising_from_the_ui_runs_on_a_thread_to_the_end_and_writes_the_video(baked):
    state, reports, written = baked["modal_anonymize"]
    assert state == ["FINISHED"] and written and "wrote" in reports[-1]


def test_esc_while_anonymising_cancels_and_writes_nothing(baked):
    state, reports, written = baked["modal_anonymize_esc"]
    assert state == ["CANCELLED"] and not written and "cancelled" in reports[-1]
    assert baked["threads_after_modal"] == []


def test_esc_during_a_bake_discarding_the_partial_take_leaves_the_previous_keys_untouched(baked):
    state, reports, unchanged = baked["bake_esc_discard"]
    assert state == ["CANCELLED"] and unchanged and "cancel" in reports[-1]


def test_esc_during_a_bake_keeping_the_partial_take_keys_the_frames_done_on_all_46_channels(baked):
    state, reports, lengths, channels = baked["bake_esc_keep"]
    assert state == ["FINISHED"] and "partial take kept" in reports[-1]
    assert channels == 46 and len(lengths) == 1 and 10 <= lengths[0] < CLIP_SECONDS * CLIP_FPS
    assert baked["threads_after_bake_esc"] == []


def test_anonymising_footage_writes_every_frame_with_the_face_filled_and_the_rest_kept(baked):
    source, private = _frames_of(baked["anon_source"]), _frames_of(baked["anon_out"])
    assert len(private) == len(source) == ANON_FRAMES
    for before, after in zip(source, private):
        changed = np.abs(after - before).max(axis=2) > 40  # far beyond the codec's own error
        assert changed.mean() > 0.02, "no face was covered"
        h, w = changed.shape
        assert changed[:, : w // 8].mean() < 0.01 and changed[: h // 10].mean() < 0.01  # edges untouched


def test_anonymising_opens_its_segmenter_where_the_preferences_say(baked):
    assert baked["anonymize_segmenter"].startswith("CPUExecutionProvider, 2 threads; CUDA is not used")


def test_bake_keys_every_frame_of_the_clip(baked):
    assert baked["take_frames"] == CLIP_SECONDS * CLIP_FPS


def test_bake_keys_all_46_shape_keys_on_every_frame_within_0_and_1(baked):
    from core.face.facs import FACS_NAMES

    frames = list(range(1, baked["take_frames"] + 1))
    for name in FACS_NAMES:
        curve = baked["keys"][f'key_blocks["{name}"].value[0]']
        assert [frame for frame, _ in curve] == frames, name
        assert all(0.0 <= value <= 1.0 for _, value in curve), name


def test_undo_removes_the_whole_bake_and_redo_restores_it(baked):
    frames = int(CLIP_SECONDS * CLIP_FPS)
    assert baked["undo_states"] == [[46, 6, frames], [0, 0, 0], [46, 6, frames]]


def test_bake_keys_the_head_location_and_rotation(baked):
    assert {f"{path}[{i}]" for path in ("location", "rotation_euler") for i in range(3)} <= set(baked["head"])


def test_baked_head_roll_follows_the_clips_roll(baked):
    """The clip rolls the photo by 8 sin(2 pi t / 2.3) degrees; with the default axes X,Z,-Y the
    roll (about the face's outward axis) lands on Blender's -Y rotation."""
    from examples.demo_clip import ClipOptions

    t = np.arange(baked["take_frames"]) / CLIP_FPS
    clip_roll = ClipOptions().roll_deg * np.sin(2 * np.pi * t / 2.3)
    baked_roll = -np.degrees(curve_values(baked["head"], "rotation_euler[1]"))
    assert np.corrcoef(baked_roll, clip_roll)[0, 1] > 0.8
    assert 0.5 < np.ptp(baked_roll) / np.ptp(clip_roll) < 2.0


def test_baked_head_sway_follows_the_clips_sideways_motion(baked):
    t = np.arange(baked["take_frames"]) / CLIP_FPS
    clip_dx = np.sin(2 * np.pi * t / 2.9)
    assert np.corrcoef(curve_values(baked["head"], "location[0]"), clip_dx)[0, 1] > 0.8


def test_smiling_photo_bakes_to_smile_keys_well_above_blink_keys(baked):
    """A broad smile narrows the eyes a little (the cheeks rise), so EyeBlink may read a little
    now that blinks register; it must stay small and far below the smile."""
    smile = np.mean([curve_values(baked["keys"], f'key_blocks["MouthSmile_{s}"].value[0]') for s in "LR"])
    blink = np.mean([curve_values(baked["keys"], f'key_blocks["EyeBlink_{s}"].value[0]') for s in "LR"])
    assert smile > 0.3 and blink < 0.15 and smile > 5 * blink


def test_bake_writes_nothing_into_the_addons_folder(baked):
    assert baked["new_addon_files"] == []


def test_camera_match_gives_the_solved_focal_length_and_the_footage_size(baked):
    camera = baked["camera"]
    assert camera["name"] == "maskcap_camera" and camera["resolution"] == [640, 480]
    assert camera["focal_px"] > 0
    assert camera["lens_mm"] == pytest.approx(camera["focal_px"] * camera["sensor_mm"] / 640, rel=1e-3)


def test_compositor_tree_is_valid(baked):
    assert baked["tree_valid"]


def test_composite_keeps_the_footage_wherever_the_mask_is_not_face(baked, demo_clip):
    assert composite_differences(baked["render"], baked["mask"], demo_clip)["outside"] < 6


def test_composite_shows_the_render_on_the_face_and_the_hand_in_front_of_it(baked, demo_clip):
    """Paper Fig. 5: the rendered head replaces the face, the occluding hand stays in front."""
    found = composite_differences(baked["render"], baked["mask"], demo_clip)
    assert found["face_pixels"] > 2000 and found["hand_pixels"] > 2000
    assert found["face"] > 20 and found["hand"] < 6


def _real_or_skip(baked) -> dict:
    if baked["real"] is None:
        pytest.skip(f"needs ../shared/data/videos/{REAL_CLIP}.mp4 (see clips.json); set MASKCAP_DATA to run")
    return baked["real"]


def test_bake_of_real_webcam_footage_keys_every_frame_within_0_and_1(baked):
    real = _real_or_skip(baked)
    assert real["frames"] == REAL_FRAMES and len(real["keys"]) == 46
    for name, curve in real["keys"].items():
        assert [frame for frame, _ in curve] == list(range(1, REAL_FRAMES + 1)), name
        assert all(0.0 <= value <= 1.0 for _, value in curve), name


def test_bake_of_real_webcam_footage_tracks_the_face_in_most_frames(baked):
    real = _real_or_skip(baked)
    assert real["tracked"] >= 0.9 * REAL_FRAMES


# --- live capture from a file source (one Blender run) -------------------------------------------

LIVE = '''
import time
scene = bpy.context.scene

def wait_for_results(count, seconds=90.0):
    """Poll the timer's body (timers do not run in background mode) until count results applied."""
    applied, start = 0, time.perf_counter()
    while applied < count and time.perf_counter() - start < seconds:
        if pkg.live.current_session() is None:
            break
        if pkg.live.apply_newest(scene):
            applied += 1
        else:
            time.sleep(0.01)
    return applied

def setup():
    s = scene.maskcap
    if bpy.data.objects.get("maskcap_head") is None:
        bpy.ops.maskcap.add_demo_head()
    s.target = bpy.data.objects["maskcap_head"]
    s.head_object = bpy.data.objects["maskcap_head_control"]
    s.source_type = "FILE"
    s.source_path = CLIP
    return s

s = setup()
s.source_path = WARMUP_CLIP
bpy.ops.maskcap.bake()  # the tracker compiles on first use; live would drop the clip meanwhile
s.source_path = CLIP
bpy.ops.maskcap.live_start()
RESULT["threads_while_running"] = maskcap_threads()
RESULT["running"] = s.live_running
RESULT["applied"] = wait_for_results(5)
keys = bpy.data.objects["maskcap_head"].data.shape_keys.key_blocks
RESULT["smile_live"] = (keys["MouthSmile_L"].value + keys["MouthSmile_R"].value) / 2
scene.frame_set(100)
bpy.ops.maskcap.record_toggle()
start = time.perf_counter()
RESULT["applied_while_recording"] = wait_for_results(10)
RESULT["record_wall_s"] = time.perf_counter() - start
bpy.ops.maskcap.record_toggle()
RESULT["recorded"] = fcurves(bpy.data.objects["maskcap_head"].data.shape_keys)
RESULT["scene_fps"] = scene.render.fps / scene.render.fps_base
bpy.ops.maskcap.live_stop()
RESULT["threads_after_stop"] = maskcap_threads()
RESULT["session_after_stop"] = pkg.live.current_session() is not None
RESULT["running_after_stop"] = s.live_running

bpy.ops.maskcap.live_start()
RESULT["applied_before_disable"] = wait_for_results(1)
RESULT["threads_before_disable"] = maskcap_threads()
bpy.ops.preferences.addon_disable(module=MODULE)
RESULT["threads_after_disable"] = maskcap_threads()

pkg = enable()
s = setup()
bpy.ops.maskcap.live_start()
RESULT["applied_before_delete"] = wait_for_results(1)
bpy.data.objects.remove(bpy.data.objects["maskcap_head"])
RESULT["applied_after_delete"] = wait_for_results(1, seconds=5.0)
RESULT["report_after_delete"] = scene.maskcap.last_report
RESULT["session_after_delete"] = pkg.live.current_session() is not None
RESULT["threads_after_delete"] = maskcap_threads()
bpy.ops.preferences.addon_disable(module=MODULE)
'''


@pytest.fixture(scope="module")
def live(work_dir, blender_user, demo_clip):
    """Live runs at the clip's pace, dropping frames while the tracker is busy: after a warm-up
    bake (the tracker's first-use compile takes seconds), a longer clip than the bake's."""
    from examples.demo_clip import ClipOptions, write_demo_clip

    clip = write_demo_clip(work_dir / "demo_clip_live.mp4", ClipOptions(seconds=LIVE_CLIP_SECONDS, fps=CLIP_FPS))
    return blender_run.run(blender_user, LIVE, CLIP=str(clip), WARMUP_CLIP=str(demo_clip))


def test_live_capture_runs_its_work_in_named_threads(live):
    assert live["running"]
    assert any(name.startswith("maskcap-") for name in live["threads_while_running"])


def test_live_capture_from_a_file_applies_results_to_the_rig(live):
    assert live["applied"] == 5
    assert live["smile_live"] > 0.3  # the photo smiles


def test_recording_while_live_keys_all_46_channels_at_the_scene_frames_of_capture(live):
    assert live["applied_while_recording"] == 10
    curves = live["recorded"]
    assert len(curves) == 46
    frames = np.array([frame for frame, _ in next(iter(curves.values()))])
    # the first result applied after Record may have been captured just before it
    assert len(frames) >= live["applied_while_recording"] - 1
    assert frames[0] == 100 and np.all(np.diff(frames) > 0)
    span_s = (frames[-1] - frames[0]) / live["scene_fps"]
    assert 0.5 * live["record_wall_s"] - 0.2 < span_s < 1.5 * live["record_wall_s"] + 0.2


def test_stopping_live_capture_leaves_no_thread_and_no_session(live):
    assert live["threads_after_stop"] == []
    assert not live["session_after_stop"] and not live["running_after_stop"]


def test_disabling_the_addon_while_live_leaves_no_thread(live):
    assert live["applied_before_disable"] == 1 and live["threads_before_disable"]
    assert live["threads_after_disable"] == []


def test_deleting_the_target_while_live_stops_with_a_report_and_no_thread(live):
    assert live["applied_before_delete"] == 1
    assert live["applied_after_delete"] == 0
    assert "target" in live["report_after_delete"].lower() or "deleted" in live["report_after_delete"].lower(), \
        live["report_after_delete"]
    assert not live["session_after_delete"]
    assert live["threads_after_delete"] == []


def test_live_run_prints_no_python_traceback(live):
    assert "Traceback" not in live["_stderr"] and "Traceback" not in live["_stdout"]
