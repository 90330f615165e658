"""Anonymise footage: every face in the clip in use (or the active movie strip) blurred,
pixelated or filled inside its segmentation mask, written as a new video beside the .blend.

The work is core.masks.batch.anonymize_clip; `execute()` runs it synchronously (background mode,
scripts, tests), `invoke()` on a worker thread with a progress bar and Esc to cancel. A cancelled
run leaves no file behind (the writer is atomic).
"""
import os
import time
from pathlib import Path

import bpy

from . import core, preferences
from .worker import ModalWorker


def source_footage(context, filepath: str, use_strip: bool) -> str:
    """The clip to anonymise: the given path, the active movie strip, or the panel's footage."""
    if filepath:
        return bpy.path.abspath(filepath).strip()
    if use_strip:
        editor = context.scene.sequence_editor
        strip = editor.active_strip if editor else None
        if strip is None or strip.type != 'MOVIE':
            raise ValueError("select a movie strip in the Video Sequencer first (or clear 'Active movie strip')")
        return bpy.path.abspath(strip.filepath).strip()
    footage = bpy.path.abspath(context.scene.maskcap.source_path).strip()
    if not footage:
        raise ValueError("choose the footage to anonymise (a video file or a folder of images)")
    return footage


def output_path(footage: str, method: str, chosen: str = "") -> tuple[str, str | None]:
    """Where the anonymised copy goes, and a warning when it cannot go beside the .blend."""
    if chosen:
        return bpy.path.abspath(chosen), None
    warning = None
    base = "//maskcap_anonymized/"
    if not bpy.data.filepath:
        base = os.path.join(bpy.app.tempdir or "/tmp", "maskcap_anonymized")
        warning = f"the .blend is not saved: the video goes to {base}"
    stem = Path(footage.rstrip("/\\")).stem or "clip"
    folder = bpy.path.abspath(base)
    os.makedirs(folder, exist_ok=True)
    return os.path.join(folder, f"{stem}_{method}.mp4"), warning


def _detector(fast: bool):
    from .core.detect import cnn
    return cnn.CnnFaceDetector(cnn.CnnDetectorOptions.fast() if fast else cnn.CnnDetectorOptions())


def _anonymize(footage, target, options, segmenter_options, **kwargs):
    """core.masks.batch.anonymize_clip with a segmenter opened where the preferences say (noted
    for the panel); any thread."""
    from .core.masks import batch
    from .core.segment.segmentation import FaceSegmenter
    with FaceSegmenter(options=segmenter_options) as segmenter:
        preferences.remember(segmenter)
        return batch.anonymize_clip(footage, target, options, segmenter=segmenter, **kwargs)


class MASKCAP_OT_anonymize_clip(ModalWorker, bpy.types.Operator):
    """Write a copy of the footage with every face blurred, pixelated or filled (Esc cancels)"""

    bl_idname = "maskcap.anonymize_clip"
    bl_label = "Anonymise footage"
    bl_options = {'REGISTER'}
    progress_verb = "anonymised"

    filepath: bpy.props.StringProperty(name="Footage", default="", subtype='FILE_PATH',
                                       description="Video file or image folder; empty: the panel's footage")
    use_strip: bpy.props.BoolProperty(name="Active movie strip", default=False,
                                      description="Anonymise the Video Sequencer's active movie strip instead")
    method: bpy.props.EnumProperty(name="Method", default='blur', items=(
        ('blur', "Blur", "Gaussian blur inside the face"),
        ('pixelate', "Pixelate", "Coarse blocks inside the face"),
        ('fill', "Fill", "Solid colour inside the face")))
    fast: bpy.props.BoolProperty(name="Fast detection", default=False,
                                 description="The detector on a smaller frame: about twice as quick, misses more small and grey faces")
    output: bpy.props.StringProperty(name="Output", default="", subtype='FILE_PATH',
                                     description="The .mp4 to write; empty: beside the .blend")

    def _prepare(self, context):
        footage = source_footage(context, self.filepath, self.use_strip)
        if not os.path.exists(footage):
            raise FileNotFoundError(f"{footage} does not exist")
        target, warning = output_path(footage, self.method, self.output)
        if warning:
            self.report({'WARNING'}, f"maskcap: {warning}")
        from .core.masks.anonymize import AnonymizeOptions
        options = AnonymizeOptions(method=self.method)
        return footage, target, options

    def execute(self, context):
        try:
            footage, target, options = self._prepare(context)
            shown = [time.perf_counter()]

            def progress(done, total):
                if time.perf_counter() - shown[0] > 2.0:
                    shown[0] = time.perf_counter()
                    print(f"maskcap: anonymised {done}/{total or '?'} frames", flush=True)

            summary = _anonymize(footage, target, options, preferences.segmenter_options(context),
                                 progress=progress, detector=_detector(self.fast))
        except (core.SourceError, OSError, ValueError, RuntimeError) as exc:
            self.report({'ERROR'}, f"maskcap: {exc}")
            return {'CANCELLED'}
        self.report({'INFO'}, f"maskcap: wrote {summary.output} ({summary.frames} frames, {summary.faces} faces)")
        return {'FINISHED'}

    # ------------------------------------------------------------ modal (UI)

    def invoke(self, context, event):
        try:
            footage, target, options = self._prepare(context)
        except (core.SourceError, OSError, ValueError, RuntimeError) as exc:
            self.report({'ERROR'}, f"maskcap: {exc}")
            return {'CANCELLED'}
        detector = _detector(self.fast)
        segmenter_options = preferences.segmenter_options(context)

        def work(cancel, progress):
            return _anonymize(footage, target, options, segmenter_options, detector=detector,
                              should_stop=cancel.is_set, progress=progress)

        return self.start_worker(context, work, "maskcap-anonymize")

    def worker_done(self, context, summary):
        if summary.cancelled:
            self.report({'WARNING'}, "maskcap: anonymising cancelled; nothing written")
            return {'CANCELLED'}
        self.report({'INFO'}, f"maskcap: wrote {summary.output} ({summary.frames} frames, {summary.faces} faces)")
        return {'FINISHED'}


CLASSES = (MASKCAP_OT_anonymize_clip,)
