"""Bake from footage: every frame of a clip tracked into keyframes on the shape keys and head.

`execute()` bakes synchronously (background mode, scripts, tests); `invoke()` runs the tracking
on a worker thread and is modal: progress bar, Esc cancels. Keyframes go into new actions that
are assigned only at the end, and only if the take is complete or the user keeps partial takes.
"""
import os
import time
from pathlib import Path

import bpy

from . import drive, preferences
from . import core
from .core.capture import filters, retarget
from .properties import channel_params, one_euro_params
from .worker import ModalWorker

_LAST_TAKE = None


def last_take():
    """The last baked core.capture.take.Take (numpy arrays), or None."""
    return _LAST_TAKE


def footage_path(settings, filepath: str = "") -> str:
    return bpy.path.abspath(filepath or settings.source_path).strip()


def mask_folder(scene, footage: str) -> tuple[str, str | None]:
    """The folder for this take's masks, and a warning when it cannot be beside the .blend."""
    base = scene.maskcap.mask_dir or "//maskcap_masks/"
    warning = None
    if base.startswith("//") and not bpy.data.filepath:
        base = os.path.join(bpy.app.tempdir or "/tmp", "maskcap_masks")
        warning = f"the .blend is not saved: masks go to {base}; save the file first to keep them beside it"
    stem = Path(footage.rstrip("/\\")).stem or "take"
    return os.path.join(bpy.path.abspath(base), stem), warning


def check_inputs(scene, footage: str) -> "drive.Rig":
    """Everything a bake needs before it starts; raises with a message for the user."""
    from .core.capture import take
    rig = drive.resolve_rig(scene, need_face=True)
    if not footage:
        raise drive.TargetError("choose the footage to bake (a video file or a folder of images)")
    source = take.open_file_source(footage, fps=scene.maskcap.source_fps)  # opens and reads one frame
    source.close()
    return rig


def tracker_options(settings, context=None):
    # inline identity/focal solves: baking the same clip twice gives the same keyframes; the
    # segmenter where the preferences say (compute device, threads)
    from .core.track.tracker import TrackerOptions
    return TrackerOptions(focal_mm=settings.focal_mm, synchronous_adaptation=True,
                          segmenter=preferences.segmenter_options(context))


def open_tracker(options):
    """The bake's tracker; where its segmenter runs is noted for the panel (any thread)."""
    from .core.track.tracker import FaceTracker
    tracker = FaceTracker(options)
    preferences.remember(tracker.segmenter)
    return tracker


def finish_bake(scene, rig, take, keep_partial: bool) -> str:
    """Write the take (or nothing for a discarded cancel); returns the message for the report."""
    global _LAST_TAKE
    s = scene.maskcap
    if take.cancelled and not keep_partial:
        return f"bake cancelled after {len(take)} frames; nothing was written"
    if take.tracked == 0:
        raise drive.TargetError(f"no face was found in the {len(take)} frames of {take.source}")
    _LAST_TAKE = take
    ok = take.ok
    values = retarget.ChannelMap.from_params(channel_params(s)).apply(take.blendshapes)
    if s.filter_bake:
        values[ok] = filters.filter_sequence(values[ok], take.time_s[ok], one_euro_params(s))
    start = scene.frame_start
    frames = start + take.frame_index[ok]
    name = "maskcap_" + Path(take.source.rstrip("/\\")).stem
    written = drive.write_take(scene, rig, name, frames, values[ok], take.rotation[ok], take.translation_cm[ok],
                               take.reference_translation_cm())
    _remember_take(scene, take, start)
    lost = len(take) - take.tracked
    parts = [f"baked {take.tracked} of {len(take)} frames onto {written.keys} shape keys"]
    if written.head_keys:
        parts.append(f"and {written.head_keys} head channels")
    if lost:
        parts.append(f"({lost} frames without a face have no keys)")
    if take.cancelled:
        parts.append("(cancelled: partial take kept)")
    return " ".join(parts)


def _remember_take(scene, take, start: int) -> None:
    """Store what camera match and the compositor need, and fit the scene to the footage."""
    s = scene.maskcap
    s.take_focal_px = take.solved_focal_px()
    s.take_width, s.take_height = take.size
    s.take_reference = tuple(take.reference_translation_cm())
    s.take_mask_dir = take.mask_dir or ""
    s.take_frame_start, s.take_frames = start, len(take)
    if take.identity is not None:
        scene["maskcap_identity"] = take.identity.tolist()
    fps = max(1, int(round(take.fps)))
    scene.render.fps, scene.render.fps_base = fps, fps / take.fps
    scene.frame_end = start + len(take) - 1
    scene.render.resolution_x, scene.render.resolution_y = take.size
    scene.render.resolution_percentage = 100


class MASKCAP_OT_bake(ModalWorker, bpy.types.Operator):
    """Track every frame of the footage and keyframe the face and head (Esc cancels)"""

    bl_idname = "maskcap.bake"
    bl_label = "Bake footage"
    bl_options = {'REGISTER', 'UNDO'}
    progress_verb = "baked"

    filepath: bpy.props.StringProperty(name="Footage", default="", subtype='FILE_PATH',
                                       description="Video file or image folder; empty: the panel's footage")
    max_frames: bpy.props.IntProperty(name="Max frames", default=0, min=0,
                                      description="Stop after this many frames (0: the whole clip)")

    def _prepare(self, context):
        s = context.scene.maskcap
        footage = footage_path(s, self.filepath)
        rig = check_inputs(context.scene, footage)
        masks = None
        if s.write_masks:
            masks, warning = mask_folder(context.scene, footage)
            if warning:
                self.report({'WARNING'}, f"maskcap: {warning}")
        return footage, rig, masks

    def execute(self, context):
        from .core.capture import take as take_mod
        try:
            footage, rig, masks = self._prepare(context)
            shown = [time.perf_counter()]

            def progress(done, total):
                if time.perf_counter() - shown[0] > 2.0:
                    shown[0] = time.perf_counter()
                    print(f"maskcap: baked {done}/{total or '?'} frames", flush=True)

            tracker = open_tracker(tracker_options(context.scene.maskcap, context))
            try:
                take = take_mod.track_clip(footage, tracker=tracker, on_progress=progress, mask_dir=masks,
                                           max_frames=self.max_frames or None)
            finally:
                tracker.close()  # track_clip closes it too; not when the source fails first
            message = finish_bake(context.scene, rig, take, keep_partial=True)
        except (drive.TargetError, core.SourceError, OSError, ValueError, RuntimeError) as exc:
            self.report({'ERROR'}, f"maskcap: {exc}")
            return {'CANCELLED'}
        self.report({'INFO'}, f"maskcap: {message}; segmenter on {preferences.last_run()}")
        return {'FINISHED'}

    # ------------------------------------------------------------ modal (UI)

    def invoke(self, context, event):
        try:
            footage, self._rig, masks = self._prepare(context)
        except (drive.TargetError, core.SourceError, OSError, ValueError, RuntimeError) as exc:
            self.report({'ERROR'}, f"maskcap: {exc}")
            return {'CANCELLED'}
        from .core.capture import take as take_mod
        options = tracker_options(context.scene.maskcap, context)

        def work(cancel, progress):
            tracker = open_tracker(options)
            try:
                return take_mod.track_clip(footage, tracker=tracker, cancel=cancel, mask_dir=masks,
                                           max_frames=self.max_frames or None, on_progress=progress)
            finally:
                tracker.close()

        self.report({'INFO'}, "maskcap: baking... (Esc cancels)")
        return self.start_worker(context, work, "maskcap-bake")

    def worker_done(self, context, take):
        keep = context.scene.maskcap.keep_partial
        try:
            rig = drive.resolve_rig(context.scene)  # the target may have changed while baking
            message = finish_bake(context.scene, rig, take, keep_partial=keep)
        except (drive.TargetError, ValueError, RuntimeError) as exc:
            self.report({'ERROR'}, f"maskcap: {exc}")
            return {'CANCELLED'}
        self.report({'WARNING'} if take.cancelled else {'INFO'},
                    f"maskcap: {message}; segmenter on {preferences.last_run()}")
        return {'CANCELLED'} if take.cancelled and not keep else {'FINISHED'}


CLASSES = (MASKCAP_OT_bake,)
