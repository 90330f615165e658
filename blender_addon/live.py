"""Live capture: worker threads track, a main-thread timer applies the newest result.

core.capture.live_feed.LiveFeed runs capture, segmentation, regression and a consumer thread; the
timer here (`apply_newest`) only reads its newest sample and sets shape keys and the head,
so the UI never waits. Stop, disabling the add-on, loading a file and quitting all call
`stop_all()`, which joins every thread.
"""
import threading
import time

import bpy
import numpy as np

from . import drive, preferences, preview
from . import core
from .core.capture import retarget
from .properties import channel_params, one_euro_params

TIMER_INTERVAL_S = 1.0 / 60.0

_session = None
_lock = threading.Lock()


class LiveSession:
    """One live capture: the feed, the scene it drives, timing of the main-thread work."""

    def __init__(self, scene, feed, source_name: str):
        self.scene_name = scene.name
        self.feed = feed
        self.source_name = source_name
        self.last_seq = 0
        self.reference_cm = None
        self.apply_ms: list[float] = []
        self.record_start_frame = 0.0
        self.record_start_time = None
        self.calibrating = False
        self.map_refreshed = time.perf_counter()
        settings = scene.maskcap
        self.target_name = settings.target.name if settings.target is not None else None
        self.head_name = settings.head_object.name if settings.head_object is not None else None

    def scene(self):
        return bpy.data.scenes.get(self.scene_name)


def current_session():
    return _session


def _report(scene, message: str, level: str = 'ERROR') -> None:
    """A message in the report area (status bar / Info editor) from outside an operator."""
    print(f"maskcap: {message}", flush=True)
    if scene is not None:
        scene.maskcap.last_report = message
    if not bpy.app.background:
        try:
            bpy.ops.maskcap.report_message('EXEC_DEFAULT', level=level, message=message)
        except (RuntimeError, AttributeError):
            pass


def start(scene, settings) -> "LiveSession":
    """Open the source and start the threads; raises SourceError/TargetError for the user."""
    global _session
    stop_all()
    if settings.target is None and settings.head_object is None:
        raise drive.TargetError("choose a face mesh with shape keys and/or a head to drive (or 'Add demo head')")
    drive.resolve_rig(scene, need_face=settings.target is not None)  # a wrong target fails here, not later
    from .core.capture import live_feed, take as take_mod
    from .core.io import sources
    from .core.track import tracker as tracker_mod
    if settings.source_type == 'CAMERA':
        source = sources.CameraSource(settings.camera_index)
        name = source.name
    else:
        path = bpy.path.abspath(settings.source_path)
        source = live_feed.PacedSource(take_mod.open_file_source(path, fps=settings.source_fps))
        name = path
    try:
        tracker = tracker_mod.FaceTracker(tracker_mod.TrackerOptions(
            focal_mm=settings.focal_mm, segmenter=preferences.segmenter_options()))
        preferences.remember(tracker.segmenter)
    except BaseException:
        source.close()
        raise
    feed = live_feed.LiveFeed(tracker, source, retarget.ChannelMap.from_params(channel_params(settings)),
                              one_euro_params(settings) if settings.filter_live else None)
    feed.preview_enabled = preview.wanted()
    with _lock:
        _session = LiveSession(scene, feed, name)
    feed.start()
    settings.live_running = True
    settings.last_report = ""
    if not bpy.app.timers.is_registered(_timer):
        bpy.app.timers.register(_timer, first_interval=TIMER_INTERVAL_S)
    return _session


def stop_all() -> None:
    """End the live session, if any: join its threads, write a recording in progress."""
    global _session
    with _lock:
        session, _session = _session, None
    if bpy.app.timers.is_registered(_timer):
        bpy.app.timers.unregister(_timer)
    if session is None:
        return
    samples = session.feed.stop_recording() if session.feed.recording else None
    session.feed.stop()
    scene = session.scene()
    if scene is not None:
        scene.maskcap.live_running = False
        scene.maskcap.recording = False
        scene.maskcap.calibrating = False
        if samples:
            _write_recording(scene, session, samples)


def _stop_threads_at_exit() -> None:
    """Interpreter shutdown (a quit that skipped unregister): end the threads, touch no bpy data."""
    session = _session
    if session is not None:
        session.feed.stop(timeout=2.0)


if hasattr(threading, "_register_atexit"):  # runs before Python waits for non-daemon threads
    threading._register_atexit(_stop_threads_at_exit)


def _timer():
    session = _session
    if session is None:
        return None
    scene = session.scene()
    if scene is None:
        stop_all()
        return None
    try:
        apply_newest(scene)
    except Exception as exc:  # never let a timer die silently with threads still running
        _report(scene, f"live capture stopped: {exc}")
        stop_all()
        return None
    return TIMER_INTERVAL_S if _session is not None else None


def apply_newest(scene) -> bool:
    """The timer's work: apply the newest sample once; True if one was applied. Stops the
    session (with a report) when the source ended or failed, or the target was deleted."""
    session = _session
    if session is None:
        return False
    feed = session.feed
    if feed.error is not None:
        error = feed.error
        stop_all()
        _report(scene, f"live capture stopped: {error}")
        return False
    if session.calibrating:
        _finish_calibration(scene, session)
    sample = feed.newest()
    if sample is None or sample.seq == session.last_seq:
        if not feed.running:
            stop_all()
            _report(scene, f"live capture ended: {session.source_name} has no more frames", 'INFO')
        return False
    t0 = time.perf_counter()
    session.last_seq = sample.seq
    try:
        rig = _session_rig(scene, session)
    except drive.TargetError as exc:
        stop_all()
        _report(scene, f"live capture stopped: {exc}")
        return False
    if t0 - session.map_refreshed > 0.5:  # gain/offset/clamp edits while live take effect
        feed.set_channel_map(retarget.ChannelMap.from_params(channel_params(scene.maskcap)))
        session.map_refreshed = t0
    if sample.ok:
        if session.reference_cm is None:
            session.reference_cm = sample.translation_cm.copy()
        drive.apply_frame(scene, rig, sample.values, sample.rotation, sample.translation_cm, session.reference_cm)
    if sample.preview is not None:
        preview.show(sample.preview)
    session.apply_ms.append((time.perf_counter() - t0) * 1000.0)
    del session.apply_ms[:-1000]
    return True


# ---------------------------------------------------------------- recording and calibration


def _session_rig(scene, session):
    """The rig, or TargetError if the target or head the session started with is gone."""
    s = scene.maskcap
    if session.target_name is not None and s.target is None:
        raise drive.TargetError(f"the face mesh '{session.target_name}' was deleted")
    if session.head_name is not None and s.head_object is None:
        raise drive.TargetError(f"the head '{session.head_name}' was deleted")
    return drive.resolve_rig(scene, need_face=session.target_name is not None)


def start_recording(scene) -> None:
    session = _session
    session.record_start_frame = float(scene.frame_current)
    session.feed.start_recording()
    scene.maskcap.recording = True


def stop_recording(scene) -> str:
    session = _session
    samples = session.feed.stop_recording()
    scene.maskcap.recording = False
    return _write_recording(scene, session, samples)


def _write_recording(scene, session, samples) -> str:
    """Keyframes for every recorded sample at the scene frame of its capture time."""
    if not samples:
        return "nothing recorded (no face was tracked)"
    try:
        rig = drive.resolve_rig(scene, need_face=scene.maskcap.target is not None)
    except drive.TargetError as exc:
        _report(scene, f"recording not written: {exc}")
        return str(exc)
    fps = scene.render.fps / scene.render.fps_base
    t0 = samples[0].time_s
    frames = np.array([session.record_start_frame + (s.time_s - t0) * fps for s in samples])
    values = np.stack([s.values for s in samples])
    rotations = np.stack([s.rotation for s in samples])
    translations = np.stack([s.translation_cm for s in samples])
    reference = session.reference_cm if session.reference_cm is not None else translations[0]
    written = drive.write_take(scene, rig, "maskcap_live", frames, values, rotations, translations, reference)
    return f"recorded {len(samples)} frames ({frames[-1] - frames[0]:.0f} scene frames) onto " \
           f"{written.keys} shape keys and {written.head_keys} head channels"


def start_calibration(scene, seconds: float) -> None:
    session = _session
    session.feed.begin_calibration(seconds)
    session.calibrating = True
    scene.maskcap.calibrating = True


def _finish_calibration(scene, session) -> None:
    neutral = session.feed.calibration_result()
    if neutral is None and not session.feed.calibration_failed:
        return
    session.calibrating = False
    scene.maskcap.calibrating = False
    if neutral is None:
        _report(scene, "neutral calibration failed: no face was tracked; look at the camera and try again")
        return
    for channel, value in zip(scene.maskcap.channels, neutral):
        channel.neutral = float(value)
    if session.feed.rest_translation_cm is not None:  # the head's rest position, too
        session.reference_cm = session.feed.rest_translation_cm.copy()
    session.feed.set_channel_map(retarget.ChannelMap.from_params(channel_params(scene.maskcap)))
    _report(scene, "neutral face calibrated", 'INFO')


@bpy.app.handlers.persistent
def _on_load_pre(*_args):
    stop_all()


def register_handlers():
    if _on_load_pre not in bpy.app.handlers.load_pre:
        bpy.app.handlers.load_pre.append(_on_load_pre)


def unregister_handlers():
    stop_all()
    if _on_load_pre in bpy.app.handlers.load_pre:
        bpy.app.handlers.load_pre.remove(_on_load_pre)


# ---------------------------------------------------------------- operators


class MASKCAP_OT_live_start(bpy.types.Operator):
    """Start tracking the camera or footage live and drive the face and head"""

    bl_idname = "maskcap.live_start"
    bl_label = "Start live"

    def execute(self, context):
        try:
            start(context.scene, context.scene.maskcap)
        except (drive.TargetError, core.SourceError, OSError, ValueError, RuntimeError) as exc:
            self.report({'ERROR'}, f"maskcap: {exc}")
            return {'CANCELLED'}
        self.report({'INFO'}, "maskcap: live capture started")
        return {'FINISHED'}


class MASKCAP_OT_live_stop(bpy.types.Operator):
    """Stop live capture (a recording in progress is written)"""

    bl_idname = "maskcap.live_stop"
    bl_label = "Stop live"

    def execute(self, context):
        stop_all()
        context.scene.maskcap.live_running = False
        return {'FINISHED'}


class MASKCAP_OT_record_toggle(bpy.types.Operator):
    """Record the live performance as keyframes at the scene frame of each result"""

    bl_idname = "maskcap.record_toggle"
    bl_label = "Record"
    bl_options = {'REGISTER', 'UNDO'}

    def execute(self, context):
        if _session is None:
            self.report({'ERROR'}, "maskcap: start live capture first, then record")
            return {'CANCELLED'}
        if not context.scene.maskcap.recording:
            start_recording(context.scene)
            self.report({'INFO'}, "maskcap: recording")
            return {'FINISHED'}
        self.report({'INFO'}, f"maskcap: {stop_recording(context.scene)}")
        return {'FINISHED'}


class MASKCAP_OT_calibrate_neutral(bpy.types.Operator):
    """Record a few seconds of your rest face while live; it is subtracted from every channel"""

    bl_idname = "maskcap.calibrate_neutral"
    bl_label = "Calibrate neutral"

    def execute(self, context):
        if _session is None:
            self.report({'ERROR'}, "maskcap: start live capture first, then calibrate with a relaxed face")
            return {'CANCELLED'}
        seconds = context.scene.maskcap.calibration_seconds
        start_calibration(context.scene, seconds)
        self.report({'INFO'}, f"maskcap: hold a relaxed face for {seconds:.1f} s")
        return {'FINISHED'}


class MASKCAP_OT_clear_neutral(bpy.types.Operator):
    """Forget the calibrated neutral face"""

    bl_idname = "maskcap.clear_neutral"
    bl_label = "Clear neutral"
    bl_options = {'REGISTER', 'UNDO'}

    def execute(self, context):
        for channel in context.scene.maskcap.channels:
            channel.neutral = 0.0
        return {'FINISHED'}


class MASKCAP_OT_report_message(bpy.types.Operator):
    """Shows a message from the live timer in the report area"""

    bl_idname = "maskcap.report_message"
    bl_label = "maskcap message"
    bl_options = {'INTERNAL'}

    level: bpy.props.StringProperty(default='ERROR')
    message: bpy.props.StringProperty(default="")

    def execute(self, context):
        self.report({self.level if self.level in {'ERROR', 'WARNING', 'INFO'} else 'INFO'}, f"maskcap: {self.message}")
        return {'FINISHED'}


class MASKCAP_OT_show_preview(bpy.types.Operator):
    """Show the tracking preview (mask tinted, landmarks drawn) in an Image Editor"""

    bl_idname = "maskcap.show_preview"
    bl_label = "Show preview"

    def execute(self, context):
        image = preview.preview_image(320, 240)
        shown = False
        screen = context.screen
        for area in screen.areas if screen else ():
            if area.type == 'IMAGE_EDITOR':
                area.spaces.active.image = image
                shown = True
                break
        session = current_session()
        if session is not None:
            session.feed.preview_enabled = True
        if not shown:
            self.report({'INFO'}, f"maskcap: open an Image Editor and pick the image '{preview.IMAGE_NAME}'")
        return {'FINISHED'}


CLASSES = (MASKCAP_OT_live_start, MASKCAP_OT_live_stop, MASKCAP_OT_record_toggle, MASKCAP_OT_calibrate_neutral,
           MASKCAP_OT_clear_neutral, MASKCAP_OT_report_message, MASKCAP_OT_show_preview)
