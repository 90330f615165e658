"""Add-on preferences: where the face segmenter runs (compute device, threads), and what really ran.

Every path that segments (bake, live, anonymise) opens its segmenter with `segmenter_options()`
and hands it to `remember()`, so that the preferences and the sidebar show the ONNX Runtime
provider that really runs, and why CUDA is not used when Auto fell back to the CPU.
"""
import threading

import bpy
from bpy.props import EnumProperty, IntProperty

DEVICE_ITEMS = (
    ('AUTO', "Auto", "CUDA when ONNX Runtime can start it here, the CPU otherwise (and the panel says why)"),
    ('CPU', "CPU", "Always the CPU"),
    ('CUDA', "CUDA", "An NVIDIA GPU through ONNX Runtime's CUDA provider: needs the add-on's -gpu zip, CUDA 12 "
                     "and cuDNN 9; an error when it cannot start"),
)

_lock = threading.Lock()
_last = {"text": ""}  # FaceSegmenter.describe() of the segmenter the last bake, live session or anonymise opened


class MaskcapPreferences(bpy.types.AddonPreferences):
    bl_idname = __package__

    compute_device: EnumProperty(name="Compute device", items=DEVICE_ITEMS, default='AUTO',
                                 description="Where the face segmenter's network runs")
    threads: IntProperty(name="Threads", default=1, min=1, max=64,
                         description="ONNX Runtime threads per segmentation (1 leaves the other cores to "
                                     "the tracker, which runs beside it)")

    def draw(self, context):
        layout = self.layout
        layout.row().prop(self, "compute_device", expand=True)
        layout.prop(self, "threads")
        draw_status(layout)


def preferences(context=None):
    """This add-on's preferences (Blender's, whatever the context), or None when it is not enabled
    under this name."""
    addon = bpy.context.preferences.addons.get(__package__)
    return addon.preferences if addon is not None else None


def segmenter_options(context=None):
    """core's SegmenterOptions from the preferences (Auto and one thread when there are none)."""
    from .core.segment.segmentation import SegmenterOptions
    prefs = preferences()
    device = prefs.compute_device.lower() if prefs is not None else "auto"
    threads = prefs.threads if prefs is not None else 1
    return SegmenterOptions(device=device, intra_op_threads=threads)


def remember(segmenter) -> str:
    """Note where this segmenter runs (any thread); returns the text the panel shows."""
    text = segmenter.describe() if segmenter is not None else ""
    with _lock:
        _last["text"] = text
    return text


def last_run() -> str:
    """"CPUExecutionProvider, 1 thread; CUDA is not used: ..." for the last segmenter opened, or ""."""
    with _lock:
        return _last["text"]


def draw_status(layout) -> None:
    text = last_run()
    if not text:
        layout.label(text="Segmenter: starts with the next bake, live session or anonymise run", icon='INFO')
        return
    where, _, note = text.partition("; ")
    layout.label(text=f"Segmenter runs on {where}", icon='INFO')
    if note:
        layout.label(text=note, icon='ERROR')


CLASSES = (MaskcapPreferences,)
